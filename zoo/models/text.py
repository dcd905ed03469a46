"""Text-only model: KoBERT (or any BERT-style encoder) on the transcript -> classifier."""
from __future__ import annotations

import logging
from typing import Literal

import torch
from torch import nn

from ..data.batch import Batch
from ..errors import ZooUserError
from ..ranges import Fraction, NonNegativeInt, OpenUnitInterval, PositiveFloat, PositiveInt
from ..nn.text import TextEncoder
from .base import EmotionModule

log = logging.getLogger("zoo")


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
        mlm_epochs: Masked-language-model pretraining of the encoder before fine-tuning, in epochs
            over the unlabelled text (0: off). Runs offline at the start of ``fit`` and is cached
            (same starting weights, text and options: loaded, not retrained).
        mlm_text: A UTF-8 text file of unlabelled text, one utterance per line, to pretrain on (and,
            with a from-scratch tokenizer, to train the vocabulary on) besides the training
            transcripts; null: the training transcripts only.
        mlm_lr: Peak learning rate of the pretraining (linear warm-up and decay).
        mlm_batch_size: Pretraining batch size.
        mlm_probability: Share of tokens masked (BERT's 15%).
    """

    inputs = ("text",)

    def __init__(self, pretrained: str | None = "monologg/kobert", tokenizer: str | None = None,
                 max_length: PositiveInt = 64, pooling: Literal["cls", "mean"] = "cls",
                 freeze_encoder: bool = False, encoder_lr: PositiveFloat | None = None, dropout: Fraction = 0.1,
                 vocab_size: PositiveInt = 8000, hidden_size: PositiveInt = 256, num_layers: PositiveInt = 3,
                 num_heads: PositiveInt = 4, intermediate_size: PositiveInt = 1024, encoder_config: dict | None = None,
                 mlm_epochs: NonNegativeInt = 0, mlm_text: str | None = None, mlm_lr: PositiveFloat = 5e-4,
                 mlm_batch_size: PositiveInt = 32, mlm_probability: OpenUnitInterval = 0.15, **kwargs):
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
        self.head = self.make_head(self.embed_dim, dropout=dropout)
        self.mlm = dict(epochs=mlm_epochs, lr=mlm_lr, batch_size=mlm_batch_size, mlm_probability=mlm_probability)
        self.mlm_text = mlm_text
        self._mlm_extra = _read_text_file(mlm_text) if mlm_epochs > 0 and mlm_text else []
        self._train_texts: list[str] | None = None
        if mlm_epochs > 0:
            if not 0 < mlm_probability < 1:
                raise ZooUserError(f"mlm_probability must be between 0 and 1, got {mlm_probability}")
            # in the checkpoint: a fine-tuned model loaded again is never pretrained over
            self.register_buffer("mlm_done", torch.tensor(False))

    def checkpoint_hparams(self, hp: dict) -> dict:
        # rebuilt from the recorded architecture and the checkpoint's own tokenizer: no hub
        if hp.get("pretrained"):
            cfg = {k: v for k, v in self.encoder.bert.config.to_dict().items()
                   if not k.startswith("_") and k not in ("architectures", "transformers_version", "torch_dtype")}
            hp.update(encoder_config=cfg, pretrained=None, tokenizer=None)
        # pretrained already, and the vocabulary travels in the checkpoint: no need for the file
        hp["mlm_text"] = None
        return hp

    # -- tokenizer (the DataModule tokenizes in its workers with it) ----------------------------
    def prepare_tokenizer(self, texts: list[str]) -> None:
        """Called at setup with the training transcripts (the base class pulls them from the
        DataModule's read-only view)."""
        self._train_texts = list(texts)
        if self.tokenizer is None:
            from ..data.text import train_tokenizer

            self.tokenizer = train_tokenizer(list(texts) + self._mlm_extra, vocab_size=self.vocab_budget,
                                             max_length=self.max_length)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit" and self.mlm["epochs"] > 0 and not bool(self.mlm_done):
            self.pretrain_encoder()

    def pretrain_encoder(self) -> list[float]:
        """Masked-language-model pretraining on the training transcripts (given to
        ``prepare_tokenizer``) and ``mlm_text``; returns the loss of each epoch."""
        from ..nn.text import pretrain_mlm

        if self._train_texts is None or self.tokenizer is None:
            raise ZooUserError("mlm_epochs needs the training transcripts: train through the zoo's DataModule")
        texts = [t for t in self._train_texts + self._mlm_extra if t and t.strip()]
        device = self.trainer.strategy.root_device if self._trainer is not None else self.device
        seed = int(torch.initial_seed()) % 2**31
        losses = pretrain_mlm(self.encoder, self.tokenizer.hf, texts, max_length=self.max_length,
                              seed=seed, device=device, **self.mlm)
        self.mlm_done.fill_(True)
        log.info("masked-language-model pretraining on %d texts, loss per epoch: %s", len(texts),
                 " ".join(f"{x:.3f}" for x in losses))
        return losses

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

    def parameter_groups(self):
        return split_lr_groups(self, self.encoder, self.encoder_lr)


def split_lr_groups(module: nn.Module, encoder: nn.Module, encoder_lr: float | None):
    """Trainable parameters, with ``encoder``'s in a group of their own when it has its own lr."""
    if encoder_lr is None:
        return [p for p in module.parameters() if p.requires_grad]
    enc = {id(p) for p in encoder.parameters()}
    groups = [{"params": [p for p in module.parameters() if p.requires_grad and id(p) not in enc], "name": "head"},
              {"params": [p for p in encoder.parameters() if p.requires_grad], "lr": encoder_lr, "name": "encoder"}]
    return [g for g in groups if g["params"]]


def _read_text_file(path: str) -> list[str]:
    """Non-empty lines of a UTF-8 text file."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise ZooUserError(f"mlm_text: no such file: {path}")
    try:
        lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError as e:
        raise ZooUserError(f"mlm_text {path} is not UTF-8 text ({e}); convert it, e.g. iconv -f cp949 -t utf-8") from e
    lines = [ln for ln in lines if ln]
    if not lines:
        raise ZooUserError(f"mlm_text {path} has no text")
    return lines


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
