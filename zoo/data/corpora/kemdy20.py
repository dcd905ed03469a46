"""KEMDy20 (ETRI Korean Emotion Multimodal Database 2020): 40 sessions of two members of the public,
scripted dialogues.

Layout (the root holds ``wav/`` and ``annotation/``):

* ``wav/Session01/Sess01_script01_User002M_001.wav`` + ``.txt`` (cp949 transcript);
* ``annotation/Sess01_eval.csv``: two header rows (see ``_kemdy.py``), blank header cells a
  single space; the label ``disgust`` is spelled ``disqust``.

Speaker = the user in the segment id (``User002M`` -> ``User002``, gender M); session =
``Session01``. Audio is 16 kHz mono.

Only the standard library is imported.
"""
from __future__ import annotations

import re
from pathlib import Path

from zoo.data.corpora._kemdy import CLASSES, KEMDyBase, Row, read_annotation
from zoo.data.corpora.base import CorpusInfo, Skipped
from zoo.errors import CorpusError, ProblemLog

SEGMENT = re.compile(r"Sess(?P<ses>\d\d)_(?:script|impro)\d+\w*?_(?P<user>User\d+)(?P<letter>[FM])_\d+")
ANNOTATION = re.compile(r"Sess(?:ion)?\d\d_eval\.csv", re.I)


class KEMDy20(KEMDyBase, name="kemdy20"):
    """KEMDy20 (``wav/Session01/Sess01_script01_User002M_001.wav``, ``annotation/Sess01_eval.csv``).

    Args:
        root: The folder holding ``wav/`` and ``annotation/`` (one level above or below it is
            found too).
        multi_label: A segment whose Total Evaluation joins several labels (``neutral;happy``):
            ``drop`` it (counted) or ``soft`` (the label most evaluators named, the evaluators'
            distribution as the soft label).
        raw_text: Keep the transcripts' inline tags; by default they are stripped for text
            models (the raw text is always in ``meta["raw_text"]``). A segment whose transcript is
            only tags (``l/``, ``(웃음)``, a lone ``b/``) then has no words: text models leave it out
            and count it (the data option ``without_words``), late fusion predicts it from the audio.
    """

    info = CorpusInfo(
        title="KEMDy20", language="Korean", size="40 sessions, scripted dialogues",
        classes="7: " + ", ".join(CLASSES), dimensions="valence, arousal (1-5)",
        speakers="80 (two members of the public per session)",
        protocol="speaker-independent group split; sessions as folds (split.group_by: session)",
        source="nanum.etri.re.kr (ETRI, 한국어 멀티모달 감정 데이터셋 2020; license agreement)",
        config="configs/data/kemdy20.yaml")

    def annotation_rows(self, root: Path, problems: ProblemLog, skipped: Skipped) -> list[Row]:
        files = sorted(p for p in (root / "annotation").iterdir() if ANNOTATION.fullmatch(p.name))
        if not files:
            raise CorpusError(f"KEMDy20 {root / 'annotation'}: no SessNN_eval.csv files")
        return [r for f in files for r in read_annotation(f, problems, skipped)]

    def speaker_session(self, segment: str):
        m = SEGMENT.fullmatch(segment)
        if m is None:
            return None
        return m["user"], f"Session{m['ses']}", {"F": "female", "M": "male"}[m["letter"]]
