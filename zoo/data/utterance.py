"""The record every corpus adapter returns: one utterance, before any model sees it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The seven AI Hub KETI-02-002 classes, spelled as the corpus spells them, in alphabetical
# order: the one stable order used for class indices everywhere in the zoo.
AIHUB_EMOTIONS: tuple[str, ...] = (
    "Angry", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise",
)


@dataclass
class Utterance:
    """One utterance as a corpus describes it.

    ``label`` is the hard label (a class name) when the corpus gives one directly (manifests);
    for annotated corpora (AI Hub) it is left ``None`` and ``votes`` hold the annotators' labels,
    which the label policy (``zoo.data.labels``) turns into a hard or soft label.
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
    meta: dict[str, Any] = field(default_factory=dict)
