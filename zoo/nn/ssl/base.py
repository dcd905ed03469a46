"""The table of SSL backbone families: one registered class per architecture family.

A family (:class:`SSLFamily`) knows the transformers ``model_type`` names it accepts
(:class:`SSLType`: their config and model classes, LoRA targets, Hugging Face export class, tiny
test configs), how to build a random model of a given size, how to run its own padding-exact
forward, which of its parameters are the front end (for ``freeze_feature_encoder``), and how it
exports. Everything that lists SSL types (the accepted ``model_type`` values and the CLI's
choices, the parametrized tests, the docs table) reads this table.

A family is registered with the :func:`register_family` decorator (timm style; a duplicate family
or type name is refused). Families are stateless: one instance serves every encoder of its types.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from ..pooling import length_mask

if TYPE_CHECKING:  # pragma: no cover
    from .encoder import SSLEncoder

#: :class:`SSLEncoder`'s size arguments and their defaults (a random model's size)
SIZE_DEFAULTS: dict[str, Any] = dict(hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072,
                                     conv_dim=None, conv_kernel=None, conv_stride=None, feat_extract_norm="group",
                                     num_mel_bins=80)


@dataclass(frozen=True)
class SSLType:
    """One transformers ``model_type`` a family runs.

    Args:
        name: ``config.model_type`` (what ``model_type:`` and a checkpoint's config.json say).
        title: Architecture name for docs and messages.
        config_class, model_class: transformers class names (resolved only when used).
        hf_classifier: The ``...ForSequenceClassification`` class a Hugging Face export writes;
            None: no exact Hugging Face counterpart.
        lora_targets: Default LoRA target modules.
        lora_bypassed: Module names the forward never calls (LoRA there would never run).
        tiny: Config fields of the tiny random test model, on top of the family's.
        variants: Named layouts the tests also build (config fields on top of ``tiny``).
    """

    name: str
    title: str
    config_class: str
    model_class: str
    hf_classifier: str | None = None
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj")
    lora_bypassed: tuple[str, ...] = ()
    tiny: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)

    def transformers_class(self, which: str = "config"):
        import transformers

        return getattr(transformers, self.config_class if which == "config" else self.model_class)


class SSLFamily:
    """An architecture family: subclasses fill the class attributes and the hooks below."""

    types: ClassVar[tuple[SSLType, ...]]
    #: what ``freeze_feature_encoder`` keeps frozen (docs) and its parameter-name prefixes
    front_end: ClassVar[str]
    front_end_prefixes: ClassVar[tuple[str, ...]]
    #: the sample rate a random (``pretrained: null``) model of the family needs; None: any
    fixed_sample_rate: ClassVar[int | None] = None
    #: ``normalize_waveform`` when a checkpoint has no preprocessor_config.json to say
    normalize_waveform_default: ClassVar[bool] = True
    #: whether ``export --format onnx`` can trace it (:meth:`onnx_graph`)
    onnx_exportable: ClassVar[bool] = True
    #: size arguments and config fields of the tiny random models (tests, CPU overlays)
    tiny_size: ClassVar[dict[str, Any]] = dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
    tiny_overrides: ClassVar[dict[str, Any]] = {}

    def type(self, model_type: str) -> SSLType:
        return next(t for t in self.types if t.name == model_type)

    # -- building --------------------------------------------------------------------------------
    def random_config_fields(self, model_type: str, size: dict[str, Any]) -> dict[str, Any]:
        """Config fields of a random model from :class:`SSLEncoder`'s size arguments."""
        raise NotImplementedError

    def prepare_overrides(self, cfg, overrides: dict[str, Any], spec_augment: bool) -> None:
        """Config fields the zoo sets on every model of the family (``overrides`` is updated)."""

    def build_random(self, cfg) -> nn.Module:
        from transformers import AutoModel

        return AutoModel.from_config(cfg)

    def backbone(self, model: nn.Module) -> nn.Module:
        """The part of a loaded model the encoder keeps (task heads and decoders dropped)."""
        return model

    def tiny_init_args(self, model_type: str) -> dict[str, Any]:
        """``SSLClassifier`` / :class:`SSLEncoder` arguments of a tiny random model (``pretrained: null``)."""
        return {"pretrained": None, "model_type": model_type, **self.tiny_size,
                "config_overrides": {**self.tiny_overrides, **self.type(model_type).tiny}}

    def tiny_config(self, model_type: str, variant: str = ""):
        """The transformers config of that tiny model (tests save it as a checkpoint), in the
        layout ``variant``: one of the type's :attr:`SSLType.variants`, "" for its default."""
        from transformers import AutoConfig

        args = self.tiny_init_args(model_type)
        size = {**SIZE_DEFAULTS, **{k: v for k, v in args.items() if k in SIZE_DEFAULTS}}
        fields = {**self.random_config_fields(model_type, size), **args["config_overrides"],
                  **(self.type(model_type).variants[variant] if variant else {})}
        return AutoConfig.for_model(model_type, **fields)

    # -- structure -------------------------------------------------------------------------------
    def out_dim(self, cfg) -> int:
        return cfg.hidden_size

    def layers(self, model: nn.Module) -> nn.ModuleList:
        raise NotImplementedError

    def final_norm(self, model: nn.Module) -> nn.Module | None:
        """A norm after the top layer, which trains with it (``trainable_layers``)."""
        return None

    def min_samples(self, model: nn.Module) -> int:
        """The fewest samples that still give one frame."""
        raise NotImplementedError

    def setup(self, encoder: SSLEncoder) -> None:
        """Buffers or checks the family's forward needs on ``encoder``."""

    # -- forward ---------------------------------------------------------------------------------
    def frames(self, encoder: SSLEncoder, waveforms: torch.Tensor, lengths: torch.Tensor,
               output_hidden_states: bool):
        """``(last (B, T', D), frame_lengths (B,), states or None)`` of zero-padded waveforms at
        least ``min_samples`` long, each clip's valid frames equal to those of the clip alone."""
        raise NotImplementedError

    # -- LoRA ------------------------------------------------------------------------------------
    def lora_targets(self, model_type: str, targets: list[str] | None) -> list[str]:
        """The modules to adapt: ``targets`` or the type's default; a ZooUserError when a target
        is one the forward never calls."""
        t = self.type(model_type)
        targets = list(targets) if targets else list(t.lora_targets)
        if set(t.lora_bypassed) & set(targets):
            from ...errors import ZooUserError

            raise ZooUserError(f"{t.title}'s attention reads {'/'.join(t.lora_bypassed)} weights directly, so "
                               f"LoRA adapters there would never run: adapt {' / '.join(t.lora_targets)} / "
                               "out_proj (lora_target_modules)")
        return targets

    # -- export ----------------------------------------------------------------------------------
    def onnx_graph(self, encoder: SSLEncoder, head: nn.Module) -> nn.Module:
        """``(waveform, lengths) -> head outputs``, traceable; a ZooUserError when it cannot be."""
        from .graph import SSLGraph

        return SSLGraph(encoder, head)

    def hf_export_refusal(self, encoder: SSLEncoder) -> str | None:
        """Why this encoder has no exact Hugging Face audio classifier, or None."""
        t = self.type(encoder.model_type)
        if t.hf_classifier is None:
            return f"transformers has no audio classifier for {t.title} that this model maps to exactly"
        return None

    def hf_feature_extractor(self, encoder: SSLEncoder, sample_rate: int):
        """The feature extractor saved beside a Hugging Face export."""
        raise NotImplementedError


_FAMILIES: dict[str, SSLFamily] = {}
_TYPES: dict[str, SSLFamily] = {}


def register_family(cls: type[SSLFamily]) -> type[SSLFamily]:
    """Class decorator: add ``cls`` to the table; a family or model_type registered twice is refused."""
    if cls.__name__ in _FAMILIES:
        raise ValueError(f"SSL family {cls.__name__} is already registered (from {type(_FAMILIES[cls.__name__]).__module__})")
    taken = [t.name for t in cls.types if t.name in _TYPES]
    if taken or len({t.name for t in cls.types}) != len(cls.types):
        raise ValueError(f"{cls.__name__}: model_type {taken or [t.name for t in cls.types]} is registered twice")
    family = cls()
    _FAMILIES[cls.__name__] = family
    for t in cls.types:
        _TYPES[t.name] = family
    return cls


def families() -> dict[str, SSLFamily]:
    """Registered families by class name, in registration order."""
    return dict(_FAMILIES)


def model_types() -> tuple[str, ...]:
    """Every accepted ``model_type``, in registration order."""
    return tuple(_TYPES)


def family_for(model_type: str, what: str = "model_type") -> SSLFamily:
    """The family running ``model_type``; a ZooUserError listing the choices otherwise."""
    family = _TYPES.get(model_type)
    if family is None:
        from ...errors import ZooUserError

        raise ZooUserError(f"{what} must be one of {', '.join(_TYPES)}, got {model_type!r}")
    return family


def ssl_type(model_type: str) -> SSLType:
    return family_for(model_type).type(model_type)


def standardise(x: torch.Tensor, lengths: torch.Tensor, normalize: bool) -> torch.Tensor:
    """Zero the padding and, with ``normalize``, standardise each clip over its own samples
    (zero mean, unit variance), as ``Wav2Vec2FeatureExtractor(do_normalize=True)`` does."""
    mask = length_mask(lengths, x.shape[1])
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    if not normalize:
        return torch.where(mask, x, zero)
    n = lengths.clamp(min=1).to(x.dtype)[:, None]
    mean = torch.where(mask, x, zero).sum(1, keepdim=True) / n
    var = (torch.where(mask, x - mean, zero) ** 2).sum(1, keepdim=True) / n
    return torch.where(mask, (x - mean) / torch.sqrt(var + 1e-7), zero)
