"""Two processes on CPU (gloo): `trainer: {devices: 2, strategy: ddp}` trains the audio model, and
testing a checkpoint under DDP gives the single-process metrics, each utterance counted once;
predictions are gathered and written once, by rank 0."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from test_reliability import tiny_corpus

ROOT = Path(__file__).resolve().parents[1]


def config(tmp_path, m):
    cfg = {"seed_everything": 0,
           "data": {"class_path": "zoo.data.EmotionDataModule", "init_args": {
               "corpus": {"class_path": "zoo.data.corpora.Manifest", "init_args": {"path": str(m)}},
               "batch_size": 4, "eval_batch_size": 2, "max_seconds": 0.3, "cache_dir": None}},
           "model": {"class_path": "zoo.models.AudioCNN", "init_args": {"channels": [4, 8, 8], "hidden": 8}},
           "trainer": {"max_epochs": 3, "accelerator": "cpu", "devices": 1, "enable_progress_bar": False,
                       "enable_model_summary": False, "default_root_dir": str(tmp_path / "runs"),
                       "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                                  "init_args": {"save_dir": str(tmp_path / "runs"), "name": "zoo"}}}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _zoo(tmp_path, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled"}
    return subprocess.Popen([sys.executable, "-m", "zoo", *args], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _test_row(folder):
    [row] = [r for r in csv.DictReader(open(folder / "metrics.csv")) if r.get("test/UA")]
    return {k: float(v) for k, v in row.items() if k.startswith("test/") and v}


def test_ddp_on_two_processes_matches_one(tmp_path, run):
    m = tiny_corpus(tmp_path, n=27, n_test=7)  # 7 test clips, 2 a batch: 4 batches, odd per-clip shards
    cfg = config(tmp_path, m)
    ddp = ["--trainer.devices", "2", "--trainer.strategy", "ddp"]
    fit_ddp = _zoo(tmp_path, "fit", "--config", str(cfg), *ddp, "--trainer.max_epochs", "2",
                   "--trainer.default_root_dir", str(tmp_path / "ddp"),
                   "--trainer.logger.init_args.save_dir", str(tmp_path / "ddp"))
    r = run("fit", "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = tmp_path / "runs" / "zoo" / "version_0" / "checkpoints" / "last.ckpt"
    r = run("test", "--config", str(cfg), "--ckpt_path", str(ckpt), "--eval_dir", str(tmp_path / "one"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    r = run("predict", "--config", str(cfg), "--ckpt_path", str(ckpt), "--predictions.path",
            str(tmp_path / "one.jsonl"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    test = _zoo(tmp_path, "test", "--config", str(cfg), "--ckpt_path", str(ckpt), *ddp, "--eval_dir", str(tmp_path / "two"))
    pred = _zoo(tmp_path, "predict", "--config", str(cfg), "--ckpt_path", str(ckpt), *ddp,
                "--predictions.path", str(tmp_path / "two.jsonl"))
    for p in (fit_ddp, test, pred):
        out = p.communicate(timeout=400)[0]
        assert p.returncode == 0, out[-4000:]
    # training with two processes: one run folder, checkpoints, synced validation metrics
    run_ddp = tmp_path / "ddp" / "zoo" / "version_0"
    assert (run_ddp / "checkpoints" / "last.ckpt").is_file() and not (tmp_path / "ddp" / "zoo" / "version_1").exists()
    assert any(r.get("val/UA") for r in csv.DictReader(open(run_ddp / "metrics.csv")))
    # the same checkpoint tested on 1 and on 2 processes: the same numbers, every clip once
    one, two = _test_row(tmp_path / "one"), _test_row(tmp_path / "two")
    assert set(one) >= {"test/loss", "test/UA", "test/WA", "test/macro_F1"}
    assert one.keys() == two.keys() and all(abs(one[k] - two[k]) < 1e-6 for k in one), (one, two)
    cm = [list(map(int, row[1:])) for row in list(csv.reader(open(tmp_path / "two" / "confusion_matrix_test.csv")))[1:]]
    assert sum(map(sum, cm)) == 7
    # predictions: gathered on rank 0, one row per clip, the single-process probabilities
    a = {j["id"]: j for j in map(json.loads, open(tmp_path / "one.jsonl"))}
    b = [json.loads(line) for line in open(tmp_path / "two.jsonl")]
    assert len(b) == len(a) == 7 and {j["id"] for j in b} == set(a)
    for j in b:
        assert all(abs(j["probs"][c] - a[j["id"]]["probs"][c]) < 1e-5 for c in j["probs"])
