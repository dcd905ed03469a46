"""Audio front-end and encoders: plain nn.Modules, usable without Lightning.

Every module takes padded tensors plus true lengths and masks padding, so an utterance gets the
same output alone or inside a padded batch (eval mode).
"""
from __future__ import annotations

import copy
import logging

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import ZooUserError
from .pooling import AttentivePooling, length_mask

log = logging.getLogger("zoo")


class RunningFeatureNorm(nn.Module):
    """Standardise features with corpus-level running statistics of the *valid* frames.

    Unlike BatchNorm, padding never enters the statistics, and the same running statistics
    normalise in training and evaluation, so a clip is treated alike alone or in a batch.
    """

    def __init__(self, dim: int, momentum: float = 0.01):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("initialised", torch.tensor(False))

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                valid = feats[mask.squeeze(-1)]
                if valid.shape[0] > 1:
                    m, v = valid.mean(0), valid.var(0)
                    if not bool(self.initialised):
                        self.mean.copy_(m)
                        self.var.copy_(v)
                        self.initialised.fill_(True)
                    else:
                        self.mean.lerp_(m, self.momentum)
                        self.var.lerp_(v, self.momentum)
        return (feats - self.mean) / (self.var + 1e-5).sqrt()


class LogMel(nn.Module):
    """Log-mel filterbank (torchaudio) with feature normalisation.

    ``normalize``: ``utterance`` (per-utterance mean/variance per mel band: robust to channel
    and level, but it removes loudness), ``global`` (running corpus statistics: keeps level
    differences such as loud anger vs quiet sadness), ``speaker`` (statistics of each speaker's
    own utterances, set with :meth:`set_speaker_stats`; keeps level and pitch *relative to the
    speaker*; clips of unknown speakers fall back to ``global``), ``none``.

    ``center=False`` framing: a frame only sees samples of its own clip, never padding, so the
    valid frames of a padded batch equal those of the clip alone.
    """

    def __init__(self, sample_rate: int = 16000, n_mels: int = 64, win_ms: float = 25.0,
                 hop_ms: float = 10.0, normalize: str = "utterance"):
        super().__init__()
        import torchaudio

        if normalize not in ("utterance", "global", "speaker", "none"):
            raise ValueError(f"normalize must be utterance, global, speaker or none, got {normalize!r}")
        self.n_fft = int(round(sample_rate * win_ms / 1000))
        self.hop = int(round(sample_rate * hop_ms / 1000))
        self.normalize = normalize
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=self.n_fft, hop_length=self.hop, n_mels=n_mels,
            center=False, power=2.0)
        self.global_norm = RunningFeatureNorm(n_mels) if normalize in ("global", "speaker") else None
        self.speaker_stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def frames(self, lengths: torch.Tensor) -> torch.Tensor:
        return 1 + (lengths.clamp(min=self.n_fft) - self.n_fft) // self.hop

    def raw(self, wav: torch.Tensor) -> torch.Tensor:
        """Un-normalised log-mel frames (B, T, n_mels)."""
        if wav.shape[1] < self.n_fft:
            wav = nn.functional.pad(wav, (0, self.n_fft - wav.shape[1]))
        with torch.autocast(wav.device.type, enabled=False):
            return (self.mel(wav.float()) + 1e-6).log().transpose(1, 2)

    @torch.no_grad()
    def set_speaker_stats(self, clips_by_speaker: dict[str, list[torch.Tensor]]) -> None:
        """Per-speaker mean/std of the log-mel frames of that speaker's clips (no labels used)."""
        self.speaker_stats = {}
        for spk, clips in clips_by_speaker.items():
            frames = torch.cat([self.raw(c[None].to(self.mel.spectrogram.window.device))[0] for c in clips])
            self.speaker_stats[spk] = (frames.mean(0), frames.std(0) + 1e-3)

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor,
                speakers: list[str | None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.raw(wav)
        n = self.frames(lengths)
        mask = length_mask(n, feats.shape[1]).unsqueeze(-1)
        if self.normalize == "utterance":
            cnt = n.clamp(min=1).view(-1, 1, 1).to(feats.dtype)
            mean = (feats * mask).sum(1, keepdim=True) / cnt
            var = (((feats - mean) * mask) ** 2).sum(1, keepdim=True) / cnt
            feats = (feats - mean) / (var + 1e-5).sqrt()
        elif self.normalize == "global":
            feats = self.global_norm(feats, mask)
        elif self.normalize == "speaker":
            normed = self.global_norm(feats, mask)  # fallback, and keeps its statistics current
            rows = []
            for i in range(feats.shape[0]):
                stats = self.speaker_stats.get(speakers[i]) if speakers else None
                if stats is None:
                    rows.append(normed[i])
                else:  # statistics may have been computed before the model moved device
                    mean, std = (t.to(feats.device) for t in stats)
                    rows.append((feats[i] - mean) / std)
            feats = torch.stack(rows)
        return feats * mask, n


class SpecAugment(nn.Module):
    """Frequency and time masking on (B, T, F) features, training only."""

    def __init__(self, freq_mask: int = 8, time_mask: int = 20, n_masks: int = 2):
        super().__init__()
        import torchaudio

        self.n_masks = n_masks
        self.freq = torchaudio.transforms.FrequencyMasking(freq_mask, iid_masks=True)
        self.time = torchaudio.transforms.TimeMasking(time_mask, iid_masks=True)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if not self.training or self.n_masks == 0:
            return feats
        x = feats.transpose(1, 2).unsqueeze(1)  # (B, 1, F, T)
        for _ in range(self.n_masks):
            x = self.time(self.freq(x))
        return x.squeeze(1).transpose(1, 2)


class MaskedLayerNorm2d(nn.Module):
    """Layer normalisation of one clip's (C, T, F) feature map over its valid frames only, with
    a per-channel scale and shift: each clip is normalised by its own statistics, so the output
    does not depend on the other clips of the batch (nor on padding), in training and evaluation
    alike."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x: (B, C, T, F); mask: (B, 1, T, 1)
        n = (mask.sum((1, 2, 3)) * x.shape[1] * x.shape[3]).clamp(min=1).view(-1, 1, 1, 1)
        mean = (x * mask).sum((1, 2, 3), keepdim=True) / n
        var = (((x - mean) * mask) ** 2).sum((1, 2, 3), keepdim=True) / n
        x = (x - mean) / (var + self.eps).sqrt()
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class ConvBlock(nn.Module):
    """Two 3x3 convolutions, each followed by a normalisation and ReLU, then max-pooling.

    ``norm``: ``batch`` (BatchNorm) or ``layer`` (:class:`MaskedLayerNorm2d`, per clip). With
    small corpora and length-bucketed batches, BatchNorm's batch statistics change from batch to
    batch (clip length goes with emotion: sad and disgusted speech is slower), and the network
    trained on them meets other (running) statistics at evaluation; measured on the demo corpus,
    a trained AudioCNN labelled its own training clips 57% right with batch statistics and 40%
    with the running ones. ``layer`` computes the same function in training and evaluation.
    """

    def __init__(self, cin: int, cout: int, pool_time: bool, dropout: float, norm: str = "batch"):
        super().__init__()
        if norm not in ("batch", "layer"):
            raise ValueError(f"norm must be batch or layer, got {norm!r}")

        def make_norm():
            return nn.BatchNorm2d(cout) if norm == "batch" else MaskedLayerNorm2d(cout)
        # (module indices as before, so BatchNorm checkpoints load unchanged)
        self.conv = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), make_norm(), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), make_norm(), nn.ReLU())
        # ceil_mode: an odd last frame keeps its own window (inputs are >= 0 after ReLU, so the
        # zero padding beside it in a batch cannot win the max)
        self.pool = nn.MaxPool2d((2 if pool_time else 1, 2), ceil_mode=True)
        self.drop = nn.Dropout(dropout)
        self.pool_time = pool_time

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        # x: (B, C, T, F); padding is re-zeroed after each conv: BatchNorm's shift makes padded
        # frames non-zero, and the next conv would carry them into the clip's edge frames
        mask = length_mask(lengths, x.shape[2])[:, None, :, None].to(x.dtype)
        for conv, norm, act in (self.conv[0:3], self.conv[3:6]):
            x = conv(x)
            x = norm(x, mask) if isinstance(norm, MaskedLayerNorm2d) else norm(x)
            x = act(x) * mask
        x = self.pool(x)
        if self.pool_time:
            lengths = (lengths + 1) // 2
        return self.drop(x), lengths


class CNNLSTMEncoder(nn.Module):
    """Log-mel frames -> 2-D CNN -> BiLSTM -> attentive pooling: the seed deck's audio branch.

    Output: one embedding per utterance of size ``2 * hidden``.
    """

    def __init__(self, n_mels: int = 64, channels: tuple[int, ...] = (32, 64, 128),
                 hidden: int = 128, lstm_layers: int = 1, dropout: float = 0.2, norm: str = "batch"):
        super().__init__()
        blocks, cin = [], 1
        for k, c in enumerate(channels):
            blocks.append(ConvBlock(cin, c, pool_time=k < 2, dropout=dropout, norm=norm))
            cin = c
        self.blocks = nn.ModuleList(blocks)
        freq = n_mels
        for _ in channels:
            freq = (freq + 1) // 2
        self.proj = nn.Linear(cin * freq, hidden * 2)
        self.lstm = nn.LSTM(hidden * 2, hidden, num_layers=lstm_layers, batch_first=True,
                            bidirectional=True, dropout=dropout if lstm_layers > 1 else 0.0)
        self.pool = AttentivePooling(2 * hidden)
        self.out_dim = 2 * hidden

    def frames(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, F) log-mels -> the BiLSTM's input (B, T', 2 * hidden) and its lengths (>= 1)."""
        x = feats.unsqueeze(1)  # (B, 1, T, F)
        for b in self.blocks:
            x, lengths = b(x, lengths)
        x = x.permute(0, 2, 1, 3).flatten(2)  # (B, T', C*F')
        x = torch.relu(self.proj(x))
        return x, lengths.clamp(min=1)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x, lengths = self.frames(feats, lengths)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return self.pool(out, lengths.to(out.device))


class ECAPAEncoder(nn.Module):
    """SpeechBrain's ECAPA-TDNN on the same log-mel features (random init; its own pooling)."""

    def __init__(self, n_mels: int = 64, channels: int = 512, embedding: int = 192):
        super().__init__()
        from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

        self.net = ECAPA_TDNN(input_size=n_mels, lin_neurons=embedding,
                              channels=[channels] * 4 + [channels * 3])
        self.out_dim = embedding

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if feats.shape[1] < 8:  # its reflect padding needs a few frames (a clip under ~0.1 s)
            feats = nn.functional.pad(feats, (0, 0, 0, 8 - feats.shape[1]))
        if not self.training:
            # SpeechBrain's TDNN blocks reflect-pad and batch-normalise the padded frames, which
            # then leak into a shorter clip's edge frames: evaluate each clip on its own frames
            return torch.cat([self.net(feats[i : i + 1, : max(int(n), 8)]).squeeze(1)
                              for i, n in enumerate(lengths)])
        rel = lengths.float() / feats.shape[1]  # SpeechBrain takes relative lengths
        return self.net(feats, rel).squeeze(1)


# -- ONNX export ----------------------------------------------------------------------------------
class DFTMelSpectrogram(nn.Module):
    """torchaudio's ``MelSpectrogram(center=False, power=2)`` as a strided conv1d with a fixed,
    windowed DFT basis (real and imaginary rows) followed by the same mel filterbank.

    ONNX export of ``torch.stft`` is not usable here (complex tensors: the TorchScript exporter
    refuses them, the dynamo one emits an op invalid at opset 17), while a conv1d exports
    everywhere and equals the STFT up to float rounding."""

    def __init__(self, mel: nn.Module):
        super().__init__()
        spec = mel.spectrogram
        if spec.center or spec.pad or spec.normalized or spec.power != 2.0 or not spec.onesided:
            raise ZooUserError("ONNX export supports the zoo's own log-mel front end only "
                               "(center=False, power 2, no padding or normalisation)")
        n_fft, win = spec.n_fft, spec.window.double()
        if win.numel() < n_fft:  # torch.stft centres a shorter window inside n_fft
            left = (n_fft - win.numel()) // 2
            win = nn.functional.pad(win, (left, n_fft - win.numel() - left))
        k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
        t = torch.arange(n_fft, dtype=torch.float64)[None, :]
        phase = 2 * torch.pi * ((k * t) % n_fft) / n_fft  # reduced mod n_fft: exact angles
        basis = torch.cat([torch.cos(phase) * win, -torch.sin(phase) * win])  # (2F, n_fft)
        self.register_buffer("basis", basis.float()[:, None, :])
        self.register_buffer("fb", mel.mel_scale.fb.detach().clone().float())
        self.hop = spec.hop_length
        self.n_freq = n_fft // 2 + 1

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, n_mels, frames), as ``MelSpectrogram`` returns it."""
        y = nn.functional.conv1d(wav[:, None, :], self.basis, stride=self.hop)
        re, im = y[:, : self.n_freq], y[:, self.n_freq :]
        power = re * re + im * im  # (B, F, frames)
        return torch.matmul(power.transpose(1, 2), self.fb).transpose(1, 2)


class MaskedBiLSTM(nn.Module):
    """A batch-first bidirectional ``nn.LSTM`` over zero-padded sequences without packing.

    ``pack_padded_sequence`` does not export to ONNX. Padding after a clip cannot change the
    forward direction's valid outputs; the backward direction must start at each clip's last
    valid frame, so it runs on each sequence reversed within its own length, and its outputs are
    put back in order. Outputs on padded frames are garbage; the zoo's pooling masks them."""

    def __init__(self, lstm: nn.LSTM):
        super().__init__()
        if not (lstm.bidirectional and lstm.batch_first) or lstm.proj_size or not lstm.bias:
            raise ZooUserError("ONNX export supports the zoo's batch-first bidirectional LSTM only")
        self.fwd, self.bwd = nn.ModuleList(), nn.ModuleList()
        for layer in range(lstm.num_layers):
            for suffix, dest in (("", self.fwd), ("_reverse", self.bwd)):
                one = nn.LSTM(lstm.input_size if layer == 0 else 2 * lstm.hidden_size, lstm.hidden_size,
                              batch_first=True)
                with torch.no_grad():
                    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                        getattr(one, f"{name}_l0").copy_(getattr(lstm, f"{name}_l{layer}{suffix}"))
                dest.append(one)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        t = torch.arange(x.shape[1], device=x.device)[None, :]
        last = lengths[:, None] - 1
        order = torch.where(t <= last, last - t, t)  # reverses the valid part, keeps the padding
        for fwd, bwd in zip(self.fwd, self.bwd):
            f, _ = fwd(x)
            r, _ = bwd(x.gather(1, order[:, :, None].expand(-1, -1, x.shape[2])))
            b = r.gather(1, order[:, :, None].expand(-1, -1, r.shape[2]))  # the reversal is its own inverse
            x = torch.cat([f, b], dim=-1)
        return x


class CNNLSTMGraph(nn.Module):
    """The ONNX graph of log-mel front end + :class:`CNNLSTMEncoder` + head (AudioCNN): the
    encoder's own :meth:`CNNLSTMEncoder.frames` and pooling, with the export-friendly parts
    swapped in (the DFT-conv mel front end, the unpacked BiLSTM). Copies: the model itself stays
    as it was (and a LightningModule copy would drag its Trainer along)."""

    def __init__(self, features: LogMel, encoder: CNNLSTMEncoder, head: nn.Module):
        super().__init__()
        self.features = copy.deepcopy(features)
        self.encoder = copy.deepcopy(encoder)
        self.head = copy.deepcopy(head)
        if self.features.normalize == "speaker":
            # the graph cannot hold per-speaker statistics; clips of unknown speakers use the
            # global ones (what zoo.load(...).predict does too)
            log.warning("normalize: speaker: the ONNX model normalises every clip with the global "
                        "statistics (as for an unknown speaker)")
            self.features.normalize = "global"
        self.features.mel = DFTMelSpectrogram(self.features.mel)
        self.lstm = MaskedBiLSTM(self.encoder.lstm)
        self.pad = self.features.n_fft - 1

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # extra zeros after every clip are masked like any padding; they spare the graph LogMel's
        # shape-dependent branch for clips shorter than one window
        waveform = nn.functional.pad(waveform, (0, self.pad))
        feats, n = self.features(waveform, lengths)
        x, n = self.encoder.frames(feats, n)
        return self.head(self.encoder.pool(self.lstm(x, n), n))
