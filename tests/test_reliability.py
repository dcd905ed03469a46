"""Crash safety: a non-finite loss stops the run at once; checkpoints are written atomically;
SIGTERM checkpoints before exit; a run killed mid-epoch resumes to the same result."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from zoo.callbacks import FiniteLossCheck, TrainingDiverged
from zoo.data import EmotionDataModule
from zoo.data.corpora import Manifest
from zoo.models import AudioCNN

SR = 16000


def tiny_corpus(root, n=24, seconds=0.5, n_test=6, text=False):
    """Two classes told apart by pitch, four speakers; a manifest with a fixed split (4 val clips).
    ``text``: a transcript column whose words also tell the classes apart."""
    (root / "wav").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    words = {"a": ["happy bright sunny day", "joy and smiles"], "b": ["sad grey rain", "tears and loss"]}
    lines = ["path,label,text,speaker,split" if text else "path,label,speaker,split"]
    t = np.arange(int(seconds * SR)) / SR
    for i in range(n):
        lab = "ab"[i % 2]
        f = (180 if lab == "a" else 420) * (1 + 0.05 * rng.standard_normal())
        x = 0.3 * np.sin(2 * np.pi * f * t) + 0.02 * rng.standard_normal(t.size)
        sf.write(root / "wav" / f"u{i:02d}.wav", x.astype(np.float32), SR, subtype="PCM_16")
        split = "test" if i >= n - n_test else "val" if i >= n - n_test - 4 else "train"
        said = f"{words[lab][i % 4 // 2]} {i}," if text else ""
        lines.append(f"wav/u{i:02d}.wav,{lab},{said}s{i % 4},{split}")
    (root / "m.csv").write_text("\n".join(lines) + "\n")
    return root / "m.csv"


class NaNAfter(AudioCNN):
    """An AudioCNN whose loss turns NaN at optimiser step ``bad_step``."""

    bad_step = 2

    def loss(self, logits, batch):
        out = super().loss(logits, batch)
        return out * math.nan if self.global_step >= self.bad_step else out


def test_a_nan_loss_stops_the_run_at_that_step_naming_the_batch(tmp_path):
    import lightning as L

    m = tiny_corpus(tmp_path)
    dm = EmotionDataModule(corpus=Manifest(path=str(m)), cache_dir=None, batch_size=4, modalities=["audio"])
    model = NaNAfter(class_names=["a", "b"], channels=[4, 4, 4], hidden=8)
    seen = []

    class Ids(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(list(batch.ids))

    trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[FiniteLossCheck(), Ids()])
    with pytest.raises(TrainingDiverged) as e:
        trainer.fit(model, dm)
    msg = str(e.value)
    assert "the training loss is nan at step 2 (epoch 0, batch 2)" in msg
    assert trainer.global_step == 2 and len(seen) == 3
    assert all(u in msg for u in seen[-1])  # the ids of the batch that diverged
    assert all(torch.isfinite(p).all() for p in model.parameters())  # no NaN step was taken
    # disabled: the run goes on (and the NaN reaches the weights)
    model = NaNAfter(class_names=["a", "b"], channels=[4, 4, 4], hidden=8)
    L.Trainer(max_steps=4, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, callbacks=[FiniteLossCheck(enabled=False)]).fit(model, dm)
    assert not all(torch.isfinite(p).all() for p in model.parameters())


def test_the_cli_checks_the_loss_by_default(run, tmp_path):
    r = run("fit", "--config", "configs/demo.yaml", "--print_config")
    assert r.returncode == 0
    assert "finite_loss:\n  enabled: true" in r.stdout


# -- crash safety: subprocess runs of `python -m zoo fit` on the tiny corpus --------------------

KILLER = '''
import os, signal
import lightning as L


class KillAt(L.Callback):
    """Send the process a signal after optimiser step `step` (a pre-emption or a kill -9)."""

    def __init__(self, step: int, sig: str = "SIGKILL"):
        self.step, self.sig = step, sig

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), getattr(signal, self.sig))
'''


def fit_config(tmp_path, m, kill=None):
    import yaml

    cfg = {
        "seed_everything": 3, "test_after_fit": True,
        "data": {"class_path": "zoo.data.EmotionDataModule", "init_args": {
            "corpus": {"class_path": "zoo.data.corpora.Manifest", "init_args": {"path": str(m)}},
            "batch_size": 4, "max_seconds": 0.3, "cache_dir": None, "num_workers": 0}},
        "model": {"class_path": "zoo.models.AudioCNN", "init_args": {
            "channels": [4, 8, 8], "hidden": 8, "dropout": 0.3}},
        "trainer": {"max_epochs": 4, "deterministic": True, "accelerator": "cpu", "devices": 1,
                    "enable_progress_bar": False, "enable_model_summary": False,
                    "default_root_dir": str(tmp_path / "runs"),
                    "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                               "init_args": {"save_dir": str(tmp_path / "runs"), "name": "zoo"}}},
    }
    if kill:
        cfg["trainer"]["callbacks"] = [{"class_path": "killer.KillAt", "init_args": kill}]
    path = tmp_path / ("kill.yaml" if kill else "fit.yaml")
    path.write_text(yaml.safe_dump(cfg))
    return path


def zoo_fit(tmp_path, config, *extra):
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "killer.py").write_text(KILLER)
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(repo)]), "WANDB_MODE": "disabled"}
    return subprocess.Popen([sys.executable, "-m", "zoo", "fit", "--config", str(config), *extra],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_metrics(run_dir):
    import csv

    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    [test] = [r for r in rows if r.get("test/UA")]
    return {k: float(test[k]) for k in ("test/loss", "test/UA", "test/WA")}


test_metrics.__test__ = False  # a helper, not a test


def _ckpt_step(path):
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def test_sigkill_mid_epoch_and_ckpt_path_last_end_like_an_uninterrupted_run(tmp_path):
    """4 epochs of 4 steps; killed (SIGKILL) at step 6, mid-epoch 1; `--ckpt_path last` resumes
    from the end of epoch 0 in the same run folder: the same test metrics, to the last digit."""
    m = tiny_corpus(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    pa = zoo_fit(a, fit_config(a, m))
    pb = zoo_fit(b, fit_config(b, m, kill={"step": 6}))
    out_b = pb.communicate(timeout=300)[0]
    assert pb.returncode == -9, out_b[-3000:]
    run = b / "runs" / "zoo" / "version_0"
    assert _ckpt_step(run / "checkpoints" / "last.ckpt") == 4  # the end of epoch 0
    pc = zoo_fit(b, fit_config(b, m), "--ckpt_path", "last")
    out_c = pc.communicate(timeout=300)[0]
    out_a = pa.communicate(timeout=300)[0]
    assert pa.returncode == 0, out_a[-3000:]
    assert pc.returncode == 0, out_c[-3000:]
    assert f"resuming {run} from {run / 'checkpoints' / 'last.ckpt'}" in out_c
    assert not (b / "runs" / "zoo" / "version_1").exists()  # continued in its own folder
    assert _ckpt_step(run / "checkpoints" / "last.ckpt") == 16
    assert (run / "metrics.before-resume-1.csv").is_file()
    assert test_metrics(run) == test_metrics(a / "runs" / "zoo" / "version_0")


def test_sigterm_writes_a_checkpoint_and_the_next_run_resumes(tmp_path):
    m = tiny_corpus(tmp_path)
    p = zoo_fit(tmp_path, fit_config(tmp_path, m, kill={"step": 6, "sig": "SIGTERM"}))
    out = p.communicate(timeout=300)[0]
    assert p.returncode == 143, out[-3000:]
    run = tmp_path / "runs" / "zoo" / "version_0"
    assert "SIGTERM: checkpoint written to" in out and "stopped by SIGTERM" in out
    assert _ckpt_step(run / "checkpoints" / "sigterm.ckpt") == 6
    p = zoo_fit(tmp_path, fit_config(tmp_path, m), "--ckpt_path", "last")
    out = p.communicate(timeout=300)[0]
    assert p.returncode == 0, out[-3000:]
    assert f"from {run / 'checkpoints' / 'sigterm.ckpt'}" in out
    assert _ckpt_step(run / "checkpoints" / "last.ckpt") == 16  # the run went on from step 6 to its end
    assert "test/UA" in open(run / "metrics.csv").read()
    import zoo  # a checkpoint with the resume state still loads with weights_only

    assert zoo.load(str(run / "checkpoints" / "last.ckpt")).class_names == ["a", "b"]


INTERRUPTED_SAVE = '''
import os, signal, sys
import torch
import zoo.checkpointing as zc

path = sys.argv[1]
io = zc.AtomicCheckpointIO()
io.save_checkpoint({"state_dict": {"w": torch.zeros(1000)}, "global_step": 1}, path)


def half_then_die(f, data):
    f.write(bytes(data[: len(data) // 2]))
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of writing the checkpoint


zc._write_bytes = half_then_die
io.save_checkpoint({"state_dict": {"w": torch.ones(1000)}, "global_step": 2}, path)
'''


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_file_whole(tmp_path):
    import subprocess
    import sys

    (tmp_path / "save.py").write_text(INTERRUPTED_SAVE)
    path = tmp_path / "checkpoints" / "last.ckpt"
    r = subprocess.run([sys.executable, str(tmp_path / "save.py"), str(path)], capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1])})
    assert r.returncode == -9, r.stderr.decode()[-2000:]
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # whole, and the old one
    assert ckpt["global_step"] == 1 and float(ckpt["state_dict"]["w"].sum()) == 0.0
    tmp = path.with_name("last.ckpt.tmp")
    assert tmp.is_file() and tmp.stat().st_size < path.stat().st_size  # the torn write went there


def test_each_epoch_draws_a_new_batch_order(tmp_path):
    """Lightning sets the epoch on the length-bucketing sampler (before, every epoch repeated
    epoch 0's batches in the same order)."""
    import lightning as L

    dm = EmotionDataModule(corpus=Manifest(path=str(tiny_corpus(tmp_path))), cache_dir=None, batch_size=4,
                           modalities=["audio"])
    model = AudioCNN(class_names=["a", "b"], channels=[4, 4, 4], hidden=8)
    orders: dict[int, list] = {}

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            orders.setdefault(trainer.current_epoch, []).append(tuple(batch.ids))

    L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, callbacks=[Record()]).fit(model, dm)
    assert len(orders) == 3 and len({tuple(o) for o in orders.values()}) == 3
    assert all(sorted(i for b in o for i in b) == sorted(i for b in orders[0] for i in b) for o in orders.values())
