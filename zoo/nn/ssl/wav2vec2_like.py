"""The wav2vec2 layout: wav2vec2 / XLS-R, HuBERT, WavLM, data2vec-audio, UniSpeech, UniSpeech-SAT.

These share one layout (a CNN ``feature_extractor``, a ``feature_projection``, a transformer
``encoder``), and Hugging Face's own batched forward of them is not padding-exact: checkpoints
with ``feat_extract_norm="group"`` (wav2vec2-base, HuBERT-base, WavLM-base+, UniSpeech-SAT-base)
normalise the first CNN layer with a GroupNorm *over time*, so the padded zeros change every frame
of the shorter clips. The family therefore runs the CNN itself:

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
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from ..pooling import length_mask
from .base import SSLFamily, SSLType, register_family, standardise

#: the large / XLS-R layout: a LayerNorm CNN and a pre-LN transformer
LARGE = {"large": {"feat_extract_norm": "layer", "do_stable_layer_norm": True}}


def _masked_group_norm(x: torch.Tensor, lengths: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
    """``GroupNorm(C, C)`` of (B, C, T) over each sequence's first ``lengths`` frames only (in
    fp32, as autocast runs ``nn.GroupNorm``); the frames past a sequence's length come out zero."""
    if norm.num_groups != norm.num_channels:
        raise ValueError("only the per-channel GroupNorm of wav2vec2's first conv layer is supported")
    weight = None if norm.weight is None else norm.weight.float()
    bias = None if norm.bias is None else norm.bias.float()
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        # a trace (ONNX export) or a compiled graph must not bake this batch's lengths into
        # Python ints: masked statistics as tensor ops
        x = x.float()
        mask = length_mask(lengths, x.shape[-1])[:, None, :]  # (B, 1, T)
        n = lengths.clamp(min=1).to(x.dtype)[:, None, None]
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        mean = torch.where(mask, x, zero).sum(-1, keepdim=True) / n
        var = (torch.where(mask, x - mean, zero) ** 2).sum(-1, keepdim=True) / n
        y = (x - mean) * torch.rsqrt(var + norm.eps)
        y = y if weight is None else y * weight[None, :, None]
        y = y if bias is None else y + bias[None, :, None]
        return torch.where(mask, y, zero)
    # eager: the native fused GroupNorm (forward and backward) on each clip's valid frames, a
    # fraction of the time of masked statistics over the padded batch
    t = x.shape[-1]
    clips = list(zip(x.unbind(0), lengths.tolist()))

    def own(xi: torch.Tensor, n: int) -> torch.Tensor:  # (C, n): this clip's GroupNorm
        return nn.functional.group_norm(xi[None, :, :n].float(), norm.num_groups, weight, bias, norm.eps)[0]

    if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in norm.parameters())):
        # pad / stack: the backward of writes into slices of one buffer would copy the whole
        # gradient once per clip
        return torch.stack([nn.functional.pad(own(xi, n), (0, t - n)) for xi, n in clips])
    out = x.new_empty(x.shape, dtype=torch.float32)  # no gradient: each clip written once, in place
    for i, (xi, n) in enumerate(clips):
        out[i, :, :n] = own(xi, n)
        out[i, :, n:] = 0
    return out


@register_family
class Wav2Vec2Like(SSLFamily):
    types = (
        SSLType("wav2vec2", "wav2vec 2.0 / XLS-R", "Wav2Vec2Config", "Wav2Vec2Model",
                "Wav2Vec2ForSequenceClassification", variants=LARGE),
        SSLType("hubert", "HuBERT", "HubertConfig", "HubertModel", "HubertForSequenceClassification",
                variants=LARGE),
        # WavLM's attention calls F.multi_head_attention_forward with the projection weights
        # directly, so an adapter on q_proj/v_proj would never run: its feed-forward is adapted
        SSLType("wavlm", "WavLM", "WavLMConfig", "WavLMModel", "WavLMForSequenceClassification",
                lora_targets=("intermediate_dense", "output_dense"), lora_bypassed=("q_proj", "k_proj", "v_proj"),
                variants=LARGE),
        # five stacked positional convolutions (num_conv_pos_embeddings is their count); its CNN
        # is always LayerNorm, its transformer post-LN
        SSLType("data2vec-audio", "data2vec-audio", "Data2VecAudioConfig", "Data2VecAudioModel",
                "Data2VecAudioForSequenceClassification", tiny={"num_conv_pos_embeddings": 3, "conv_pos_kernel_size": 5}),
        SSLType("unispeech", "UniSpeech", "UniSpeechConfig", "UniSpeechModel", "UniSpeechForSequenceClassification",
                variants=LARGE),
        SSLType("unispeech-sat", "UniSpeech-SAT", "UniSpeechSatConfig", "UniSpeechSatModel",
                "UniSpeechSatForSequenceClassification", variants=LARGE),
    )
    front_end = "the CNN feature encoder (`feature_extractor`)"
    front_end_prefixes = ("feature_extractor.",)
    tiny_size = {**SSLFamily.tiny_size, "conv_dim": [16] * 7}
    tiny_overrides = {"num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4}

    # -- building --------------------------------------------------------------------------------
    def random_config_fields(self, model_type: str, size: dict[str, Any]) -> dict[str, Any]:
        fields = {k: size[k] for k in ("hidden_size", "intermediate_size", "feat_extract_norm")}
        fields.update(num_hidden_layers=size["num_layers"], num_attention_heads=size["num_heads"])
        for key in ("conv_dim", "conv_kernel", "conv_stride"):
            if size[key] is not None:
                fields[key] = list(size[key])
        config_args = inspect.signature(self.type(model_type).transformers_class("config").__init__).parameters
        if "feat_extract_norm" not in config_args:  # data2vec-audio: always LayerNorm
            fields.pop("feat_extract_norm")
        return fields

    def prepare_overrides(self, cfg, overrides: dict[str, Any], spec_augment: bool) -> None:
        overrides.setdefault("apply_spec_augment", spec_augment)
        if hasattr(cfg, "add_adapter"):  # its padded strided convs would let padding leak into valid frames
            overrides["add_adapter"] = False

    # -- structure -------------------------------------------------------------------------------
    def layers(self, model: nn.Module) -> nn.ModuleList:
        return model.encoder.layers

    def final_norm(self, model: nn.Module) -> nn.Module | None:
        # pre-LN models (large, XLS-R) normalise after the top layer; post-LN ones before the first
        return model.encoder.layer_norm if getattr(model.config, "do_stable_layer_norm", False) else None

    def min_samples(self, model: nn.Module) -> int:
        r = 1  # receptive field of the CNN
        for k, s in zip(reversed(model.config.conv_kernel), reversed(model.config.conv_stride)):
            r = (r - 1) * s + k
        return r

    # -- forward ---------------------------------------------------------------------------------
    def frames(self, encoder, waveforms, lengths, output_hidden_states):
        model = encoder.model
        x = standardise(waveforms, lengths, encoder.normalize_waveform)
        feats, frame_lengths = self._cnn(model, x, lengths)
        out = model.feature_projection(feats)
        hidden = out[0] if isinstance(out, tuple) else out  # HuBERT returns the tensor alone
        mask = length_mask(frame_lengths, hidden.shape[1])
        cfg = model.config
        if model.training and cfg.apply_spec_augment and hidden.shape[1] > cfg.mask_time_length:
            hidden = model._mask_hidden_states(hidden, attention_mask=mask.long())
        last, states = self._transformer(model.encoder, hidden, mask, output_hidden_states)
        return last, frame_lengths, states

    @staticmethod
    def _cnn(model, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x[:, None]
        for layer in model.feature_extractor.conv_layers:
            k, s = layer.conv.kernel_size[0], layer.conv.stride[0]
            lengths = torch.div(lengths - k, s, rounding_mode="floor") + 1
            if isinstance(getattr(layer, "layer_norm", None), nn.GroupNorm):  # over time: valid frames only
                h = layer.activation(_masked_group_norm(layer.conv(h), lengths, layer.layer_norm))
            else:
                h = layer(h)
        return h.transpose(1, 2), lengths

    @staticmethod
    def _transformer(enc, hidden: torch.Tensor, mask: torch.Tensor, output_hidden_states: bool):
        """The encoder's output (and all its hidden states, as ``output_hidden_states`` gives them:
        the transformer input, then each layer's output, the last one after the final LayerNorm of
        pre-LN models). Collected with hooks; a layer skipped by LayerDrop passes its input on."""
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

    # -- export ----------------------------------------------------------------------------------
    def hf_feature_extractor(self, encoder, sample_rate: int):
        from transformers import Wav2Vec2FeatureExtractor

        # HF's convention (its conversion scripts): checkpoints with a LayerNorm CNN (large-lv60,
        # XLS-R) take an attention mask, GroupNorm ones (base) are run without one
        return Wav2Vec2FeatureExtractor(
            feature_size=1, sampling_rate=int(sample_rate), padding_value=0.0,
            do_normalize=bool(encoder.normalize_waveform),
            return_attention_mask=getattr(encoder.model.config, "feat_extract_norm", "layer") == "layer")
