"""What a run writes next to its checkpoints: its folder (:func:`run_dir`) and the confusion
matrix of the test stage (:func:`save_confusion_matrix`: PNG, CSV and the logger's image)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import torch

log = logging.getLogger("zoo")


def run_dir(trainer) -> Path:
    """The run's folder, as ``trainer.log_dir`` names it, without its broadcast: under DDP
    ``trainer.log_dir`` is a collective, so rank 0 alone asking for it would wait forever."""
    lg = trainer.loggers[0] if trainer.loggers else None
    d = getattr(lg, "log_dir", None) or getattr(lg, "save_dir", None) if lg is not None else None
    return Path(d or trainer.default_root_dir)


def save_confusion_matrix(cm: torch.Tensor, class_names: Sequence[str], trainer, stage: str) -> Path | None:
    """Write the confusion matrix (counts + row-normalised PNG, and a CSV) to the log dir and
    hand the figure to the logger (wandb image / TensorBoard figure) when it takes images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = run_dir(trainer)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = cm.numpy()
    norm = counts / counts.sum(axis=1, keepdims=True).clip(min=1)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.1 * n + 2.5, 1.0 * n + 2))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({int(counts[i, j])})", ha="center", va="center",
                    fontsize=7, color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(f"{stage} confusion matrix (rows: recall per true class)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    png = out_dir / f"confusion_matrix_{stage}.png"
    fig.savefig(png, dpi=120)
    with open(out_dir / f"confusion_matrix_{stage}.csv", "w", encoding="utf-8") as f:
        f.write("true\\pred," + ",".join(class_names) + "\n")
        for i, name in enumerate(class_names):
            f.write(name + "," + ",".join(str(int(v)) for v in counts[i]) + "\n")
    for lg in trainer.loggers:
        try:
            if hasattr(lg, "log_image"):  # WandbLogger
                lg.log_image(key=f"{stage}/confusion_matrix", images=[str(png)])
            elif hasattr(getattr(lg, "experiment", None), "add_figure"):  # TensorBoard
                lg.experiment.add_figure(f"{stage}/confusion_matrix", fig)
        except Exception as e:  # a logger that cannot take images must not fail the test run
            log.debug("could not log the confusion matrix to %s: %s", type(lg).__name__, e)
    plt.close(fig)
    log.info("confusion matrix written to %s", png)
    return png
