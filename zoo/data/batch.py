"""The typed batch every model receives, the collate function and the length-bucketing sampler."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch


@dataclass
class Batch:
    """A collated batch. Fields a model does not consume are None (a text model gets no audio).

    ``waveforms`` are zero-padded to the longest clip; ``lengths`` hold the true sample counts.
    ``labels`` are class indices (-1 where unknown, e.g. unlabelled predict data); ``soft`` is the
    annotator distribution when the DataModule runs with ``label_mode: soft``. ``dims`` are the
    dimensional ratings (B, 3: arousal, valence, dominance, each in [0, 1]) when the corpus has
    any, ``dims_mask`` marks the ratings present (a missing one is 0 in ``dims``).
    """

    ids: list[str]
    labels: torch.Tensor
    soft: torch.Tensor | None = None
    waveforms: torch.Tensor | None = None
    lengths: torch.Tensor | None = None
    texts: list[str] | None = None
    input_ids: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    speakers: list[str | None] | None = None  # for per-speaker feature standardisation
    features: torch.Tensor | None = None  # utterance-level features (B, D), e.g. eGeMAPS functionals
    dims: torch.Tensor | None = None  # (B, 3) arousal, valence, dominance in [0, 1]
    dims_mask: torch.Tensor | None = None  # (B, 3) bool: the rating exists
    corpora: list[str] | None = None  # the corpus of each utterance (multi-corpus training)

    def __len__(self) -> int:
        return len(self.ids)

    def pin_memory(self) -> "Batch":
        """Page-locked copies of the tensors (the DataLoader calls this with ``pin_memory``)."""
        import dataclasses

        return dataclasses.replace(self, **{
            f.name: getattr(self, f.name).pin_memory() for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)})


def make_item(uid: str, label: int = -1, *, speaker: str | None = None, audio: torch.Tensor | None = None,
              features: torch.Tensor | None = None, text: str | None = None, with_text: bool = False,
              tokenizer=None, soft: torch.Tensor | None = None, dims: torch.Tensor | None = None,
              corpus: str | None = None) -> dict:
    """One item as :func:`collate` takes it. The one place that decides an item's keys, for
    training (``EmotionDataset``) and inference (``Predictor``) alike: what a model sees from a
    file is the same in both. ``with_text``: the model reads the transcript (``text``, "" when
    missing, and its token ids when a ``tokenizer`` is given)."""
    item: dict = {"id": uid, "label": label, "speaker": speaker}
    if corpus is not None:
        item["corpus"] = corpus
    if soft is not None:
        item["soft"] = soft
    if dims is not None:
        item["dims"] = dims
    if audio is not None:
        item["audio"] = audio
    if features is not None:
        item["features"] = features
    if with_text:
        item["text"] = text or ""
        if tokenizer is not None:
            item["input_ids"] = tokenizer.encode(item["text"])
    return item


def collate(items: Sequence[dict | None], pad_id: int = 0) -> Batch | None:
    """Pad waveforms and token ids, stack labels; items that failed to load (None) are dropped.

    ``input_ids`` are right-padded with ``pad_id`` and ``attention_mask`` marks the real tokens,
    so a text model can mask the padding (a sentence alone and in a batch give the same output).
    """
    items = [it for it in items if it is not None]
    if not items:
        return None
    ids = [it["id"] for it in items]
    labels = torch.tensor([it["label"] for it in items], dtype=torch.long)
    soft = torch.stack([it["soft"] for it in items]) if "soft" in items[0] else None
    waveforms = lengths = None
    if "audio" in items[0]:
        # padded in numpy: torch's copies here go through its intra-op thread pool, which on
        # busy cores costs 5-30x more than the copy itself (32 clips of 1-10 s: 13 ms in numpy,
        # 57 ms torch row by row, up to 390 ms pad_sequence; python -m benchmarks.run --suite data)
        lens = [it["audio"].shape[0] for it in items]
        buf = np.zeros((len(items), max(lens)), dtype=np.float32)
        for i, it in enumerate(items):
            buf[i, : lens[i]] = np.asarray(it["audio"])
        waveforms = torch.from_numpy(buf)
        lengths = torch.tensor(lens, dtype=torch.long)
    texts = [it["text"] for it in items] if "text" in items[0] else None
    input_ids = attention_mask = None
    if "input_ids" in items[0]:
        n_tok = [len(it["input_ids"]) for it in items]
        input_ids = torch.full((len(items), max(n_tok)), pad_id, dtype=torch.long)
        attention_mask = torch.zeros(len(items), max(n_tok), dtype=torch.long)
        for i, it in enumerate(items):
            input_ids[i, : n_tok[i]] = torch.as_tensor(it["input_ids"], dtype=torch.long)
            attention_mask[i, : n_tok[i]] = 1
    features = torch.stack([it["features"] for it in items]) if "features" in items[0] else None
    dims = dims_mask = None
    if "dims" in items[0]:
        raw = torch.stack([it["dims"] for it in items])
        dims_mask = ~torch.isnan(raw)
        dims = torch.nan_to_num(raw, nan=0.0)
    speakers = [it.get("speaker") for it in items]
    corpora = [it["corpus"] for it in items] if "corpus" in items[0] else None
    return Batch(ids=ids, labels=labels, soft=soft, waveforms=waveforms, lengths=lengths, texts=texts,
                 input_ids=input_ids, attention_mask=attention_mask, features=features,
                 speakers=speakers if any(s is not None for s in speakers) else None,
                 dims=dims, dims_mask=dims_mask, corpora=corpora)


class LengthSortedSampler(torch.utils.data.Sampler[int]):
    """Indices from the shortest clip to the longest (predict: little padding, stable order).

    A plain sampler, not a batch sampler, so Lightning's predict loop can wrap it to track
    indices."""

    def __init__(self, durations: Sequence[float]):
        self.order = np.argsort(np.asarray(durations, dtype=np.float64), kind="stable").tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


class BucketBatchSampler(torch.utils.data.BatchSampler):
    """Batches of similar duration, so padding stays small; shuffled per epoch when training.

    Each epoch the indices are shuffled (seed + epoch), cut into pools of ``batch_size *
    pool_batches``, sorted by duration inside a pool and cut into batches (a pool's lone last
    clip joins the batch before it: BatchNorm cannot train on one clip); the batch order is
    then shuffled. Without shuffling, batches are simply sorted by length (eval). Under DDP each
    rank takes every ``num_replicas``-th batch in training, the batch list padded (repeated from
    its start) so every rank steps equally often, as gradient sync needs; in evaluation each rank
    takes every ``num_replicas``-th clip in length order, none padded, so each utterance is
    evaluated exactly once (the ranks' counts differ by one at most).

    It is a ``BatchSampler`` with a ``sampler`` argument so that Lightning, which injects a
    ``DistributedSampler`` into every loader under DDP, hands it over here: the rank and world
    size are read from it; its order is not used (the buckets shard themselves).

    ``weights`` (one per index, e.g. inverse class frequency): instead of a permutation, each
    epoch draws as many indices, with replacement, with probability proportional to the weight
    (what ``WeightedRandomSampler`` does); pooling, sorting and sharding stay as above.
    """

    def __init__(self, durations: Sequence[float], batch_size: int, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False, pool_batches: int = 50,
                 num_replicas: int = 1, rank: int = 0, weights: Sequence[float] | None = None,
                 sampler=None):
        if isinstance(sampler, torch.utils.data.DistributedSampler):
            num_replicas, rank = sampler.num_replicas, sampler.rank
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (len(durations),) or (weights < 0).any() or weights.sum() <= 0:
                raise ValueError("weights must be one non-negative number per index, not all zero")
            weights = weights / weights.sum()
        self.weights = weights
        self.durations = np.asarray(durations, dtype=np.float64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.pool = batch_size * pool_batches
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        # Lightning calls set_epoch on ``loader.sampler`` and ``loader.batch_sampler.sampler``, never
        # on the batch sampler itself: without this every epoch had epoch 0's order
        self.sampler = _EpochSetter(self)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        n = len(self.durations)
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch])
            if self.weights is not None:
                order = rng.choice(n, size=n, replace=True, p=self.weights)
            else:
                order = rng.permutation(n)
            batches = []
            for start in range(0, n, self.pool):
                pool = order[start : start + self.pool]
                pool = pool[np.argsort(self.durations[pool], kind="stable")]
                batches += [pool[i : i + self.batch_size].tolist() for i in range(0, len(pool), self.batch_size)]
            if self.drop_last:
                batches = [b for b in batches if len(b) == self.batch_size]
            elif self.batch_size > 1:
                # a lone clip (a pool's remainder) joins the batch before it: BatchNorm cannot train
                # on one value per channel (SpeechBrain's ECAPA raised on it), and one clip is a noisy step
                merged: list[list[int]] = []
                for b in batches:
                    if len(b) == 1 and merged:
                        merged[-1] = merged[-1] + b
                    else:
                        merged.append(b)
                batches = merged
            perm = rng.permutation(len(batches))
            batches = [batches[i] for i in perm]
        else:
            order = np.argsort(self.durations, kind="stable")
            if self.num_replicas > 1:  # evaluation: each rank every num_replicas-th clip, none twice
                order = order[self.rank :: self.num_replicas]
            return [order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
        if self.num_replicas > 1:
            # equal batch counts on every rank, or DDP would hang waiting for the longest one
            per_rank = math.ceil(len(batches) / self.num_replicas) if not self.drop_last else len(batches) // self.num_replicas
            batches = (batches * 2)[: per_rank * self.num_replicas]
            batches = batches[self.rank :: self.num_replicas]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        # lazy: the order is drawn at the first batch, after Lightning's set_epoch (a resumed run
        # creates its DataLoader iterator before setting the epoch)
        yield from self._batches()

    def __len__(self) -> int:
        return len(self._batches())


class _EpochSetter:
    """``batch_sampler.sampler`` as Lightning sees it: passes ``set_epoch`` on to the batch sampler."""

    def __init__(self, owner: BucketBatchSampler):
        self._owner = owner

    def set_epoch(self, epoch: int) -> None:
        self._owner.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self._owner.durations)
