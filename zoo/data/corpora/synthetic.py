"""The embedded synthetic Korean corpus (AI Hub layout), generated on first use and cached.

The generator is :mod:`zoo.data.synth` (``python -m zoo synth``); this adapter makes it a
corpus like any other: :meth:`Synthetic.prepare` writes the corpus once (a file lock keeps
parallel runs from clobbering each other) and the AI Hub adapter reads it. Each utterance
also gets ``dims`` (arousal, valence in [0, 1]) from the generator's ``synthetic_meta.csv``.
"""
from __future__ import annotations

from pathlib import Path

from zoo.data.corpora.aihub import AIHUB_EMOTIONS, CONVERSATION_GAP, AIHub
from zoo.data.corpora.base import CorpusInfo
from zoo.data.utterance import Utterance
from zoo.errors import ProblemLog
from zoo.paths import cache_dir
from zoo.ranges import ClosedUnitInterval, NonNegativeFloat, PositiveInt, Seed


class Synthetic(AIHub, name="synthetic"):
    """The embedded synthetic Korean corpus (AI Hub layout), generated on first use and cached.

    Args:
        root: Where the corpus lives; null = a folder in $ZOO_CACHE_DIR named after the arguments.
        size: Number of utterances.
        corpus_seed: Seed of the generator (the DataModule's ``seed`` is the split/batch-order seed).
        voice: Share of utterances whose emotion is only in the voice.
        words: Share whose emotion is only in the words.
        both: Share with the emotion in voice and words.
        conversation_gap: As for AI Hub.
        group_by_demographics: As for AI Hub.
    """

    exportable = False  # made by `python -m zoo synth`, not found on disk
    info = CorpusInfo(
        title="synthetic Korean corpus", language="Korean (synthesised)",
        size="any (default 400 utterances, 12 speakers)", classes="7: " + ", ".join(AIHUB_EMOTIONS),
        dimensions="arousal, valence ([0, 1]; arousal from the rendered prosody)",
        speakers="not named (conversations, as AI Hub)",
        protocol="group split by conversation", source="generated: python -m zoo synth",
        config="configs/data/synthetic.yaml")

    def __init__(self, root: str | None = None, size: PositiveInt = 400, corpus_seed: Seed = 0,
                 voice: ClosedUnitInterval = 0.4, words: ClosedUnitInterval = 0.3, both: ClosedUnitInterval = 0.3,
                 conversation_gap: NonNegativeFloat = CONVERSATION_GAP, group_by_demographics: bool = True):
        self.size, self.corpus_seed = size, corpus_seed
        self.voice, self.words, self.both = voice, words, both
        self._root_given = root
        name = f"synthetic-{size}-{corpus_seed}-v{voice:g}-w{words:g}-b{both:g}"
        super().__init__(root=root or str(cache_dir(name)),
                         conversation_gap=conversation_gap, group_by_demographics=group_by_demographics)

    def options(self) -> dict:
        out = super().options()
        out["root"] = self._root_given
        return out

    def stands_in_for(self) -> None:
        return None  # its root is where it generates itself: a root holding real data is refused

    def prepare(self) -> None:
        from zoo.data.synth import generate

        generate(self.root, size=self.size, seed=self.corpus_seed, voice=self.voice,
                 words=self.words, both=self.both)

    def load(self, problems: ProblemLog) -> list[Utterance]:
        self.prepare()  # cached: returns at once when the corpus is already there
        utts = super().load(problems)
        dims = _meta_dims(Path(self.root))
        for u in utts:  # arousal/valence of the rendered utterance, already in [0, 1]
            if u.id in dims:
                u.dims, u.dims_scale = dims[u.id], (0.0, 1.0)
        return utts


def _meta_dims(root: Path) -> dict[str, dict[str, float]]:
    """wav_id -> {arousal, valence} from the generator's meta sidecar (empty when it has none)."""
    import csv

    from zoo.data.synth import META_NAME

    path = root / META_NAME
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return {r["wav_id"]: {d: float(r[d]) for d in ("arousal", "valence")}
            for r in rows if r.get("arousal") and r.get("valence")}
