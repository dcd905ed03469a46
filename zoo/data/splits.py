"""Seeded, reproducible train/val/test splits that do not leak speakers, conversations or text.

Utterances are first merged into *units* that must stay together (same speaker or conversation
when grouping, same transcript when ``text_disjoint``); whole units are then dealt to the splits
by a greedy label-stratified assignment. Everything depends only on the seed and the corpus.
"""
from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, fields
from typing import Literal, Sequence, get_type_hints

import numpy as np

from ..errors import ZooUserError
from ..ranges import AtLeastTwo, Fraction, NonNegativeInt, describe, out_of_range, plain
from .utterance import Utterance

log = logging.getLogger("zoo")

SplitMode = Literal["random", "group", "kfold"]
GroupBy = Literal["auto", "speaker", "group", "session"]
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitOptions:
    """How the corpus is split into train / val / test (``data.init_args.split`` in configs).

    Args:
        mode: ``group`` (no speaker / conversation in two splits), ``random`` (stratified by
            label), ``kfold`` (fold ``fold`` of ``num_folds`` is the test set).
        group_by: What must not cross splits: ``speaker``, ``group`` (AI Hub conversations),
            ``session`` (IEMOCAP, KEMDy: with ``kfold`` and one fold per session this is
            leave-one-session-out), or ``auto`` (speakers when the corpus names them, else groups).
        text_disjoint: Keep identical transcripts in one split (scripted corpora reuse sentences).
        use_split_column: Use the corpus's own split (MSP-Podcast's Split_Set, a manifest's split
            column) as is when it has one.
        val_fraction: Share of the corpus (of the non-test part for kfold) used for validation;
            0 trains without validation (a final model on every speaker: the last checkpoint).
        test_fraction: Share of the corpus used for testing (ignored by kfold).
        num_folds: Number of folds for ``mode: kfold``.
        fold: Which fold is the test set (0-based).
        test_speakers: Speakers (or groups, or sessions) pinned to the test set, e.g. ["15", "16"].
        val_speakers: Speakers (or groups, or sessions) pinned to the validation set.
    """

    mode: SplitMode = "group"
    group_by: GroupBy = "auto"
    text_disjoint: bool = False
    use_split_column: bool = True
    val_fraction: Fraction = 0.1
    test_fraction: Fraction = 0.2
    num_folds: AtLeastTwo = 5
    fold: NonNegativeInt = 0
    test_speakers: list[str] | None = None
    val_speakers: list[str] | None = None

    def __post_init__(self):
        # checked when the config is read, before any file is opened (the CLI checks each range
        # while parsing; this covers Python callers and `zoo check`)
        for name, t in get_type_hints(SplitOptions).items():
            if out_of_range(getattr(self, name), t):
                raise ZooUserError(f"split.{name} must be {describe(t)}, got {getattr(self, name)!r}")
            # the CLI hands typed values (jsonargparse's int / float subclasses): stored as plain
            # numbers, so the options saved in a checkpoint load with weights_only
            object.__setattr__(self, name, plain(getattr(self, name)))
        if self.mode not in ("random", "group", "kfold"):
            raise ZooUserError(f"split.mode must be random, group or kfold, got {self.mode!r}")
        if self.group_by not in ("auto", "speaker", "group", "session"):
            raise ZooUserError(f"split.group_by must be auto, speaker, group or session, got {self.group_by!r}")
        if self.mode == "kfold":
            if self.num_folds < 2:
                raise ZooUserError(f"split.num_folds must be >= 2, got {self.num_folds}")
            if not 0 <= self.fold < self.num_folds:
                raise ZooUserError(f"split.fold must be in [0, {self.num_folds}), got {self.fold}")
            if not 0 <= self.val_fraction < 1:
                raise ZooUserError(f"split.val_fraction must be in [0, 1), got {self.val_fraction}")
        elif not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1
                  and self.val_fraction + self.test_fraction < 1):
            raise ZooUserError("split.val_fraction and split.test_fraction must be in [0, 1) and sum "
                               f"to less than 1, got {self.val_fraction} and {self.test_fraction}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def normalize_text(text: str | None) -> str:
    """Transcript key for text-disjoint splits: whitespace and punctuation do not make a new text."""
    if not text:
        return ""
    return re.sub(r"[\s\.,!?~…·'\"]+", " ", text).strip().lower()


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def group_keys(utts: Sequence[Utterance], group_by: GroupBy) -> list[str] | None:
    """The key that must not cross splits, or None when the corpus has none."""
    has_speaker = all(u.speaker for u in utts)
    has_group = all(u.group for u in utts)
    if group_by == "session":
        if not all(u.session for u in utts):
            missing = next(u.id for u in utts if not u.session)
            raise ZooUserError(f"group_by='session' but utterance {missing!r} has no session")
        return [u.session for u in utts]
    if group_by == "speaker" or (group_by == "auto" and has_speaker):
        if not has_speaker:
            missing = next(u.id for u in utts if not u.speaker)
            raise ZooUserError(
                f"group_by='speaker' but utterance {missing!r} has no speaker; use group_by: group "
                "(conversations, for AI Hub) or add a speaker column to the manifest")
        return [u.speaker for u in utts]
    if group_by == "group" or (group_by == "auto" and has_group):
        if not has_group:
            missing = next(u.id for u in utts if not u.group)
            raise ZooUserError(f"group_by='group' but utterance {missing!r} has no group")
        return [u.group for u in utts]
    return None


def make_units(utts: Sequence[Utterance], keys: list[str] | None, text_disjoint: bool) -> list[int]:
    """Unit id per utterance: utterances sharing a group key or (optionally) a transcript."""
    uf = _UnionFind(len(utts))
    first: dict[tuple[str, str], int] = {}
    for i, u in enumerate(utts):
        tags = []
        if keys is not None:
            tags.append(("g", keys[i]))
        if text_disjoint and u.text:
            tags.append(("t", normalize_text(u.text)))
        for t in tags:
            if t in first:
                uf.union(first[t], i)
            else:
                first[t] = i
    return [uf.find(i) for i in range(len(utts))]


def _deal(units: dict[int, list[int]], labels: list[str], fractions: dict[str, float],
          rng: np.random.Generator) -> dict[str, list[int]]:
    """Greedy stratified assignment of whole units to splits with the given fractions."""
    classes = sorted(set(labels))
    cidx = {c: k for k, c in enumerate(classes)}
    total = np.zeros(len(classes))
    for members in units.values():  # only the utterances being dealt here
        for i in members:
            total[cidx[labels[i]]] += 1
    names = list(fractions)
    target = {s: fractions[s] * total for s in names}
    cur = {s: np.zeros(len(classes)) for s in names}
    out: dict[str, list[int]] = {s: [] for s in names}
    order = list(units)
    rng.shuffle(order)
    order.sort(key=lambda u: -len(units[u]))  # big units first, random order among equals
    seeded: dict[int, str] = {}
    if len(order) >= len(names):
        # every split with a share gets at least one (small) unit, the rest is dealt greedily
        for s, u in zip(sorted(names, key=lambda s: fractions[s]), reversed(order)):
            seeded[u] = s
    for u in order:
        counts = np.zeros(len(classes))
        for i in units[u]:
            counts[cidx[labels[i]]] += 1
        if u in seeded:
            s = seeded[u]
        else:
            def score(s):
                # share of the split's own target this unit fills (label-stratified), so small
                # splits are not starved by large ones; then the most under-filled split
                size = max(target[s].sum(), 1e-9)
                deficit = np.maximum(target[s] - cur[s], 0)
                return (np.minimum(counts, deficit).sum() / size, (target[s] - cur[s]).sum() / size)
            # only splits with room for (most of) this unit, so none overshoots its share
            room = [s for s in names if cur[s].sum() + counts.sum() / 2 <= target[s].sum()]
            s = max(room or names, key=score)
        cur[s] += counts
        out[s].extend(units[u])
    return out


def assign_splits(
    utts: Sequence[Utterance],
    options: SplitOptions | None = None,
    *,
    seed: int = 0,
    **overrides,
) -> dict[str, list[int]]:
    """Indices of ``utts`` per split ("train", "val", "test"), as :class:`SplitOptions` say.

    - ``random``: stratified by label over single utterances (or transcripts if text_disjoint).
    - ``group``: no speaker (or conversation, see ``group_by``) in two splits.
    - ``kfold``: units dealt into ``num_folds`` stratified folds; fold ``fold`` is the test set and
      ``val_fraction`` of the remaining units the validation set. Grouped when keys exist. When
      there are exactly ``num_folds`` units (5 IEMOCAP sessions, 5 folds) each fold is one unit.
    ``test_speakers`` / ``val_speakers`` pin named speakers (or groups) to a split.
    ``overrides`` are SplitOptions fields (``assign_splits(utts, mode="kfold", fold=2)``).
    """
    o = options or SplitOptions()
    if overrides:
        o = SplitOptions(**{**{f: getattr(o, f) for f in SplitOptions.names()}, **overrides})
    mode, group_by, text_disjoint = o.mode, o.group_by, o.text_disjoint
    val_fraction, test_fraction, num_folds, fold = o.val_fraction, o.test_fraction, o.num_folds, o.fold
    test_speakers, val_speakers = o.test_speakers, o.val_speakers
    if not utts:
        raise ZooUserError("cannot split an empty corpus")
    labels = [u.label for u in utts]
    rng = np.random.default_rng(seed)
    keys = group_keys(utts, group_by) if (mode != "random" or test_speakers or val_speakers) else None
    if mode == "group" and keys is None:
        raise ZooUserError(
            "split_mode 'group' needs speakers or groups in the corpus, and none were found; "
            "use split_mode: random (and text_disjoint: true), or add a speaker column")
    unit_of = make_units(utts, keys, text_disjoint)
    units: dict[int, list[int]] = defaultdict(list)
    for i, u in enumerate(unit_of):
        units[u].append(i)

    fixed: dict[int, str] = {}
    for split, named in (("test", test_speakers), ("val", val_speakers)):
        if not named:
            continue
        named = {str(s) for s in named}
        unknown = named - set(keys or [])
        if unknown:
            raise ZooUserError(f"{split}_speakers {sorted(unknown)} not found in the corpus "
                               f"(known: {sorted(set(keys or []))[:20]})")
        for i, k in enumerate(keys):
            if k in named:
                fixed[unit_of[i]] = split

    if mode == "kfold":
        if not 0 <= fold < num_folds:
            raise ZooUserError(f"fold must be in [0, {num_folds}), got {fold}")
        if len(units) < num_folds:
            raise ZooUserError(f"{num_folds} folds need at least {num_folds} units, corpus has {len(units)}")
        if len(units) == num_folds and keys is not None:
            # one unit per fold (leave-one-session-out): fold k is the k-th key in sorted order,
            # so fold 0 of IEMOCAP is Session1 whatever the seed
            first_key = {u: keys[members[0]] for u, members in units.items()}
            ordered = sorted(units, key=lambda u: str(first_key[u]))
            folds = {f"f{k}": list(units[u]) for k, u in enumerate(ordered)}
        else:
            folds = _deal(units, labels, {f"f{k}": 1 / num_folds for k in range(num_folds)}, rng)
        test = folds.pop(f"f{fold}")
        rest_units: dict[int, list[int]] = defaultdict(list)
        for idx in (i for f in folds.values() for i in f):
            rest_units[unit_of[idx]].append(idx)
        rest = _deal(rest_units, labels, {"train": 1 - val_fraction, "val": val_fraction}, rng)
        return {"train": sorted(rest["train"]), "val": sorted(rest["val"]), "test": sorted(test)}

    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ZooUserError("val_fraction and test_fraction must be in [0, 1) and sum to less than 1")
    free = {"train": 1 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}
    if fixed:
        # Pinned units fill their split; the free fractions apply to the rest of the corpus.
        pinned = {s for s in fixed.values()}
        for s in pinned:
            free[s] = 0.0
        norm = sum(free.values())
        free = {s: f / norm for s, f in free.items()}
        free_units = {u: idx for u, idx in units.items() if u not in fixed}
        out = _deal(free_units, labels, {s: f for s, f in free.items() if f > 0}, rng)
        for u, s in fixed.items():
            out.setdefault(s, []).extend(units[u])
    else:
        out = _deal(units, labels, {s: f for s, f in free.items() if f > 0}, rng)
    return {s: sorted(out.get(s, [])) for s in SPLITS}


def leakage_report(utts: Sequence[Utterance], splits: dict[str, list[int]],
                   digest=None) -> dict[str, int]:
    """What the test set shares with train: transcripts, speakers, groups, byte-identical audio.

    ``digest(path) -> str`` hashes audio; files are hashed only when their size collides across
    splits, so a 44K corpus costs a stat per file, not a full read.
    """
    import os

    train = [utts[i] for i in splits.get("train", [])]
    test = [utts[i] for i in splits.get("test", [])]
    train_texts = {normalize_text(u.text) for u in train if u.text}
    report = {
        "test_texts_in_train": sum(1 for u in test if u.text and normalize_text(u.text) in train_texts),
        "test_speakers_in_train": len({u.speaker for u in test if u.speaker} & {u.speaker for u in train if u.speaker}),
        "test_groups_in_train": len({u.group for u in test if u.group} & {u.group for u in train if u.group}),
    }
    if digest is not None:
        by_size: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for s, idx in splits.items():
            for i in idx:
                p = utts[i].audio
                if p and "::" not in p and os.path.isfile(p):
                    by_size[os.path.getsize(p)].append((s, p))
        identical = 0
        for entries in by_size.values():
            if len({s for s, _ in entries}) < 2:
                continue
            seen: dict[str, set] = defaultdict(set)
            for s, p in entries:
                seen[digest(p)].add(s)
            identical += sum(1 for ss in seen.values() if len(ss) > 1)
        report["identical_audio_across_splits"] = identical
    return report


def label_counts(utts: Sequence[Utterance], idx: Sequence[int]) -> Counter:
    return Counter(utts[i].label for i in idx)
