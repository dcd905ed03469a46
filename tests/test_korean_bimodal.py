"""The bimodal recipe's ablation file (configs/ablation/korean_bimodal.yaml) and folds named in an
ablation file: whole speakers per fold, written out, so they do not move with the split code."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from zoo.ablate import runner, spec
from zoo.errors import ZooUserError

ROOT = Path(__file__).resolve().parents[1]
FILE = ROOT / "configs/ablation/korean_bimodal.yaml"
#: the 15 speakers of the emotiontts_open_db sample (its README)
SPEAKERS = {"ema", "emb", "emf", "emg", "emh", "nea", "neb", "nec", "ned", "nee", "nek", "nel", "nem", "nen", "neo"}


def test_the_folds_hold_out_every_speaker_once(monkeypatch):
    monkeypatch.chdir(ROOT)
    abl = spec.load(FILE)
    assert abl.folds == 5 and [c.name for c in abl.cells()] == ["fusion", "compare", "tfidf"]
    tests = [set(f["test_speakers"]) for f in abl.fold_splits]
    assert all(len(t) == 3 for t in tests) and set().union(*tests) == SPEAKERS
    assert sum(len(t) for t in tests) == len(SPEAKERS)  # each speaker in one test set
    for f in abl.fold_splits:
        assert len(f["val_speakers"]) == 2 and not set(f["val_speakers"]) & set(f["test_speakers"])
    # each test set: one speaker of the plain-script group, two of the emotional-script group
    assert all(sum(s.startswith("em") for s in t) == 1 for t in tests)


def test_the_fusion_cell_takes_the_same_folds_branch_checkpoints(monkeypatch):
    monkeypatch.chdir(ROOT)
    abl = spec.load(FILE)
    runs = abl.runs()
    assert [r.stage for r in runs] == [0] * 10 + [1] * 5  # the branches first
    fusion = next(r for r in runs if r.id == "fusion/seed0-fold3")
    assert {k: d.id for k, d in fusion.deps.items()} == {"model.init_args.audio_checkpoint": "compare/seed0-fold3",
                                                         "model.init_args.text_checkpoint": "tfidf/seed0-fold3"}
    args = runner.fit_args(abl, fusion, Path("out"))
    for a in ('--data.init_args.split.test_speakers=["emg","nee","neo"]',
              '--data.init_args.split.val_speakers=["emh","nea"]', "--model.init_args.cross_fit=5",
              "--model.init_args.fusion=probs", "--data.init_args.split.group_by=speaker",
              "--model.init_args.audio_checkpoint=out/compare/seed0-fold3/checkpoints/best.ckpt"):
        assert a in args, a
    assert not any("split.mode=kfold" in a or "split.fold=" in a for a in args)  # named, not dealt


def test_every_cell_parses_with_the_zoo_cli(monkeypatch):
    monkeypatch.chdir(ROOT)
    abl = spec.load(FILE)
    todo = {r.cell.name: runner.fit_args(abl, r, Path("out")) for r in abl.runs() if r.fold == 0}
    assert runner.preflight(todo) == {}


def test_named_folds_are_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    base = ["configs/data/synthetic.yaml"]

    def load(folds, **extra):
        p = tmp_path / "a.yaml"
        p.write_text(yaml.safe_dump({"name": "x", "base": base, "folds": folds, **extra}))
        return spec.load(p)
    for folds, where in (([{"test_speakers": ["a"]}], "at least two"),
                         ([{"test_speakers": ["a"]}, {"val_speakers": ["b"]}], "folds[1]"),
                         ([{"test_speakers": ["a"]}, {"test_speakers": "b"}], "folds[1].test_speakers"),
                         ([{"test_speakers": ["a"]}, {"test_speakers": ["b"], "fold": 2}], "folds[1].fold")):
        with pytest.raises(ZooUserError, match=where.replace("[", r"\[").replace("]", r"\]")):
            load(folds)
    with pytest.raises(ZooUserError, match="set by the ablation itself"):
        load([{"test_speakers": ["a"]}, {"test_speakers": ["b"]}],
             overrides={"data.init_args.split.test_speakers": ["c"]})
    abl = load([{"test_speakers": ["a", 2]}, {"test_speakers": ["b"], "val_speakers": ["c"]}])
    assert abl.fold_splits == [{"test_speakers": ["a", "2"]}, {"test_speakers": ["b"], "val_speakers": ["c"]}]
    assert [r.name for r in abl.runs()] == ["seed0-fold0", "seed0-fold1"]


def _real_corpus() -> Path | None:
    for p in (ROOT / "data/korean_tts", Path(os.environ.get("ZOO_KOREAN_TTS", "/nonexistent"))):
        if p.is_dir():
            return p
    return None


@pytest.mark.skipif(_real_corpus() is None, reason="no copy of the Korean emotional TTS sample at data/korean_tts")
def test_the_named_speakers_are_the_corpus_speakers():
    from zoo.data.corpora import KoreanTTS
    from zoo.errors import ProblemLog

    utts = KoreanTTS(root=str(_real_corpus())).load(ProblemLog())
    assert {u.speaker for u in utts} == SPEAKERS
