"""Self-supervised speech encoders as utterance encoders: raw 16 kHz waveform -> (B, D) embedding.

One wrapper for every transformers speech encoder the zoo knows, chosen by the checkpoint's own
``config.model_type`` (``AutoConfig`` / ``AutoModel``): wav2vec 2.0 and XLS-R (``wav2vec2``),
HuBERT (``hubert``), WavLM (``wavlm``), data2vec-audio (``data2vec-audio``) and Whisper's encoder
(``whisper``: ``WhisperModel.encoder`` on log-mel features computed here, batched, on the
model's device).

Every type is exact under padding: an utterance gives the same embedding alone and inside a
zero-padded batch of longer ones, whatever the padding holds.

The wav2vec2-style models (wav2vec2, HuBERT, WavLM, data2vec-audio) share one layout (a CNN
``feature_extractor``, a ``feature_projection``, a transformer ``encoder``), and Hugging Face's own
batched forward of them is not padding-exact: checkpoints with ``feat_extract_norm="group"``
(wav2vec2-base, HuBERT-base, WavLM-base+) normalise the first CNN layer with a GroupNorm *over
time*, so the padded zeros change every frame of the shorter clips. This module therefore runs the
CNN itself:

1. each clip is standardised (zero mean, unit variance) over its own samples only and its padding
   is set to zero, as ``Wav2Vec2FeatureExtractor(do_normalize=True)`` does;
2. the first conv layer's GroupNorm statistics are taken over each clip's valid frames only (the
   later conv layers have no padding, so a valid output frame only ever sees valid input);
3. the transformer gets the frame-level attention mask, which also zeroes the padded frames
   before the positional convolution (a clip alone sees zeros there: the conv's own padding);
   data2vec-audio stacks five positional convolutions, so the padded frames are zeroed again
   before each of them; WavLM's relative position bias depends on frame distances only, which
   padding does not change;
4. pooling and the layer-weighted sum only ever read valid frames.

Clips shorter than the CNN's receptive field (400 samples = 25 ms at the default strides) are
extended with zeros to it, alone and in a batch alike, so they still give one frame.

Whisper was trained on 30 s windows (shorter clips padded with zeros to 3000 log-mel frames, no
attention mask). ``whisper_context`` chooses:

- ``clip`` (default): the encoder sees only each clip's own frames (padding is masked out of the
  attention; the fixed sinusoidal positions 0..n-1 are the ones the clip has inside a 30 s
  window). A 4 s clip costs 4/30 of the 30 s forward. The log-mel features are exactly those of
  ``WhisperFeatureExtractor`` on the 30 s-padded clip; what is not exact is the attention, which
  in training also saw the silent frames after the clip.
- ``30s``: every clip is padded to 30 s as in training and the encoder runs unmasked on all 1500
  frames (the exact Whisper input; pooling still reads the clip's frames only). 30 s of compute
  per clip however short.

Clips longer than 30 s are cut to their first 30 s (Whisper's positions end there).
"""
from __future__ import annotations

import contextlib
import logging
import math
from typing import Any, Literal

import torch
from torch import nn

from .pooling import AttentivePooling, MeanPooling, length_mask

log = logging.getLogger("zoo")

#: transformers ``model_type`` values this encoder runs
MODEL_TYPES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper")
ModelType = Literal["wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper"]
#: default LoRA targets per type. WavLM's attention calls ``F.multi_head_attention_forward`` with
#: the projection weights directly, so an adapter on q_proj/v_proj would never run: its
#: feed-forward layers are adapted instead.
LORA_TARGETS = {"wavlm": ["intermediate_dense", "output_dense"]}
DEFAULT_LORA_TARGETS = ["q_proj", "v_proj"]

WHISPER_N_FFT, WHISPER_HOP, WHISPER_SECONDS = 400, 160, 30


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


def whisper_mel_filters(n_mels: int, sample_rate: int = 16000) -> torch.Tensor:
    """(n_freq, n_mels) Slaney mel filterbank of ``WhisperFeatureExtractor``."""
    from transformers.audio_utils import mel_filter_bank

    return torch.from_numpy(mel_filter_bank(num_frequency_bins=1 + WHISPER_N_FFT // 2, num_mel_filters=n_mels,
                                            min_frequency=0.0, max_frequency=8000.0, sampling_rate=sample_rate,
                                            norm="slaney", mel_scale="slaney")).float()


def whisper_log_mel(wav: torch.Tensor, lengths: torch.Tensor, filters: torch.Tensor,
                    pad_to: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Whisper's log-mel features of a zero-padded batch, each clip as if alone in a 30 s window.

    Returns ``(features (B, n_mels, T), frames (B,))``: ``frames = n // 160`` valid frames per
    clip, equal to ``WhisperFeatureExtractor`` on the clip padded to 30 s (the same STFT, filters,
    log10, 8-decade floor below the clip's maximum and ``(x + 4) / 4``), whatever is in the padding.
    ``pad_to``: the number of samples to compute frames for (480000 = the full 30 s window).
    """
    mask = length_mask(lengths, wav.shape[1])
    x = torch.where(mask, wav.float(), torch.zeros((), device=wav.device))
    total = max(pad_to or 0, wav.shape[1])
    # zeros after every clip, as in its 30 s window; n_fft extra so the right reflection is zeros too
    x = nn.functional.pad(x, (0, total - wav.shape[1] + WHISPER_N_FFT))
    window = torch.hann_window(WHISPER_N_FFT, device=x.device)
    spec = torch.stft(x, WHISPER_N_FFT, WHISPER_HOP, window=window, return_complex=True)
    n_frames = total // WHISPER_HOP
    power = spec[..., :n_frames].abs() ** 2
    mel = filters.to(x.device).T @ power
    logmel = mel.clamp(min=1e-10).log10()
    # the floor is set by the clip's loudest frame: any frame that sees one of its samples
    seen = length_mask(torch.div(lengths + WHISPER_N_FFT // 2 - 1, WHISPER_HOP, rounding_mode="floor") + 1, n_frames)
    peak = logmel.masked_fill(~seen[:, None, :], -math.inf).amax(dim=(1, 2), keepdim=True)
    logmel = torch.maximum(logmel, peak - 8.0)
    return (logmel + 4.0) / 4.0, torch.div(lengths, WHISPER_HOP, rounding_mode="floor")


class SSLEncoder(nn.Module):
    """A transformers speech encoder + (optional) SUPERB layer weighting or one chosen layer + masked
    pooling, with every freezing mode and LoRA.

    Args:
        pretrained: Hub id or local directory of a checkpoint whose ``model_type`` is one of
            :data:`MODEL_TYPES` (task heads such as CTC are dropped, the encoder is kept);
            ``None`` builds a randomly initialised ``model_type`` model of the size below.
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
        freeze_feature_encoder: Keep the CNN (Whisper: its two convolutions) frozen.
        freeze_encoder: Start with the whole backbone frozen (``set_backbone_frozen`` changes it).
        layer_weighting: Softmax-weighted sum of all hidden states (SUPERB).
        layer: Use hidden state ``layer`` only (0 = the transformer input, num_layers = the last).
        trainable_layers: When unfrozen, train only the top k transformer layers.
        pooling: ``mean`` or ``attentive`` over the valid frames.
        lora_rank: LoRA adapters of this rank (``peft``) in the transformer; the base weights stay
            frozen and only the adapters train whenever the backbone is not frozen. None: no LoRA.
        lora_alpha, lora_dropout: LoRA scaling numerator and dropout.
        lora_target_modules: Module names to adapt (None: ``q_proj``/``v_proj``; WavLM:
            ``intermediate_dense``/``output_dense``, see :data:`LORA_TARGETS`).
        whisper_context: ``clip`` or ``30s`` (module docstring).
    """

    def __init__(self, pretrained: str | None = None, model_type: ModelType = "wav2vec2", hidden_size: int = 768,
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
        self.whisper = self.model_type == "whisper"
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
        self.out_dim = cfg.d_model if self.whisper else cfg.hidden_size
        self.num_layers = n_layers
        if self.whisper:
            self.min_samples = WHISPER_N_FFT  # two log-mel frames, one encoder frame
            self.register_buffer("mel_filters", whisper_mel_filters(cfg.num_mel_bins), persistent=False)
        else:  # receptive field of the CNN: the fewest samples that still give one frame
            r = 1
            for k, s in zip(reversed(cfg.conv_kernel), reversed(cfg.conv_stride)):
                r = (r - 1) * s + k
            self.min_samples = r
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

        from ..errors import ZooUserError

        if pretrained is not None:
            from ..hub import HubModelMissing, from_pretrained

            what = "the speech encoder checkpoint"
            try:
                cfg = from_pretrained(AutoConfig.from_pretrained, pretrained, what)
            except HubModelMissing:
                raise
            except (OSError, ValueError) as e:  # it is there but malformed
                raise ZooUserError(f"could not load {what} {pretrained!r}: {e}") from e
            if cfg.model_type not in MODEL_TYPES:
                raise ZooUserError(f"{pretrained!r} is a {cfg.model_type!r} model; SSLClassifier runs "
                                   f"{', '.join(MODEL_TYPES)}")
        else:
            if model_type not in MODEL_TYPES:
                raise ZooUserError(f"model_type must be one of {', '.join(MODEL_TYPES)}, got {model_type!r}")
            if model_type == "whisper":
                fields = dict(d_model=size["hidden_size"], encoder_layers=size["num_layers"],
                              encoder_attention_heads=size["num_heads"], encoder_ffn_dim=size["intermediate_size"],
                              decoder_layers=1, decoder_attention_heads=size["num_heads"],
                              decoder_ffn_dim=size["intermediate_size"], num_mel_bins=size["num_mel_bins"])
            else:
                fields = {k: size[k] for k in ("hidden_size", "intermediate_size", "feat_extract_norm")}
                fields.update(num_hidden_layers=size["num_layers"], num_attention_heads=size["num_heads"])
                for key in ("conv_dim", "conv_kernel", "conv_stride"):
                    if size[key] is not None:
                        fields[key] = list(size[key])
                if model_type == "data2vec-audio":
                    fields.pop("feat_extract_norm")  # always LayerNorm
            fields.update({k: v for k, v in overrides.items() if k != "model_type"})
            cfg = AutoConfig.for_model(model_type, **fields)
        if cfg.model_type != "whisper":
            overrides.setdefault("apply_spec_augment", spec_augment)
            if hasattr(cfg, "add_adapter"):  # its padded strided convs would let padding leak into valid frames
                overrides["add_adapter"] = False
        for k, v in overrides.items():
            if k != "model_type":
                setattr(cfg, k, v)
        try:
            if pretrained is None and cfg.model_type == "whisper":  # the encoder only, no decoder to build
                from transformers.models.whisper.modeling_whisper import WhisperEncoder

                return WhisperEncoder(cfg)
            if pretrained is None:
                model = AutoModel.from_config(cfg)
            else:
                from ..hub import from_pretrained

                model = from_pretrained(AutoModel.from_pretrained, pretrained, "the speech encoder checkpoint", config=cfg)
        except (OSError, ValueError) as e:
            raise ZooUserError(f"could not build the {cfg.model_type} encoder {pretrained!r}: {e}") from e
        if cfg.model_type == "whisper":  # the encoder only: the decoder is dropped here
            enc = model.encoder if hasattr(model, "encoder") and not hasattr(model, "conv1") else model
            del model
            return enc
        return model

    def _add_lora(self, rank, alpha, dropout, targets) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        from ..errors import ZooUserError

        if rank < 1:
            raise ValueError(f"lora_rank must be >= 1, got {rank}")
        targets = list(targets) if targets else LORA_TARGETS.get(self.model_type, DEFAULT_LORA_TARGETS)
        if self.model_type == "wavlm" and {"q_proj", "k_proj", "v_proj"} & set(targets):
            raise ZooUserError("WavLM's attention reads q_proj/k_proj/v_proj weights directly, so LoRA "
                               "adapters there would never run: adapt intermediate_dense / output_dense / "
                               "out_proj (lora_target_modules)")
        # only the transformer layers are adapted (the CNN's conv names never match these)
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none")
        try:
            inject_adapter_in_model(config, self.model)
        except ValueError as e:
            raise ZooUserError(f"LoRA: {e}") from e

    @property
    def layers(self) -> nn.ModuleList:
        return self.model.layers if self.model.config.model_type == "whisper" else self.model.encoder.layers

    # -- freezing --------------------------------------------------------------------------------
    def _top_modules(self) -> list[nn.Module]:
        k = self.trainable_layers
        layers = self.layers
        mods: list[nn.Module] = list(layers[len(layers) - k:]) if k else []
        if k and self.whisper:  # its final LayerNorm follows the top layer
            mods.append(self.model.layer_norm)
        elif k and getattr(self.model.config, "do_stable_layer_norm", False):
            mods.append(self.model.encoder.layer_norm)
        return mods

    def _is_feature_encoder(self, name: str) -> bool:
        return name.startswith(("conv1.", "conv2.") if self.whisper else "feature_extractor.")

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

    # -- forward: wav2vec2-style -----------------------------------------------------------------
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
        h = x[:, None]
        for layer in self.model.feature_extractor.conv_layers:
            k, s = layer.conv.kernel_size[0], layer.conv.stride[0]
            lengths = torch.div(lengths - k, s, rounding_mode="floor") + 1
            if isinstance(getattr(layer, "layer_norm", None), nn.GroupNorm):  # over time: valid frames only
                h = layer.activation(_masked_group_norm(layer.conv(h), lengths, layer.layer_norm))
            else:
                h = layer(h)
        return h.transpose(1, 2), lengths

    def _transformer(self, hidden: torch.Tensor, mask: torch.Tensor, output_hidden_states: bool):
        """The encoder's output (and all its hidden states, as ``output_hidden_states`` gives them:
        the transformer input, then each layer's output, the last one after the final LayerNorm of
        pre-LN models). Collected with hooks; a layer skipped by LayerDrop passes its input on."""
        enc = self.model.encoder
        got: dict[int, torch.Tensor] = {}
        handles = []

        def keep(i):
            return lambda module, args, out: got.__setitem__(i, out[0] if isinstance(out, tuple) else out)

        def zero_padding(module, args):  # stacked positional convs (data2vec): no padding leaks in
            return (args[0] * mask[:, None, :].to(args[0].dtype),) + tuple(args[1:])

        pos_layers = getattr(enc.pos_conv_embed, "layers", None)
        if pos_layers is not None:
            handles += [m.register_forward_pre_hook(zero_padding) for m in pos_layers]
        if output_hidden_states:
            handles.append(enc.dropout.register_forward_hook(keep(-1)))  # last op before the layers
            handles += [layer.register_forward_hook(keep(i)) for i, layer in enumerate(enc.layers)]
        try:
            last = enc(hidden, attention_mask=mask, return_dict=True).last_hidden_state
        finally:
            for h in handles:
                h.remove()
        if not output_hidden_states:
            return last, None
        states = [got[-1]]
        for i in range(len(enc.layers)):
            states.append(got.get(i, states[-1]))
        states[-1] = last
        return last, tuple(states)

    def _w2v_frames(self, waveforms, lengths, output_hidden_states):
        x = self._standardise(waveforms, lengths)
        feats, frame_lengths = self._cnn(x, lengths)
        out = self.model.feature_projection(feats)
        hidden = out[0] if isinstance(out, tuple) else out  # HuBERT returns the tensor alone
        mask = length_mask(frame_lengths, hidden.shape[1])
        cfg = self.model.config
        if self.model.training and cfg.apply_spec_augment and hidden.shape[1] > cfg.mask_time_length:
            hidden = self.model._mask_hidden_states(hidden, attention_mask=mask.long())
        last, states = self._transformer(hidden, mask, output_hidden_states)
        return last, frame_lengths, states

    # -- forward: Whisper ------------------------------------------------------------------------
    def _whisper_frames(self, waveforms, lengths, output_hidden_states):
        enc = self.model
        max_samples = WHISPER_SECONDS * 16000
        if waveforms.shape[1] > max_samples:
            waveforms, lengths = waveforms[:, :max_samples], lengths.clamp(max=max_samples)
        if self.normalize_waveform:
            waveforms = self._standardise(waveforms, lengths)
        full = self.whisper_context == "30s"
        mel, mel_lengths = whisper_log_mel(waveforms, lengths, self.mel_filters, pad_to=max_samples if full else None)
        frame_lengths = torch.div(mel_lengths - 1, 2, rounding_mode="floor") + 1
        if full:  # the exact Whisper input: 3000 frames, no mask
            out = enc(mel.to(enc.conv1.weight.dtype), output_hidden_states=output_hidden_states, return_dict=True)
            return out.last_hidden_state, frame_lengths, out.hidden_states if output_hidden_states else None
        mel = mel[..., : int(mel_lengths.max())]
        mel_mask = length_mask(mel_lengths, mel.shape[-1])[:, None, :]
        # a clip alone sees the convs' zero padding after its last frame; so does it in a batch
        h = nn.functional.gelu(enc.conv1(mel.to(enc.conv1.weight.dtype) * mel_mask))
        h = nn.functional.gelu(enc.conv2(h * mel_mask.to(h.dtype)))
        h = h.permute(0, 2, 1)
        t = h.shape[1]
        h = h + enc.embed_positions.weight[:t]
        h = nn.functional.dropout(h, p=enc.dropout, training=enc.training)
        mask = length_mask(frame_lengths, t)
        bias = torch.zeros(mask.shape, dtype=h.dtype, device=h.device).masked_fill(~mask, torch.finfo(h.dtype).min)
        bias = bias[:, None, None, :].expand(-1, 1, t, t)
        states = [h]
        for layer in enc.layers:
            if enc.training and torch.rand([]) < enc.layerdrop:
                states.append(h)
                continue
            h = layer(h, bias, layer_head_mask=None)[0]
            states.append(h)
        h = enc.layer_norm(h)
        states[-1] = h
        return h, frame_lengths, tuple(states) if output_hidden_states else None

    # -- forward ---------------------------------------------------------------------------------
    def frames(self, waveforms: torch.Tensor, lengths: torch.Tensor, output_hidden_states: bool = False):
        """Frame features.

        Returns ``(hidden (B, T', D), frame_lengths (B,))`` (with ``output_hidden_states`` also
        the tuple of all num_layers + 1 hidden states); frames past a clip's length are garbage.
        """
        lengths = lengths.to(waveforms.device).long()
        # a clip shorter than min_samples is extended with zeros, not with whatever its padding holds
        waveforms = torch.where(length_mask(lengths, waveforms.shape[1]), waveforms,
                                torch.zeros((), dtype=waveforms.dtype, device=waveforms.device))
        if waveforms.shape[1] < self.min_samples:
            waveforms = nn.functional.pad(waveforms, (0, self.min_samples - waveforms.shape[1]))
        lengths = lengths.clamp(min=self.min_samples)
        run = self._whisper_frames if self.whisper else self._w2v_frames
        last, frame_lengths, states = run(waveforms, lengths, output_hidden_states)
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

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor, cache: bool = True) -> torch.Tensor:
        """(B, T) zero-padded waveforms + true sample counts -> (B, D) utterance embeddings.

        With ``cache_dir`` set, a :attr:`deterministic` encoder's outputs come from (and go to)
        the embedding cache (``cache=False`` bypasses it, e.g. for randomly augmented input)."""
        if cache and self.cache_dir is not None and self.deterministic:
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
        if cache and self.cache_dir is not None and self.deterministic:
            hidden, frame_lengths = self._padded(self._cached_states(waveforms, lengths, pooled=False),
                                                 waveforms.device)
            hidden = self._mix(hidden)
        else:
            states, frame_lengths = self._states(waveforms, lengths)
            hidden = states[0] if len(states) == 1 else self._mix(torch.stack(states, 0))
        valid = length_mask(frame_lengths, hidden.shape[1]).unsqueeze(-1)
        return torch.where(valid, hidden, torch.zeros((), dtype=hidden.dtype, device=hidden.device)), frame_lengths

    # -- embedding cache -------------------------------------------------------------------------
    cache_dir = None  # a directory: cache the frozen encoder's outputs there (zoo.nn.cache)

    @property
    def deterministic(self) -> bool:
        """The backbone's output is a function of its input alone: nothing in it trains and it
        runs in eval mode (no dropout, LayerDrop, SpecAugment). Frozen backbones are (the warm-up
        of ``unfreeze_after_steps`` too: it runs without autograd); so is a branch a fusion model froze."""
        if self.model.training:
            return False
        return self.backbone_frozen or not any(p.requires_grad for p in self.model.parameters())

    def _cache_pooled(self) -> bool:
        """Mean pooling commutes with the layer mix: store one pooled vector per state (S, D);
        attentive pooling needs the frames (S, T', D)."""
        return isinstance(self.pool, MeanPooling)

    def _invalidate_cache(self, *args) -> None:
        self._cache_obj = None

    def _embedding_cache(self, pooled: bool):
        from .cache import EmbeddingCache, encoder_key

        p = next(self.model.parameters())
        autocast = torch.is_autocast_enabled(p.device.type)
        stored = "pooled" if pooled else "frames"
        sig = (str(p.dtype), p.device.type, autocast,
               str(torch.get_autocast_dtype(p.device.type)) if autocast else None, str(self.cache_dir), stored)
        obj = getattr(self, "_cache_obj", None)
        if obj is None or obj[0] != sig:
            states = "last" if self.layer_weights is None and self.layer is None else (
                self.layer if self.layer is not None else "all")
            options = dict(zip(("dtype", "device", "autocast", "autocast_dtype", "dir"), sig))
            options.update(model_type=self.model_type, normalize_waveform=self.normalize_waveform,
                           whisper_context=self.whisper_context, min_samples=self.min_samples, states=states,
                           stored=stored)
            self._cache_obj = obj = (sig, EmbeddingCache(self.cache_dir, encoder_key(self.model, options)))
        return obj[1]

    def _forward_cached(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        got = self._cached_states(waveforms, lengths, pooled=self._cache_pooled())
        if self._cache_pooled():
            dtype = self.layer_weights.dtype if self.layer_weights is not None else torch.float32
            x = torch.stack(got).to(waveforms.device, dtype)  # (B, S, D)
            return self._mix(x.transpose(0, 1))
        x, frames = self._padded(got, waveforms.device)
        return self.pool(self._mix(x), frames)

    def _padded(self, got: list[torch.Tensor], dev) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached per-clip frames [(S, T'_i, D)] -> zero-padded (S, B, T', D) and frame counts."""
        dtype = self.layer_weights.dtype if self.layer_weights is not None else torch.float32
        frames = torch.tensor([g.shape[1] for g in got], device=dev)
        x = torch.zeros(got[0].shape[0], len(got), int(frames.max()), got[0].shape[-1], device=dev, dtype=dtype)
        for i, g in enumerate(got):
            x[:, i, : g.shape[1]] = g.to(dev, dtype)
        return x, frames

    def _cached_states(self, waveforms: torch.Tensor, lengths: torch.Tensor, pooled: bool) -> list[torch.Tensor]:
        """Each clip's states from the cache, computed and stored where missing: per clip (S, D)
        mean-pooled states (``pooled``) or (S, T'_i, D) frames, on the CPU."""
        cache = self._embedding_cache(pooled)
        n = lengths.tolist()
        on_cpu = waveforms.detach().float().cpu()  # one copy off the device, then hash each clip
        keys = [cache.sample_key(on_cpu[i, : n[i]]) for i in range(len(n))]
        got: list = [cache.get(k) for k in keys]
        todo = [i for i, g in enumerate(got) if g is None]
        cache.hits += len(n) - len(todo)
        cache.misses += len(todo)
        dev = waveforms.device
        if todo:
            idx = torch.tensor(todo, device=dev)
            sub_lengths = lengths.to(dev)[idx]
            with torch.no_grad():
                states, frame_lengths = self._states(waveforms[idx, : int(sub_lengths.max())], sub_lengths)
                if pooled:
                    pool = MeanPooling()
                    values = torch.stack([pool(h, frame_lengths) for h in states], 1)  # (b, S, D)
                else:
                    values = torch.stack(states, 1)  # (b, S, T', D)
            for j, i in enumerate(todo):
                v = values[j] if pooled else values[j, :, : int(frame_lengths[j])]
                cache.put(keys[i], v)
                got[i] = v.float().cpu()
        return got
