"""Text-only model: KoBERT (or any BERT-style encoder) on the transcript -> classifier."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..data.batch import Batch
from ..errors import ZooUserError
from ..nn.text import TextEncoder
from .base import EmotionModule


class TextBERT(EmotionModule):
    """Transcript -> BERT-style encoder -> CLS or mean pooling -> classifier.

    Args:
        pretrained: Encoder weights: hub id (``monologg/kobert``) or local directory. null builds
            the encoder from the size options below and trains it from scratch (offline).
        tokenizer: Tokenizer hub id or directory; null uses ``pretrained``'s, or, when that is null
            too, trains a sentencepiece vocabulary on the training transcripts (cached).
        max_length: Longest token sequence (longer transcripts are truncated).
        pooling: ``cls`` (the [CLS] token state) or ``mean`` (mean over real tokens).
        freeze_encoder: Train only the classifier (the encoder stays as loaded).
        encoder_lr: Learning rate for the encoder (null: the optimizer's lr for everything).
        dropout: Dropout before the classifier (and inside a from-scratch encoder).
        vocab_size: From scratch: sentencepiece vocabulary size to train (a ceiling: small corpora
            get fewer pieces).
        hidden_size: From scratch: encoder width.
        num_layers: From scratch: transformer layers.
        num_heads: From scratch: attention heads.
        intermediate_size: From scratch: feed-forward width.
        encoder_config: A full Hugging Face config of the encoder (with ``model_type``); used when
            pretrained is null, instead of the size options. Checkpoints record it, so a model
            fine-tuned from a hub id loads again without the hub.
    """

    inputs = ("text",)

    def __init__(self, pretrained: str | None = "monologg/kobert", tokenizer: str | None = None,
                 max_length: int = 64, pooling: Literal["cls", "mean"] = "cls",
                 freeze_encoder: bool = False, encoder_lr: float | None = None, dropout: float = 0.1,
                 vocab_size: int = 8000, hidden_size: int = 256, num_layers: int = 3, num_heads: int = 4,
                 intermediate_size: int = 1024, encoder_config: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        from ..data.text import SPECIALS, load_tokenizer

        self.max_length = max_length
        self.vocab_budget = vocab_size
        tok_name = tokenizer or pretrained
        self.tokenizer = load_tokenizer(tok_name, max_length) if tok_name else None
        n_vocab = self.tokenizer.vocab_size if self.tokenizer is not None else vocab_size + len(SPECIALS)
        self.encoder = TextEncoder(pretrained, vocab_size=n_vocab, hidden_size=hidden_size,
                                   num_layers=num_layers, num_heads=num_heads,
                                   intermediate_size=intermediate_size, max_positions=max(512, max_length),
                                   dropout=dropout, pooling=pooling, config=encoder_config)
        if self.tokenizer is not None and self.tokenizer.vocab_size > self.encoder.vocab_size:
            raise ZooUserError(f"tokenizer {tok_name!r} has {self.tokenizer.vocab_size} tokens but the "
                               f"encoder only {self.encoder.vocab_size} embeddings: use a matching pair")
        self.freeze_encoder = freeze_encoder
        self.encoder_lr = encoder_lr
        if freeze_encoder:
            self.encoder.requires_grad_(False)
        self.embed_dim = self.encoder.out_dim
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.embed_dim, self.num_classes))

    def checkpoint_hparams(self, hp: dict) -> dict:
        # rebuilt from the recorded architecture and the checkpoint's own tokenizer: no hub
        if hp.get("pretrained"):
            cfg = {k: v for k, v in self.encoder.bert.config.to_dict().items()
                   if not k.startswith("_") and k not in ("architectures", "transformers_version", "torch_dtype")}
            hp.update(encoder_config=cfg, pretrained=None, tokenizer=None)
        return hp

    # -- tokenizer (the DataModule tokenizes in its workers with it) ----------------------------
    def prepare_tokenizer(self, texts: list[str]) -> None:
        """Called by the DataModule at setup with the training transcripts."""
        if self.tokenizer is None:
            from ..data.text import train_tokenizer

            self.tokenizer = train_tokenizer(texts, vocab_size=self.vocab_budget, max_length=self.max_length)

    def set_tokenizer(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    # -- model ----------------------------------------------------------------------------------
    def frozen_modules(self) -> list[nn.Module]:
        return [self.encoder] if self.freeze_encoder else []

    def embed(self, batch: Batch) -> torch.Tensor:
        if batch.input_ids is None:
            raise ZooUserError(f"{type(self).__name__} reads the transcript, but the batch has none "
                               "(give the text, or use an audio or late-fusion model)")
        return self.encoder(batch.input_ids, batch.attention_mask)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.head(self.embed(batch))

    def parameter_groups(self):
        return split_lr_groups(self, self.encoder, self.encoder_lr)


def split_lr_groups(module: nn.Module, encoder: nn.Module, encoder_lr: float | None):
    """Trainable parameters, with ``encoder``'s in a group of their own when it has its own lr."""
    if encoder_lr is None:
        return [p for p in module.parameters() if p.requires_grad]
    enc = {id(p) for p in encoder.parameters()}
    groups = [{"params": [p for p in module.parameters() if p.requires_grad and id(p) not in enc]},
              {"params": [p for p in encoder.parameters() if p.requires_grad], "lr": encoder_lr}]
    return [g for g in groups if g["params"]]


class TextBranchMixin:
    """For models with a text branch in ``self.text``: the tokenizer the DataModule uses (and the
    checkpoint stores) is the branch's."""

    @property
    def tokenizer(self):
        return self.text.tokenizer

    def prepare_tokenizer(self, texts: list[str]) -> None:
        self.text.prepare_tokenizer(texts)

    def set_tokenizer(self, tokenizer) -> None:
        self.text.set_tokenizer(tokenizer)
