"""Row-level normalisation shared by the DataModule and ``python -m zoo check`` (no Lightning):
Unicode NFC, label spellings, exclude lists."""
from __future__ import annotations

import unicodedata
from collections import Counter
from pathlib import Path
from typing import Sequence

from ..errors import ZooUserError
from .utterance import Utterance


def normalize_text(u: Utterance) -> Utterance:
    """Transcripts and labels in NFC: Hangul typed on macOS (NFD: decomposed jamo) and on
    Windows (NFC) must be one string to tokenizers, duplicate checks and class names."""
    if u.text and not unicodedata.is_normalized("NFC", u.text):
        u.text = unicodedata.normalize("NFC", u.text)
    if u.label and not unicodedata.is_normalized("NFC", u.label):
        u.label = unicodedata.normalize("NFC", u.label)
    if u.votes and not all(unicodedata.is_normalized("NFC", v) for v in u.votes):
        u.votes = tuple(unicodedata.normalize("NFC", v) for v in u.votes)
    return u


def label_key(label: str) -> str:
    return " ".join(label.split()).casefold()


def spellings(utts: list[Utterance]) -> list[str]:
    """The sorted class list from the labels found, one name per label that differs only in case
    or spacing (``angry``, ``Angry ``): its most frequent spelling (ties: the first in the corpus)."""
    counts = Counter(u.label for u in utts if u.label is not None)  # in order of first appearance
    best: dict[str, str] = {}
    for lab in counts:
        k = label_key(lab)
        if k not in best or counts[lab] > counts[best[k]]:  # ties: the first one met
            best[k] = lab
    return sorted(best.values())


def respell_labels(utts: list[Utterance], names: Sequence[str]) -> Counter:
    """Labels that match a class name except for case and spacing take that name's spelling;
    returns how many were changed per (old, new) spelling."""
    by_key = {label_key(n): n for n in names}
    known = set(names)
    changed: Counter = Counter()
    for u in utts:
        if u.label is not None and u.label not in known:
            new = by_key.get(label_key(u.label))
            if new is not None:
                changed[(u.label, new)] += 1
                u.label = new
    return changed


def read_exclude_list(path: str) -> set[str]:
    """The ids / audio paths in an exclude list (one a line; blank lines and ``#`` comments
    ignored; a tab-separated reason after the entry is ignored too)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ZooUserError(f"exclude list {path} does not exist (write one with python -m zoo check "
                           "--config DATA.yaml --exclude-list FILE)")
    out = set()
    for line in p.read_text(encoding="utf-8").splitlines():
        entry = line.split("\t", 1)[0].strip()
        if entry and not entry.startswith("#"):
            out.add(entry)
    return out


def problem_key(source: str, row: int | None) -> str:
    """How an exclude list names a row the corpus reader refused (it has no utterance id)."""
    return f"{source}, row {row}" if row is not None else str(source)


def drop_excluded_problems(problems, exclude: set[str]) -> int:
    """Remove from a ProblemLog the problems whose row the exclude list names; how many."""
    keep = [p for p in problems.items if problem_key(p.source, p.row) not in exclude]
    n = len(problems.items) - len(keep)
    problems.items[:] = keep
    return n
