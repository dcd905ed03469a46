"""Early fusion: acoustic frames and text tokens meet before utterance pooling, in one joint
transformer trained end to end."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..data.batch import Batch
from ..errors import ZooUserError
from ..nn.audio import LogMel, SpecAugment
from ..nn.fusion import ConvSubsampler, JointEncoder
from .base import EmotionModule, build_module, module_spec
from .late_fusion import DEFAULT_TEXT
from .text import TextBranchMixin


class EarlyFusion(TextBranchMixin, EmotionModule):
    """Log-mel frames (4x subsampled by convolutions) and the text encoder's token states, both
    projected to ``d_model``, fused by a joint encoder, pooled, classified.

    Args:
        text_branch: Where the token states come from: a text model spec (class_path +
            init_args), e.g. TextBERT with pretrained KoBERT or from scratch; its tokenizer is used.
        n_mels: Mel bands of the acoustic frames.
        normalize: Log-mel normalisation: ``global`` (running corpus statistics), ``utterance`` or
            ``none``.
        d_model: Width of the joint encoder.
        num_layers: Transformer layers of the joint encoder.
        num_heads: Attention heads of the joint encoder.
        joint: ``concat`` (one transformer over [audio frames; tokens]) or ``cross_attention``
            (frames attend to tokens and tokens to frames, then pooled and concatenated).
        freeze_text_encoder: Keep the text encoder fixed (useful with a pretrained KoBERT on small data).
        dropout: Dropout in the joint encoder and before the classifier.
        spec_augment: Frequency/time masking of the log-mels during training.
    """

    inputs = ("audio", "text")

    def __init__(self, text_branch: dict = DEFAULT_TEXT, n_mels: int = 64,
                 normalize: Literal["global", "utterance", "none"] = "global", d_model: int = 128,
                 num_layers: int = 2, num_heads: int = 4,
                 joint: Literal["concat", "cross_attention"] = "concat",
                 freeze_text_encoder: bool = False, dropout: float = 0.1, spec_augment: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.features = LogMel(self.sample_rate, n_mels=n_mels, normalize=normalize)
        self.augment = SpecAugment() if spec_augment else nn.Identity()
        self.subsample = ConvSubsampler(n_mels, d_model)
        self.text = build_module(text_branch, class_names=self.class_names, sample_rate=self.sample_rate)
        if not hasattr(self.text, "encoder") or not hasattr(self.text.encoder, "frames"):
            raise ZooUserError(f"early fusion needs a text model with token states (e.g. TextBERT), "
                               f"got {type(self.text).__name__}")
        self.text.head = nn.Identity()  # only its encoder and tokenizer are used
        self.freeze_text_encoder = freeze_text_encoder
        if freeze_text_encoder:
            self.text.requires_grad_(False)
        self.text_proj = nn.Linear(self.text.encoder.out_dim, d_model)
        self.joint = JointEncoder(d_model, num_layers, num_heads, dropout, joint)
        self.embed_dim = self.joint.out_dim
        self.head = self.make_head(self.embed_dim, dropout=dropout)

    def checkpoint_hparams(self, hp: dict) -> dict:
        hp["text_branch"] = module_spec(self.text)  # e.g. KoBERT's architecture instead of its hub id
        return hp

    def frozen_modules(self) -> list[nn.Module]:
        return [self.text] if self.freeze_text_encoder else []

    def embed(self, batch: Batch) -> torch.Tensor:
        if batch.input_ids is None or batch.waveforms is None:
            raise ZooUserError("early fusion needs both the audio and the transcript of every utterance")
        feats, n = self.features(batch.waveforms, batch.lengths)
        a, n = self.subsample(self.augment(feats), n)
        t = self.text_proj(self.text.encoder.frames(batch.input_ids, batch.attention_mask))
        return self.joint(a, n, t, batch.attention_mask)
