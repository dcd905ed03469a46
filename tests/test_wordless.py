"""Segments without words (a laugh, a sigh: KEMDy's ``l/``, ``(웃음)``, a lone ``b/``) are valid rows:
text models leave them out and count them, late fusion predicts them from the audio, ``zoo check``
lists them, and the stock KEMDy data configs train a text model on a tree that has them."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from zoo.data import DataRequest, EmotionDataModule
from zoo.data.corpora import KEMDy19, KEMDy20
from zoo.data.corpora._kemdy import clean_transcript
from zoo.errors import CorpusError, ProblemLog

ROOT = Path(__file__).resolve().parents[1]
CORPORA = {"kemdy19": KEMDy19, "kemdy20": KEMDy20}


def test_nonverbal_tags_alone_leave_no_words():
    for tags in ("l/", "b/", "(웃음)", " ( 웃음 ) ", "l/ (웃음) c/", "(한숨) n/", "(laughter)", "+ *"):
        assert clean_transcript(tags) == "", tags
    assert clean_transcript("(웃음) 아 진짜 l/ 웃기다") == "아 진짜 웃기다"
    # only notes of sounds go: another lone (...) keeps its word, a spelling pair its spelling
    assert clean_transcript("(그래) 좋아") == "그래 좋아"
    assert clean_transcript("(웃음)/(우슴) 소리") == "웃음 소리"


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_the_adapter_keeps_wordless_segments_without_text(name, tmp_path):
    fixture = importlib.import_module(f"fixtures.{name}")
    info = fixture.write_tree(tmp_path)
    corpus = CORPORA[name](root=str(tmp_path))
    utts = corpus.load(ProblemLog())
    wordless = [u for u in utts if u.text is None and u.meta.get("raw_text")]
    assert len(wordless) == info["wordless"] > 0
    assert {clean_transcript(u.meta["raw_text"]) for u in wordless} == {""}
    assert corpus.skipped.counts["transcript of nonverbal tags only (kept without words)"] == info["wordless"]
    assert corpus.skipped.dropped().get("transcript of nonverbal tags only (kept without words)") is None


def _dm(corpus, **kw) -> EmotionDataModule:
    return EmotionDataModule(corpus=corpus, cache_dir=None, batch_size=4,
                             split={"mode": "group", "group_by": "speaker", "val_fraction": 0.25,
                                    "test_fraction": 0.25}, **kw)


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_a_text_model_leaves_them_out_on_the_audio_models_speaker_split(name, tmp_path):
    fixture = importlib.import_module(f"fixtures.{name}")
    info = fixture.write_tree(tmp_path)
    no_text = info.get("no_txt", 0) + info.get("empty_txt", 0)

    audio = _dm(CORPORA[name](root=str(tmp_path)), modalities=["audio"])
    audio.setup("fit")
    text = _dm(CORPORA[name](root=str(tmp_path)))
    text.request(DataRequest(modalities=("text",)))
    text.setup("fit")
    fusion = _dm(CORPORA[name](root=str(tmp_path)))
    fusion.request(DataRequest(modalities=("audio", "text"), text_optional=True))
    fusion.setup("fit")

    assert len(audio.split("all")) == len(fusion.split("all")) == info["n"]
    assert len(text.split("all")) == info["n"] - info["wordless"] - no_text
    assert all((u.text or "").strip() for u in text.split("all"))
    dropped = text.report["dropped"]
    assert dropped["transcript without words (nonverbal tags only): left out for a text model"] == info["wordless"]
    assert dropped["no transcript: left out for a text model"] == no_text
    assert not any("left out" in r for r in [*audio.report["dropped"], *fusion.report["dropped"]])
    # the split is made before they leave: every speaker is in the same split for both models
    for s in ("train", "val", "test"):
        assert {u.speaker for u in text.split(s)} == {u.speaker for u in audio.split(s)}, s
    # the data config can call them problems instead
    strict = _dm(CORPORA[name](root=str(tmp_path)), without_words="problem")
    strict.request(DataRequest(modalities=("text",)))
    with pytest.raises(CorpusError, match="empty transcript"):
        strict.setup("fit")


def test_a_corpus_with_no_words_at_all_is_one_clear_error(tmp_path):
    from fixtures.kemdy20 import write_tree

    write_tree(tmp_path)
    for txt in (tmp_path / "wav").rglob("*.txt"):
        txt.write_text("l/", encoding="utf-8")
    dm = _dm(KEMDy20(root=str(tmp_path)))
    dm.request(DataRequest(modalities=("text",)))
    with pytest.raises(CorpusError, match="none of the utterances has words"):
        dm.setup("fit")


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_the_stock_data_config_trains_a_text_model_on_a_tree_with_wordless_segments(name, tmp_path, run):
    fixture = importlib.import_module(f"fixtures.{name}")
    info = fixture.write_tree(tmp_path / "corpus", sessions=(1, 2, 3))
    out = tmp_path / "runs"
    r = run("fit", "--config", str(ROOT / f"configs/data/{name}.yaml"),
            "--config", str(ROOT / "configs/model/text_tfidf.yaml"),
            "--data.init_args.corpus.init_args.root", str(tmp_path / "corpus"),
            "--data.init_args.cache_dir", str(tmp_path / "cache"),
            "--trainer.max_epochs", "2", "--trainer.enable_progress_bar", "false",
            "--trainer.default_root_dir", str(out), "--trainer.logger.init_args.save_dir", str(out),
            "--test_after_fit", "true", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"{info['wordless']} transcript without words (nonverbal tags only): left out for a text model" in r.stderr
    assert (out / "zoo/version_0/checkpoints/last.ckpt").is_file()


def test_check_lists_them(tmp_path, capsys):
    from fixtures.kemdy19 import write_tree

    from zoo.check import check

    info = write_tree(tmp_path / "corpus")
    cfg = yaml.safe_load((ROOT / "configs/data/kemdy19.yaml").read_text(encoding="utf-8"))
    cfg["data"]["init_args"]["corpus"]["init_args"]["root"] = str(tmp_path / "corpus")
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    assert check([str(tmp_path / "data.yaml")], workers=1, progress=False) == 0
    out = capsys.readouterr().out
    assert f"transcripts without words (nonverbal tags only; text models leave them out): {info['wordless']}" in out
    assert "Sess01_impro02_F003: 'l/'" in out and "Sess01_impro01_M004: '(웃음) b/'" in out
