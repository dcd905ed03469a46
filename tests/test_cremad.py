"""CREMA-D adapter: names, crowd votes as soft labels, demographics, bad input."""
from __future__ import annotations

import pytest

from fixtures import write_wav
from fixtures.cremad import write_tree
from zoo.data.corpora import CREMAD
from zoo.errors import CorpusError, ProblemLog


def test_records_votes_and_demographics(tmp_path):
    labels, stems = write_tree(tmp_path)
    c = CREMAD(root=str(tmp_path))
    p = ProblemLog()
    utts = {u.id: u for u in c.load(p)}
    assert not p.items and sorted(utts) == sorted(stems)
    u = utts[stems[1]]
    assert u.label == "disgust" and u.speaker == "1001" and u.meta["gender"] == "male"
    assert u.soft and abs(sum(u.soft.values()) - 1) < 1e-9 and max(u.soft, key=u.soft.get) == "disgust"
    assert utts[stems[0]].soft is None  # no vote row for it
    assert c.votes_report == {"clips_without_votes": 1, "votes_without_audio": 1}
    assert utts[stems[0]].text.endswith(".") and utts[stems[7]].meta["gender"] == "female"
    assert len(CREMAD(root=str(tmp_path), soft_labels=False).load(ProblemLog())[1].soft or {}) == 0


def test_bad_names_lower_case_codes_and_roots(tmp_path):
    write_tree(tmp_path)
    write_wav(tmp_path / "AudioWAV" / "1001_XYZ_ANG_XX.wav", 0, 90)  # unknown sentence
    write_wav(tmp_path / "AudioWAV" / "1001_DFA_JOY_XX.wav", 0, 91)  # unknown emotion
    write_wav(tmp_path / "AudioWAV" / "1001_dfa_ang_hi.wav", 0, 92)  # odd case: read
    p = ProblemLog("skip")
    utts = CREMAD(root=str(tmp_path)).load(p)
    assert len(utts) == 19 and len(p) == 2 and "1001_XYZ_ANG_XX.wav" in p.summary()
    assert {u.label for u in utts if u.id == "1001_dfa_ang_hi"} == {"angry"}
    with pytest.raises(CorpusError, match="AudioWAV"):
        (tmp_path / "e").mkdir()
        CREMAD(root=str(tmp_path / "e")).load(ProblemLog())
    assert len(CREMAD(root=str(tmp_path / "AudioWAV")).load(ProblemLog("skip"))) == 19  # one level below


def test_votes_file_without_the_vote_columns_is_named(tmp_path):
    write_tree(tmp_path)
    (tmp_path / "processedResults" / "tabulatedVotes.csv").write_text("fileName,x\n1001_IEO_ANG_HI,1\n")
    with pytest.raises(CorpusError, match="tabulatedVotes.csv: expected the columns fileName, A, D"):
        CREMAD(root=str(tmp_path)).load(ProblemLog())
