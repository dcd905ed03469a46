"""cache: the frozen-encoder embedding cache, through benchmarks/cache.py."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.common import ROOT, Suite, child_env

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
    run_cache_script(s, work, ["--utterances", str(n), "--epochs", "3", *size])
    return s


def run_cache_script(s: Suite, work: Path, argv: list[str]) -> bool:
    """benchmarks/cache.py with ``argv`` in its own process (its output in ``work/cache.log``),
    its rows and verdict added to ``s``. False when it failed: a note says why, ``met = False``."""
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cache.py"), *argv,
                        "--json", str(work / "cache.json")],
                       capture_output=True, text=True, cwd=str(ROOT), env=child_env())
    (work / "cache.log").write_text(r.stdout + r.stderr)
    if r.returncode != 0:
        s.notes.append(f"failed: {(r.stderr.strip().splitlines() or [str(r.returncode)])[-1]}")
        s.met = False
        return False
    res = json.loads((work / "cache.json").read_text())
    for row in res["rows"]:
        s.add(row["what"], row["value"], row["unit"])
    s.met = res.get("met")
    return True
