"""The end of a fit says where the run went and what to try next (the demo's last screen)."""
import re
from pathlib import Path

from zoo.data.synth import generate

ROOT = Path(__file__).resolve().parents[1]


def test_a_fit_ends_with_its_run_folder_scores_and_next_commands(run, tmp_path):
    corpus = generate(tmp_path / "corpus", size=90, seed=3)
    r = run("fit", "--config", str(ROOT / "configs/demo.yaml"), "--data.corpus.root", str(corpus),
            "--data.init_args.cache_dir", str(tmp_path / "cache"),
            "--config", str(ROOT / "configs/model/tiny/audio_cnn.yaml"),
            "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
            "--trainer.logger.init_args.save_dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    text = r.stdout + r.stderr
    folder = re.search(r"run folder: (\S+)", text)
    assert folder, text[-2000:]
    run_dir = Path(folder.group(1))
    run_dir = run_dir if run_dir.is_absolute() else tmp_path / run_dir
    assert (run_dir / "config.yaml").exists()
    best = re.search(r"best checkpoint: (\S+\.ckpt)", text)
    assert best, text[-2000:]
    assert (tmp_path / best.group(1)).exists()  # relative to where the fit ran
    assert re.search(r"test: WA \d\.\d{3}  UA \d\.\d{3}  macro_F1 \d\.\d{3}", text)
    cm = re.search(r"confusion matrix: (\S+\.png)", text)
    assert cm and (run_dir / "confusion_matrix_test.png").exists()
    # the next commands name the run's own checkpoint and config
    assert f"python -m zoo infer --model {best.group(1)}" in text
    assert f"python -m zoo demo --model {best.group(1)}" in text
    assert re.search(r"python -m zoo fit --config \S+config\.yaml --data\.\S+root /data/aihub", text)
