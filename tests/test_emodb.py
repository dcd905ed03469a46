"""Berlin EmoDB adapter, on fake EmoDB-named files (and on the real copy when present)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from fixtures.emodb import fake_emodb
from zoo.data.corpora.emodb import EMOTIONS, SENTENCES, SPEAKERS, load_emodb
from zoo.errors import CorpusError, ProblemLog

REAL = Path("/work/shared/data/emodb")


def test_fake_emodb(tmp_path):
    root = fake_emodb(tmp_path, ["03a01Fa.wav", "08b10Wb.wav", "16a05Lc.wav", "11b09Nd.wav"])
    (root / "erkennung.txt").write_bytes(
        "Nr.\tSatz\terkannt\tnatuerlich\n1\xa0\t03a01Fa.wav\t90,00\xa0\t75,00\xa0\n".encode("latin-1"))
    problems = ProblemLog()
    utts = {u.id: u for u in load_emodb(root, problems=problems)}
    assert not problems.items and list(utts) == ["03a01Fa", "08b10Wb", "11b09Nd", "16a05Lc"]
    u = utts["03a01Fa"]
    assert u.label == "Happiness" and u.speaker == "03" and u.text == "Der Lappen liegt auf dem Eisschrank."
    assert u.meta["text_code"] == "a01" and u.meta["gender"] == "male" and u.meta["version"] == "a"
    assert u.meta["recognition"] == 90.0 and u.meta["naturalness"] == 75.0
    assert Path(u.audio).is_file() and Path(u.audio).is_absolute()
    assert utts["08b10Wb"].label == "Angry" and utts["08b10Wb"].meta["gender"] == "female"
    assert utts["16a05Lc"].label == "Boredom" and utts["11b09Nd"].label == "Neutral"
    assert "recognition" not in utts["08b10Wb"].meta
    # the wav folder itself works as root too
    assert len(load_emodb(root / "wav", problems=ProblemLog())) == 4


def test_bad_names(tmp_path):
    root = fake_emodb(tmp_path, ["03a01Fa.wav", "notes.wav", "03a01Xa.wav"])
    problems = ProblemLog("skip")
    assert [u.id for u in load_emodb(root, problems=problems)] == ["03a01Fa"]
    assert problems.counts() == {"not an EmoDB file name": 1, "unknown emotion letter": 1}
    with pytest.raises(CorpusError):
        load_emodb(tmp_path / "empty", problems=ProblemLog())


def test_tables():
    assert sorted(EMOTIONS.values()) == sorted(
        ["Angry", "Boredom", "Disgust", "Fear", "Happiness", "Sadness", "Neutral"])
    assert len(SENTENCES) == 10 and len(SPEAKERS) == 10
    assert Counter(g for g, _ in SPEAKERS.values()) == {"male": 5, "female": 5}


@pytest.mark.skipif(not (REAL / "wav").is_dir(), reason="no EmoDB copy at /work/shared/data/emodb")
def test_real_emodb():
    problems = ProblemLog()
    utts = load_emodb(REAL, problems=problems)
    assert not problems.items and len(utts) == 535
    assert len({u.speaker for u in utts}) == 10 and len({u.label for u in utts}) == 7
    assert {u.meta["text_code"] for u in utts} == set(SENTENCES)
    assert all(u.text and u.meta["gender"] and "recognition" in u.meta for u in utts)
    assert min(u.meta["recognition"] for u in utts) >= 80
