"""cache: the frozen-encoder embedding cache, through benchmarks/cache.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.common import ROOT, Suite

DESCRIPTION = "the frozen-encoder embedding cache (per-epoch time with and without it)"


def run(args, work: Path) -> Suite:
    s = Suite("cache", ">= 20x per-epoch speed-up after the first epoch, logits within 1e-5")
    bench = ROOT / "benchmarks" / "cache.py"
    if not bench.exists():
        s.notes.append("not available: the frozen-encoder embedding cache is not built yet")
        return s
    # on a CPU a base-size encoder over 2,000 utterances takes hours per uncached epoch: the
    # suite runs a smaller encoder (run benchmarks/cache.py --size 2000 on a GPU for base size)
    n = max(40, int((100 if args.quick else 600) * args.scale))
    size = ["--hidden", "64", "--layers", "2"] if args.quick else ["--hidden", "256", "--layers", "4"]
    r = subprocess.run([sys.executable, str(bench), "--utterances", str(n), "--epochs", "3", *size,
                        "--json", str(work / "cache.json")],
                       capture_output=True, text=True, cwd=str(ROOT),
                       env=dict(os.environ, PYTHONPATH=str(ROOT), WANDB_MODE="disabled"))
    if r.returncode != 0:
        s.notes.append(f"failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
        s.met = False
        return s
    res = json.loads((work / "cache.json").read_text())
    for row in res["rows"]:
        s.add(row["what"], row["value"], row["unit"])
    s.met = res.get("met")
    return s
