"""Label policy: majority with explicit tie rules, agreement, soft labels, filtering."""
from __future__ import annotations

import pytest

from fixtures.aihub import EXPECTED_MAJORITY, SEED_ROWS
from zoo.data.labels import (agreement, apply_label_policy, majority_label, soft_label,
                             tied_classes)
from zoo.data.corpora.aihub import AIHUB_EMOTIONS
from zoo.data.utterance import Utterance
from zoo.errors import CorpusError, ProblemLog


def seed_utts() -> list[Utterance]:
    return [Utterance(id=w, audio=None, text=t, votes=tuple(l for l, _ in v),
                      intensities=tuple(i for _, i in v), meta={"row": n})
            for n, (w, t, _, v) in enumerate(SEED_ROWS, start=2)]


@pytest.mark.parametrize("tie_break", ["intensity", "first", "drop"])
def test_seed_rows_majority(tie_break):
    for u in seed_utts():
        assert majority_label(u.votes, u.intensities, tie_break) == EXPECTED_MAJORITY[u.id], u.id


def test_seed_row_notes():
    utts = {u.id: u for u in seed_utts()}
    row6 = utts["5ed9799ac90a530ee56b5f6b"]  # Neutral 2 vs Sadness 3
    assert majority_label(row6.votes) == "Sadness" and agreement(row6.votes) == pytest.approx(0.6)
    row3 = utts["5ed9793b9aa8ea0eec53f7f1"]  # Angry 3 vs Sadness 2, situation disgust
    assert majority_label(row3.votes) == "Angry"


def test_agreement():
    assert agreement(["Fear"] * 5) == 1.0
    assert agreement(["Fear", "Fear", "Fear", "Sadness", "Angry"]) == pytest.approx(0.6)
    assert agreement(["Fear", "Fear", "Sadness", "Sadness", "Angry"]) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        agreement([])


# a 2-2-1 split: Fear and Sadness tied; Angry voted first, Sadness before Fear among the tied
TIE_VOTES = ("Angry", "Sadness", "Fear", "Fear", "Sadness")


def test_tie_first_is_seed_deck_behaviour():
    assert tied_classes(TIE_VOTES) == ["Sadness", "Fear"]
    assert majority_label(TIE_VOTES, tie_break="first") == "Sadness"


def test_tie_drop():
    assert majority_label(TIE_VOTES, (2, 1, 1, 1, 1), tie_break="drop") is None


def test_tie_intensity():
    # Fear voters 2+2=4 > Sadness voters 1+1=2 -> Fear
    assert majority_label(TIE_VOTES, (0, 1, 2, 2, 1), "intensity") == "Fear"
    # Sadness 2+2 > Fear 1+1
    assert majority_label(TIE_VOTES, (0, 2, 1, 1, 2), "intensity") == "Sadness"
    # the singleton's intensity does not matter; equal sums stay tied -> None
    assert majority_label(TIE_VOTES, (2, 1, 1, 1, 1), "intensity") is None
    # no intensities -> cannot break
    assert majority_label(TIE_VOTES, (), "intensity") is None


def test_bad_tie_break_and_empty_votes():
    with pytest.raises(ValueError):
        majority_label(TIE_VOTES, tie_break="coin")  # type: ignore[arg-type]
    assert majority_label(()) is None


def tie_utt(levels, uid="tie"):
    return Utterance(id=uid, audio=None, votes=TIE_VOTES, intensities=levels)


@pytest.mark.parametrize("tie_break,kept_labels,ties", [
    ("first", ["Sadness", "Sadness"], 0),
    ("intensity", ["Fear"], 1),
    ("drop", [], 2),
])
def test_policy_counts_ties(tie_break, kept_labels, ties):
    utts = [tie_utt((0, 1, 2, 2, 1), "a"), tie_utt((2, 1, 1, 1, 1), "b")]
    kept, dropped = apply_label_policy(utts, tie_break=tie_break)
    assert [u.label for u in kept] == kept_labels
    assert dropped.get("unresolved tie", 0) == ties
    assert all(u.meta["agreement"] == pytest.approx(0.4) for u in kept)


def test_policy_on_seed_rows_and_min_agreement():
    utts = seed_utts()
    kept, dropped = apply_label_policy(utts)
    assert len(kept) == 13 and not dropped
    assert {u.id: u.label for u in kept} == EXPECTED_MAJORITY
    assert all(u.label is None and "agreement" not in u.meta for u in utts)  # inputs untouched
    # rows with at least 4 of 5 agreeing: 1, 2, 4, 7, 8, 9, 10
    kept, dropped = apply_label_policy(utts, min_agreement=0.8)
    assert [u.meta["row"] - 1 for u in kept] == [1, 2, 4, 7, 8, 9, 10]
    assert dropped == {"below min_agreement": 6}
    # 0.6 = 3 of 5 keeps everything (no float trouble at the boundary)
    assert len(apply_label_policy(utts, min_agreement=0.6)[0]) == 13
    with pytest.raises(ValueError):
        apply_label_policy(utts, min_agreement=1.5)


def test_low_agreement_checked_before_ties():
    kept, dropped = apply_label_policy([tie_utt((2, 1, 1, 1, 1))], min_agreement=0.6, tie_break="drop")
    assert not kept and dropped == {"below min_agreement": 1}


def test_given_labels_kept_and_unlabeled_reported():
    utts = [Utterance(id="a", audio="a.wav", label="Boredom"),
            Utterance(id="b", audio="b.wav", meta={"manifest": "m.csv", "row": 3})]
    problems = ProblemLog("skip")
    kept, dropped = apply_label_policy(utts, min_agreement=0.9, problems=problems)
    assert [u.label for u in kept] == ["Boredom"] and "agreement" not in kept[0].meta
    assert dropped == {"no label and no votes": 1}
    assert problems.items[0].source == "m.csv" and problems.items[0].row == 3
    with pytest.raises(CorpusError):
        apply_label_policy(utts)


def test_soft_labels():
    for u in seed_utts():
        soft = soft_label(u, AIHUB_EMOTIONS)
        assert sum(soft) == pytest.approx(1.0)
        for c, p in zip(AIHUB_EMOTIONS, soft):
            assert p == pytest.approx(u.votes.count(c) / 5)
    row2 = seed_utts()[1]
    assert soft_label(row2, AIHUB_EMOTIONS) == pytest.approx([0, 0, 0, 0, 0.2, 0.8, 0])
    assert soft_label(Utterance(id="x", audio=None, label="Fear"), AIHUB_EMOTIONS) == \
        [0, 0, 1, 0, 0, 0, 0]
    with pytest.raises(ValueError):
        soft_label(row2, ["Sadness", "Fear"])  # a Neutral vote outside the class list
    assert soft_label(row2, ["Sadness", "Fear"], ignore_unknown=True) == [1.0, 0.0]
    with pytest.raises(ValueError):
        soft_label(Utterance(id="y", audio=None), AIHUB_EMOTIONS)
