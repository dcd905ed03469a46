"""Seeded, reproducible train/val/test splits that do not leak speakers, conversations or text.

Utterances are first merged into *units* that must stay together (same speaker or conversation
when grouping, same transcript when ``text_disjoint``). ``group`` and ``kfold`` put each unit in a
split by a seeded hash of its key alone, so a unit's split never changes when other rows are added
or removed (see :func:`assign_splits` for what is guaranteed); ``random`` deals units by a greedy
label-stratified assignment. :func:`split_fingerprint` names the test set of a split.

Longer than 500 lines because the stable assignment's repairs (every class covered, the shares
met, no split left empty) are small functions over the same unit positions and bands, read
together with :func:`assign_splits`, which states what they guarantee.
"""
from __future__ import annotations

import hashlib
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


def unit_position(key: str, seed: int) -> float:
    """Where a unit falls in [0, 1): a seeded hash of its key alone (speaker, conversation,
    session), so no other unit of the corpus moves it."""
    digest = hashlib.sha256(f"zoo-split|{seed}|{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def split_fingerprint(test_ids) -> str:
    """A short hash of the sorted test utterance ids: two runs with the same fingerprint were
    tested on the same utterances."""
    return hashlib.sha256("\n".join(sorted(map(str, test_ids))).encode("utf-8")).hexdigest()[:12]


#: a hashed split stands as drawn while each split holds its share of the utterances within this
#: relative margin (0.15 of the corpus: 0.1125 to 0.1875) and its classes in proportion
#: (:func:`_class_margin`); otherwise units move until it does (a corpus of few units)
SHARE_MARGIN = 0.25


def _band_deal(units: dict[int, list[int]], unit_keys: dict[int, str], fractions: dict[str, float],
               seed: int, strata: dict[int, str] | None = None,
               labels: Sequence[str] | None = None) -> dict[str, list[int]]:
    """Whole units to splits by their hashed position: the splits take consecutive bands of
    [0, 1) in the order of ``fractions`` (test first, so val_fraction never moves a test unit).

    The draw stands when every split holds its share of the utterances within
    :data:`SHARE_MARGIN`, every class (of ``labels``) held by enough units is in every split and
    each class's share of a split lies within :func:`_class_margin` of its share of the corpus.
    When not (a corpus of tens of units), units move one at a time until it does: first into a
    split with a share left empty (within each stratum, ``strata``: the corpus of a multi-corpus,
    then overall), then a class missing from a split (the nearest holder), then the move that
    brings rows and classes closest to their targets. Those are the only cases in which other
    units decide a unit's split."""
    names = [s for s, f in fractions.items() if f > 0]
    bands, lo = {}, 0.0
    total = sum(fractions[s] for s in names)
    for s in names:
        bands[s] = (lo, lo + fractions[s] / total)
        lo = bands[s][1]
    pos = {u: unit_position(unit_keys[u], seed) for u in units}
    split_of = {u: next((s for s in names if x < bands[s][1]), names[-1]) for u, x in pos.items()}
    for stratum in sorted(set((strata or {}).values())):
        _fill_empty(split_of, pos, bands, {u for u in units if strata[u] == stratum})
    _fill_empty(split_of, pos, bands)
    if labels is not None and len(names) > 1:
        size = {u: len(m) for u, m in units.items()}
        classes = {u: {labels[i] for i in m} for u, m in units.items()}
        _cover_classes(split_of, pos, bands, classes, unit_keys)
        _meet_shares(split_of, pos, bands, size, unit_keys, {u: Counter(labels[i] for i in m) for u, m in units.items()})
        _cover_classes(split_of, pos, bands, classes, unit_keys)  # a share met may have taken a class
    out: dict[str, list[int]] = {s: [] for s in fractions}
    for u in sorted(units, key=lambda u: unit_keys[u]):
        out[split_of[u]].extend(units[u])
    return out


def _distance(x: float, band: tuple[float, float]) -> float:
    return max(band[0] - x, x - band[1], 0.0)


def _cover_classes(split_of: dict[int, str], pos: dict[int, float], bands: dict[str, tuple[float, float]],
                   classes: dict[int, set[str]], unit_keys: dict[int, str]) -> None:
    """A class held by at least as many units as there are splits goes into every split: the unit
    holding it nearest the band of a split without it moves there, from a split that keeps it."""
    holders: dict[str, list[int]] = defaultdict(list)
    for u, cs in classes.items():
        for c in cs:
            holders[c].append(u)
    wanted = {c for c, us in holders.items() if len(us) >= len(bands)}
    for c in sorted(wanted):
        for s, band in bands.items():
            by_split = Counter(split_of[u] for u in holders[c])
            if by_split.get(s):
                continue
            count = Counter(split_of.values())

            def keeps(u):  # its split keeps another unit, and another holder of each of its classes
                src = split_of[u]
                return count[src] > 1 and all(
                    sum(1 for v in holders[k] if split_of[v] == src) > 1 for k in classes[u] & wanted)
            movable = [u for u in holders[c] if keeps(u)]
            if not movable:
                continue
            near = min(movable, key=lambda u: (_distance(pos[u], band), pos[u]))
            log.info("split: no unit with %s fell in the %s share by its hash; %s moves there from %s",
                     c, s, unit_keys[near], split_of[near])
            split_of[near] = s


def _meet_shares(split_of: dict[int, str], pos: dict[int, float], bands: dict[str, tuple[float, float]],
                 size: dict[int, int], unit_keys: dict[int, str],
                 class_rows: dict[int, Counter] | None = None) -> None:
    """When a split's share of the rows lies outside :data:`SHARE_MARGIN` of its target, or a
    class's share in a split strays from its share of the corpus by more than
    :func:`_class_margin`, move units one at a time, each time the move that brings the rows per
    split and per class and split closest to their targets (ties: the unit nearest the band), until
    both hold or no move helps."""
    class_rows = class_rows or {u: Counter() for u in split_of}
    total = sum(size.values())
    frac = {s: b[1] - b[0] for s, b in bands.items()}
    n_class = Counter()
    for c in class_rows.values():
        n_class.update(c)
    have = Counter()
    have_c: dict[str, Counter] = {s: Counter() for s in bands}
    for u, s in split_of.items():
        have[s] += size[u]
        have_c[s].update(class_rows[u])

    def stands() -> bool:
        for s in bands:
            if abs(have[s] - frac[s] * total) > SHARE_MARGIN * frac[s] * total:
                return False
            for c, n in n_class.items():
                if have[s] and abs(have_c[s][c] / have[s] - n / total) > _class_margin(n / total, have[s]):
                    return False
        return True

    def cost(s: str, rows: int, by_class: Counter) -> float:
        return abs(rows - frac[s] * total) + sum(abs(by_class[c] - frac[s] * n) for c, n in n_class.items())

    for _ in range(len(split_of)):
        if stands():
            return
        count = Counter(split_of.values())
        best, best_key = None, None
        for u, a in split_of.items():
            if count[a] < 2:
                continue
            before_a = cost(a, have[a], have_c[a])
            after_a = cost(a, have[a] - size[u], have_c[a] - class_rows[u])
            for b in bands:
                if b == a:
                    continue
                gain = before_a + cost(b, have[b], have_c[b]) - after_a - cost(b, have[b] + size[u],
                                                                              have_c[b] + class_rows[u])
                key = (-gain, _distance(pos[u], bands[b]), pos[u])
                if gain > 1e-9 and (best_key is None or key < best_key):
                    best, best_key = (u, a, b), key
        if best is None:
            return
        u, a, b = best
        log.info("split: the hash draw leaves %s off its share of rows or classes; %s moves from %s to %s",
                 a if abs(have[a] - frac[a] * total) >= abs(have[b] - frac[b] * total) else b, unit_keys[u], a, b)
        split_of[u] = b
        have[a] -= size[u]
        have[b] += size[u]
        have_c[a] = have_c[a] - class_rows[u]
        have_c[b] = have_c[b] + class_rows[u]


def _class_margin(p: float, rows: int) -> float:
    """How far a class's share in a split of ``rows`` rows may stray from its share ``p`` of the
    corpus: half of it, plus what a split of that size cannot resolve (two rows)."""
    return 0.5 * p + 2.0 / max(rows, 1)


def _fill_empty(split_of: dict[int, str], pos: dict[int, float], bands: dict[str, tuple[float, float]],
                among: set[int] | None = None) -> None:
    """Give each split of ``bands`` left without a unit (of ``among``: default all) the unit
    nearest its band, taken from a split that keeps another."""
    among = set(split_of) if among is None else among
    if len(among) < len(bands):
        return
    for s, (lo, hi) in bands.items():
        counts = Counter(split_of[u] for u in among)
        if counts.get(s):
            continue
        movable = [u for u in among if counts[split_of[u]] > 1]
        near = min(movable, key=lambda u: (_distance(pos[u], (lo, hi)), pos[u]))
        log.info("split: no unit fell in the %s share by its hash; %s goes there (the nearest)", s, near)
        split_of[near] = s


def _unit_keys(units: dict[int, list[int]], utts: Sequence[Utterance], keys: list[str] | None) -> dict[int, str]:
    """A unit's key: its (first, in sorted order) speaker / conversation / session, else its
    first utterance id (units of transcripts)."""
    if keys is not None:
        return {u: min(str(keys[i]) for i in members) for u, members in units.items()}
    return {u: "id:" + min(str(utts[i].id) for i in members) for u, members in units.items()}


def assign_splits(
    utts: Sequence[Utterance],
    options: SplitOptions | None = None,
    *,
    seed: int = 0,
    **overrides,
) -> dict[str, list[int]]:
    """Indices of ``utts`` per split ("train", "val", "test"), as :class:`SplitOptions` say.

    - ``random``: stratified by label over single utterances (or transcripts if text_disjoint).
    - ``group``: no speaker (or conversation, see ``group_by``) in two splits. Each unit's split
      follows from a seeded hash of its key alone: test takes the units in the first
      ``test_fraction`` of [0, 1), val the next ``val_fraction``, train the rest. A unit stays in
      its split whatever else is added to or removed from the corpus (an exclude list, a corpus
      update), as long as ``seed`` and the fractions stay and the draw stands: its rows and
      classes close enough to their shares (:func:`_band_deal`; a corpus of tens of units may
      need units moved, which the log names).
    - ``kfold``: grouped when keys exist; the hash puts each unit in one of ``num_folds`` folds
      (fold ``fold`` is the test set) and, within the other folds, in val with probability
      ``val_fraction``: just as stable. With exactly ``num_folds`` units (5 IEMOCAP sessions,
      5 folds) fold k is the k-th unit in sorted order.
    ``test_speakers`` / ``val_speakers`` pin named speakers (or groups) to a split; the others
    are hashed over the remaining shares.
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
    unit_keys = _unit_keys(units, utts, keys)

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
            ordered = sorted(units, key=lambda u: unit_keys[u])
            test_units = {ordered[fold]}
        else:
            pos = {u: unit_position(unit_keys[u], seed) for u in units}
            fold_of = {u: f"f{min(int(x * num_folds), num_folds - 1)}" for u, x in pos.items()}
            _fill_empty(fold_of, pos, {f"f{k}": (k / num_folds, (k + 1) / num_folds) for k in range(num_folds)})
            test_units = {u for u, f in fold_of.items() if f == f"f{fold}"}
        rest = {u: idx for u, idx in units.items() if u not in test_units}
        # within the other folds: val by a second, independent hash of the same key
        out = _band_deal(rest, {u: f"val|{unit_keys[u]}" for u in rest},
                         {"val": val_fraction, "train": 1 - val_fraction}, seed, labels=labels)
        test = [i for u in test_units for i in units[u]]
        return {"train": sorted(out["train"]), "val": sorted(out["val"]), "test": sorted(test)}

    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ZooUserError("val_fraction and test_fraction must be in [0, 1) and sum to less than 1")
    free = {"test": test_fraction, "val": val_fraction, "train": 1 - val_fraction - test_fraction}
    if fixed:
        # Pinned units fill their split; the free fractions apply to the rest of the corpus.
        for s in set(fixed.values()):
            free[s] = 0.0
        norm = sum(free.values())
        free = {s: f / norm for s, f in free.items()}
    free_units = {u: idx for u, idx in units.items() if u not in fixed}
    if mode == "group":
        strata = {u: str(utts[idx[0]].meta.get("corpus", "")) for u, idx in free_units.items()}
        out = _band_deal(free_units, unit_keys, free, seed, strata, labels=labels)
    else:  # random: a label-stratified deal of single utterances (or transcripts)
        out = _deal(free_units, labels, {s: f for s, f in free.items() if f > 0}, rng)
    for u, s in fixed.items():
        out.setdefault(s, []).extend(units[u])
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
