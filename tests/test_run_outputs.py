"""Where a run's outputs go (one folder per run, whatever the logger; evaluations beside the
checkpoint), how long an unbounded fit trains, and early stopping on val/UA."""
import csv
import warnings
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--config", str(ROOT / "configs/data/synthetic.yaml"), "--config", str(ROOT / "configs/model/audio_cnn.yaml"),
        "--config", str(ROOT / "configs/model/tiny/audio_cnn.yaml"), "--data.corpus.size", "48",
        "--data.init_args.batch_size", "8", "--trainer.enable_progress_bar", "false",
        "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1"]


def test_one_run_one_folder_and_evaluations_beside_the_checkpoint(run, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")  # writes its files, without network or login
    # no max_epochs anywhere: the zoo's default applies (not Lightning's 1000), early stopping ends it
    r = run("fit", *TINY, "--config", str(ROOT / "configs/trainer/wandb.yaml"),
            "--early_stopping.enabled", "true", "--early_stopping.patience", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "trainer.max_epochs is not set: training for 20 epochs" in r.stderr
    runs = tmp_path / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["zoo"]  # nothing scattered at the top of runs/
    run_dir = runs / "zoo/version_0"
    for name in ("config.yaml", "metrics.csv", "checkpoints/last.ckpt", "wandb"):
        assert (run_dir / name).exists(), name
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["trainer"]["max_epochs"] == 20
    epochs = torch.load(run_dir / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)["epoch"]
    assert epochs < 19, "early stopping with patience 1 did not stop a 20-epoch run"

    # test / predict of that checkpoint: into the run's folder, no "dirpath has changed" warning
    ckpt = str((run_dir / "checkpoints/last.ckpt").resolve())  # absolute: not the path fit recorded
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = run("test", "--config", str(run_dir / "config.yaml"), "--ckpt_path", ckpt, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not [w for w in caught if "dirpath has changed" in str(w.message)]
    out = run_dir / "test-last"
    assert (out / "metrics.csv").exists() and (out / "confusion_matrix_test.png").exists()
    assert "test/UA" in next(csv.reader(open(out / "metrics.csv")))
    r = run("predict", "--config", str(run_dir / "config.yaml"), "--ckpt_path", ckpt, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (run_dir / "predict-last/predictions.jsonl").read_text().count("\n") > 0
    r = run("test", "--config", str(run_dir / "config.yaml"), "--ckpt_path", ckpt, "--eval_dir", "elsewhere",
            cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "elsewhere/metrics.csv").exists()
    assert sorted(p.name for p in (runs / "zoo").iterdir()) == ["version_0"]  # no new version_N


def test_early_stopping_is_off_unless_enabled():
    import lightning as L

    from zoo.callbacks import EarlyStopping

    def stops(enabled: bool) -> bool:
        trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False)
        cb = EarlyStopping(enabled=enabled, patience=1)
        for ua in (0.5, 0.4, 0.3):  # falling val/UA: stop after one epoch without improvement
            trainer.callback_metrics["val/UA"] = torch.tensor(ua)
            cb._run_early_stopping_check(trainer)
        return trainer.should_stop

    assert stops(True) and not stops(False)
