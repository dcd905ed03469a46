"""One thin EmotionDataModule subclass per corpus: only how to read the files differs.

Every shared option (labels, splits, audio, batching) is documented on EmotionDataModule and
accepted by each subclass (``python -m zoo fit --data.help AIHubDataModule`` lists them).
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..errors import ProblemLog, ZooUserError
from .datamodule import EmotionDataModule
from .utterance import AIHUB_EMOTIONS, Utterance

log = logging.getLogger("zoo")


def _existing(path: str | Path, what: str, hint: str = "") -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise ZooUserError(f"{what} {str(p)!r} does not exist.{(' ' + hint) if hint else ''}")
    return p


class AIHubDataModule(EmotionDataModule):
    """AI Hub KETI-02-002 (감정 분류를 위한 대화 음성 데이터셋) as downloaded: CSVs + wav folders/zips.

    Args:
        root: Folder holding the release CSVs (cp949 or UTF-8) and the wavs (any nesting) or zips.
        conversation_gap: Seconds between consecutive wav_id timestamps that start a new
            conversation (the corpus has no speaker column; conversations are the split groups).
        group_by_demographics: Only join rows into one conversation when 나이/성별 match.
    """

    default_class_names = AIHUB_EMOTIONS
    corpus_name = "AI Hub KETI-02-002"

    def __init__(self, root: str, conversation_gap: float = 120.0,
                 group_by_demographics: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.root = root
        self.conversation_gap = conversation_gap
        self.group_by_demographics = group_by_demographics

    def load_corpus(self, problems: ProblemLog) -> list[Utterance]:
        from .corpora.aihub import load_aihub

        root = _existing(self.root, "AI Hub root", "Point root at the folder holding the downloaded release "
                         "CSVs and wavs (docs/data.md). To try the zoo without the data, use the synthetic "
                         "corpus: --config configs/data/synthetic.yaml, or `python -m zoo synth --out "
                         "data/synthetic-demo` and root: data/synthetic-demo.")
        if (root / ".synthetic.json").is_file():  # made by `python -m zoo synth`: say so in every report
            self.corpus_name = "synthetic Korean corpus (AI Hub layout)"
        # rows whose wav is missing are kept here (a text-only model does not need it); the
        # DataModule reports them when the model consumes audio
        return load_aihub(root, problems=problems, conversation_gap=self.conversation_gap,
                          group_by_demographics=self.group_by_demographics, require_audio=False)


class SyntheticDataModule(AIHubDataModule):
    """The embedded synthetic Korean corpus (AI Hub layout), generated on first use and cached.

    Args:
        root: Where the corpus lives; null = a folder in $ZOO_CACHE_DIR named after the arguments.
        size: Number of utterances.
        corpus_seed: Seed of the generator (``seed`` is the split/batch-order seed).
        voice: Share of utterances whose emotion is only in the voice.
        words: Share whose emotion is only in the words.
        both: Share with the emotion in voice and words.
    """

    corpus_name = "synthetic Korean corpus"

    def __init__(self, root: str | None = None, size: int = 400, corpus_seed: int = 0,
                 voice: float = 0.4, words: float = 0.3, both: float = 0.3, **kwargs):
        from .audio import default_cache_dir

        root = root or str(default_cache_dir() /
                           f"synthetic-{size}-{corpus_seed}-v{voice:g}-w{words:g}-b{both:g}")
        super().__init__(root=root, **kwargs)
        self.size, self.corpus_seed = size, corpus_seed
        self.fractions = dict(voice=voice, words=words, both=both)

    def prepare_data(self) -> None:
        from .synthetic import generate

        generate(self.root, size=self.size, seed=self.corpus_seed, **self.fractions)

    def load_corpus(self, problems: ProblemLog) -> list[Utterance]:
        self.prepare_data()  # cached: returns at once when the corpus is already there
        return super().load_corpus(problems)


class ManifestDataModule(EmotionDataModule):
    """Any corpus described by a manifest: CSV or JSONL with ``path,label`` and optional
    ``text,speaker,split`` (paths absolute or relative to the manifest's folder).

    Args:
        manifest: The CSV/JSONL file.
    """

    corpus_name = "manifest"

    def __init__(self, manifest: str, **kwargs):
        super().__init__(**kwargs)
        self.manifest = manifest
        self.corpus_name = f"manifest {manifest}"

    def load_corpus(self, problems: ProblemLog) -> list[Utterance]:
        from .corpora.manifest import load_manifest

        return load_manifest(_existing(self.manifest, "manifest"), problems=problems)


class EmoDBDataModule(EmotionDataModule):
    """Berlin EmoDB (535 German clips, 10 speakers, 7 classes incl. Boredom).

    Args:
        root: The EmoDB folder (with ``wav/``).
    """

    corpus_name = "EmoDB"

    def __init__(self, root: str, **kwargs):
        super().__init__(**kwargs)
        self.root = root

    def load_corpus(self, problems: ProblemLog) -> list[Utterance]:
        from .corpora.emodb import load_emodb

        return load_emodb(_existing(self.root, "EmoDB root"), problems=problems)
