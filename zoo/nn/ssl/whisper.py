"""Whisper's encoder (``WhisperModel.encoder``) on log-mel features computed here, batched, on the
model's device.

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

import math
from typing import Any

import torch
from torch import nn

from ..pooling import length_mask
from .base import SSLFamily, SSLType, register_family, standardise

WHISPER_N_FFT, WHISPER_HOP, WHISPER_SECONDS = 400, 160, 30


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


@register_family
class WhisperEncoderFamily(SSLFamily):
    types = (
        SSLType("whisper", "Whisper (encoder)", "WhisperConfig", "WhisperModel",
                # a decoder to save a whole WhisperModel as a tiny test checkpoint
                tiny={"vocab_size": 64, "max_target_positions": 16, "pad_token_id": 0, "bos_token_id": 1,
                      "eos_token_id": 2, "decoder_start_token_id": 1}),
    )
    front_end = "its two convolutions (`conv1`, `conv2`)"
    front_end_prefixes = ("conv1.", "conv2.")
    fixed_sample_rate = 16000  # the log-mel front end is Whisper's 16 kHz one
    normalize_waveform_default = False  # trained on log-mels of the raw waveform
    onnx_exportable = False

    # -- building --------------------------------------------------------------------------------
    def random_config_fields(self, model_type: str, size: dict[str, Any]) -> dict[str, Any]:
        return dict(d_model=size["hidden_size"], encoder_layers=size["num_layers"],
                    encoder_attention_heads=size["num_heads"], encoder_ffn_dim=size["intermediate_size"],
                    decoder_layers=1, decoder_attention_heads=size["num_heads"],
                    decoder_ffn_dim=size["intermediate_size"], num_mel_bins=size["num_mel_bins"])

    def build_random(self, cfg) -> nn.Module:  # the encoder only, no decoder to build
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        return WhisperEncoder(cfg)

    def backbone(self, model: nn.Module) -> nn.Module:  # the decoder is dropped here
        return model.encoder if hasattr(model, "encoder") and not hasattr(model, "conv1") else model

    # -- structure -------------------------------------------------------------------------------
    def out_dim(self, cfg) -> int:
        return cfg.d_model

    def layers(self, model: nn.Module) -> nn.ModuleList:
        return model.layers

    def final_norm(self, model: nn.Module) -> nn.Module | None:
        return model.layer_norm

    def min_samples(self, model: nn.Module) -> int:
        return WHISPER_N_FFT  # two log-mel frames, one encoder frame

    def setup(self, encoder) -> None:
        encoder.register_buffer("mel_filters", whisper_mel_filters(encoder.model.config.num_mel_bins),
                                persistent=False)

    # -- forward ---------------------------------------------------------------------------------
    def frames(self, encoder, waveforms, lengths, output_hidden_states):
        enc = encoder.model
        max_samples = WHISPER_SECONDS * 16000
        if waveforms.shape[1] > max_samples:
            waveforms, lengths = waveforms[:, :max_samples], lengths.clamp(max=max_samples)
        if encoder.normalize_waveform:
            waveforms = standardise(waveforms, lengths, True)
        full = encoder.whisper_context == "30s"
        mel, mel_lengths = whisper_log_mel(waveforms, lengths, encoder.mel_filters,
                                           pad_to=max_samples if full else None)
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

    # -- export ----------------------------------------------------------------------------------
    def onnx_graph(self, encoder, head):
        from ...errors import ZooUserError

        raise ZooUserError("--format onnx does not export Whisper-encoder models: their log-mel front "
                           "end (torch.stft) has no exact ONNX graph here; use the zoo checkpoint itself")

    def hf_export_refusal(self, encoder) -> str | None:
        return ("a Whisper-encoder model cannot be exported to Hugging Face exactly: "
                "WhisperForAudioClassification mean-pools all 1500 frames of the 30 s window, padding "
                "included, while this model pools the clip's own frames; use the zoo checkpoint itself")
