"""Callbacks the CLI always adds: a one-line metric summary per epoch, early stopping on val/UA
(off unless enabled), a stop at the first non-finite training loss, and the prediction file that
``python -m zoo predict`` writes."""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.callbacks import EarlyStopping as _LightningEarlyStopping
from lightning.pytorch.utilities import rank_zero_only

from zoo.errors import ZooUserError


class EpochSummary(L.Callback):
    """Print WA / UA / macro-F1 (and losses) once per epoch, so logs keep a readable history
    even where the progress bar overwrites itself.

    Args:
        keys: Metric suffixes to print, in order.
    """

    def __init__(self, keys: list[str] = ["loss", "WA", "UA", "macro_F1", "CCC_mean"]):
        self.keys = list(keys)

    def _line(self, trainer, stages) -> str:
        m = trainer.callback_metrics
        parts = []
        for stage in stages:
            for k in self.keys:
                name = f"{stage}/{k}"
                v = m.get(name, m.get(f"{name}_epoch"))
                if v is not None:
                    parts.append(f"{name}={float(v):.3f}")
        return "  ".join(parts)

    @rank_zero_only
    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        self._print(trainer, f"epoch {trainer.current_epoch:3d}  " + self._line(trainer, ("train", "val")))

    @rank_zero_only
    def on_test_epoch_end(self, trainer, pl_module):
        self._print(trainer, "test  " + self._line(trainer, ("test",)))

    @staticmethod
    def _print(trainer, line: str) -> None:
        bar = trainer.progress_bar_callback
        if bar is not None and hasattr(bar, "print"):
            bar.print(line)
        else:
            print(line, flush=True)


log = logging.getLogger("zoo")


class EarlyStopping(_LightningEarlyStopping):
    """Stop training when the monitored metric (val/UA) has not improved for ``patience``
    validation epochs. Off unless enabled (``--early_stopping.enabled true``), so a run without it
    trains for exactly ``trainer.max_epochs``.

    Args:
        enabled: Stop early when the metric stalls; false: the callback does nothing.
        monitor: The metric to watch.
        mode: ``max`` (UA, accuracy) or ``min`` (a loss).
        patience: Validation epochs without improvement before training stops.
        min_delta: The least change that counts as an improvement.
    """

    def __init__(self, enabled: bool = False, monitor: str = "val/UA", mode: str = "max",
                 patience: int = 5, min_delta: float = 0.0):
        super().__init__(monitor=monitor, mode=mode, patience=patience, min_delta=min_delta, verbose=True)
        self.enabled = enabled

    def _run_early_stopping_check(self, trainer) -> None:
        if self.enabled:
            super()._run_early_stopping_check(trainer)


class TrainingDiverged(ZooUserError):
    """The training loss became NaN or inf (raised by :class:`FiniteLossCheck`)."""


class FiniteLossCheck(L.Callback):
    """Stop the run at the first training step whose loss is NaN or inf, before its backward
    pass and optimiser step, naming the step and the batch's utterance ids (one bad clip, a
    learning rate too high, fp16 overflow), instead of training hours of NaN epochs.

    Args:
        enabled: Check every training loss; false: the callback does nothing.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._batch = None
        self._batch_idx = -1

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._batch, self._batch_idx = batch, batch_idx

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        if not self.enabled or bool(torch.isfinite(loss.detach()).all()):
            return
        ids = list(getattr(self._batch, "ids", None) or [])
        shown = ", ".join(ids[:20]) + (f" ... ({len(ids)} in all)" if len(ids) > 20 else "")
        value = "nan" if bool(torch.isnan(loss.detach()).any()) else "inf"
        raise TrainingDiverged(
            f"the training loss is {value} at step {trainer.global_step} (epoch {trainer.current_epoch}, "
            f"batch {self._batch_idx}); the run stops here, before this step changes the weights.\n"
            f"Utterances in the batch: {shown or 'unknown'}.\n"
            "Check those files (python -m zoo check --config DATA.yaml), lower the learning rate, or "
            "use 32-bit precision; resume from the last good checkpoint with --ckpt_path. "
            "(--finite_loss.enabled false turns this check off.)")


class PredictionWriter(BasePredictionWriter):
    """Write ``predict``'s output to a file: one row per utterance with its id, the predicted
    label, the true label (when the corpus has one) and every class probability, and for a model
    with dimensional targets its predicted dimensions (a ``dims`` object; in CSV one column each).

    Args:
        path: Output file; ``.jsonl`` or ``.csv`` by its suffix (the formats of ``python -m zoo
            infer``: a ``probs`` object, or one ``prob_<class>`` column per class). null:
            ``predictions.jsonl`` in the output folder (beside the checkpoint's run).
    """

    def __init__(self, path: str | None = None):
        super().__init__(write_interval="epoch")
        if path is not None and Path(path).suffix not in (".jsonl", ".csv"):
            raise ValueError(f"predictions.path must end in .jsonl or .csv, got {path!r}")
        self.path = path
        self.written: Path | None = None

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        names = list(pl_module.class_names) if getattr(pl_module, "predicts_categories", True) else []
        dims = list(getattr(pl_module, "dim_names", []))
        batches = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        rows = []
        for out in batches:
            for i, uid in enumerate(out["ids"]):
                true = int(out["labels"][i])
                row = {"id": uid, "label": names[int(out["preds"][i])] if names else None,
                       "true_label": pl_module.class_names[true] if true >= 0 and pl_module.class_names else None,
                       "probs": {c: round(float(p), 6) for c, p in zip(names, out["probs"][i])}}
                if dims:
                    row["dims"] = {d: round(float(v), 6) for d, v in zip(dims, out["dims"][i])}
                rows.append(row)
        if trainer.world_size > 1:  # every rank's rows to rank 0, which alone writes the file
            import torch.distributed as dist

            gathered: list = [None] * trainer.world_size
            dist.all_gather_object(gathered, rows)
            if not trainer.is_global_zero:
                return
            seen, rows = set(), []
            for part in gathered:  # Lightning's sampler pads the last ranks with repeats
                for r in part:
                    if r["id"] not in seen:
                        seen.add(r["id"])
                        rows.append(r)
        from zoo.models.plots import run_dir

        path = Path(self.path) if self.path else run_dir(trainer) / "predictions.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as f:
            if path.suffix == ".csv":
                w = csv.writer(f)
                w.writerow(["id", "label", "true_label", *[f"prob_{c}" for c in names], *dims])  # as `infer`
                for r in rows:
                    w.writerow([r["id"], r["label"] or "", r["true_label"] or "", *r["probs"].values(),
                                *r.get("dims", {}).values()])
            else:
                for r in rows:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
        self.written = path
        log.info("%d predictions written to %s", len(rows), path)


def print_run_summary(trainer, config_path: str | None = None, real_data: tuple[str, str] | None = None) -> None:
    """The end of a fit: where the run went, its best checkpoint and test scores, the confusion
    matrix, and the commands to try next (printed, so a first run shows the way on). ``real_data``:
    ``(options, what)`` that train the same config on the real corpus the run's data stands in for."""
    if not trainer.is_global_zero:
        return
    from zoo.models.plots import run_dir

    run = run_dir(trainer)
    cb = trainer.checkpoint_callback
    best = getattr(cb, "best_model_path", "") or ""
    ckpt = best or str(run / "checkpoints" / "last.ckpt")
    m = trainer.callback_metrics
    lines = [f"run folder: {run}"]
    if best:
        score = getattr(cb, "best_model_score", None)
        lines.append(f"  best checkpoint: {best}" + (f" ({cb.monitor} {float(score):.3f})" if score is not None else ""))
    if "test/UA" in m:
        n = getattr(trainer.lightning_module, "num_classes", 0) or 0
        lines.append("  test: " + "  ".join(f"{k} {float(m[f'test/{k}']):.3f}" for k in ("WA", "UA", "macro_F1")
                                           if f"test/{k}" in m)
                     + (f"   (chance UA {1 / n:.3f})" if n else ""))
        cm = run / "confusion_matrix_test.png"
        if cm.exists():
            lines.append(f"  confusion matrix: {cm} (and .csv)")
    dims = [k[len("test/CCC_"):] for k in m if k.startswith("test/CCC_") and k != "test/CCC_mean"]
    if dims:
        lines.append("  test: " + "  ".join(f"CCC_{d} {float(m[f'test/CCC_{d}']):.3f}" for d in dims)
                     + (f"  CCC_mean {float(m['test/CCC_mean']):.3f}" if "test/CCC_mean" in m else ""))
    if (run / "metrics.csv").exists():
        lines.append(f"  per-epoch metrics: {run / 'metrics.csv'}")
    lines += ["next:",
              f"  python -m zoo infer --model {ckpt} your.wav          # label a file (or a folder)",
              f"  python -m zoo demo --model {ckpt}                    # try it in a local web page"]
    if config_path and real_data:
        lines.append(f"  python -m zoo fit --config {config_path} {real_data[0]}   # {real_data[1]}")
    log.info("\n".join(lines))
