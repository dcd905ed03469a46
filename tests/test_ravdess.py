"""RAVDESS adapter: naming scheme, song part, bad names, roots."""
from __future__ import annotations

import pytest

from fixtures import write_wav
from fixtures.ravdess import write_tree
from zoo.data.corpora import RAVDESS
from zoo.errors import CorpusError, ProblemLog


def test_records(tmp_path):
    write_tree(tmp_path)
    p = ProblemLog()
    utts = {u.id: u for u in RAVDESS(root=str(tmp_path)).load(p)}
    assert not p.items and len(utts) == 27
    [u] = [u for u in utts.values() if u.speaker == "13" and u.meta["intensity"] == "strong"]
    assert (u.label, u.meta["gender"]) == ("angry", "male") and u.id.startswith("03-01-05-02-")
    assert u.text == ("Kids are talking by the door" if u.meta["statement"] == "01" else "Dogs are sitting by the door")
    assert {u.meta["gender"] for u in utts.values() if u.speaker == "02"} == {"female"}


def test_song_part_is_skipped_and_counted_unless_asked_for(tmp_path):
    write_tree(tmp_path)
    c = RAVDESS(root=str(tmp_path))
    assert len(c.load(ProblemLog())) == 27 and c.skipped.counts == {"song part (include_song: false)": 1}
    with_song = RAVDESS(root=str(tmp_path), include_song=True).load(ProblemLog())
    assert len(with_song) == 28 and {u.meta["channel"] for u in with_song} == {"speech", "song"}


def test_names_that_break_the_scheme_are_listed(tmp_path):
    write_tree(tmp_path)
    for i, name in enumerate(("03-01-01-02-01-01-01.wav",   # neutral has no strong intensity
                              "03-01-09-01-01-01-01.wav",   # no emotion 09
                              "03-01-05-01-01-01-07.wav",   # actor 07 in Actor_01
                              "03-01-05-01-01-01-01 (1).wav")):
        write_wav(tmp_path / "Actor_01" / name, 0, 500 + i)
    p = ProblemLog("skip")
    utts = RAVDESS(root=str(tmp_path)).load(p)
    assert len(utts) == 27 and len(p) == 4
    text = p.summary()
    assert "neutral has no strong" in text and "emotion code 09" in text and "actor 07" in text
    assert "(1).wav: not a RAVDESS file name" in text
    with pytest.raises(CorpusError, match="4 problem"):
        p2 = ProblemLog()
        RAVDESS(root=str(tmp_path)).load(p2)
        p2.check("RAVDESS")


def test_roots(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        RAVDESS(root=str(tmp_path / "nope")).load(ProblemLog())
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="Actor_01/"):
        RAVDESS(root=str(tmp_path / "empty")).load(ProblemLog())
    write_tree(tmp_path / "r")
    # the Actor_XX folder itself is below the corpus root: one level up is found
    assert len(RAVDESS(root=str(tmp_path / "r" / "Actor_01")).load(ProblemLog())) == 27
    (tmp_path / "r2" / "Actor_01").mkdir(parents=True)
    (tmp_path / "r2" / "Actor_01" / "notes.txt").write_text("x")
    with pytest.raises(CorpusError, match="no RAVDESS wav files"):
        RAVDESS(root=str(tmp_path / "r2")).load(ProblemLog())
