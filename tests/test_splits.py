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
