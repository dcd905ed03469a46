"""Every file in configs/model/ trains, validates and predicts through the CLI on the synthetic
corpus, with the same data config: models are swapped by YAML alone. Each config is run with its
CPU overlay in configs/model/tiny/ (same model class, tiny sizes, no pretrained weights)."""
import json
from pathlib import Path

import pytest
import torch
import yaml

from zoo.cli import build_cli

ROOT = Path(__file__).resolve().parents[1]
MODEL_CONFIGS = sorted((ROOT / "configs/model").glob("*.yaml"))


def _class(p: Path) -> str:
    return yaml.safe_load(p.read_text())["model"]["class_path"]


# the validate and predict commands run once per model class (its first config): the other
# configs of a class (the SSL encoders) differ in the encoder and training mode, which fit covers
FIRST_OF_CLASS = {next(p for p in MODEL_CONFIGS if _class(p) == c) for c in {_class(p) for p in MODEL_CONFIGS}}


def test_every_model_family_has_a_config():
    import zoo.models

    in_configs = {yaml.safe_load(p.read_text())["model"]["class_path"].rsplit(".", 1)[1] for p in MODEL_CONFIGS}
    families = set(zoo.models.__all__) - {"EmotionModule"}
    assert families <= in_configs, f"models without a config in configs/model/: {families - in_configs}"


@pytest.mark.parametrize("config", MODEL_CONFIGS, ids=lambda p: p.stem)
def test_fit_validate_predict_through_the_cli(config, run, tmp_path):
    tiny = ROOT / "configs/model/tiny" / config.name
    assert tiny.exists(), f"{config.name} needs a CPU overlay in configs/model/tiny/"
    assert yaml.safe_load(tiny.read_text())["model"].get("class_path") in (
        None, yaml.safe_load(config.read_text())["model"]["class_path"])
    args = ["--config", str(ROOT / "configs/data/synthetic.yaml"), "--config", str(config),
            "--config", str(tiny), "--data.corpus.size", "48", "--data.init_args.batch_size", "8",
            "--trainer.logger.init_args.save_dir", str(tmp_path / "runs"),
            "--trainer.default_root_dir", str(tmp_path / "runs"), "--trainer.enable_progress_bar", "false"]
    r = run("fit", *args, "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "2",
            "--trainer.limit_val_batches", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = tmp_path / "runs/zoo/version_0/checkpoints/last.ckpt"
    assert ckpt.exists()
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert saved["global_step"] == 4  # 2 epochs x 2 steps: it trained
    if config not in FIRST_OF_CLASS:
        return

    r = run("validate", *args, "--ckpt_path", str(ckpt), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "val/UA" in r.stdout + r.stderr

    out = tmp_path / "predictions.jsonl"
    r = run("predict", *args, "--ckpt_path", str(ckpt), "--predictions.path", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]

    cli = build_cli(args, run=False)
    preds = cli.trainer.predict(cli.model, datamodule=cli.datamodule, ckpt_path=str(ckpt))
    probs = torch.cat([p["probs"] for p in preds])
    n_test = len(cli.datamodule.split("test"))
    assert probs.shape == (n_test, 7)
    assert torch.allclose(probs.sum(1), torch.ones(n_test), atol=1e-5)
    # the file holds the same predictions, one row per test utterance, with names not indices
    assert sorted(r["id"] for r in rows) == sorted(i for p in preds for i in p["ids"])
    by_id = {i: p for b in preds for i, p in zip(b["ids"], b["probs"])}
    names = cli.model.class_names
    for row in rows:
        assert row["label"] in names and row["true_label"] in names
        assert list(row["probs"]) == names
        assert abs(sum(row["probs"].values()) - 1) < 1e-4
        assert torch.allclose(torch.tensor(list(row["probs"].values())), by_id[row["id"]], atol=1e-5)
    # predict loaded the trained weights, not a fresh initialisation
    state = cli.model.state_dict()
    for k, v in saved["state_dict"].items():
        assert torch.equal(state[k].cpu(), v), k
