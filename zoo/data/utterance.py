"""The record every corpus adapter returns: one utterance, before any model sees it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: the dimensional ratings an utterance may carry, in the order of ``Batch.dims`` columns
DIMENSIONS: tuple[str, ...] = ("arousal", "valence", "dominance")


@dataclass
class Utterance:
    """One utterance as a corpus describes it.

    ``label`` is the hard label (a class name) when the corpus gives one directly (manifests,
    acted corpora, IEMOCAP's consensus); for annotated corpora whose label is decided from the
    votes (AI Hub) it is left ``None`` and ``votes`` hold the annotators' labels, which the label
    policy (``zoo.data.labels``) turns into a hard or soft label. ``soft`` is a label
    distribution from several annotators given *beside* a hard label (IEMOCAP evaluators,
    CREMA-D crowd ratings); it serves ``label_mode: soft`` and never changes ``label``.

    ``dims`` are dimensional ratings normalised to [0, 1] (0 = the low end of the corpus's own
    scale, 1 = its high end; see ``zoo.data.corpora.base.normalize_dims``); ``dims_scale`` records
    that raw scale, e.g. ``(1.0, 5.0)``, and ``meta["dims_raw"]`` the ratings as written.
    """

    id: str
    audio: str | None  # path; "archive.zip::member.wav" for a file read straight from a zip
    text: str | None = None
    label: str | None = None
    votes: tuple[str, ...] = ()  # annotator labels, canonical spelling, in annotator order
    intensities: tuple[int, ...] = ()  # one per vote when the corpus has them
    speaker: str | None = None
    group: str | None = None  # unit that must stay in one split (e.g. an AI Hub conversation)
    split: str | None = None  # "train" | "val" | "test" when the corpus fixes the split
    session: str | None = None  # recording session (IEMOCAP, KEMDy: leave-one-session-out folds)
    dims: dict[str, float] = field(default_factory=dict)  # arousal/valence/dominance in [0, 1]
    dims_scale: tuple[float, float] | None = None  # the corpus's raw scale of ``dims``
    soft: dict[str, float] | None = None  # annotators' label distribution (sums to 1)
    meta: dict[str, Any] = field(default_factory=dict)
