"""KEMDy19 (ETRI Korean Emotion Multimodal Database 2019): 20 sessions, one actress and one actor
each, improvised dialogues.

Layout (the root holds ``wav/`` and ``annotation/``):

* ``wav/Session01/Sess01_impro01/Sess01_impro01_F001.wav`` + ``.txt`` (UTF-8 transcript);
* ``annotation/Session01_F_res.csv`` and ``Session01_M_res.csv``: two header rows (see
  ``_kemdy.py``), ECG/EDA/TEMP column pairs before the segment id, blank header cells empty.

The F and M files of one session label the same segments differently (each was annotated
while watching one speaker): each speaker's segments are taken from that speaker's own file,
the other speaker's rows in it are skipped and counted. Speaker = session + the letter before the
segment number (``Sess01_impro01_F001`` -> ``Sess01_F``); session = ``Session01``.
Audio is 16 kHz mono.

Only the standard library is imported.
"""
from __future__ import annotations

import re
from pathlib import Path

from zoo.data.corpora._kemdy import CLASSES, KEMDyBase, Row, read_annotation
from zoo.data.corpora.base import CorpusInfo, Skipped
from zoo.errors import CorpusError, ProblemLog

SEGMENT = re.compile(r"Sess(?P<ses>\d\d)_(?:impro|script)\d+\w*?_(?P<letter>[FM])\d+")
ANNOTATION = re.compile(r"Session(?P<ses>\d\d)_(?P<letter>[FM])_res\.csv", re.I)


class KEMDy19(KEMDyBase, name="kemdy19"):
    """KEMDy19 (``wav/Session01/Sess01_impro01/Sess01_impro01_F001.wav``, ``annotation/Session01_F_res.csv``).

    Args:
        root: The folder holding ``wav/`` and ``annotation/`` (one level above or below it is
            found too).
        multi_label: A segment whose Total Evaluation joins several labels (``neutral;happy``):
            ``drop`` it (counted) or ``soft`` (the label most evaluators named, the evaluators'
            distribution as the soft label).
        raw_text: Keep the transcripts' inline tags (``b/ o/ n/ l/ u/ c/ N/ s/``, ``(...)``,
            ``+``, ``*``); by default they are stripped for text models (the raw text is always in
            ``meta["raw_text"]``). A segment whose transcript is only tags (laughter ``l/``,
            ``(웃음)``) then has no words: text models leave it out and count it (the data option
            ``without_words``), late fusion predicts it from the audio.
    """

    info = CorpusInfo(
        title="KEMDy19", language="Korean", size="20 sessions, improvised dialogues",
        classes="7: " + ", ".join(CLASSES), dimensions="valence, arousal (1-5)",
        speakers="40 (a female and a male actor per session)",
        protocol="speaker-independent group split; sessions as folds (split.group_by: session)",
        source="nanum.etri.re.kr (ETRI, 한국어 멀티모달 감정 데이터셋 2019; license agreement)",
        config="configs/data/kemdy19.yaml")

    def annotation_rows(self, root: Path, problems: ProblemLog, skipped: Skipped) -> list[Row]:
        files = sorted(p for p in (root / "annotation").iterdir() if ANNOTATION.fullmatch(p.name))
        if not files:
            raise CorpusError(f"KEMDy19 {root / 'annotation'}: no SessionNN_F_res.csv / SessionNN_M_res.csv files")
        out = []
        for f in files:
            m = ANNOTATION.fullmatch(f.name)
            for r in read_annotation(f, problems, skipped):
                seg = SEGMENT.fullmatch(r.segment)
                if seg and (seg["ses"], seg["letter"]) != (m["ses"], m["letter"].upper()):
                    skipped.add("segment of the other speaker in a _res.csv (taken from its own file)", r.segment)
                    continue
                out.append(r)
        return out

    def speaker_session(self, segment: str):
        m = SEGMENT.fullmatch(segment)
        if m is None:
            return None
        return f"Sess{m['ses']}_{m['letter']}", f"Session{m['ses']}", {"F": "female", "M": "male"}[m["letter"]]
