"""wav2vec 2.0 as an utterance encoder: raw 16 kHz waveform -> (B, D) embedding.

A thin wrapper around ``transformers.Wav2Vec2Model`` that is exact under padding: an utterance
gives the same embedding alone and inside a zero-padded batch of longer ones.

Hugging Face's own batched forward is not: checkpoints with ``feat_extract_norm="group"``
(wav2vec2-base and -large) normalise the first CNN layer with a GroupNorm *over time*, so the
padded zeros change every frame of the shorter clips, and such checkpoints are meant to be run
without an attention mask at all (the padded frames are then attended to as well). This module
therefore runs the CNN feature encoder itself:

1. each clip is standardised (zero mean, unit variance) over its own samples only and its padding
   is set to zero, as ``Wav2Vec2FeatureExtractor(do_normalize=True)`` does;
2. the first conv layer's GroupNorm statistics are taken over each clip's valid frames only (the
   later conv layers have no padding, so a valid output frame only ever sees valid input);
3. the transformer gets the frame-level attention mask (``_get_feat_extract_output_lengths``),
   which also zeroes the padded frames before the positional convolution, as a clip alone sees
   zeros there (the conv's own zero padding);
4. pooling and the layer-weighted sum only ever read valid frames.

Clips shorter than the CNN's receptive field (400 samples = 25 ms at the default strides) are
extended with zeros to it, alone and in a batch alike, so they still give one frame.
"""
from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from .pooling import AttentivePooling, MeanPooling, length_mask


def _masked_group_norm(x: torch.Tensor, lengths: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
    """``GroupNorm(C, C)`` of (B, C, T) over each sequence's first ``lengths`` frames only."""
    if norm.num_groups != norm.num_channels:
        raise ValueError("only the per-channel GroupNorm of wav2vec2's first conv layer is supported")
    x = x.float()  # statistics over thousands of frames: fp32, as autocast runs nn.GroupNorm
    mask = length_mask(lengths, x.shape[-1])[:, None, :]  # (B, 1, T)
    n = lengths.clamp(min=1).to(x.dtype)[:, None, None]
    xm = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
    mean = xm.sum(-1, keepdim=True) / n
    var = (torch.where(mask, x - mean, torch.zeros((), dtype=x.dtype, device=x.device)) ** 2).sum(-1, keepdim=True) / n
    y = (x - mean) * torch.rsqrt(var + norm.eps)
    if norm.affine:
        y = y * norm.weight[None, :, None] + norm.bias[None, :, None]
    return y


class Wav2Vec2Encoder(nn.Module):
    """wav2vec 2.0 backbone + (optional) SUPERB layer weighting + masked pooling.

    Args:
        pretrained: Hub id or local directory of a wav2vec2 checkpoint (``Wav2Vec2Model``,
            ``...ForCTC`` or ``...ForPreTraining`` weights all load); ``None`` builds a randomly
            initialised model from the size options below.
        hidden_size, num_layers, num_heads, intermediate_size: Transformer size (``pretrained=None``).
        conv_dim, conv_kernel, conv_stride: CNN feature encoder (``pretrained=None``; ``None`` keeps
            the wav2vec2 defaults: 7 layers of 512 channels, 20 ms hop, 25 ms receptive field).
        feat_extract_norm: ``group`` (wav2vec2-base) or ``layer`` (large-lv60, XLS-R) (``pretrained=None``).
        config_overrides: Extra ``Wav2Vec2Config`` fields, also applied to a pretrained checkpoint's
            config (e.g. ``layerdrop``, ``hidden_dropout``, ``mask_time_prob``).
        spec_augment: HF's SpecAugment-style time masking of the projected CNN features while the
            whole backbone is fine-tuned (never in eval, never while the backbone is frozen).
        normalize_waveform: Standardise each clip over its own samples (what wav2vec2-base and
            XLS-R were trained on).
        freeze_feature_encoder: Keep the CNN feature encoder frozen.
        freeze_encoder: Start with the whole backbone frozen (``set_backbone_frozen`` changes it).
        layer_weighting: Softmax-weighted sum of all hidden states (transformer input + every
            layer's output) with learnable weights (SUPERB) instead of the last layer.
        trainable_layers: When unfrozen, train only the top k transformer layers (``None``: all
            of the backbone but, with ``freeze_feature_encoder``, the CNN).
        pooling: ``mean`` or ``attentive`` over the valid frames.
    """

    def __init__(self, pretrained: str | None = None, hidden_size: int = 768, num_layers: int = 12,
                 num_heads: int = 12, intermediate_size: int = 3072, conv_dim: list[int] | None = None,
                 conv_kernel: list[int] | None = None, conv_stride: list[int] | None = None,
                 feat_extract_norm: Literal["group", "layer"] = "group",
                 config_overrides: dict[str, Any] | None = None, spec_augment: bool = True,
                 normalize_waveform: bool = True, freeze_feature_encoder: bool = True,
                 freeze_encoder: bool = False, layer_weighting: bool = False,
                 trainable_layers: int | None = None, pooling: Literal["mean", "attentive"] = "mean"):
        super().__init__()
        from transformers import Wav2Vec2Config, Wav2Vec2Model

        overrides = dict(config_overrides or {})
        overrides.setdefault("apply_spec_augment", spec_augment)
        # the adapter's padded strided convs would let padding leak into valid frames
        overrides["add_adapter"] = False
        if pretrained is not None:
            from ..errors import ZooUserError
            from ..hub import HubModelMissing, from_pretrained

            try:
                self.model = from_pretrained(Wav2Vec2Model.from_pretrained, pretrained, "the wav2vec2 checkpoint",
                                             **overrides)
            except HubModelMissing:
                raise
            except (OSError, ValueError) as e:  # it is there but malformed
                raise ZooUserError(f"could not load the wav2vec2 checkpoint {pretrained!r}: {e}") from e
        else:
            size: dict[str, Any] = dict(hidden_size=hidden_size, num_hidden_layers=num_layers,
                                        num_attention_heads=num_heads, intermediate_size=intermediate_size,
                                        feat_extract_norm=feat_extract_norm)
            for key, value in (("conv_dim", conv_dim), ("conv_kernel", conv_kernel), ("conv_stride", conv_stride)):
                if value is not None:
                    size[key] = list(value)
            size.update(overrides)
            self.model = Wav2Vec2Model(Wav2Vec2Config(**size))
        cfg = self.model.config
        self.normalize_waveform = normalize_waveform
        self.freeze_feature_encoder = freeze_feature_encoder
        n_layers = len(self.model.encoder.layers)
        if trainable_layers is not None and not 0 <= trainable_layers <= n_layers:
            raise ValueError(f"trainable_layers={trainable_layers}, but the model has {n_layers} layers")
        self.trainable_layers = trainable_layers
        self.out_dim = cfg.hidden_size
        self.num_layers = n_layers
        # receptive field of the CNN: the fewest samples that still give one frame
        r = 1
        for k, s in zip(reversed(cfg.conv_kernel), reversed(cfg.conv_stride)):
            r = (r - 1) * s + k
        self.min_samples = r
        self.layer_weights = nn.Parameter(torch.zeros(n_layers + 1)) if layer_weighting else None
        self.pool = MeanPooling() if pooling == "mean" else AttentivePooling(cfg.hidden_size)
        self.backbone_frozen = False
        self.set_backbone_frozen(freeze_encoder)

    # -- freezing --------------------------------------------------------------------------------
    def _top_modules(self) -> list[nn.Module]:
        enc = self.model.encoder
        k = self.trainable_layers
        mods: list[nn.Module] = list(enc.layers[len(enc.layers) - k:]) if k else []
        if k and self.model.config.do_stable_layer_norm:  # its final LayerNorm follows the top layer
            mods.append(enc.layer_norm)
        return mods

    def trainable_backbone_parameters(self) -> list[nn.Parameter]:
        """The backbone parameters that train whenever the backbone is not frozen."""
        if self.trainable_layers is not None:
            return [p for m in self._top_modules() for p in m.parameters()]
        return [p for n, p in self.model.named_parameters()
                if not (self.freeze_feature_encoder and n.startswith("feature_extractor."))]

    def set_backbone_frozen(self, frozen: bool) -> None:
        """Freeze (requires_grad False, eval mode) or unfreeze the backbone as configured."""
        self.backbone_frozen = frozen
        train = set() if frozen else {id(p) for p in self.trainable_backbone_parameters()}
        for p in self.model.parameters():
            p.requires_grad = id(p) in train
        self.train(self.training)

    def train(self, mode: bool = True):
        """Frozen parts stay in eval mode (no dropout, LayerDrop or SpecAugment on them)."""
        super().train(mode)
        if mode:
            if self.backbone_frozen:
                self.model.eval()
            elif self.trainable_layers is not None:
                self.model.eval()
                for m in self._top_modules():
                    m.train()
            elif self.freeze_feature_encoder:
                self.model.feature_extractor.eval()
        return self

    # -- forward ---------------------------------------------------------------------------------
    def _standardise(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = length_mask(lengths, x.shape[1])
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        if not self.normalize_waveform:
            return torch.where(mask, x, zero)
        n = lengths.clamp(min=1).to(x.dtype)[:, None]
        mean = torch.where(mask, x, zero).sum(1, keepdim=True) / n
        var = (torch.where(mask, x - mean, zero) ** 2).sum(1, keepdim=True) / n
        return torch.where(mask, (x - mean) / torch.sqrt(var + 1e-7), zero)

    def _cnn(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2GroupNormConvLayer

        h = x[:, None]
        for i, layer in enumerate(self.model.feature_extractor.conv_layers):
            k, s = layer.conv.kernel_size[0], layer.conv.stride[0]
            lengths = torch.div(lengths - k, s, rounding_mode="floor") + 1
            if isinstance(layer, Wav2Vec2GroupNormConvLayer):  # normalises over time: valid frames only
                h = layer.activation(_masked_group_norm(layer.conv(h), lengths, layer.layer_norm))
            else:
                h = layer(h)
        return h.transpose(1, 2), lengths

    def frames(self, waveforms: torch.Tensor, lengths: torch.Tensor,
               output_hidden_states: bool = False):
        """Frame features.

        Returns ``(hidden (B, T', D), frame_lengths (B,))`` (with ``output_hidden_states`` also
        the tuple of all num_layers + 1 hidden states); frames past a clip's length are garbage.
        """
        lengths = lengths.to(waveforms.device).long().clamp(min=self.min_samples)
        if waveforms.shape[1] < self.min_samples:
            waveforms = nn.functional.pad(waveforms, (0, self.min_samples - waveforms.shape[1]))
        x = self._standardise(waveforms, lengths)
        feats, frame_lengths = self._cnn(x, lengths)
        hidden, _ = self.model.feature_projection(feats)
        mask = length_mask(frame_lengths, hidden.shape[1])
        cfg = self.model.config
        if self.model.training and hidden.shape[1] > cfg.mask_time_length:  # SpecAugment (HF's own)
            hidden = self.model._mask_hidden_states(hidden, attention_mask=mask.long())
        if not output_hidden_states:
            return self.model.encoder(hidden, attention_mask=mask, return_dict=True).last_hidden_state, frame_lengths
        last, states = self._encoder_with_states(hidden, mask)
        return last, frame_lengths, states

    def _encoder_with_states(self, hidden: torch.Tensor, mask: torch.Tensor):
        """The encoder's output and all its hidden states, as ``output_hidden_states`` of
        transformers 4 gives them (the transformer input, then each layer's output; the last one
        after the final LayerNorm of pre-LN models). Collected with hooks, so it also works where
        the encoder no longer returns them itself (transformers 5); a layer skipped by LayerDrop
        passes its input on."""
        enc = self.model.encoder
        got: dict[int, torch.Tensor] = {}

        def keep(i):
            return lambda module, args, out: got.__setitem__(i, out[0] if isinstance(out, tuple) else out)

        handles = [enc.dropout.register_forward_hook(keep(-1))]  # last op before the layers
        handles += [layer.register_forward_hook(keep(i)) for i, layer in enumerate(enc.layers)]
        try:
            last = enc(hidden, attention_mask=mask, return_dict=True).last_hidden_state
        finally:
            for h in handles:
                h.remove()
        states = [got[-1]]
        for i in range(len(enc.layers)):
            states.append(got.get(i, states[-1]))
        states[-1] = last
        return last, tuple(states)

    def layer_weights_softmax(self) -> torch.Tensor | None:
        return None if self.layer_weights is None else self.layer_weights.softmax(0)

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T) zero-padded waveforms + true sample counts -> (B, D) utterance embeddings."""
        if self.layer_weights is None:
            hidden, frame_lengths = self.frames(waveforms, lengths)
        else:
            _, frame_lengths, states = self.frames(waveforms, lengths, output_hidden_states=True)
            w = self.layer_weights.softmax(0).to(states[0].dtype)
            hidden = (torch.stack(states, 0) * w[:, None, None, None]).sum(0)
        return self.pool(hidden, frame_lengths)
