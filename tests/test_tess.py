"""TESS adapter: folder spellings, cut prefixes, decoding by content, bad names."""
from __future__ import annotations

import numpy as np
import pytest

from fixtures import write_wav
from fixtures.tess import write_tree
from zoo.data.audio import AudioLoader
from zoo.data.corpora import TESS
from zoo.errors import CorpusError, ProblemLog


def test_records_spellings_and_cut_prefix(tmp_path):
    labels = write_tree(tmp_path)
    c = TESS(root=str(tmp_path))
    p = ProblemLog()
    utts = {u.id: u for u in c.load(p)}
    assert not p.items and len(utts) == 24 and sum(labels.values()) == 24
    u = utts["OAF_neutral/OA_bite_neutral"]
    assert (u.speaker, u.label, u.meta["word"]) == ("OAF", "neutral", "bite")
    assert c.speaker_from_folder == ["OA_bite_neutral.wav"]
    assert {u.label for k, u in utts.items() if "pleasant" in k.lower()} == {"pleasant_surprise"}


def test_aiff_under_a_wav_name_and_other_rates_decode_by_content(tmp_path, cache_dir):
    write_tree(tmp_path)
    load = AudioLoader(16000, None)
    utts = TESS(root=str(tmp_path)).load(ProblemLog())
    lengths = {u.id: load(u.audio).shape[0] for u in utts}
    assert set(lengths.values()) == {800}  # 0.05 s at 16 kHz, whatever the source rate or format
    aiff = next(u for u in utts if open(u.audio, "rb").read(4) == b"FORM")
    assert aiff.audio.endswith(".wav") and np.isfinite(load(aiff.audio)).all()


def test_bad_names_mismatch_and_roots(tmp_path):
    write_tree(tmp_path)
    write_wav(tmp_path / "YAF_sad" / "YAF_dog_joyful.wav", 0, 50)
    write_wav(tmp_path / "YAF_sad" / "YAF_dog_happy.wav", 0, 51)  # the folder says sad
    write_wav(tmp_path / "YAF_sad" / "dog.wav", 0, 52)
    p = ProblemLog("skip")
    c = TESS(root=str(tmp_path))
    utts = c.load(p)
    assert len(utts) == 25 and len(p) == 2 and "YAF_dog_joyful.wav: not a TESS file name" in p.summary()
    # the file name is the label; the disagreeing folder is counted
    assert [u.label for u in utts if u.id == "YAF_sad/YAF_dog_happy"] == ["happy"]
    assert c.skipped.examples["file name and folder disagree (file name used, file kept)"] == ["YAF_sad/YAF_dog_happy.wav"]
    with pytest.raises(CorpusError, match="speaker_emotion folders"):
        (tmp_path / "e").mkdir()
        TESS(root=str(tmp_path / "e")).load(ProblemLog())
    # a copy nested one level down (the Kaggle layout) is found, and read once
    write_tree(tmp_path / "k" / "TESS Toronto emotional speech set data")
    assert len(TESS(root=str(tmp_path / "k")).load(ProblemLog())) == 24
