"""Label maps: each corpus's labels onto one shared class set (``configs/labels/*.yaml``).

A map file::

    name: 4class
    description: neutral, happy, angry, sad (the cross-corpus papers' four classes)
    classes:                    # shared class -> the corpus labels it takes (any corpus)
      neutral: [neutral]
      happy: [happy, happiness, excited]
      angry: [angry, anger]
      sad: [sad, sadness]

Labels are matched ignoring case, spaces, hyphens and underscores (``Happiness`` = ``happiness``,
``pleasant_surprise`` = ``Pleasant surprise``). A label no class takes is dropped, and counted per
label. The class order of the file is the class order of the model.
"""
from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import ZooUserError
from .utterance import Utterance

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "labels"


def _key(label: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(label)).lower()


@dataclass(frozen=True)
class LabelMap:
    name: str
    classes: tuple[str, ...]
    table: dict[str, str]  # normalised corpus label -> shared class

    def __call__(self, label: str | None) -> str | None:
        return None if label is None else self.table.get(_key(label))


def shipped() -> list[str]:
    return sorted(p.stem for p in SHIPPED.glob("*.yaml")) if SHIPPED.is_dir() else []


def load_label_map(spec: str) -> LabelMap:
    """A shipped map by name (``4class``, ``aihub7``) or a YAML file."""
    import yaml

    path = Path(spec).expanduser()
    if not path.is_file():
        path = SHIPPED / f"{spec}.yaml"
    if not path.is_file():
        raise ZooUserError(f"label map {spec!r} not found: give a YAML file or one of "
                           f"{', '.join(shipped()) or 'the maps in configs/labels/'}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ZooUserError(f"label map {path}: not valid YAML ({e})") from None
    classes = doc.get("classes") if isinstance(doc, dict) else None
    if not isinstance(classes, dict) or not classes:
        raise ZooUserError(f"label map {path}: expected 'classes:' mapping each shared class to a list of "
                           "corpus labels")
    table: dict[str, str] = {}
    for cls, labels in classes.items():
        if not isinstance(labels, list):
            raise ZooUserError(f"label map {path}: classes.{cls} must be a list of labels")
        for label in [cls, *labels]:
            k = _key(label)
            if table.get(k, cls) != cls:
                raise ZooUserError(f"label map {path}: label {label!r} is taken by both {table[k]!r} and {cls!r}")
            table[k] = str(cls)
    return LabelMap(name=str(doc.get("name") or path.stem), classes=tuple(str(c) for c in classes), table=table)


def apply_label_map(utts: Iterable[Utterance], lm: LabelMap) -> tuple[list[Utterance], Counter]:
    """Utterances with their label (and votes / soft labels) on the shared classes; the dropped
    ones counted per label (``"label 'calm' not in label map 4class"``)."""
    kept, dropped = [], Counter()
    for u in utts:
        new = lm(u.label)
        if new is None:
            dropped[f"label {u.label!r} not in label map {lm.name}"] += 1
            continue
        votes = tuple(v for v in (lm(v) for v in u.votes) if v is not None)
        soft = None
        if u.soft:
            acc: Counter = Counter()
            for k, p in u.soft.items():
                m = lm(k)
                if m is not None:
                    acc[m] += p
            total = sum(acc.values())
            soft = {k: v / total for k, v in acc.items()} if total else None
        intens = u.intensities if len(votes) == len(u.votes) else ()
        kept.append(dataclasses.replace(u, label=new, votes=votes, intensities=intens, soft=soft,
                                        meta={**u.meta, "corpus_label": u.label}))
    return kept, dropped
