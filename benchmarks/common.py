"""What every suite of ``python -m benchmarks.run`` shares: its result record and the runner of
the child programs in benchmarks/children (measurements that need their own peak memory)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Suite:
    name: str
    goal: str
    rows: list[dict] = field(default_factory=list)
    met: bool | None = None  # None: no goal could be judged (e.g. not available)
    notes: list[str] = field(default_factory=list)

    def add(self, what: str, value, unit: str, **extra) -> None:
        self.rows.append({"what": what, "value": value, "unit": unit, **extra})

    def value(self, what: str):
        return next(r["value"] for r in self.rows if r["what"] == what)


def child_env() -> dict:
    """The environment of a benchmark's subprocess: this checkout's zoo first on PYTHONPATH, not
    whichever one the environment has installed (then the caller's entries: benchmarks/gpu.sh puts
    carried wheels there), and wandb off."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path, WANDB_MODE="disabled")


def child(name: str, *args: str, timeout: float = 1800) -> dict:
    """Run ``benchmarks/children/<name>.py`` in a fresh interpreter (its own peak RSS); it prints
    one JSON line last."""
    r = subprocess.run([sys.executable, "-m", f"benchmarks.children.{name}", *args], capture_output=True,
                       text=True, timeout=timeout, env=child_env(), cwd=str(ROOT))
    if r.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])
