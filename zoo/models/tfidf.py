"""The classic text baseline as a zoo family: character n-gram TF-IDF + a linear classifier.

The vocabulary and IDF are fitted on the training transcripts at setup (like TextBERT's
from-scratch tokenizer), the linear layer is trained with the zoo's shared loss and optimiser,
and the probabilities are calibrated by temperature scaling on the validation split.
"""
from __future__ import annotations

import logging
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..data.batch import Batch
from ..errors import ZooUserError
from ..ranges import PositiveInt
from ..nn.tfidf import NgramTokenizer, TfidfLinear
from .base import EmotionModule

log = logging.getLogger("zoo")


class Temperature(nn.Module):
    """Divides the scores by a temperature fitted on held-out data, at evaluation only: training
    sees the raw scores, so calibrating never changes what the classifier learns; the argmax
    (and so WA, UA and F1) never changes either. Only the first ``num_logits`` columns are class
    scores (the rest, dimension predictions, pass unchanged); None: every column."""

    def __init__(self, num_logits: int | None = None):
        super().__init__()
        self.num_logits = num_logits
        self.register_buffer("log_t", torch.zeros(()))

    @property
    def value(self) -> float:
        return float(self.log_t.exp())

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        if self.training:
            return scores
        c = scores.shape[-1] if self.num_logits is None else self.num_logits
        if c == scores.shape[-1]:
            return scores / self.log_t.exp()
        return torch.cat([scores[..., :c] / self.log_t.exp(), scores[..., c:]], -1)

    def fit(self, scores: torch.Tensor, labels: torch.Tensor) -> float:
        """The temperature that minimises the negative log-likelihood of ``labels`` (-1: ignored)."""
        # callable from evaluation hooks, which run under no_grad or inference mode
        with torch.inference_mode(False), torch.enable_grad():
            keep = labels >= 0
            scores, labels = scores[keep].float().clone(), labels[keep].clone()
            if len(labels) == 0:
                return self.value
            log_t = torch.zeros((), requires_grad=True)
            opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                loss = F.cross_entropy(scores / log_t.exp(), labels)
                loss.backward()
                return loss

            opt.step(closure)
        with torch.no_grad():
            # a degenerate split (one class, perfectly separated) drives T to 0 or infinity: bound it
            self.log_t.copy_(log_t.detach().clamp(-4.0, 4.0))
        return self.value


class TextTfidf(EmotionModule):
    """Transcript -> character n-gram TF-IDF -> linear classifier (-> temperature).

    The fast CPU baseline: it trains in seconds, needs no pretrained weights, and on short
    transcripts it is hard to beat without them. ``embed`` gives the linear class scores (a
    linear model has no other hidden representation), so as a late-fusion branch it serves the
    decision-level fusions (``logits``, ``probs``) best.

    Args:
        analyzer: ``char_wb`` (n-grams inside words, padded with a space) or ``char`` (across
            word boundaries), as in scikit-learn's TfidfVectorizer.
        ngram_min: Smallest n-gram length.
        ngram_max: Largest n-gram length.
        min_df: Ignore n-grams found in fewer training transcripts than this.
        max_features: Keep only the most frequent n-grams (null: all).
        sublinear_tf: ``1 + log(tf)`` instead of raw counts.
        lowercase: Lowercase before extracting n-grams.
        calibrate: ``temperature``: after each validation epoch, fit the temperature that
            minimises the validation negative log-likelihood (stored in the checkpoint, applied at
            evaluation and prediction); ``none``: the raw softmax.
    """

    inputs = ("text",)

    def __init__(self, analyzer: Literal["char_wb", "char"] = "char_wb", ngram_min: PositiveInt = 1, ngram_max: PositiveInt = 3,
                 min_df: PositiveInt = 1, max_features: PositiveInt | None = None, sublinear_tf: bool = True,
                 lowercase: bool = True, calibrate: Literal["temperature", "none"] = "temperature", **kwargs):
        super().__init__(**kwargs)
        self.features = TfidfLinear(self.num_logits + len(self.dim_names), analyzer=analyzer, ngram_range=(ngram_min, ngram_max),
                                    min_df=min_df, max_features=max_features, sublinear_tf=sublinear_tf,
                                    lowercase=lowercase)
        self.calibrate = calibrate if self.predicts_categories else "none"
        self.embed_dim = self.features.out_dim
        self.head = Temperature(self.num_logits)
        self._val_scores: list[tuple[torch.Tensor, torch.Tensor]] = []

    # -- vocabulary (the DataModule tokenizes in its workers with it) ---------------------------
    @property
    def tokenizer(self) -> NgramTokenizer | None:
        return self.features.tokenizer

    def prepare_tokenizer(self, texts: list[str]) -> None:
        """Called at setup with the training transcripts (pulled by the base class from the
        DataModule's read-only view): fits the vocabulary and IDF once (a model loaded from a
        checkpoint keeps its own)."""
        if not self.features.fitted:
            self.features.fit(texts)
            log.info("TF-IDF vocabulary: %d character %d-%d-grams from %d training transcripts",
                     self.features.vocab_size, *self.features.options["ngram_range"], len(texts))

    def set_tokenizer(self, tokenizer) -> None:
        if not isinstance(tokenizer, NgramTokenizer) or tokenizer.vocabulary != (
                self.tokenizer.vocabulary if self.tokenizer else None):
            raise ZooUserError(f"{type(self).__name__} fits its own n-gram vocabulary on the training "
                               "transcripts; it cannot take another tokenizer")

    # -- model ----------------------------------------------------------------------------------
    def embed(self, batch: Batch) -> torch.Tensor:
        if batch.input_ids is None:
            raise ZooUserError(f"{type(self).__name__} reads the transcript, but the batch has none "
                               "(give the text, or use an audio or late-fusion model)")
        return self.features(batch.input_ids, batch.attention_mask)

    # -- calibration on the validation split ----------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_scores = []

    def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self.calibrate == "temperature" and batch is not None and len(batch) and self.trainer.state.fn == "fit":
            with torch.no_grad():
                self._val_scores.append((self.embed(batch).detach()[:, : self.num_logits], batch.labels))

    def on_validation_epoch_end(self) -> None:
        # before the checkpoint callback saves (on_validation_end): the saved file holds the
        # temperature fitted for its own weights
        # only while fitting: validating or testing a checkpoint keeps the temperature it has
        if (self.calibrate != "temperature" or not self._val_scores or self.trainer.sanity_checking
                or self.trainer.state.fn != "fit"):
            self._val_scores = []
            return
        scores = torch.cat([s for s, _ in self._val_scores])
        labels = torch.cat([y for _, y in self._val_scores]).to(scores.device)
        self._val_scores = []
        if self.trainer.world_size > 1:  # every rank fits the same temperature on all of val
            scores = self.all_gather(scores).flatten(0, 1)
            labels = self.all_gather(labels).flatten(0, 1)
        t = self.head.fit(scores.cpu(), labels.cpu())
        self.log("val/temperature", t, rank_zero_only=True)
