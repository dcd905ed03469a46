"""IEMOCAP adapter: label blocks, evaluators, dims, speakers, sessions, label sets, bad input."""
from __future__ import annotations

import pytest

from fixtures.iemocap import write_tree
from zoo.data.corpora import IEMOCAP
from zoo.errors import CorpusError, ProblemLog


def test_records(tmp_path):
    write_tree(tmp_path)
    c = IEMOCAP(root=str(tmp_path))
    p = ProblemLog()
    utts = {u.id: u for u in c.load(p)}
    assert not p.items and len(utts) == 24  # 6 of the 8 label lines per dialogue are in the 4 classes
    u = utts["Ses01F_impro01_F002"]  # exc -> happy
    assert (u.label, u.speaker, u.session, u.meta["category"]) == ("happy", "Ses01F", "Session1", "exc")
    assert u.text == "Sentence 2 of Ses01F_impro01." and u.dims_scale == (1.0, 5.0)
    raw = u.meta["dims_raw"]
    assert u.dims["valence"] == pytest.approx((raw["valence"] - 1) / 4)
    # evaluators: exc, exc (Excited; Excited), neutral ("Neutral state") -> happy 2/3, neutral 1/3
    assert u.soft == pytest.approx({"happy": 2 / 3, "neutral": 1 / 3})
    assert utts["Ses01F_impro01_M001"].speaker == "Ses01M"
    assert c.skipped.counts == {"label fru (not in label_set 4class)": 4, "label xxx (no agreement)": 4,
                                "audio without a label line": 2}


def test_label_sets_improvised_only_and_sessions(tmp_path):
    write_tree(tmp_path)
    every = IEMOCAP(root=str(tmp_path), label_set="all").load(ProblemLog())
    assert len(every) == 28 and {"frustrated", "excited"} <= {u.label for u in every}
    impro = IEMOCAP(root=str(tmp_path), improvised_only=True).load(ProblemLog())
    assert len(impro) == 12 and all(u.meta["improvised"] for u in impro)
    assert {u.session for u in IEMOCAP(root=str(tmp_path), sessions=[2]).load(ProblemLog())} == {"Session2"}
    with pytest.raises(CorpusError, match="label_set"):
        IEMOCAP(root=str(tmp_path), label_set="5class")


def test_missing_audio_odd_case_and_bad_lines_are_reported(tmp_path):
    write_tree(tmp_path, missing_audio="Ses01F_impro01_F000")
    ev = tmp_path / "Session2" / "dialog" / "EmoEvaluation" / "Ses02F_impro01.txt"
    ev.write_text(ev.read_text().replace("\tang\t", "\tANG\t") + "[1.0 - 2.0]\tbroken line\n")
    p = ProblemLog("skip")
    utts = IEMOCAP(root=str(tmp_path)).load(p)
    assert len(utts) == 23 and len(p) == 2
    text = p.summary()
    assert "audio not found: Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav" in text
    assert "not an IEMOCAP label line" in text and "Ses02F_impro01.txt" in text
    assert any(u.id == "Ses02F_impro01_M003" and u.label == "angry" for u in utts)


def test_roots(tmp_path):
    with pytest.raises(CorpusError, match="Session1/"):
        (tmp_path / "x").mkdir()
        IEMOCAP(root=str(tmp_path / "x")).load(ProblemLog())
    write_tree(tmp_path / "IEMOCAP_full_release")
    assert len(IEMOCAP(root=str(tmp_path)).load(ProblemLog())) == 24  # one level above
    (tmp_path / "bare" / "Session1").mkdir(parents=True)
    p = ProblemLog()
    IEMOCAP(root=str(tmp_path / "bare")).load(p)
    assert "no EmoEvaluation" in p.summary()


def test_leave_one_session_out_through_the_datamodule(tmp_path):
    from zoo.data import EmotionDataModule

    write_tree(tmp_path)
    for fold in (0, 1):
        dm = EmotionDataModule(corpus=IEMOCAP(root=str(tmp_path)), modalities=["text"], cache_dir=None,
                               split={"mode": "kfold", "group_by": "session", "num_folds": 2, "fold": fold,
                                      "val_fraction": 0.0})
        dm.setup("fit")
        assert {u.session for u in dm.split("test")} == {f"Session{fold + 1}"}
        assert dm.class_names == ["neutral", "happy", "angry", "sad"]
