"""Character n-gram TF-IDF as a torch module: the vocabulary and IDF are fitted by scikit-learn's
``TfidfVectorizer`` on the training transcripts, the tokenizer turns a text into the ids of its
n-grams (one id per occurrence), and the module computes exactly the vectorizer's TF-IDF row
(raw or sublinear tf, times idf, L2-normalised) as weights of an ``nn.EmbeddingBag``: a linear
layer on the sparse TF-IDF vector that never materialises it.

The vocabulary is kept in two buffers (UTF-8 bytes and offsets), so it travels in the
``state_dict`` of any model holding this module (a late-fusion branch too) and loads with
``torch.load(weights_only=True)``.
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import nn

from ..errors import ZooUserError


def _vectorizer(analyzer: str, ngram_range: tuple[int, int], lowercase: bool, **kw):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer=analyzer, ngram_range=tuple(ngram_range), lowercase=lowercase, **kw)


class NgramTokenizer:
    """``encode(text) -> ids``: the ids (1..V) of the text's n-grams that are in the vocabulary,
    one per occurrence, in text order; 0 is padding. Picklable (runs in DataLoader workers)."""

    pad_id = 0

    def __init__(self, vocabulary: Sequence[str], analyzer: str, ngram_range: tuple[int, int], lowercase: bool):
        self.vocabulary = list(vocabulary)
        self.options = dict(analyzer=analyzer, ngram_range=tuple(ngram_range), lowercase=lowercase)
        self.index = {g: i + 1 for i, g in enumerate(self.vocabulary)}
        self._analyze = _vectorizer(**self.options).build_analyzer()

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary) + 1

    def encode(self, text: str) -> list[int]:
        index = self.index
        return [index[g] for g in self._analyze(text or "") if g in index]

    def __getstate__(self):
        return {"vocabulary": self.vocabulary, "options": self.options}

    def __setstate__(self, state):
        self.__init__(state["vocabulary"], **state["options"])


class TfidfLinear(nn.Module):
    """Sparse TF-IDF features of the n-gram ids -> ``out_dim`` linear scores.

    Args:
        out_dim: Output width (the number of classes for a linear classifier).
        analyzer: ``char_wb`` (n-grams inside word boundaries, words padded with a space) or
            ``char`` (n-grams across the whole text), as in scikit-learn.
        ngram_range: Smallest and largest n.
        min_df: Ignore n-grams found in fewer training transcripts than this.
        max_features: Keep only the most frequent n-grams (None: all).
        sublinear_tf: ``1 + log(tf)`` instead of the raw count.
        lowercase: Lowercase before extracting n-grams.
    """

    def __init__(self, out_dim: int, analyzer: Literal["char_wb", "char"] = "char_wb",
                 ngram_range: tuple[int, int] = (1, 3), min_df: int = 1, max_features: int | None = None,
                 sublinear_tf: bool = True, lowercase: bool = True):
        super().__init__()
        if not 1 <= ngram_range[0] <= ngram_range[1]:
            raise ZooUserError(f"ngram_range must be 1 <= min <= max, got {tuple(ngram_range)}")
        self.out_dim = out_dim
        self.options = dict(analyzer=analyzer, ngram_range=tuple(ngram_range), lowercase=lowercase)
        self.min_df, self.max_features, self.sublinear_tf = min_df, max_features, sublinear_tf
        self.tokenizer: NgramTokenizer | None = None
        self._allocate(0, 0)

    def _allocate(self, n_vocab: int, n_bytes: int) -> None:
        """(Re)create the vocabulary-sized tensors; index 0 is padding."""
        self.register_buffer("vocab_bytes", torch.zeros(n_bytes, dtype=torch.uint8))
        self.register_buffer("vocab_offsets", torch.zeros(n_vocab + 1, dtype=torch.long))
        self.register_buffer("idf", torch.zeros(n_vocab + 1))
        # zero init: the usual start of a (convex) linear model
        self.scores = nn.EmbeddingBag(n_vocab + 1, self.out_dim, mode="sum", padding_idx=0,
                                      _weight=torch.zeros(n_vocab + 1, self.out_dim))
        self.bias = nn.Parameter(torch.zeros(self.out_dim))

    @property
    def fitted(self) -> bool:
        return self.tokenizer is not None

    @property
    def vocab_size(self) -> int:
        return self.idf.numel() - 1

    def fit(self, texts: Sequence[str]) -> None:
        """Vocabulary and IDF from ``texts`` (the training transcripts); resets the weights."""
        texts = [t for t in texts if t and t.strip()]
        if not texts:
            raise ZooUserError("cannot fit the TF-IDF vocabulary: the training split has no transcripts")
        vec = _vectorizer(**self.options, min_df=self.min_df, max_features=self.max_features,
                          sublinear_tf=self.sublinear_tf, norm="l2", smooth_idf=True)
        try:
            vec.fit(texts)
        except ValueError as e:  # e.g. min_df above the number of transcripts
            raise ZooUserError(f"cannot fit the TF-IDF vocabulary on {len(texts)} transcripts: {e}") from e
        vocab = [""] * len(vec.vocabulary_)
        for g, i in vec.vocabulary_.items():
            vocab[i] = g
        encoded = [g.encode("utf-8") for g in vocab]
        device = self.bias.device
        self._allocate(len(vocab), sum(map(len, encoded)))
        self.vocab_bytes.copy_(torch.frombuffer(bytearray(b"".join(encoded)), dtype=torch.uint8)
                               if encoded else self.vocab_bytes)
        self.vocab_offsets[1:] = torch.tensor([len(b) for b in encoded]).cumsum(0)
        self.idf[1:] = torch.as_tensor(vec.idf_, dtype=torch.float)
        self.to(device)
        self.tokenizer = NgramTokenizer(vocab, **self.options)

    def _vocabulary(self) -> list[str]:
        data = bytes(self.vocab_bytes.cpu().numpy())
        off = self.vocab_offsets.tolist()
        return [data[off[i]:off[i + 1]].decode("utf-8") for i in range(len(off) - 1)]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a checkpoint brings its own vocabulary: take its sizes before loading the values
        if prefix + "idf" in state_dict:
            device = self.bias.device
            self._allocate(state_dict[prefix + "idf"].numel() - 1, state_dict[prefix + "vocab_bytes"].numel())
            self.to(device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.tokenizer = NgramTokenizer(self._vocabulary(), **self.options) if self.vocab_size > 0 else None

    def weights(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) weight of each n-gram occurrence such that summing them per id gives the text's
        L2-normalised TF-IDF vector (0 on padding)."""
        mask = attention_mask.bool()
        ids = input_ids.masked_fill(~mask, 0)
        # tf of each occurrence's n-gram in its own row: count equal (row, id) keys
        row = torch.arange(ids.shape[0], device=ids.device)[:, None]
        key = torch.where(mask, row * (self.vocab_size + 1) + ids, -1)
        _, inverse, counts = torch.unique(key, return_inverse=True, return_counts=True)
        tf = counts[inverse].to(self.idf.dtype)
        value = (1 + tf.log()) if self.sublinear_tf else tf  # the n-gram's TF-IDF entry / idf
        w = torch.where(mask, value * self.idf[ids] / tf, torch.zeros_like(tf))
        norm = (w.square() * tf).sum(1, keepdim=True).sqrt()  # sum over distinct n-grams of entry^2
        return w / norm.clamp(min=1e-12)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if not self.fitted:
            raise RuntimeError("TfidfLinear: fit() the vocabulary (or load a checkpoint) first")
        if input_ids.shape[1] == 0:  # no known n-gram in any text of the batch
            return self.bias.expand(input_ids.shape[0], -1)
        ids = input_ids.masked_fill(~attention_mask.bool(), 0)
        return self.scores(ids, per_sample_weights=self.weights(input_ids, attention_mask)) + self.bias
