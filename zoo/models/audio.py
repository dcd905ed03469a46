"""Audio-only baseline: log-mel -> CNN -> BiLSTM -> attentive pooling -> classifier."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..data.batch import Batch
from ..errors import ZooUserError
from ..ranges import Fraction, PositiveInt
from ..nn.audio import CNNLSTMEncoder, CNNLSTMGraph, ECAPAEncoder, LogMel, SpecAugment
from ..nn.augment import WaveAugment, WaveAugmentation
from .base import MIN_SPEAKER_UTTERANCES, EmotionModule


class AudioCNN(EmotionModule):
    """The reference audio model (the audio branch of the seed deck's architecture).

    Args:
        encoder: ``cnn_lstm`` (log-mel CNN + BiLSTM + attentive pooling) or ``ecapa``
            (SpeechBrain ECAPA-TDNN on the same log-mels).
        n_mels: Mel bands.
        normalize: Log-mel normalisation: ``utterance`` (per-utterance mean/variance; removes
            loudness), ``global`` (running corpus statistics; keeps level cues), ``speaker``
            (statistics of each speaker's own utterances, all splits, no labels: unsupervised
            speaker adaptation; needs a corpus with speakers) or ``none``.
        channels: CNN channels per block (the first two blocks halve the time axis).
        hidden: BiLSTM hidden size per direction (ECAPA: embedding size).
        lstm_layers: BiLSTM layers.
        dropout: Dropout in the encoder and before the classifier.
        spec_augment: Frequency/time masking of the log-mels during training.
        norm: Normalisation in the CNN blocks: ``batch`` (BatchNorm) or ``layer`` (each clip's
            feature map by its own valid frames). BatchNorm's batch statistics vary with batch
            composition on small corpora (see :class:`zoo.nn.audio.ConvBlock`); ``layer``
            computes the same function in training and evaluation.
        wave_augment: Waveform augmentation of the training batches (speed perturbation, noise,
            gain, reverberation; :class:`zoo.nn.augment.WaveAugmentation`); null = none.
    """

    inputs = ("audio",)

    def __init__(self, encoder: Literal["cnn_lstm", "ecapa"] = "cnn_lstm", n_mels: PositiveInt = 64,
                 normalize: Literal["utterance", "global", "speaker", "none"] = "global",
                 channels: list[PositiveInt] = [32, 64, 128], hidden: PositiveInt = 128,
                 lstm_layers: PositiveInt = 1, dropout: Fraction = 0.2, spec_augment: bool = False,
                 norm: Literal["batch", "layer"] = "batch",
                 wave_augment: WaveAugmentation | None = None, **kwargs):
        super().__init__(**kwargs)
        wave_augment = WaveAugmentation.of(wave_augment)
        self._record_hparam("wave_augment", wave_augment.as_dict() if wave_augment else None)
        self.wave_augment = WaveAugment(wave_augment, self.sample_rate) if wave_augment and wave_augment.active else None
        self.features = LogMel(self.sample_rate, n_mels=n_mels, normalize=normalize)
        self.augment = SpecAugment() if spec_augment else nn.Identity()
        if encoder == "cnn_lstm":
            self.encoder = CNNLSTMEncoder(n_mels, tuple(channels), hidden, lstm_layers, dropout, norm)
        else:
            self.encoder = ECAPAEncoder(n_mels, channels=channels[-1], embedding=hidden)
        self.head = self.make_head(self.encoder.out_dim, dropout=dropout)

    def export_graph(self):
        """ONNX: the model with a DFT-conv mel front end and an unpacked BiLSTM (same outputs)."""
        if not isinstance(self.encoder, CNNLSTMEncoder):
            raise ZooUserError(
                "ONNX export of AudioCNN needs encoder: cnn_lstm; the ecapa encoder (SpeechBrain's "
                "ECAPA-TDNN) evaluates each clip in its own Python loop, which cannot be exported")
        return CNNLSTMGraph(self.features, self.encoder, self.head)

    def prepare_stats(self, data) -> None:
        """Per-speaker log-mel statistics from every utterance of the data (labels unused)."""
        if self.features.normalize != "speaker" or self.features.speaker_stats:
            return
        from ..data.audio import AudioLoader

        load = AudioLoader(data.sample_rate, data.cache_dir)
        clips: dict[str, list[torch.Tensor]] = {}
        for u in data.split("all"):
            if u.speaker:
                clips.setdefault(u.speaker, []).append(torch.from_numpy(load(u.audio)))
        self.features.set_speaker_stats({s: c for s, c in clips.items() if len(c) >= MIN_SPEAKER_UTTERANCES})

    @property
    def normalizes_per_speaker(self) -> bool:
        return self.features.normalize == "speaker"

    def adapt_speakers(self, clips: dict[str, list]) -> None:
        """Per-speaker log-mel statistics from unlabelled waveforms at ``sample_rate`` (inference)."""
        if not self.normalizes_per_speaker:
            super().adapt_speakers(clips)
        known = dict(self.features.speaker_stats)
        self.features.set_speaker_stats({s: [torch.as_tensor(w, dtype=torch.float32) for w in ws]
                                         for s, ws in clips.items() if len(ws) >= MIN_SPEAKER_UTTERANCES})
        self.features.speaker_stats = {**known, **self.features.speaker_stats}

    def embed(self, batch: Batch) -> torch.Tensor:
        """Utterance embedding (used by late fusion)."""
        wav, lengths = batch.waveforms, batch.lengths
        if self.wave_augment is not None and self.training:
            wav, lengths = self.wave_augment(wav, lengths)
        feats, n = self.features(wav, lengths, batch.speakers)
        return self.encoder(self.augment(feats), n)

    @property
    def embed_dim(self) -> int:
        return self.encoder.out_dim
