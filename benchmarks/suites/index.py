"""index: time and memory of the corpus index at the AI Hub corpus's size."""
from __future__ import annotations

from pathlib import Path

from benchmarks.common import Suite, child
from benchmarks.corpora import write_aihub

DESCRIPTION = ("the corpus index of 44,000 rows in the AI Hub layout (three cp949 CSVs, label policy, "
               "conversation grouping, splits; empty audio stubs, a text-only run)")


def run(args, work: Path) -> Suite:
    n = max(500, int((8000 if args.quick else 44000) * args.scale))
    s = Suite("index", f"the {n:,}-row index under 10 s and under 300 MB (memory the index adds "
                       "above the imported libraries)")
    root = work / "aihub_index"
    write_aihub(root, n, audio="stub", splits=(14606 / 43991, 10011 / 43991, 19374 / 43991))
    r = child("index", str(root))
    s.add("rows indexed (train + val + test)", r["rows"], "rows")
    s.add("index time (read CSVs, labels, conversations, splits)", r["s"], "s")
    s.add("peak RSS of the process", r["peak_mb"], "MB")
    s.add("of which the libraries (torch, lightning) at import", r["base_mb"], "MB")
    s.add("added by the index", r["growth_mb"], "MB")
    s.met = r["s"] < 10 and r["growth_mb"] < 300
    return s
