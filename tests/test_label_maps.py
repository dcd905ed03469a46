"""Label maps, multi-corpus training (per-corpus metrics) and a cross-corpus test through the CLI."""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
import yaml

from fixtures import cremad, ravdess, tess
from zoo.data import EmotionDataModule
from zoo.data.corpora import CREMAD, RAVDESS, TESS, MultiCorpus
from zoo.data.label_map import load_label_map, shipped
from zoo.errors import CorpusError, ZooUserError

ROOT = Path(__file__).resolve().parents[1]


def dm(corpus, **kw):
    kw.setdefault("split", {"mode": "random", "val_fraction": 0.2, "test_fraction": 0.2})
    return EmotionDataModule(corpus=corpus, cache_dir=None, modalities=["audio"], batch_size=4, **kw)


def test_shipped_maps():
    assert {"4class", "aihub7"} <= set(shipped())
    four = load_label_map("4class")
    assert four.classes == ("neutral", "happy", "angry", "sad")
    assert four("Happiness") == "happy" and four(" EXCITED") == "happy" and four("calm") is None
    assert load_label_map("aihub7")("Pleasant Surprise") == "Surprise"
    for name in shipped():  # every shipped map loads (no label taken twice)
        assert load_label_map(name).classes


def test_unmapped_labels_are_dropped_and_counted_per_label(tmp_path):
    ravdess.write_tree(tmp_path)
    d = dm(RAVDESS(root=str(tmp_path)), label_map="4class")
    d.setup("fit")
    assert d.class_names == ["neutral", "happy", "angry", "sad"]
    assert Counter(u.label for u in d.split("all")) == {"neutral": 3, "happy": 3, "angry": 6, "sad": 3}
    for label in ("calm", "fearful", "disgust", "surprised"):
        assert d.report["dropped"][f"label {label!r} not in label map 4class"] == 3
    assert d.split("all")[0].meta["corpus_label"] in ("neutral", "happy", "angry", "sad")


def test_aihub7_on_tess_and_an_empty_corpus_after_mapping(tmp_path):
    tess.write_tree(tmp_path)
    d = dm(TESS(root=str(tmp_path)), label_map="aihub7")
    assert Counter(u.label for u in d.utterances())["Surprise"] == 6
    (tmp_path / "only_calm.yaml").write_text("name: calm\nclasses:\n  calm: [calm]\n")
    with pytest.raises(CorpusError, match="no utterances left.*not in label map calm"):
        dm(TESS(root=str(tmp_path)), label_map=str(tmp_path / "only_calm.yaml")).utterances()


def test_bad_label_maps_are_named(tmp_path):
    with pytest.raises(ZooUserError, match="label map 'nope' not found.*4class"):
        dm(TESS(root=str(tmp_path)), label_map="nope")
    (tmp_path / "twice.yaml").write_text("classes:\n  a: [x]\n  b: [X]\n")
    with pytest.raises(ZooUserError, match="'X' is taken by both 'a' and 'b'"):
        load_label_map(str(tmp_path / "twice.yaml"))
    (tmp_path / "flat.yaml").write_text("classes: [a, b]\n")
    with pytest.raises(ZooUserError, match="expected 'classes:'"):
        load_label_map(str(tmp_path / "flat.yaml"))


def test_multi_corpus_keeps_speakers_apart(tmp_path):
    ravdess.write_tree(tmp_path / "r")
    cremad.write_tree(tmp_path / "c")
    # both corpora get a speaker "01"-like clash: the same id in the two corpora stays two speakers
    c = MultiCorpus(corpora=[RAVDESS(root=str(tmp_path / "r")), RAVDESS(root=str(tmp_path / "r"))],
                    label_map="4class")
    d = dm(c, split={"mode": "group", "val_fraction": 0.34, "test_fraction": 0.33})
    d.setup("fit")
    assert c.tags == ["ravdess1", "ravdess2"]
    speakers = {s: {u.speaker for u in d.split(s)} for s in ("train", "val", "test")}
    assert len(set().union(*speakers.values())) == 6
    assert not speakers["train"] & speakers["test"] and not speakers["train"] & speakers["val"]
    assert all(u.speaker.startswith(u.meta["corpus"] + ":") for u in d.split("all"))


def _data_config(path: Path, corpus: dict, **init) -> Path:
    path.write_text(yaml.safe_dump({"data": {"class_path": "zoo.data.EmotionDataModule", "init_args": {
        "corpus": corpus, "cache_dir": None, "batch_size": 4, "max_seconds": 1.0, **init}}}))
    return path


def _metrics(run_dir: Path) -> dict[str, float]:
    out = {}
    for row in csv.DictReader(open(run_dir / "metrics.csv", encoding="utf-8")):
        out.update({k: float(v) for k, v in row.items() if v not in ("", None) and k.startswith(("test/", "val/"))})
    return out


def test_multi_corpus_fit_and_a_cross_corpus_test_through_the_cli(tmp_path, run):
    ravdess.write_tree(tmp_path / "ravdess")
    cremad.write_tree(tmp_path / "cremad")
    rav = {"class_path": "zoo.data.corpora.RAVDESS", "init_args": {"root": str(tmp_path / "ravdess")}}
    cre = {"class_path": "zoo.data.corpora.CREMAD", "init_args": {"root": str(tmp_path / "cremad")}}
    multi = _data_config(tmp_path / "multi.yaml", {"class_path": "zoo.data.corpora.MultiCorpus", "init_args": {
        "label_map": "4class", "corpora": [rav, cre]}},
        split={"mode": "group", "val_fraction": 0.34, "test_fraction": 0.33})
    common = ["--config", str(ROOT / "configs/model/audio_cnn.yaml"), "--config", str(ROOT / "configs/model/tiny/audio_cnn.yaml"),
              "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
              "--trainer.logger.init_args.save_dir", str(tmp_path / "runs")]
    r = run("fit", "--config", str(multi), *common, "--trainer.logger.init_args.name", "multi",
            "--test_after_fit", "true", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    m = _metrics(tmp_path / "runs/multi/version_0")
    assert {"test/UA", "test/UA/ravdess", "test/UA/cremad", "val/UA/ravdess", "test/WA/cremad"} <= set(m)
    assert all(0.0 <= m[k] <= 1.0 for k in m if "/UA" in k)

    # train on RAVDESS (4 classes), test that checkpoint on all of CREMA-D through the same map
    train = _data_config(tmp_path / "rav.yaml", rav, label_map="4class",
                         split={"mode": "group", "val_fraction": 0.34, "test_fraction": 0.33})
    r = run("fit", "--config", str(train), *common, "--trainer.logger.init_args.name", "rav", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    run_dir = tmp_path / "runs/rav/version_0"
    ckpt = run_dir / "checkpoints/last.ckpt"
    other = _data_config(tmp_path / "cre.yaml", cre)
    r = run("test", "--config", str(run_dir / "config.yaml"), "--config", str(other),
            "--data.test_split", "all", "--ckpt_path", str(ckpt), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    m = _metrics(run_dir / "test-last")  # an evaluation of a run's checkpoint lands beside it
    assert "test/UA" in m
    # the whole corpus in the four classes: 12 of CREMA-D's 18 clips (fear and disgust dropped)
    assert "12 utterances, 4 classes" in r.stderr


def test_per_corpus_scores_are_computed_from_summed_counts():
    """UA = mean recall over the classes a corpus has, WA = accuracy, from confusion counts (the
    form that sums across DDP ranks); batches of mixed corpora split correctly."""
    import torch

    from zoo.models import AudioCNN

    m = AudioCNN(class_names=["a", "b", "c"], channels=[4], hidden=4)
    got = {}
    m.log = lambda k, v, **kw: got.__setitem__(k, float(v))
    m._count_by_corpus("test", torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 0, -1]), ["x", "x", "y", "y"])
    m._count_by_corpus("test", torch.tensor([0, 0]), torch.tensor([0, 1]), ["x", "x"])
    m._log_by_corpus("test")
    # x: labels 0,1,0,1 -> preds 0,1,0,0: recall a 1.0, b 0.5; y: one labelled (0 -> 1), one -1 ignored
    assert got == pytest.approx({"test/UA/x": 0.75, "test/WA/x": 0.75, "test/UA/y": 0.0, "test/WA/y": 0.0})
    assert m._by_corpus == {}
