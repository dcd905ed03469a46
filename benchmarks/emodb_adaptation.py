"""What speaker adaptation buys a `normalize: speaker` model at inference, measured through the
zoo's own inference path (`zoo.load(...)`, `Predictor.adapt`) on the leave-one-speaker-out runs.

    python -m zoo ablate --config configs/ablation/emodb_loso.yaml --only compare_linear --jobs 2
    python benchmarks/emodb_adaptation.py runs/ablation/emodb_loso/compare_linear

For each fold's best checkpoint, the held-out speaker's clips are labelled (1) without adaptation
(the training speakers' statistics: what `infer` does for a voice it has never heard), (2) after
`adapt` on all of that speaker's clips (the protocol of the LOSO table), and (3) after `adapt` on
k random clips of that speaker (k = 20; 3 draws). Test UA per fold, mean +- std.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml


def test_split(run: Path):
    from jsonargparse import ArgumentParser

    from zoo.data import EmotionDataModule

    p = ArgumentParser()
    p.add_subclass_arguments(EmotionDataModule, "data")
    cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    dm = p.instantiate_classes(p.parse_object({"data": cfg["data"]})).data
    dm.prepare_data()
    dm.setup("test")
    return dm.split("test")


def main(cell: str) -> None:
    from sklearn.metrics import balanced_accuracy_score  # = the zoo's UA (classes present)

    import zoo

    runs = sorted(p for p in Path(cell).glob("seed*-fold*") if (p / "checkpoints" / "best.ckpt").is_file())
    if not runs:
        raise SystemExit(f"no finished runs (seed*-fold*/checkpoints/best.ckpt) under {cell}")
    rows: dict[str, list[float]] = {}
    rng = np.random.default_rng(0)
    for run in runs:
        utts = test_split(run)
        files, labels = [u.audio for u in utts], [u.label for u in utts]
        model = zoo.load(run / "checkpoints" / "best.ckpt")

        def score(name: str, adapt_on: list | None) -> None:
            model.adapt(adapt_on)
            preds = [r["label"] for r in model.predict_batch(files)]
            rows.setdefault(name, []).append(balanced_accuracy_score(labels, preds))

        score("no adaptation (training speakers' statistics)", None)
        score("adapted on all of the speaker's clips", files)
        for _ in range(3):
            score("adapted on 20 random clips of the speaker (3 draws)", list(rng.choice(files, 20, replace=False)))
        model.adapt(None)
        print(f"{run.name}: {len(files)} clips of speaker {utts[0].speaker}", file=sys.stderr)
    print(f"| inference on a held-out speaker ({len(runs)} folds) | test UA |\n|---|---|")
    for name, v in rows.items():
        print(f"| {name} | {np.mean(v):.3f} ± {np.std(v):.3f} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
