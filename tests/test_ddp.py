"""Two processes on CPU (gloo): `trainer: {devices: 2, strategy: ddp}` trains the audio model, and
testing a checkpoint under DDP gives the single-process metrics, each utterance counted once;
predictions are gathered and written once, by rank 0. Every other family trains on 2 processes
too (two-stage late fusion tested against one process, unfreeze_after_steps with the backbone
synced across ranks, the train loss averaged over the ranks' utterances)."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
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


# -- every family, two-stage late fusion, unfreeze_after_steps, the synced train loss --------------
TINY = ROOT / "configs" / "model" / "tiny"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(tmp_path, plan, out):
    """Two ranks of tests/ddp_worker.py, started as torchrun starts them."""
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    out.mkdir()
    port = str(_free_port())
    procs, logs = [], [out / "rank0.log", out / "rank1.log"]
    for rank in (0, 1):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
               "WANDB_MODE": "disabled", "ZOO_CACHE_DIR": str(tmp_path / "zoo-cache"),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "WORLD_SIZE": "2", "RANK": str(rank),
               "LOCAL_RANK": str(rank), "NODE_RANK": "0"}
        cmd = [sys.executable, str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path / "plan.json"), str(out)]
        with open(logs[rank], "w") as log:
            procs.append(subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 500
    # a rank that fails leaves the other waiting in a collective: stop it rather than wait
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if any(p.poll() not in (None, 0) for p in procs):
            break
        time.sleep(0.5)
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(
        f"--- rank {r} (exit {p.returncode}):\n{log.read_text()[-3000:]}" for r, (p, log) in enumerate(zip(procs, logs)))


def other_families() -> list[str]:
    """The config (first of its class in configs/model/) of every family the plan of
    test_every_family_trains_under_ddp does not train already: late fusion and the SSL encoders have
    runs of their own, AudioCNN trains as late fusion's audio branch. A new family is smoke-trained
    under DDP with no list to edit."""
    import zoo.models

    covered = (zoo.models.LateFusion, zoo.models.SSLClassifier, zoo.models.AudioCNN)
    first: dict[str, str] = {}
    for p in sorted((ROOT / "configs" / "model").glob("*.yaml")):
        first.setdefault(yaml.safe_load(p.read_text(encoding="utf-8"))["model"]["class_path"], p.stem)
    return [name for cls, name in first.items()
            if not issubclass(getattr(zoo.models, cls.rsplit(".", 1)[1]), covered)]

def test_every_family_trains_under_ddp(tmp_path, run):
    """Two-stage late fusion (frozen branches from checkpoints, fitted on val), SSLClassifier with
    unfreeze_after_steps, and a two-step smoke fit of every other family, on 2 processes; the
    late-fusion checkpoint tested on 2 processes gives the single-process metrics."""
    import torch
    from transformers import AutoModel, Wav2Vec2Config

    m = tiny_corpus(tmp_path, n=26, n_test=7, seconds=0.4, text=True)  # 15 training clips: one batch of 1, so ranks' batches differ in size
    cfg = config(tmp_path, m)
    w2v = tmp_path / "w2v"
    torch.manual_seed(1)  # a tiny random wav2vec2 (LayerDrop and SpecAugment on: unused parameters)
    AutoModel.from_config(Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=[8] * 7,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, layerdrop=0.1)).save_pretrained(w2v)

    def args(name, *model):
        return ["--config", str(cfg), *model, "--data.init_args.batch_size", "2",
                "--data.init_args.cache_dir", str(tmp_path / "cache"), "--trainer.logger.init_args.name", name]

    # stage 1, one process: the branches late fusion loads
    for name in ("audio_cnn", "text_kobert"):
        r = run("fit", *args(name, "--config", str(TINY / f"{name}.yaml")), "--trainer.max_epochs", "1", cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-3000:]
    ckpt = {n: str(tmp_path / "runs" / n / "version_0" / "checkpoints" / "last.ckpt")
            for n in ("audio_cnn", "text_kobert")}
    ddp = ["--trainer.devices", "2", "--trainer.strategy", "ddp"]
    smoke = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"]
    fusion = args("fusion", "--config", str(TINY / "late_fusion.yaml"), "--model.init_args.fusion", "probs",
                  "--model.init_args.audio_checkpoint", ckpt["audio_cnn"],
                  "--model.init_args.text_checkpoint", ckpt["text_kobert"], "--model.init_args.freeze_encoders", "true")
    fusion_ckpt = tmp_path / "runs" / "fusion" / "version_0" / "checkpoints" / "last.ckpt"
    ssl = ["--model", "zoo.models.SSLClassifier", "--model.init_args.pretrained", str(w2v)]
    plan = [
        {"name": "fusion", "argv": ["fit", *fusion, *ddp, "--trainer.max_epochs", "2"]},
        {"name": "fusion_test", "argv": ["test", *fusion, *ddp, "--ckpt_path", str(fusion_ckpt),
                                         "--eval_dir", str(tmp_path / "two")]},
        # 4 steps an epoch on each rank: 2 with the backbone frozen, 2 training it
        {"name": "unfreeze", "dump": ["encoder.model."],
         "argv": ["fit", *args("unfreeze", *ssl, "--model.init_args.unfreeze_after_steps", "2",
                               "--model.init_args.optimizer.init_args.lr", "0.01"),
                  *ddp, "--trainer.max_epochs", "1", "--trainer.log_every_n_steps", "1"]},
        {"name": "probe", "argv": ["fit", *args("probe", *ssl, "--model.init_args.freeze_encoder", "true",
                                                "--model.init_args.weighted_layers", "true",
                                                "--model.init_args.embedding_cache", str(tmp_path / "emb")),
                                   *ddp, *smoke]},
        {"name": "late_e2e",
         "argv": ["fit", *args("late_e2e", "--config", str(TINY / "late_fusion.yaml")), *ddp, *smoke]},
    ] + [{"name": n, "argv": ["fit", *args(n, "--config", str(ROOT / "configs" / "model" / f"{n}.yaml"),
                                           "--config", str(TINY / f"{n}.yaml")), *ddp, *smoke]}
         for n in other_families()]
    out = tmp_path / "out"
    _torchrun(tmp_path, plan, out)
    for job in plan[2:]:
        assert (tmp_path / "runs" / job["name"] / "version_0" / "checkpoints" / "last.ckpt").is_file(), job["name"]
    # late fusion: the DDP-trained checkpoint tested on one process gives the two-process numbers
    r = run("test", *fusion, "--ckpt_path", str(fusion_ckpt), "--eval_dir", str(tmp_path / "one"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    one, two = _test_row(tmp_path / "one"), _test_row(tmp_path / "two")
    assert set(one) >= {"test/loss", "test/UA", "test/WA", "test/macro_F1"}
    assert one.keys() == two.keys() and all(abs(one[k] - two[k]) < 1e-6 for k in one), (one, two)
    cm = [list(map(int, row[1:])) for row in list(csv.reader(open(tmp_path / "two" / "confusion_matrix_test.csv")))[1:]]
    assert sum(map(sum, cm)) == 7
    # unfreeze_after_steps: after the unfreeze the backbone trained on both ranks' gradients, so
    # the two ranks hold the same weights, and they moved from the pretrained ones
    r0, r1 = (torch.load(out / f"unfreeze.rank{r}.pt") for r in (0, 1))
    start = {f"encoder.model.{k}": v for k, v in AutoModel.from_pretrained(w2v).state_dict().items()}
    layer = [k for k in r0["params"] if ".encoder.layers." in k and k.endswith("weight")]
    assert layer and all(torch.equal(r0["params"][k], r1["params"][k]) for k in r0["params"])
    assert all(not torch.equal(r0["params"][k], start[k]) for k in layer)
    cnn = [k for k in r0["params"] if "feature_extractor" in k]
    assert cnn and all(torch.equal(r0["params"][k], start[k]) for k in cnn)  # freeze_feature_encoder
    # the logged train loss: each step's and the epoch's mean over both ranks' utterances
    rows = list(csv.DictReader(open(tmp_path / "runs" / "unfreeze" / "version_0" / "metrics.csv")))
    logged = {int(r["step"]): float(r["train/loss_step"]) for r in rows if r.get("train/loss_step")}
    assert len(r0["steps"]) == len(r1["steps"]) == 4 and sorted(logged) == [0, 1, 2, 3]
    assert any(a[2] != b[2] for a, b in zip(r0["steps"], r1["steps"]))  # a step weighs the ranks unequally
    for i, (a, b) in enumerate(zip(r0["steps"], r1["steps"])):
        assert abs(logged[i] - (a[1] * a[2] + b[1] * b[2]) / (a[2] + b[2])) < 1e-5, (i, a, b, logged)
    both = r0["steps"] + r1["steps"]
    [epoch] = [float(r["train/loss_epoch"]) for r in rows if r.get("train/loss_epoch")]
    assert abs(epoch - sum(l * n for _, l, n in both) / sum(n for *_, n in both)) < 1e-5
    # the frozen encoder's embedding cache, filled by both ranks: whole entries, no leftovers
    assert list((tmp_path / "emb").rglob("*.npy")) and not list((tmp_path / "emb").rglob("*.tmp"))


def test_models_that_need_it_set_find_unused_parameters_on_a_ddp_strategy():
    import lightning as L

    from zoo.models import AudioCNN, LateFusion, SSLClassifier

    w2v = {"pretrained": None, "hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32,
           "conv_dim": [8] * 7, "config_overrides": {"num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4}}
    audio = {"class_path": "zoo.models.AudioCNN", "init_args": {"channels": [4], "hidden": 4}}
    text = {"class_path": "zoo.models.TextTfidf", "init_args": {}}

    def kwargs(model, strategy="ddp"):
        trainer = L.Trainer(accelerator="cpu", devices=1, strategy=strategy, logger=False)
        model.trainer = trainer
        model._configure_ddp()
        return trainer.strategy._ddp_kwargs

    cls = ["a", "b"]
    assert kwargs(SSLClassifier(class_names=cls, unfreeze_after_steps=3, **w2v)) == {"find_unused_parameters": True}
    assert kwargs(SSLClassifier(class_names=cls, freeze_encoder=True, **w2v)) == {}
    assert kwargs(LateFusion(class_names=cls, audio_branch=audio, text_branch=text)) == {"find_unused_parameters": True}
    assert kwargs(AudioCNN(class_names=cls, channels=[4], hidden=4)) == {}
    # the user's own choice stays
    assert kwargs(SSLClassifier(class_names=cls, **w2v), "ddp_find_unused_parameters_false") == \
        {"find_unused_parameters": False}
