"""Korean emotional TTS sample: number ranges, the configurable map, transcripts, bad input."""
from __future__ import annotations

import pytest

from fixtures import write_wav
from fixtures.korean_tts import write_tree
from zoo.data.corpora import KoreanTTS
from zoo.errors import CorpusError, ProblemLog


def test_default_map_is_sad_before_angry_and_texts_are_read(tmp_path):
    write_tree(tmp_path)
    p = ProblemLog()
    utts = {u.id: u for u in KoreanTTS(root=str(tmp_path)).load(p)}
    assert not p.items and len(utts) == 24
    assert utts["nea/nea00201"].label == "sad" and utts["neb/neb00399"].label == "angry"
    assert utts["nea/nea00101"].text == "nea 문장 101"  # one file per utterance, BOM stripped
    assert utts["ema/ema00002"].text == "ema 문장 2"  # a list file
    assert utts["ema/ema00301"].meta["group"] == "plain-to-emotional"


def test_the_map_is_configurable_and_out_of_range_files_are_counted(tmp_path):
    write_tree(tmp_path)
    readme = KoreanTTS(root=str(tmp_path), emotion_ranges={"neutral": [1, 100], "happy": [101, 200],
                                                           "angry": [201, 300], "sad": [301, 400]})
    assert {u.label for u in readme.load(ProblemLog()) if u.meta["number"] == 201} == {"angry"}
    assert readme.default_class_names == ("neutral", "happy", "angry", "sad")
    write_wav(tmp_path / "plain-to-emotional" / "ema" / "wav" / "ema00401.wav", 0, 90)
    write_wav(tmp_path / "plain-to-emotional" / "ema" / "wav" / "ema_extra.wav", 0, 91)
    c = KoreanTTS(root=str(tmp_path))
    p = ProblemLog("skip")
    assert len(c.load(p)) == 24 and len(p) == 1 and "ema_extra.wav" in p.summary()
    assert c.skipped.counts == {"file number outside every emotion range": 1}
    with pytest.raises(CorpusError, match=r"emotion_ranges\['sad'\]"):
        KoreanTTS(root=str(tmp_path), emotion_ranges={"sad": [300, 201]})


def test_roots(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        KoreanTTS(root=str(tmp_path / "nope")).load(ProblemLog())
    (tmp_path / "e" / "x").mkdir(parents=True)
    with pytest.raises(CorpusError, match="no speaker folder with a wav/"):
        KoreanTTS(root=str(tmp_path / "e")).load(ProblemLog())
    write_tree(tmp_path / "db")
    assert len(KoreanTTS(root=str(tmp_path / "db" / "emotional-to-emotional")).load(ProblemLog())) == 16
    assert len(KoreanTTS(root=str(tmp_path / "db" / "emotional-to-emotional" / "nea")).load(ProblemLog())) == 8
