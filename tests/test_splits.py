"""Split modes never leak speakers, conversations or transcripts, and are reproducible."""
from collections import Counter

import pytest

from zoo.data.splits import assign_splits, leakage_report, normalize_text
from zoo.data.utterance import Utterance
from zoo.errors import ZooUserError

CLASSES = ["Angry", "Happiness", "Neutral", "Sadness"]


def corpus(n_speakers=12, per_speaker=20, n_texts=15, with_group=False):
    utts = []
    for s in range(n_speakers):
        for k in range(per_speaker):
            i = s * per_speaker + k
            utts.append(Utterance(id=f"u{i}", audio=None, text=f"문장 {(i * 7) % n_texts}",
                                  label=CLASSES[(i + s) % len(CLASSES)], speaker=f"spk{s:02d}",
                                  group=f"conv{s}-{k // 5}" if with_group else None))
    return utts


def keys(utts, split, attr):
    return {getattr(utts[i], attr) for i in split}


def test_group_split_is_speaker_independent_and_stratified():
    utts = corpus()
    sp = assign_splits(utts, mode="group", val_fraction=0.2, test_fraction=0.2, seed=3)
    assert sorted(sp["train"] + sp["val"] + sp["test"]) == list(range(len(utts)))
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not keys(utts, sp[a], "speaker") & keys(utts, sp[b], "speaker")
    assert all(sp[s] for s in ("train", "val", "test"))
    # every class is present in every split (stratification over whole speakers)
    for s in ("train", "val", "test"):
        assert set(Counter(utts[i].label for i in sp[s])) == set(CLASSES)


def test_splits_are_reproducible_and_seed_dependent():
    utts = corpus()
    a = assign_splits(utts, mode="group", seed=1)
    assert a == assign_splits(utts, mode="group", seed=1)
    assert a != assign_splits(utts, mode="group", seed=2)


def test_group_by_conversation_when_no_speakers():
    utts = corpus(with_group=True)
    for u in utts:
        u.speaker = None
    sp = assign_splits(utts, mode="group", group_by="auto", seed=0)
    assert not keys(utts, sp["train"], "group") & keys(utts, sp["test"], "group")


def test_group_mode_without_keys_is_a_clear_error():
    utts = corpus()
    for u in utts:
        u.speaker = None
    with pytest.raises(ZooUserError, match="group"):
        assign_splits(utts, mode="group")


def test_random_split_text_disjoint_keeps_transcripts_together():
    utts = corpus()
    leaky = assign_splits(utts, mode="random", seed=0)
    assert leakage_report(utts, leaky)["test_texts_in_train"] > 0  # the leak exists without the option
    sp = assign_splits(utts, mode="random", text_disjoint=True, seed=0)
    texts = {s: {normalize_text(utts[i].text) for i in sp[s]} for s in sp}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["val"]
    assert leakage_report(utts, sp)["test_texts_in_train"] == 0


def test_text_disjoint_combines_with_speaker_independence():
    utts = corpus(n_texts=40)
    sp = assign_splits(utts, mode="group", text_disjoint=True, seed=0)
    rep = leakage_report(utts, sp)
    assert rep["test_texts_in_train"] == 0 and rep["test_speakers_in_train"] == 0


def test_kfold_covers_every_unit_once_as_test():
    utts = corpus()
    seen = Counter()
    for fold in range(4):
        sp = assign_splits(utts, mode="kfold", num_folds=4, fold=fold, val_fraction=0.1, seed=0)
        assert not keys(utts, sp["train"], "speaker") & keys(utts, sp["test"], "speaker")
        assert not keys(utts, sp["val"], "speaker") & keys(utts, sp["test"], "speaker")
        seen.update(sp["test"])
    assert sorted(seen) == list(range(len(utts))) and set(seen.values()) == {1}
    with pytest.raises(ZooUserError, match="fold"):
        assign_splits(utts, mode="kfold", num_folds=4, fold=4)


def test_pinned_test_speakers():
    utts = corpus()
    sp = assign_splits(utts, mode="group", test_speakers=["spk10", "spk11"], seed=0)
    assert keys(utts, sp["test"], "speaker") == {"spk10", "spk11"}
    assert sp["val"] and not keys(utts, sp["val"], "speaker") & {"spk10", "spk11"}
    # the free fractions apply to the 200 unpinned utterances: val 0.1 / (1 - 0.2) -> 25, i.e.
    # one or two whole speakers of 20
    assert len(sp["val"]) in (20, 40)
    with pytest.raises(ZooUserError, match="spk99"):
        assign_splits(utts, mode="group", test_speakers=["spk99"])


def test_byte_identical_audio_across_splits_is_counted(tmp_path):
    utts = corpus(n_speakers=4, per_speaker=2)
    for i, u in enumerate(utts):
        p = tmp_path / f"{i}.wav"
        p.write_bytes(b"same bytes" if i in (0, 7) else f"distinct {i}".encode())
        u.audio = str(p)
    sp = {"train": [0, 1, 2, 3], "val": [4, 5], "test": [6, 7]}
    from zoo.data.audio import file_digest

    assert leakage_report(utts, sp, digest=file_digest)["identical_audio_across_splits"] == 1


# -- splits that stay put ---------------------------------------------------------------------------

def _unit_split(utts, sp, attr="speaker"):
    return {getattr(utts[i], attr): s for s, idx in sp.items() for i in idx}


@pytest.mark.parametrize("mode,extra", [("group", {}), ("kfold", {"num_folds": 4, "fold": 1})])
def test_a_unit_keeps_its_split_whatever_else_is_in_the_corpus(mode, extra, caplog):
    import logging
    import random

    utts = corpus(n_speakers=400, per_speaker=3)
    opts = dict(mode=mode, val_fraction=0.15, test_fraction=0.2, seed=5, **extra)
    with caplog.at_level(logging.INFO, "zoo"):
        before = _unit_split(utts, assign_splits(utts, **opts))
        rng = random.Random(0)
        # one row left out (an exclude list), a quarter of the speakers gone, new speakers arriving
        one_less = [u for k, u in enumerate(utts) if k != 37]
        fewer = [u for u in utts if u.speaker not in {f"spk{s:02d}" for s in rng.sample(range(400), 100)}]
        more = utts + [Utterance(id=f"n{k}", audio=None, text="새 문장", label=CLASSES[k % 4], speaker=f"new{k // 5}")
                       for k in range(300)]
        for changed in (one_less, fewer, more, list(reversed(utts))):
            after = _unit_split(changed, assign_splits(changed, **opts))
            assert {k: s for k, s in after.items() if k in before} == {k: s for k, s in before.items() if k in after}
    # the draws stood: no unit was moved to meet a share or a class
    assert not [r for r in caplog.records if r.getMessage().startswith("split:")]
    # and the shares hold: 400 speakers, test 0.2 of them give 0.2 +- 0.05 of the rows
    sp = assign_splits(utts, mode="group", val_fraction=0.15, test_fraction=0.2, seed=1)
    assert abs(len(sp["test"]) / len(utts) - 0.2) < 0.05 and abs(len(sp["val"]) / len(utts) - 0.15) < 0.05


def test_a_small_corpus_meets_its_shares_and_classes_by_moving_the_nearest_units(caplog):
    """Tens of units: a hash draw can miss a share or a class; the units nearest the bands move."""
    import logging

    from zoo.data.splits import SHARE_MARGIN

    utts = corpus(n_speakers=30, per_speaker=6)
    for k, u in enumerate(utts):  # a rare class, held by a few speakers only
        if u.speaker in ("spk03", "spk11", "spk17", "spk25") and k % 6 == 0:
            u.label = "Fear"
    moved = 0
    for seed in range(30):
        caplog.clear()
        with caplog.at_level(logging.INFO, "zoo"):
            sp = assign_splits(utts, mode="group", val_fraction=0.15, test_fraction=0.2, seed=seed)
        moved += bool([r for r in caplog.records if r.getMessage().startswith("split:")])
        for s, share in (("val", 0.15), ("test", 0.2)):
            assert abs(len(sp[s]) / len(utts) - share) <= SHARE_MARGIN * share + 6 / len(utts), (seed, s)
            assert {utts[i].label for i in sp[s]} == set(CLASSES) | {"Fear"}, (seed, s)
    assert moved  # some draws needed it


def test_removing_an_empty_label_row_moves_no_conversation():
    """The report that started it: leaving out one row moved half of the training clips."""
    utts = corpus(n_speakers=300, per_speaker=4, with_group=True)
    for u in utts:
        u.speaker = None
    sp = assign_splits(utts, mode="group", seed=0)
    kept = utts[:100] + utts[101:]
    sp2 = assign_splits(kept, mode="group", seed=0)
    ids = {s: {utts[i].id for i in idx} for s, idx in sp.items()}
    ids2 = {s: {kept[i].id for i in idx} for s, idx in sp2.items()}
    assert all(ids2[s] == ids[s] - {utts[100].id} for s in ids)


def test_a_larger_test_fraction_only_adds_test_units_and_val_fraction_never_moves_them():
    utts = corpus(n_speakers=60, per_speaker=4)
    base = _unit_split(utts, assign_splits(utts, mode="group", val_fraction=0.1, test_fraction=0.2, seed=2))
    more_val = _unit_split(utts, assign_splits(utts, mode="group", val_fraction=0.3, test_fraction=0.2, seed=2))
    assert {k for k, s in base.items() if s == "test"} == {k for k, s in more_val.items() if s == "test"}
    more_test = _unit_split(utts, assign_splits(utts, mode="group", val_fraction=0.1, test_fraction=0.3, seed=2))
    assert {k for k, s in base.items() if s == "test"} < {k for k, s in more_test.items() if s == "test"}


def test_a_few_units_still_fill_every_split():
    utts = corpus(n_speakers=3, per_speaker=4)
    for seed in range(20):
        sp = assign_splits(utts, mode="group", val_fraction=0.1, test_fraction=0.1, seed=seed)
        assert all(sp[s] for s in ("train", "val", "test"))


def test_the_split_fingerprint_names_the_test_set():
    from zoo.data.splits import split_fingerprint

    utts = corpus()
    sp = assign_splits(utts, mode="group", seed=3)
    test_ids = [utts[i].id for i in sp["test"]]
    fp = split_fingerprint(test_ids)
    assert len(fp) == 12 and fp == split_fingerprint(reversed(test_ids))
    assert fp != split_fingerprint(test_ids[1:])
    other = assign_splits(utts, mode="group", seed=4)
    assert split_fingerprint(utts[i].id for i in other["test"]) != fp


def test_each_corpus_of_a_multi_corpus_is_in_every_split():
    utts = []
    for c in ("ravdess", "cremad"):
        for s in range(3):
            for k in range(4):
                utts.append(Utterance(id=f"{c}{s}-{k}", audio=None, text=None, label=CLASSES[k],
                                      speaker=f"{c}:{s}", meta={"corpus": c}))
    for seed in range(25):
        sp = assign_splits(utts, mode="group", val_fraction=0.34, test_fraction=0.33, seed=seed)
        for s in ("train", "val", "test"):
            assert {utts[i].meta["corpus"] for i in sp[s]} == {"ravdess", "cremad"}, (seed, s)
