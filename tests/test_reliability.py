"""Crash safety: a non-finite loss stops the run at once; checkpoints are written atomically;
SIGTERM checkpoints before exit; a run killed mid-epoch resumes to the same result."""
from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from zoo.callbacks import FiniteLossCheck, TrainingDiverged
from zoo.data import EmotionDataModule
from zoo.data.corpora import Manifest
from zoo.models import AudioCNN

SR = 16000


def tiny_corpus(root, n=24, seconds=0.5):
    """Two classes told apart by pitch, four speakers; a manifest with a fixed split."""
    (root / "wav").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = ["path,label,speaker,split"]
    t = np.arange(int(seconds * SR)) / SR
    for i in range(n):
        lab = "ab"[i % 2]
        f = (180 if lab == "a" else 420) * (1 + 0.05 * rng.standard_normal())
        x = 0.3 * np.sin(2 * np.pi * f * t) + 0.02 * rng.standard_normal(t.size)
        sf.write(root / "wav" / f"u{i:02d}.wav", x.astype(np.float32), SR, subtype="PCM_16")
        split = "test" if i >= n - 6 else "val" if i >= n - 10 else "train"
        lines.append(f"wav/u{i:02d}.wav,{lab},s{i % 4},{split}")
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
