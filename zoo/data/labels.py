"""Label policy: turn annotator votes into hard labels, soft labels and an agreement score.

Corpora with several annotators per utterance (AI Hub KETI-02-002 has five) give *votes*, not a
label. This module decides, in one documented place, what label an utterance gets:

* :func:`majority_label` -- the most-voted class, with an explicit rule for ties;
* :func:`agreement` -- the share of annotators behind the most-voted class (3 of 5 -> 0.6);
* :func:`soft_label` -- the vote distribution over the class list (for soft-target training);
* :func:`apply_label_policy` -- applies all of the above to a corpus and counts what it dropped.

Ties are never resolved silently. The seed deck's own code took ``Counter(votes).most_common(1)``,
which hands a tie to whichever tied class an earlier annotator voted for, and said nothing; here
the rule is chosen with ``tie_break`` and every tie that cannot be resolved is dropped *and
counted*.

Only the standard library is imported, so this module is cheap to import anywhere.
"""
from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal, get_args

from zoo.errors import CorpusError, ProblemLog
from zoo.data.utterance import Utterance

log = logging.getLogger("zoo")

LabelMode = Literal["majority", "soft"]
TieBreak = Literal["intensity", "first", "drop"]
TIE_BREAKS: tuple[str, ...] = get_args(TieBreak)

# Reasons used as keys of the Counter returned by apply_label_policy.
DROP_TIE = "unresolved tie"
DROP_LOW_AGREEMENT = "below min_agreement"
DROP_NO_LABEL = "no label and no votes"

_EPS = 1e-9


def _check_tie_break(tie_break: str) -> None:
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"tie_break must be one of {TIE_BREAKS}, got {tie_break!r}")


def tied_classes(votes: Sequence[str]) -> list[str]:
    """The classes sharing the highest vote count, in the order an annotator first voted them."""
    counts = Counter(votes)  # insertion order = order of first vote
    if not counts:
        return []
    top = max(counts.values())
    return [c for c, n in counts.items() if n == top]


def majority_label(
    votes: Sequence[str],
    intensities: Sequence[int] = (),
    tie_break: TieBreak = "intensity",
) -> str | None:
    """The class most annotators voted for, or ``None`` for a tie the rule cannot resolve.

    A class with strictly more votes than every other wins outright (row 6 of the seed deck:
    Neutral 2, Sadness 3 -> Sadness). When two or more classes share the highest count
    (a 2-2-1 split of five votes, for instance) ``tie_break`` decides:

    ``"intensity"`` (default)
        Among the tied classes, the one whose voters gave the higher *summed* intensity
        (AI Hub intensities are 0-2, one per vote, in the same annotator order) wins. If the sums
        are tied as well, or no intensities are given, the tie stays unresolved -> ``None``.
    ``"first"``
        The seed deck's behaviour: the tied class that was voted first in annotator order wins
        (what ``Counter(votes).most_common(1)`` returns). Never ``None`` for non-empty votes.
    ``"drop"``
        Every tie is unresolved -> ``None``.

    ``None`` is also returned for an empty vote list. Callers (see :func:`apply_label_policy`)
    drop unresolved rows and count them; nothing is decided silently.
    """
    _check_tie_break(tie_break)
    tied = tied_classes(votes)
    if not tied:
        return None
    if len(tied) == 1:
        return tied[0]
    if tie_break == "first":
        return tied[0]
    if tie_break == "drop":
        return None
    # "intensity"
    if len(intensities) != len(votes):
        return None
    sums = {c: 0 for c in tied}
    for vote, level in zip(votes, intensities):
        if vote in sums:
            sums[vote] += int(level)
    best = max(sums.values())
    winners = [c for c in tied if sums[c] == best]
    return winners[0] if len(winners) == 1 else None


def agreement(votes: Sequence[str]) -> float:
    """Share of annotators who voted for the most-voted class (3 of 5 -> 0.6, 5 of 5 -> 1.0).

    For a tie the count of any of the tied classes is used (2-2-1 of five -> 0.4).
    Raises ``ValueError`` for an empty vote list (agreement is undefined without annotators).
    """
    if not votes:
        raise ValueError("agreement() needs at least one vote")
    return max(Counter(votes).values()) / len(votes)


def soft_label(utt: Utterance, class_names: Sequence[str], *, ignore_unknown: bool = False) -> list[float]:
    """Annotator vote distribution over ``class_names`` (sums to 1).

    ``Sadness, Sadness, Neutral, Sadness, Sadness`` over (..., Neutral, Sadness, ...) gives
    0.2 for Neutral and 0.8 for Sadness. An utterance without votes gets its ``soft``
    distribution (renormalised over ``class_names``) when it has one, else the one-hot vector of
    ``utt.label``.

    A vote for a class not in ``class_names`` raises ``ValueError`` unless ``ignore_unknown`` is
    set, in which case such votes are left out and the rest renormalised (when no vote is left,
    the one-hot of ``utt.label`` is used). A missing or unknown ``utt.label`` on a vote-less
    utterance raises ``ValueError``.
    """
    index = {c: i for i, c in enumerate(class_names)}
    out = [0.0] * len(class_names)
    known = [v for v in utt.votes if v in index]
    if len(known) != len(utt.votes) and not ignore_unknown:
        unknown = sorted({v for v in utt.votes if v not in index})
        raise ValueError(f"utterance {utt.id!r}: votes for {unknown} are not in the class list "
                         f"{list(class_names)}")
    if known:
        for v in known:
            out[index[v]] += 1.0
        total = float(len(known))
        return [x / total for x in out]
    if not utt.votes and utt.soft:  # a distribution given beside the label (IEMOCAP evaluators)
        for c, p in utt.soft.items():
            if c in index:
                out[index[c]] += p
            elif not ignore_unknown:
                raise ValueError(f"utterance {utt.id!r}: soft label {c!r} is not in the class list "
                                 f"{list(class_names)}")
        total = sum(out)
        if total > 0:
            return [x / total for x in out]
    if utt.label is None or utt.label not in index:
        raise ValueError(f"utterance {utt.id!r}: no votes and label {utt.label!r} is not in the "
                         f"class list {list(class_names)}")
    out[index[utt.label]] = 1.0
    return out


def meets_agreement(score: float | None, min_agreement: float) -> bool:
    """Whether an agreement score passes ``min_agreement`` (float-tolerant: 3/5 passes 0.6);
    ``None`` (a row without votes) always passes."""
    return score is None or score + _EPS >= min_agreement


def apply_label_policy(
    utts: Iterable[Utterance],
    *,
    tie_break: TieBreak = "intensity",
    min_agreement: float = 0.0,
    problems: ProblemLog | None = None,
) -> tuple[list[Utterance], Counter]:
    """Give every utterance a hard label; drop the ones the policy cannot or should not label.

    For an utterance **with votes**:

    1. ``meta["agreement"]`` is set to :func:`agreement` of its votes;
    2. if that is below ``min_agreement`` the utterance is dropped (reason
       ``"below min_agreement"``; e.g. ``min_agreement=0.6`` keeps rows where at least 3 of 5
       annotators agree);
    3. otherwise ``label`` becomes :func:`majority_label` with ``tie_break`` (a label the corpus
       gave is overwritten by the votes); an unresolved tie is dropped (reason
       ``"unresolved tie"``).

    An utterance **without votes** keeps the label it was given (manifests); it gets no
    ``"agreement"`` entry and is never dropped for agreement. One with neither votes nor a label
    is recorded in ``problems`` (source = ``meta["csv"]``/``meta["manifest"]`` or the id, row =
    ``meta["row"]``) and dropped (reason ``"no label and no votes"``); without a ``problems`` log
    it raises :class:`~zoo.errors.CorpusError`.

    The input records are not modified: the kept ones are returned as updated copies (with a copied
    ``meta``). Returns ``(kept, dropped)`` where ``dropped`` counts dropped utterances by reason.
    Policy drops (ties, low agreement) are not *problems* -- they are counted and logged, and never
    make ``on_error="raise"`` fail.
    """
    _check_tie_break(tie_break)
    if not 0.0 <= float(min_agreement) <= 1.0:
        raise ValueError(f"min_agreement must be in [0, 1], got {min_agreement!r}")
    kept: list[Utterance] = []
    dropped: Counter = Counter()
    for utt in utts:
        if utt.votes:
            score = agreement(utt.votes)
            meta = {**utt.meta, "agreement": score}
            if not meets_agreement(score, min_agreement):
                dropped[DROP_LOW_AGREEMENT] += 1
                continue
            label = majority_label(utt.votes, utt.intensities, tie_break)
            if label is None:
                dropped[DROP_TIE] += 1
                continue
            kept.append(dataclasses.replace(utt, label=label, meta=meta))
        elif utt.label is not None and str(utt.label).strip():
            kept.append(dataclasses.replace(utt, meta=dict(utt.meta)))
        else:
            source = utt.meta.get("csv") or utt.meta.get("manifest") or utt.id
            if problems is None:
                raise CorpusError(f"{source}: utterance {utt.id!r} has neither a label nor votes")
            problems.add(source, f"no label: utterance {utt.id!r} has neither a label nor votes",
                         row=utt.meta.get("row"))
            dropped[DROP_NO_LABEL] += 1
    if dropped:
        log.info("label policy (tie_break=%s, min_agreement=%s): kept %d, dropped %s", tie_break,
                 min_agreement, len(kept), ", ".join(f"{n} x {r}" for r, n in dropped.most_common()))
    return kept, dropped
