"""What KEMDy19 and KEMDy20 (ETRI Korean multimodal emotion datasets) share: the two-row
annotation CSVs, the label spellings, the transcript tags. Each corpus's own quirks (file
layout, which annotation file labels which speaker) are in kemdy19.py / kemdy20.py.

Annotation CSVs have two header rows::

    Numb, Wav,   ,    [ECG, , EDA, , TEMP, ,] Segment ID, Total Evaluation, ,        , Eval01F, ,        , ...
        , start, end, [...]                  ,           , Emotion, Valence, Arousal, Emotion, Valence, Arousal, ...

(KEMDy19 has the ECG/EDA/TEMP pairs; its blank header cells are empty, KEMDy20's a single
space.) Columns are found by name (``Segment ID``, ``Total Evaluation``, ``EvalNN``), ignoring
case and spaces. Labels: neutral, happy, surprise, angry, sad, disgust (``disqust`` in KEMDy20),
fear; several labels joined by ``;`` in any order (``neutral;happy``).

Only the standard library is imported.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from zoo.data.corpora.base import Corpus, Skipped, decode_text, find_root, normalize_dims, walk
from zoo.data.utterance import Utterance
from zoo.errors import CorpusError, ProblemLog

log = logging.getLogger("zoo")

CLASSES = ("neutral", "happy", "surprise", "angry", "sad", "disgust", "fear")
ALIASES = {**{c: c for c in CLASSES}, "disqust": "disgust", "surprised": "surprise", "anger": "angry",
           "happiness": "happy", "sadness": "sad", "fearful": "fear", "disgusted": "disgust"}
DIMS_SCALE = (1.0, 5.0)


def _key(cell: str) -> str:
    return re.sub(r"\s+", "", cell.replace("\ufeff", "")).lower()


def parse_labels(cell: str) -> list[str] | None:
    """``"neutral;happy"`` -> ``["neutral", "happy"]``; None when a part is not a known label."""
    parts = [p for p in (re.sub(r"\s+", "", x).lower() for x in cell.split(";")) if p]
    out = [ALIASES.get(p) for p in parts]
    return None if not out or any(o is None for o in out) else list(dict.fromkeys(out))


#: a parenthesised note of a sound, not a word (``(웃음)`` laughter, ``(한숨)`` a sigh, ...): dropped
#: with its brackets; any other lone ``(...)`` keeps its content
NONVERBAL = ("웃음", "웃음소리", "웃는 소리", "한숨", "숨소리", "숨", "기침", "헛기침", "울음", "흐느낌", "하품",
             "박수", "잡음", "소음", "침묵", "noise", "laugh", "laughter", "breath", "cough", "sigh")
_NONVERBAL = re.compile(r"\(\s*(?:" + "|".join(re.escape(w) for w in NONVERBAL) + r")\s*\)", re.I)


def clean_transcript(text: str) -> str:
    """Transcript without the inline tags (``b/ o/ n/ l/ u/ c/ N/ s/``, ``(...)``, ``+``, ``*``).

    ``(철자)/(발음)`` pairs (spelling / pronunciation) keep the spelling; a note of a sound such as
    ``(웃음)`` (:data:`NONVERBAL`) is dropped; any other lone ``(...)`` keeps its content without
    the brackets. A segment of laughter alone (``l/``, ``(웃음)``) comes out empty: it has no words.
    """
    text = re.sub(r"\(([^()]*)\)\s*/\s*\(([^()]*)\)", r"\1", text)
    text = _NONVERBAL.sub(" ", text)
    text = re.sub(r"(?<![^\s(])[A-Za-z]/", " ", text)  # b/ o/ n/ l/ u/ c/ N/ s/ (a letter + slash, alone)
    text = re.sub(r"[()+*]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


@dataclass
class Row:
    segment: str
    labels: list[str]  # Total Evaluation, possibly several
    valence: float | None
    arousal: float | None
    evaluators: list[list[str]] = field(default_factory=list)  # each evaluator's labels
    line: int = 0
    csv: str = ""


def read_annotation(path: Path, problems: ProblemLog, skipped: Skipped) -> list[Row]:
    text, _ = decode_text(path.read_bytes(), path)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if len(rows) < 2:
        raise CorpusError(f"{path}: expected two header rows (Numb, Wav, ..., Segment ID, Total Evaluation, ...)")
    top, sub = [_key(c) for c in rows[0]], [_key(c) for c in rows[1]]
    try:
        seg = top.index("segmentid")
        total = top.index("totalevaluation")
    except ValueError:
        raise CorpusError(f"{path}: the first header row lacks 'Segment ID' or 'Total Evaluation' "
                          f"(found: {', '.join(c for c in rows[0] if c.strip())})") from None
    triple = lambda i: [sub[j] if j < len(sub) else "" for j in (i, i + 1, i + 2)]  # noqa: E731
    if triple(total) != ["emotion", "valence", "arousal"]:
        raise CorpusError(f"{path}: the second header row under 'Total Evaluation' should read Emotion, "
                          f"Valence, Arousal (found: {', '.join(rows[1][total:total + 3])})")
    evaluators = [i for i, c in enumerate(top) if re.fullmatch(r"eval\d+[fm]?", c)
                  and triple(i) == ["emotion", "valence", "arousal"]]
    out = []
    for line, cells in enumerate(rows[2:], start=3):
        if not any(c.strip() for c in cells):
            continue
        get = lambda i: cells[i].strip() if i < len(cells) else ""  # noqa: E731
        segment = get(seg)
        if not segment:
            problems.add(path, "empty Segment ID", row=line, column="Segment ID")
            continue
        raw = get(total)
        if not raw:
            skipped.add("segment without a label", segment)
            continue
        labels = parse_labels(raw)
        if labels is None:
            problems.add(path, f"unknown label {raw!r} for {segment} (expected {', '.join(CLASSES)}, "
                         "joined by ';')", row=line, column="Total Evaluation")
            continue

        def num(i):
            try:
                return float(get(i))
            except ValueError:
                return None
        evs = [e for e in (parse_labels(get(i)) for i in evaluators) if e]
        out.append(Row(segment, labels, num(total + 1), num(total + 2), evs, line, str(path)))
    return out


def soft_from(evaluators: list[list[str]]) -> dict[str, float] | None:
    """Each evaluator weighs 1, spread over the labels it gave."""
    w: Counter = Counter()
    for labels in evaluators:
        for c in labels:
            w[c] += 1 / len(labels)
    total = sum(w.values())
    return {k: v / total for k, v in w.items()} if total else None


# -- the corpus: a base the two releases share ------------------------------------------------


def _looks_like(p: Path) -> bool:
    return (p / "wav").is_dir() and (p / "annotation").is_dir()


class KEMDyBase(Corpus):
    """Shared reader (not registered): subclasses say which annotation rows label which segment,
    and how a segment id names its speaker and session."""

    default_class_names = CLASSES
    dims_scale = DIMS_SCALE

    def __init__(self, root: str, multi_label: Literal["drop", "soft"] = "drop", raw_text: bool = False):
        if multi_label not in ("drop", "soft"):
            raise CorpusError(f"{self.title} multi_label must be drop or soft, got {multi_label!r}")
        self.root = root
        self.multi_label = multi_label
        self.raw_text = raw_text

    # what a release implements
    def annotation_rows(self, root: Path, problems: ProblemLog, skipped: Skipped) -> list[Row]:
        raise NotImplementedError

    def speaker_session(self, segment: str) -> tuple[str, str, str] | None:
        """(speaker, session, gender) from a segment id, or None when the id breaks the scheme."""
        raise NotImplementedError

    def load(self, problems: ProblemLog) -> list[Utterance]:
        skipped = self.new_skip_log()
        root = find_root(self.root, self.title, _looks_like, "the folder holding wav/ and annotation/")
        wavs: dict[str, str] = {}
        for folder, dirs, files in walk(root / "wav"):
            dirs.sort()
            for f in sorted(files):
                if f.lower().endswith(".wav") and not f.startswith("."):
                    wavs.setdefault(f[:-4], os.path.join(folder, f))
        rows = self.annotation_rows(root, problems, skipped)
        utts, labelled = [], set()
        for r in rows:
            if r.segment in labelled:
                problems.add(r.csv, f"segment {r.segment} is labelled twice", row=r.line, column="Segment ID")
                continue
            labelled.add(r.segment)
            who = self.speaker_session(r.segment)
            if who is None:
                problems.add(r.csv, f"segment id {r.segment!r} does not follow the {self.title} naming",
                             row=r.line, column="Segment ID")
                continue
            speaker, session, gender = who
            wav = wavs.get(r.segment)
            if wav is None:
                problems.add(r.csv, f"audio not found: {r.segment}.wav under wav/", row=r.line, column="Segment ID")
                continue
            soft = soft_from(r.evaluators)
            if len(r.labels) > 1:
                if self.multi_label == "drop":
                    skipped.add("several labels (multi_label: drop)", f"{r.segment} {';'.join(r.labels)}")
                    continue
                votes = Counter(c for e in r.evaluators for c in e if c in r.labels)
                label = max(r.labels, key=lambda c: (votes[c], -r.labels.index(c)))
                soft = soft or {c: 1 / len(r.labels) for c in r.labels}
            else:
                label = r.labels[0]
            raw_dims = {"valence": r.valence, "arousal": r.arousal}
            try:
                dims = normalize_dims(raw_dims, self.dims_scale)
            except ValueError as e:
                problems.add(r.csv, f"{r.segment}: {e}", row=r.line)
                continue
            text = raw = None
            txt = Path(wav).with_suffix(".txt")
            if txt.is_file():
                raw = decode_text(txt.read_bytes(), txt)[0].strip()
                if not raw:
                    skipped.add("empty .txt (kept without a transcript)", txt.name)
                    raw = None
                else:
                    text = raw if self.raw_text else (clean_transcript(raw) or None)
                    if text is None:  # only nonverbal tags: a valid segment without words
                        skipped.add("transcript of nonverbal tags only (kept without words)", txt.name)
            else:
                skipped.add("no .txt (kept without a transcript)", txt.name)
            utts.append(Utterance(
                id=r.segment, audio=str(Path(wav).resolve()), text=text, label=label, speaker=speaker,
                session=session, dims=dims, dims_scale=self.dims_scale if dims else None, soft=soft,
                meta={"raw_text": raw, "labels": r.labels, "gender": gender, "dims_raw": raw_dims,
                      "csv": r.csv, "row": r.line}))
        for stem in sorted(set(wavs) - labelled):
            skipped.add("audio without an annotation row", stem)
        if not utts and not problems.items:
            raise CorpusError(f"{self.title} root {root}: no labelled segments "
                              f"(annotation/ files read: {len(rows)} row(s))")
        log.info("%s %s: %d segment(s), %d speaker(s), %d session(s)%s", self.title, root, len(utts),
                 len({u.speaker for u in utts}), len({u.session for u in utts}),
                 f"; skipped {skipped}" if skipped.counts else "")
        return utts
