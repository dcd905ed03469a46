"""Fusion blocks: how two utterance embeddings (late fusion) or two frame sequences (early
fusion) become one representation. Plain nn.Modules; every block masks padding."""
from __future__ import annotations

import math

import torch
from torch import nn

from .pooling import length_mask


def mlp_head(dim: int, hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, num_classes))


class ConcatFusion(nn.Module):
    """[audio; text] -> MLP (the seed deck's late fusion)."""

    def __init__(self, audio_dim: int, text_dim: int, hidden: int, num_classes: int, dropout: float):
        super().__init__()
        self.head = mlp_head(audio_dim + text_dim, hidden, num_classes, dropout)

    def forward(self, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([a, t], -1))


class GatedFusion(nn.Module):
    """Both projected to one width; a sigmoid gate per dimension decides how much of each
    (a gated multimodal unit, Arevalo et al. 2017) -> MLP."""

    def __init__(self, audio_dim: int, text_dim: int, hidden: int, num_classes: int, dropout: float):
        super().__init__()
        self.pa = nn.Linear(audio_dim, hidden)
        self.pt = nn.Linear(text_dim, hidden)
        self.gate = nn.Linear(audio_dim + text_dim, hidden)
        self.head = mlp_head(hidden, hidden, num_classes, dropout)

    def forward(self, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        z = torch.sigmoid(self.gate(torch.cat([a, t], -1)))
        return self.head(z * torch.tanh(self.pa(a)) + (1 - z) * torch.tanh(self.pt(t)))


class AttentionFusion(nn.Module):
    """The two embeddings become two tokens (plus a modality embedding) and attend to each other
    in a small transformer layer; the mean of the two outputs -> MLP."""

    def __init__(self, audio_dim: int, text_dim: int, hidden: int, num_classes: int, dropout: float,
                 heads: int = 4):
        super().__init__()
        self.pa = nn.Linear(audio_dim, hidden)
        self.pt = nn.Linear(text_dim, hidden)
        self.modality = nn.Parameter(torch.zeros(2, hidden))
        self.layer = nn.TransformerEncoderLayer(hidden, heads if hidden % heads == 0 else 1, 2 * hidden,
                                                dropout, batch_first=True, norm_first=True)
        self.head = mlp_head(hidden, hidden, num_classes, dropout)

    def forward(self, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x = torch.stack([self.pa(a), self.pt(t)], 1) + self.modality
        return self.head(self.layer(x).mean(1))


class DecisionFusion(nn.Module):
    """Decision level: the branches' own classifier outputs, mixed with learned softmax weights.
    ``logits``: weighted average of the logits; ``probs``: weighted average of the class
    probabilities (a mixture of the two posteriors, returned as its log, a valid logit vector).

    Each branch also has a temperature (temperature scaling, Guo et al. 2017): its logits are
    divided by it before mixing, so two branches whose confidences mean different things are put
    on one scale. Fitted with :meth:`calibration_loss` on held-out outputs; 1 until then.
    """

    def __init__(self, mode: str = "logits"):
        super().__init__()
        self.mode = mode
        self.weights = nn.Parameter(torch.zeros(2))  # softmax -> equal weights at the start
        self.log_temperature = nn.Parameter(torch.zeros(2))  # exp -> T = 1 at the start

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before temperatures existed: T = 1 (what they computed)
        state_dict.setdefault(prefix + "log_temperature", torch.zeros(2))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def temperatures(self) -> torch.Tensor:
        return self.log_temperature.exp()

    def calibration_loss(self, la: torch.Tensor, lt: torch.Tensor, labels: torch.Tensor,
                         text_present: torch.Tensor) -> torch.Tensor:
        """Each branch's own NLL at its temperature (labels of -1 ignored): the temperatures
        learn from this alone, never from the fused loss, so each stays a calibration."""
        t = self.temperatures.to(la.dtype)
        known = labels >= 0
        loss = t.sum() * 0.0  # the temperatures take part in every step, even one with no label (DDP)
        if known.any():
            loss = loss + nn.functional.cross_entropy(la.detach()[known] / t[0], labels[known])
        both = known & text_present
        if both.any():
            loss = loss + nn.functional.cross_entropy(lt.detach()[both] / t[1], labels[both])
        return loss

    def forward(self, la: torch.Tensor, lt: torch.Tensor) -> torch.Tensor:
        t = self.temperatures.detach().to(la.dtype)
        la, lt = la / t[0], lt / t[1]
        w = self.weights.softmax(0)
        if self.mode == "logits":
            return w[0] * la + w[1] * lt
        return torch.logsumexp(torch.stack([w[0].log() + la.log_softmax(-1), w[1].log() + lt.log_softmax(-1)]), 0)


FUSIONS = {"concat": ConcatFusion, "gated": GatedFusion, "attention": AttentionFusion}


def sinusoid(n: int, dim: int, device=None) -> torch.Tensor:
    """Fixed sinusoidal positions (n, dim)."""
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(n, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : dim // 2]
    return pe


class ConvSubsampler(nn.Module):
    """Two stride-2 1-D convolutions over frames (4x fewer frames); padding is re-zeroed before
    each conv, so the valid outputs equal those of the clip alone."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.c1 = nn.Conv1d(dim_in, dim_out, 3, stride=2, padding=1)
        self.c2 = nn.Conv1d(dim_out, dim_out, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for conv in (self.c1, self.c2):
            x = x * length_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)
            x = torch.relu(conv(x.transpose(1, 2))).transpose(1, 2)
            lengths = (lengths + 1) // 2
        return x, lengths


class JointEncoder(nn.Module):
    """Early fusion: audio frames and text tokens (both already at width ``dim``) meet before any
    pooling.

    ``concat``: one transformer over the concatenated sequence [audio frames; text tokens]
    (with modality embeddings), masked mean pooling over all real positions.
    ``cross_attention``: audio frames attend to the tokens and tokens to the frames (one
    cross-attention block each way, then a self-attention layer per stream); each stream is
    mean-pooled and the two are concatenated.
    """

    def __init__(self, dim: int, layers: int = 2, heads: int = 4, dropout: float = 0.1,
                 mode: str = "concat"):
        super().__init__()
        self.mode = mode
        self.modality = nn.Parameter(torch.zeros(2, dim))
        h = heads if dim % heads == 0 else 1

        def stack(n):
            return nn.TransformerEncoder(
                nn.TransformerEncoderLayer(dim, h, 4 * dim, dropout, batch_first=True, norm_first=True),
                n, enable_nested_tensor=False)
        if mode == "concat":
            self.encoder = stack(layers)
            self.out_dim = dim
        elif mode == "cross_attention":
            self.a2t = nn.MultiheadAttention(dim, h, dropout=dropout, batch_first=True)
            self.t2a = nn.MultiheadAttention(dim, h, dropout=dropout, batch_first=True)
            self.norm_a, self.norm_t = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.enc_a, self.enc_t = stack(max(1, layers - 1)), stack(max(1, layers - 1))
            self.out_dim = 2 * dim
        else:
            raise ValueError(f"mode must be concat or cross_attention, got {mode!r}")

    @staticmethod
    def _mean(x, valid):
        w = valid.unsqueeze(-1).to(x.dtype)
        return (x * w).sum(1) / w.sum(1).clamp(min=1)

    def forward(self, a: torch.Tensor, a_len: torch.Tensor, t: torch.Tensor, t_mask: torch.Tensor) -> torch.Tensor:
        a_valid = length_mask(a_len, a.shape[1])
        t_valid = t_mask.bool()
        a = a + sinusoid(a.shape[1], a.shape[2], a.device) + self.modality[0]
        t = t + self.modality[1]
        if self.mode == "concat":
            x = torch.cat([a, t], 1)
            valid = torch.cat([a_valid, t_valid], 1)
            return self._mean(self.encoder(x, src_key_padding_mask=~valid), valid)
        qa = self.norm_a(a)
        qt = self.norm_t(t)
        a = a + self.a2t(qa, qt, qt, key_padding_mask=~t_valid, need_weights=False)[0]
        t = t + self.t2a(qt, qa, qa, key_padding_mask=~a_valid, need_weights=False)[0]
        a = self.enc_a(a, src_key_padding_mask=~a_valid)
        t = self.enc_t(t, src_key_padding_mask=~t_valid)
        return torch.cat([self._mean(a, a_valid), self._mean(t, t_valid)], -1)
