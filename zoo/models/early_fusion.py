"""Early fusion: acoustic frames and text tokens meet before utterance pooling, in one joint
transformer trained end to end. The acoustic frames come from the built-in log-mel front end or
from any self-supervised speech encoder (``audio_branch``: an SSLClassifier spec)."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..data.batch import Batch
from ..errors import ZooUserError
from ..ranges import Fraction, PositiveInt
from ..nn.audio import LogMel, SpecAugment
from ..nn.fusion import ConvSubsampler, JointEncoder
from .base import EmotionModule
from .loading import module_spec
from .fusion_branch import ModelSpec, build_branch
from .text import TextBERT, TextBranchMixin


class EarlyFusion(TextBranchMixin, EmotionModule):
    """Acoustic frames and the text encoder's token states, both projected to ``d_model``, fused
    by a joint encoder, pooled, classified. The acoustic frames are log-mel frames (4x subsampled
    by convolutions), or with ``audio_branch`` the frames of a self-supervised speech encoder.

    Args:
        text_branch: Where the token states come from: a text model spec (class_path +
            init_args), e.g. TextBERT with pretrained KoBERT or from scratch; its tokenizer is used.
            Its options: ``--model.init_args.text_branch.help TextBERT``.
        audio_branch: Where the acoustic frames come from. null: the built-in log-mel front end
            (``n_mels``, ``normalize``, ``spec_augment``). Or an audio model spec whose frames
            are used before its pooling: ``{class_path: zoo.models.SSLClassifier, init_args:
            {pretrained: microsoft/wavlm-base-plus, freeze_encoder: true, weighted_layers: true}}``
            (any wav2vec2 / HuBERT / WavLM / data2vec-audio / Whisper encoder, hub id or local
            directory, with every SSLClassifier option: frozen, weighted or chosen layer, top-k,
            LoRA, ``encoder_lr``, ``unfreeze_after_steps``, ``embedding_cache``, ``wave_augment``);
            its 20 ms frames are projected to ``d_model`` (no subsampling), its padded frames
            masked out of the joint encoder, and its pooling and head are unused. Its options:
            ``--model.init_args.audio_branch.help SSLClassifier``.
        n_mels: Mel bands of the acoustic frames (log-mel front end only).
        normalize: Log-mel normalisation: ``global`` (running corpus statistics), ``utterance`` or
            ``none`` (log-mel front end only).
        d_model: Width of the joint encoder.
        num_layers: Transformer layers of the joint encoder.
        num_heads: Attention heads of the joint encoder.
        joint: ``concat`` (one transformer over [audio frames; tokens]) or ``cross_attention``
            (frames attend to tokens and tokens to frames, then pooled and concatenated).
        freeze_text_encoder: Keep the text encoder fixed (useful with a pretrained KoBERT on small data).
        dropout: Dropout in the joint encoder and before the classifier.
        spec_augment: Frequency/time masking of the log-mels during training (log-mel front end
            only; an SSL branch has its own ``spec_augment``).
    """

    inputs = ("audio", "text")

    def __init__(self, text_branch: ModelSpec = TextBERT, n_mels: PositiveInt = 64,
                 normalize: Literal["global", "utterance", "none"] = "global", d_model: PositiveInt = 128,
                 num_layers: PositiveInt = 2, num_heads: PositiveInt = 4,
                 joint: Literal["concat", "cross_attention"] = "concat",
                 freeze_text_encoder: bool = False, dropout: Fraction = 0.1, spec_augment: bool = False,
                 audio_branch: ModelSpec | None = None, **kwargs):
        super().__init__(**kwargs)
        if audio_branch is None:  # the log-mel front end (the state-dict keys of older checkpoints)
            self.audio = None
            self.features = LogMel(self.sample_rate, n_mels=n_mels, normalize=normalize)
            self.augment = SpecAugment() if spec_augment else nn.Identity()
            self.subsample = ConvSubsampler(n_mels, d_model)
        else:
            self.audio = build_branch(self, "audio_branch", audio_branch)
            if not callable(getattr(self.audio, "frames", None)) or tuple(self.audio.inputs) != ("audio",):
                raise ZooUserError(f"early fusion's audio_branch must give frame sequences from audio (e.g. "
                                   f"zoo.models.SSLClassifier), got {type(self.audio).__name__}")
            self.audio.head = nn.Identity()  # only its encoder's frames are used
            self.audio_proj = nn.Linear(self.audio.embed_dim, d_model)
        self.text = build_branch(self, "text_branch", text_branch)
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
        if self.audio is not None:
            hp["audio_branch"] = module_spec(self.audio)  # the SSL encoder's config, not its hub id
        return hp

    def parameter_groups(self) -> list[dict]:
        """With an SSL branch: its groups (the backbone or its LoRA adapters at its ``encoder_lr``),
        everything else (joint encoder, projections, text branch, head) at the optimizer's lr."""
        if self.audio is None:
            return super().parameter_groups()
        audio = self.audio.parameter_groups()
        taken = {id(p) for g in audio for p in g["params"]}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in taken]
        return [{**audio[0], "params": list(audio[0]["params"]) + rest}] + audio[1:]

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        if self.audio is not None:  # the branch's unfreeze_after_steps
            self.audio.on_train_batch_start(batch, batch_idx)

    def frozen_modules(self) -> list[nn.Module]:
        return [self.text] if self.freeze_text_encoder else []

    def embed(self, batch: Batch) -> torch.Tensor:
        if batch.input_ids is None or batch.waveforms is None:
            raise ZooUserError("early fusion needs both the audio and the transcript of every utterance")
        if self.audio is None:
            feats, n = self.features(batch.waveforms, batch.lengths)
            a, n = self.subsample(self.augment(feats), n)
        else:
            a, n = self.audio.frames(batch)
            a = self.audio_proj(a)
        t = self.text_proj(self.text.encoder.frames(batch.input_ids, batch.attention_mask))
        return self.joint(a, n, t, batch.attention_mask)
