"""The SSL utterance encoder: any registered backbone (:mod:`zoo.nn.ssl.base`) + optional SUPERB
layer weighting or one chosen layer + masked pooling, with every freezing mode, LoRA and the
embedding cache (:class:`zoo.nn.cache.CachedEncoderMixin`)."""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Literal

import torch
from torch import nn

from ..cache import CachedEncoderMixin
from ..pooling import AttentivePooling, MeanPooling, length_mask
from .base import family_for, model_types

log = logging.getLogger("zoo")


class SSLEncoder(CachedEncoderMixin, nn.Module):
    """A transformers speech encoder + (optional) SUPERB layer weighting or one chosen layer + masked
    pooling, with every freezing mode and LoRA.

    Args:
        pretrained: Hub id or local directory of a checkpoint whose ``model_type`` is one of
            :data:`zoo.nn.ssl.MODEL_TYPES` (task heads such as CTC are dropped, the encoder is
            kept); ``None`` builds a randomly initialised ``model_type`` model of the size below.
        model_type: Architecture built when ``pretrained`` is None (a checkpoint names its own).
        hidden_size, num_layers, num_heads, intermediate_size: Transformer size (``pretrained=None``;
            for Whisper: ``d_model``, ``encoder_layers``, ``encoder_attention_heads``, ``encoder_ffn_dim``).
        conv_dim, conv_kernel, conv_stride, feat_extract_norm: CNN feature encoder of the
            wav2vec2-style types (``pretrained=None``; ``None`` keeps the defaults).
        num_mel_bins: Whisper's log-mel channels (``pretrained=None``; 80, or 128 for large-v3).
        config_overrides: Extra config fields, also applied to a pretrained checkpoint's config.
        spec_augment: HF's SpecAugment-style time masking while the backbone is fine-tuned
            (wav2vec2-style types; never in eval, never while frozen).
        normalize_waveform: Standardise each clip over its own samples before the CNN.
        freeze_feature_encoder: Keep the family's front end (the CNN; Whisper: its two
            convolutions) frozen.
        freeze_encoder: Start with the whole backbone frozen (``set_backbone_frozen`` changes it).
        layer_weighting: Softmax-weighted sum of all hidden states (SUPERB).
        layer: Use hidden state ``layer`` only (0 = the transformer input, num_layers = the last).
        trainable_layers: When unfrozen, train only the top k transformer layers.
        pooling: ``mean`` or ``attentive`` over the valid frames.
        lora_rank: LoRA adapters of this rank (``peft``) in the transformer; the base weights stay
            frozen and only the adapters train whenever the backbone is not frozen. None: no LoRA.
        lora_alpha, lora_dropout: LoRA scaling numerator and dropout.
        lora_target_modules: Module names to adapt (None: the type's default,
            :attr:`zoo.nn.ssl.SSLType.lora_targets`).
        whisper_context: ``clip`` or ``30s`` (:mod:`zoo.nn.ssl.whisper`).
    """

    def __init__(self, pretrained: str | None = None, model_type: str = "wav2vec2", hidden_size: int = 768,
                 num_layers: int = 12, num_heads: int = 12, intermediate_size: int = 3072,
                 conv_dim: list[int] | None = None, conv_kernel: list[int] | None = None,
                 conv_stride: list[int] | None = None, feat_extract_norm: Literal["group", "layer"] = "group",
                 num_mel_bins: int = 80, config_overrides: dict[str, Any] | None = None, spec_augment: bool = True,
                 normalize_waveform: bool = True, freeze_feature_encoder: bool = True,
                 freeze_encoder: bool = False, layer_weighting: bool = False, layer: int | None = None,
                 trainable_layers: int | None = None, pooling: Literal["mean", "attentive"] = "mean",
                 lora_rank: int | None = None, lora_alpha: float = 16.0, lora_dropout: float = 0.0,
                 lora_target_modules: list[str] | None = None,
                 whisper_context: Literal["clip", "30s"] = "clip"):
        super().__init__()
        self.model = self._build(pretrained, model_type, dict(
            hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads, intermediate_size=intermediate_size,
            conv_dim=conv_dim, conv_kernel=conv_kernel, conv_stride=conv_stride, feat_extract_norm=feat_extract_norm,
            num_mel_bins=num_mel_bins), dict(config_overrides or {}), spec_augment)
        cfg = self.model.config
        self.model_type = cfg.model_type
        self.family = family_for(self.model_type)
        if whisper_context not in ("clip", "30s"):
            raise ValueError(f"whisper_context must be clip or 30s, got {whisper_context!r}")
        self.whisper_context = whisper_context
        self.normalize_waveform = normalize_waveform
        self.freeze_feature_encoder = freeze_feature_encoder
        n_layers = len(self.layers)
        if trainable_layers is not None and not 0 <= trainable_layers <= n_layers:
            raise ValueError(f"trainable_layers={trainable_layers}, but the model has {n_layers} layers")
        if layer is not None and not 0 <= layer <= n_layers:
            raise ValueError(f"layer={layer}, but the model has hidden states 0..{n_layers}")
        if layer is not None and layer_weighting:
            raise ValueError("choose either one layer (layer: k) or the weighted sum of all (weighted_layers)")
        self.trainable_layers = trainable_layers
        self.layer = layer
        self.out_dim = self.family.out_dim(cfg)
        self.num_layers = n_layers
        self.min_samples = self.family.min_samples(self.model)
        self.family.setup(self)
        # parameters transformers keeps fixed (Whisper's sinusoidal positions) never train
        self._fixed = {id(p) for p in self.model.parameters() if not p.requires_grad}
        self.lora = lora_rank is not None
        if self.lora:
            self._add_lora(lora_rank, lora_alpha, lora_dropout, lora_target_modules)
        self.layer_weights = nn.Parameter(torch.zeros(n_layers + 1)) if layer_weighting else None
        self.pool = MeanPooling() if pooling == "mean" else AttentivePooling(self.out_dim)
        self.backbone_frozen = False
        self.set_backbone_frozen(freeze_encoder)
        self.register_load_state_dict_post_hook(self._invalidate_cache)  # new weights: a new cache key

    # -- building --------------------------------------------------------------------------------
    @staticmethod
    def _build(pretrained, model_type, size, overrides, spec_augment) -> nn.Module:
        from transformers import AutoConfig, AutoModel

        from ...errors import ZooUserError

        if pretrained is not None:
            from ...hub import HubModelMissing, from_pretrained

            what = "the speech encoder checkpoint"
            try:
                cfg = from_pretrained(AutoConfig.from_pretrained, pretrained, what)
            except HubModelMissing:
                raise
            except (OSError, ValueError) as e:  # it is there but malformed
                raise ZooUserError(f"could not load {what} {pretrained!r}: {e}") from e
            if cfg.model_type not in model_types():
                raise ZooUserError(f"{pretrained!r} is a {cfg.model_type!r} model; SSLClassifier runs "
                                   f"{', '.join(model_types())}")
            family = family_for(cfg.model_type)
        else:
            family = family_for(model_type)
            fields = family.random_config_fields(model_type, size)
            fields.update({k: v for k, v in overrides.items() if k != "model_type"})
            cfg = AutoConfig.for_model(model_type, **fields)
        family.prepare_overrides(cfg, overrides, spec_augment)
        for k, v in overrides.items():
            if k != "model_type":
                setattr(cfg, k, v)
        try:
            if pretrained is None:
                model = family.build_random(cfg)
            else:
                from ...hub import from_pretrained

                model = from_pretrained(AutoModel.from_pretrained, pretrained, "the speech encoder checkpoint", config=cfg)
        except (OSError, ValueError) as e:
            raise ZooUserError(f"could not build the {cfg.model_type} encoder {pretrained!r}: {e}") from e
        return family.backbone(model)

    def _add_lora(self, rank, alpha, dropout, targets) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        from ...errors import ZooUserError

        if rank < 1:
            raise ValueError(f"lora_rank must be >= 1, got {rank}")
        targets = self.family.lora_targets(self.model_type, targets)
        # only the transformer layers are adapted (the CNN's conv names never match these)
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none")
        try:
            inject_adapter_in_model(config, self.model)
        except ValueError as e:
            raise ZooUserError(f"LoRA: {e}") from e

    @property
    def layers(self) -> nn.ModuleList:
        return self.family.layers(self.model)

    # -- freezing --------------------------------------------------------------------------------
    def _top_modules(self) -> list[nn.Module]:
        k = self.trainable_layers
        layers = self.layers
        mods: list[nn.Module] = list(layers[len(layers) - k:]) if k else []
        norm = self.family.final_norm(self.model)
        if k and norm is not None:  # it follows the top layer
            mods.append(norm)
        return mods

    def _is_feature_encoder(self, name: str) -> bool:
        return name.startswith(self.family.front_end_prefixes)

    def trainable_backbone_parameters(self) -> list[nn.Parameter]:
        """The backbone parameters that train whenever the backbone is not frozen."""
        if self.lora:
            return [p for n, p in self.model.named_parameters() if "lora_" in n]
        if self.trainable_layers is not None:
            return [p for m in self._top_modules() for p in m.parameters() if id(p) not in self._fixed]
        return [p for n, p in self.model.named_parameters()
                if id(p) not in self._fixed and not (self.freeze_feature_encoder and self._is_feature_encoder(n))]

    def set_backbone_frozen(self, frozen: bool, keep_requires_grad: bool = False) -> None:
        """Freeze (eval mode, no gradient) or unfreeze the backbone as configured.

        A frozen backbone runs under ``torch.no_grad``. ``keep_requires_grad`` (the warm-up of
        ``unfreeze_after_steps``) leaves ``requires_grad`` on the parameters that will train once
        unfrozen: no gradient reaches them while frozen (their ``.grad`` stays None, so the
        optimizer skips them), but DistributedDataParallel, which registers only the parameters
        that require grad when it wraps the model, syncs their gradients after the unfreeze.
        Otherwise frozen parameters get ``requires_grad=False``."""
        self.backbone_frozen = frozen
        self._cache_obj = None  # weights may have trained since the digest was taken
        train = set() if frozen and not keep_requires_grad else {id(p) for p in self.trainable_backbone_parameters()}
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
                for n, m in self.model.named_children():
                    if self._is_feature_encoder(n + "."):
                        m.eval()
        return self

    # -- forward ---------------------------------------------------------------------------------
    def frames(self, waveforms: torch.Tensor, lengths: torch.Tensor, output_hidden_states: bool = False):
        """Frame features.

        Returns ``(hidden (B, T', D), frame_lengths (B,))`` (with ``output_hidden_states`` also
        the tuple of all num_layers + 1 hidden states); frames past a clip's length are garbage.
        Clips shorter than ``min_samples`` (the CNN's receptive field: 400 samples = 25 ms at the
        default strides) are extended with zeros to it, alone and in a batch alike.
        """
        lengths = lengths.to(waveforms.device).long()
        # a clip shorter than min_samples is extended with zeros, not with whatever its padding holds
        waveforms = torch.where(length_mask(lengths, waveforms.shape[1]), waveforms,
                                torch.zeros((), dtype=waveforms.dtype, device=waveforms.device))
        if waveforms.shape[1] < self.min_samples:
            waveforms = nn.functional.pad(waveforms, (0, self.min_samples - waveforms.shape[1]))
        lengths = lengths.clamp(min=self.min_samples)
        last, frame_lengths, states = self.family.frames(self, waveforms, lengths, output_hidden_states)
        if output_hidden_states:
            return last, frame_lengths, states
        return last, frame_lengths

    def layer_weights_softmax(self) -> torch.Tensor | None:
        return None if self.layer_weights is None else self.layer_weights.softmax(0)

    def _states(self, waveforms: torch.Tensor, lengths: torch.Tensor):
        """The hidden states the trainable part reads: ``((S of (B, T', D)), frame_lengths)``,
        S = 1 (the last or the chosen layer) or num_layers + 1 (weighted sum)."""
        if self.layer_weights is None and self.layer is None:
            hidden, frame_lengths = self.frames(waveforms, lengths)
            return (hidden,), frame_lengths
        _, frame_lengths, states = self.frames(waveforms, lengths, output_hidden_states=True)
        return ((states[self.layer],) if self.layer is not None else tuple(states)), frame_lengths

    def _mix(self, stacked: torch.Tensor) -> torch.Tensor:
        """(S, ...) states -> (...): the one state, or the softmax-weighted sum."""
        if self.layer_weights is None:
            return stacked[0]
        w = self.layer_weights.softmax(0).to(stacked.dtype)
        return (stacked * w.view(-1, *[1] * (stacked.dim() - 1))).sum(0)

    def _cache_options(self) -> dict[str, Any]:
        """What shapes the output besides the weights and config (part of the cache key)."""
        states = "last" if self.layer_weights is None and self.layer is None else (
            self.layer if self.layer is not None else "all")
        return dict(model_type=self.model_type, normalize_waveform=self.normalize_waveform,
                    whisper_context=self.whisper_context, min_samples=self.min_samples, states=states)

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor, cache: bool = True) -> torch.Tensor:
        """(B, T) zero-padded waveforms + true sample counts -> (B, D) utterance embeddings.

        With ``cache_dir`` set, a :attr:`deterministic` encoder's outputs come from (and go to)
        the embedding cache (``cache=False`` bypasses it, e.g. for randomly augmented input)."""
        if self._use_cache(cache):
            return self._forward_cached(waveforms, lengths)
        with torch.no_grad() if self.backbone_frozen else contextlib.nullcontext():
            states, frame_lengths = self._states(waveforms, lengths)
        hidden = states[0] if len(states) == 1 else self._mix(torch.stack(states, 0))
        return self.pool(hidden, frame_lengths)

    def sequence(self, waveforms: torch.Tensor, lengths: torch.Tensor,
                 cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) zero-padded waveforms + true sample counts -> ``(frames (B, T', D), frame_lengths (B,))``:
        the frame sequence the pooling would read (the last hidden state, the chosen ``layer`` or
        the weighted sum of all), for a model that fuses frames (early fusion). Frames past a
        clip's ``frame_lengths`` are zero; the valid ones are those of the clip alone.

        With ``cache_dir`` set, a :attr:`deterministic` encoder's frames (every state the mix
        reads) come from and go to the embedding cache, as in :meth:`forward`."""
        if self._use_cache(cache):
            hidden, frame_lengths = self._sequence_cached(waveforms, lengths)
        else:
            states, frame_lengths = self._states(waveforms, lengths)
            hidden = states[0] if len(states) == 1 else self._mix(torch.stack(states, 0))
        valid = length_mask(frame_lengths, hidden.shape[1]).unsqueeze(-1)
        return torch.where(valid, hidden, torch.zeros((), dtype=hidden.dtype, device=hidden.device)), frame_lengths

    # -- export ----------------------------------------------------------------------------------
    def export_graph(self, head: nn.Module) -> nn.Module:
        """The ONNX graph of this encoder and ``head`` (the family's; a ZooUserError when it has none)."""
        return self.family.onnx_graph(self, head)
