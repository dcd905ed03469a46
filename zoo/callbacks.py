"""Callbacks the CLI always adds: a one-line metric summary per epoch."""
from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities import rank_zero_only


class EpochSummary(L.Callback):
    """Print WA / UA / macro-F1 (and losses) once per epoch, so logs keep a readable history
    even where the progress bar overwrites itself.

    Args:
        keys: Metric suffixes to print, in order.
    """

    def __init__(self, keys: list[str] = ["loss", "WA", "UA", "macro_F1"]):
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
