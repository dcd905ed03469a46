"""KEMDy19 / KEMDy20 adapters: header variants, per-speaker annotation files, multi labels,
transcript tags, bad input."""
from __future__ import annotations

import pytest

from fixtures import write_wav
from fixtures._kemdy import annotation_csv
from fixtures.kemdy19 import write_tree as write19
from fixtures.kemdy20 import write_tree as write20
from zoo.data.corpora import KEMDy19, KEMDy20
from zoo.data.corpora._kemdy import clean_transcript, parse_labels
from zoo.errors import CorpusError, ProblemLog


def test_kemdy19_takes_each_speakers_segments_from_its_own_file(tmp_path):
    info = write19(tmp_path)
    c = KEMDy19(root=str(tmp_path))
    p = ProblemLog()
    utts = {u.id: u for u in c.load(p)}
    assert not p.items and len(utts) == info["n"]
    # the other speaker's file says "sad" for every segment: never used
    assert all(u.soft.get("sad", 0) < 1 for u in utts.values() if u.label != "sad")
    u = utts["Sess01_impro01_M002"]
    assert (u.speaker, u.session, u.meta["gender"]) == ("Sess01_M", "Session01", "male")
    assert c.skipped.counts["segment of the other speaker in a _res.csv (taken from its own file)"] == 24
    assert c.skipped.counts["several labels (multi_label: drop)"] == info["multi"]
    assert c.skipped.counts["no .txt (kept without a transcript)"] == info["no_txt"]
    t = utts["Sess01_impro01_F001"]
    assert t.text == "어 그래 나도 그렇게 생각해" and t.meta["raw_text"].startswith("b/ 어 (그래)/(그레)")
    assert KEMDy19(root=str(tmp_path), raw_text=True).load(ProblemLog())[0].text.startswith("b/")
    assert u.dims_scale == (1.0, 5.0) and set(u.dims) == {"valence", "arousal"}


def test_multi_label_soft_keeps_them(tmp_path):
    info = write19(tmp_path)
    utts = KEMDy19(root=str(tmp_path), multi_label="soft").load(ProblemLog())
    assert len(utts) == info["n"] + info["multi"]
    multi = [u for u in utts if len(u.meta["labels"]) > 1]
    assert multi and all(u.label in u.meta["labels"] and u.soft for u in multi)
    with pytest.raises(CorpusError, match="multi_label"):
        KEMDy19(root=str(tmp_path), multi_label="first")


def test_kemdy20_spellings_cp949_texts_and_counts(tmp_path):
    info = write20(tmp_path)
    c = KEMDy20(root=str(tmp_path))
    p = ProblemLog()
    utts = {u.id: u for u in c.load(p)}
    assert not p.items and len(utts) == info["n"]
    assert "disgust" in {u.label for u in utts.values()}  # spelled disqust in the CSV
    u = utts["Sess01_script01_User001F_001"]
    assert (u.speaker, u.session) == ("User001", "Session01") and u.text == "이 문장은 1번 이에요"
    assert c.skipped.counts["segment without a label"] == 2
    assert c.skipped.counts["empty .txt (kept without a transcript)"] == info["empty_txt"]


def test_missing_audio_audio_without_rows_and_bad_labels(tmp_path):
    write20(tmp_path)
    write_wav(tmp_path / "wav" / "Session01" / "Sess01_script07_User001F_001.wav", 0, 77)  # no row
    rows = [["Sess01_script08_User001F_001", "happy", "3", "3", ["happy"], 1.0],   # no audio
            ["Sess01_script08_User001F_002", "joy", "3", "3", ["happy"], 2.0],     # unknown label
            ["Sess01_script08_User001F_003", "happy", "9", "3", ["happy"], 3.0]]   # valence off the scale
    for r in rows[1:]:
        write_wav(tmp_path / "wav" / "Session01" / f"{r[0]}.wav", 0, 78)
    annotation_csv(tmp_path / "annotation" / "Sess03_eval.csv", rows, 1, physio=False, blank=" ", encoding="cp949")
    c = KEMDy20(root=str(tmp_path))
    p = ProblemLog("skip")
    c.load(p)
    text = p.summary()
    assert len(p) == 3 and "audio not found: Sess01_script08_User001F_001.wav" in text
    assert "unknown label 'joy'" in text and "outside the corpus's scale" in text and "Sess03_eval.csv, row 3" in text
    assert c.skipped.examples["audio without an annotation row"][0] == "Sess01_script07_User001F_001"


def test_header_variants_and_roots(tmp_path):
    write20(tmp_path)
    (tmp_path / "annotation" / "Sess01_eval.csv").write_text("Numb,Wav,,Segment,Total\n,start,end,,Emotion\n")
    with pytest.raises(CorpusError, match="lacks 'Segment ID' or 'Total Evaluation'"):
        KEMDy20(root=str(tmp_path)).load(ProblemLog())
    (tmp_path / "annotation" / "Sess01_eval.csv").write_text(
        "Numb,Wav,,Segment ID,Total Evaluation,,\n,start,end,,Valence,Emotion,Arousal\n")
    with pytest.raises(CorpusError, match="should read Emotion, Valence, Arousal"):
        KEMDy20(root=str(tmp_path)).load(ProblemLog())
    with pytest.raises(CorpusError, match="wav/ and annotation/"):
        (tmp_path / "e").mkdir()
        KEMDy19(root=str(tmp_path / "e")).load(ProblemLog())
    write19(tmp_path / "k" / "KEMDy19")
    assert KEMDy19(root=str(tmp_path / "k")).load(ProblemLog())  # one level above


def test_label_and_transcript_helpers():
    assert parse_labels(" Happy ; neutral") == ["happy", "neutral"] and parse_labels("disqust") == ["disgust"]
    assert parse_labels("happy;joy") is None
    assert clean_transcript("o/ 아 (3시)/(세 시)에 봐 * u/ +") == "아 3시에 봐"
