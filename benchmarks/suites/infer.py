"""infer: real-time factor per shipped checkpoint, and the wall time of the light commands."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import ROOT, Suite, child

DESCRIPTION = ("real-time factor of zoo.load(...).predict_batch per shipped checkpoint, and the wall "
               "time of `python -m zoo --help` / `python -m zoo infer --help`")


def run(args, work: Path) -> Suite:
    from zoo.inference.registry import list_checkpoints

    s = Suite("infer", "audio CNN at default size <= 0.01 RTF; `--help` under 1 s")
    n = max(4, int((16 if args.quick else 64) * args.scale))
    threads = str(os.cpu_count() or 1)
    names = list_checkpoints()
    if args.quick:  # a smoke test: one shipped checkpoint
        names = [c for c in names if c == "audio-cnn-synth"] or names[:1]
    for name in names:
        try:
            r = child("infer", name, threads, str(n))
        except RuntimeError as e:
            s.notes.append(f"{name}: failed: {str(e).splitlines()[-1]}")
            continue
        s.add(f"{name}: predict_batch real-time factor", r["rtf"], "s per s of audio")

    r = child("cnn_default", threads, str(n))
    cnn_rtf = r["rtf"]
    s.add(f"AudioCNN at its default size ({r['params'] / 1e6:.2f} M params, random weights): forward RTF",
          cnn_rtf, "s per s of audio")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    helps = []
    for cmd in (["--help"], ["infer", "--help"]):
        subprocess.run([sys.executable, "-m", "zoo", *cmd], capture_output=True, env=env, cwd=str(ROOT))
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "zoo", *cmd], capture_output=True, env=env, cwd=str(ROOT))
        helps.append(time.perf_counter() - t)
        s.add(f"python -m zoo {' '.join(cmd)}", helps[-1], "s")
    s.notes.append("64 random clips of 2-5 s in one predict_batch call, after a warm-up call; the "
                   "shipped audio-cnn-synth is a narrow AudioCNN (16-32-32), so the default size is "
                   "timed on its own: the model's forward over length-sorted batches of 16")
    s.met = cnn_rtf <= 0.01 and max(helps) < 1.0
    return s
