"""The data/model contract: how a model and the DataModule meet, in one direction.

The model hands the DataModule a :class:`DataRequest` (what it consumes: audio, text or both, so a
text-only run never decodes a wav; whether a transcript may be missing; the split its training
loop iterates; its tokenizer) from its own ``setup``, and reads the splits through a read-only
:class:`DataView`; the DataModule never reads or calls the model.

Only the standard library and :mod:`zoo.data.utterance` are imported: a model uses the contract
without importing the LightningDataModule.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from .utterance import Utterance

#: what a model can consume: raw audio, the transcript, openSMILE functionals computed from the
#: audio (eGeMAPS v02, ComParE 2016: zoo.data.features.FEATURE_SETS)
Modality = Literal["audio", "text", "egemaps", "compare"]
#: modalities read from the audio file
FROM_AUDIO = frozenset({"audio", "egemaps", "compare"})


@dataclass(frozen=True)
class DataRequest:
    """What a model asks of the DataModule; the model hands it over
    (:meth:`EmotionDataModule.request`, called from ``EmotionModule.setup``), so the DataModule
    never reads model attributes.

    Args:
        modalities: What to load: ``audio``, ``text``, ``egemaps``, ``compare`` (the model's ``inputs``).
        text_optional: The model predicts without a transcript (late fusion): an utterance with
            none is not a data problem.
        fit_split: The split the training loader serves (a late-fusion second stage on frozen
            branches: ``val``).
        tokenizer: ``encode(text) -> ids`` and ``pad_id``; the items are tokenized with it (in the
            loader workers). The model hands a new request when it gets another one (a checkpoint's).
    """

    modalities: tuple[str, ...] = ("audio", "text")
    text_optional: bool = False
    fit_split: Literal["train", "val"] = "train"
    tokenizer: Any = None


@dataclass(frozen=True)
class DataView:
    """A read-only view of the DataModule's splits, for a model's own setup: it pulls what it needs
    from here (a from-scratch tokenizer's training transcripts, normalisation statistics, class
    counts) instead of the DataModule calling into the model. ``splits`` hold train, val and
    test as tuples; ``sample_rate`` and ``cache_dir`` are what the audio is decoded with."""

    splits: dict[str, tuple[Utterance, ...]]
    class_names: tuple[str, ...]
    sample_rate: int
    cache_dir: str | None

    def split(self, name: str) -> tuple[Utterance, ...]:
        """The utterances of ``train``, ``val``, ``test`` or ``all`` (the three in that order)."""
        if name == "all":
            return tuple(u for s in ("train", "val", "test") for u in self.splits[s])
        return self.splits[name]

    def texts(self, name: str = "train") -> list[str]:
        """The transcripts of a split ("" where an utterance has none)."""
        return [u.text or "" for u in self.split(name)]

    @property
    def train_class_counts(self) -> list[int]:
        c = Counter(u.label for u in self.splits["train"])
        return [c.get(k, 0) for k in self.class_names]
