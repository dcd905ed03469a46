"""End to end through the CLI: fit + test on a tiny synthetic corpus, then check the audio model
learned the prosody (the emotion rendered in the voice), not just the majority class."""
import csv
from pathlib import Path

import numpy as np
import torch

from zoo.cli import build_cli, main
from zoo.data.synthetic import generate

ROOT = Path(__file__).resolve().parents[1]
CHANCE = 1 / 7


def test_fit_test_predict_learns_prosody(tmp_path, monkeypatch):
    corpus = generate(tmp_path / "synth", size=300, seed=0, voice=0.6, words=0.1, both=0.3)
    monkeypatch.chdir(tmp_path)
    args = ["--config", str(ROOT / "configs/demo.yaml"), "--data.init_args.root", str(corpus),
            "--data.init_args.cache_dir", str(tmp_path / "cache"),
            "--trainer.max_epochs", "16", "--trainer.enable_progress_bar", "false",
            "--trainer.logger.init_args.save_dir", str(tmp_path / "runs")]
    main(["fit", *args, "--test_after_fit", "true"])

    run = tmp_path / "runs" / "zoo" / "version_0"
    assert (run / "config.yaml").exists() and (run / "confusion_matrix_test.png").exists()
    best = sorted((run / "checkpoints").glob("best-*.ckpt"))
    assert len(best) == 1
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 15  # the latest epoch, not a copy of the best one
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    test = next(r for r in rows if r.get("test/UA"))
    val_ua = [float(r["val/UA"]) for r in rows if r.get("val/UA")]
    assert len(val_ua) == 16  # one validation per epoch
    assert float(test["test/UA"]) > 2 * CHANCE, test

    # predictions of the best checkpoint on the test split, scored on prosody-cued utterances
    cli = build_cli(args, run=False)
    preds = cli.trainer.predict(cli.model, datamodule=cli.datamodule, ckpt_path=str(best[0]))
    ids = [i for p in preds for i in p["ids"]]
    probs = torch.cat([p["probs"] for p in preds])
    labels = torch.cat([p["labels"] for p in preds])
    assert torch.allclose(probs.sum(1), torch.ones(len(ids)), atol=1e-5)
    with open(corpus / "synthetic_meta.csv", encoding="utf-8") as f:
        cue = {r["wav_id"]: r["cue"] for r in csv.DictReader(f)}
    voiced = torch.tensor([cue[i] in ("voice", "both") for i in ids])
    pred, true = probs.argmax(1)[voiced], labels[voiced]
    recalls = [float((pred[true == c] == c).float().mean()) for c in true.unique()]
    ua = float(np.mean(recalls))
    print(f"test UA {float(test['test/UA']):.3f}; UA on {int(voiced.sum())} prosody-cued test utterances {ua:.3f}")
    assert voiced.sum() >= 30 and ua > 2 * CHANCE, f"UA on prosody-cued test utterances {ua:.3f}"
    assert len(set(pred.tolist())) >= 3  # not one class for everything
