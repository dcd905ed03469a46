"""Self-supervised speech encoders as utterance encoders: raw 16 kHz waveform -> (B, D) embedding.

One wrapper (:class:`SSLEncoder`) for every transformers speech encoder in the table of backbone
families (:mod:`zoo.nn.ssl.base`), chosen by the checkpoint's own ``config.model_type``
(``AutoConfig`` / ``AutoModel``):

- :class:`Wav2Vec2Like` (:mod:`zoo.nn.ssl.wav2vec2_like`): wav2vec 2.0 and XLS-R (``wav2vec2``),
  HuBERT, WavLM, data2vec-audio, UniSpeech, UniSpeech-SAT;
- :class:`WhisperEncoderFamily` (:mod:`zoo.nn.ssl.whisper`): Whisper's encoder on log-mel
  features computed here, batched, on the model's device.

Every type is exact under padding: an utterance gives the same embedding alone and inside a
zero-padded batch of longer ones, whatever the padding holds (each family's module says how).

:data:`MODEL_TYPES` (and the ``Literal`` :data:`ModelType` the CLI shows as choices) is read from
the table; a new family is a module with a class decorated by :func:`register_family`, imported
here.
"""
from __future__ import annotations

from typing import Literal

from .base import SSLFamily, SSLType, families, family_for, model_types, register_family, ssl_type
from .encoder import SSLEncoder
from .wav2vec2_like import Wav2Vec2Like, _masked_group_norm
from .whisper import (
    WHISPER_HOP,
    WHISPER_N_FFT,
    WHISPER_SECONDS,
    WhisperEncoderFamily,
    whisper_log_mel,
    whisper_mel_filters,
)

#: transformers ``model_type`` values this encoder runs (the registered families' types)
MODEL_TYPES: tuple[str, ...] = model_types()
ModelType = Literal[MODEL_TYPES]  # type: ignore[valid-type]  # built from the table

__all__ = ["MODEL_TYPES", "ModelType", "SSLEncoder", "SSLFamily", "SSLType", "Wav2Vec2Like", "WhisperEncoderFamily",
           "families", "family_for", "model_types", "register_family", "ssl_type", "whisper_log_mel",
           "whisper_mel_filters", "WHISPER_HOP", "WHISPER_N_FFT", "WHISPER_SECONDS", "_masked_group_norm"]
