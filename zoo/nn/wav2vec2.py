"""wav2vec 2.0 as an utterance encoder: kept as a name; the code is :mod:`zoo.nn.ssl`, which runs
wav2vec2 / XLS-R, HuBERT, WavLM, data2vec-audio and Whisper's encoder the same padding-exact way."""
from __future__ import annotations

from .ssl import SSLEncoder, _masked_group_norm

Wav2Vec2Encoder = SSLEncoder

__all__ = ["Wav2Vec2Encoder", "_masked_group_norm"]
