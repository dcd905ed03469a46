"""Inference speed and memory: batched clips, and a 5-minute file windowed vs in one piece.

    python benchmarks/inference_long_audio.py [--checkpoints audio-cnn-synth wav2vec2-synth]

Each measurement runs in a fresh subprocess so its peak resident memory (ru_maxrss) is its own.
Numbers go to docs/inference.md.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
torch.set_num_threads(2)
import zoo
name, mode, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
m = zoo.load(name, device="cpu")
rng = np.random.default_rng(0)
sr = m.sample_rate
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if mode == "clips":   # 64 clips of 2-5 s, batched by length
    clips = [rng.standard_normal(int(sr * rng.uniform(2, 5))).astype(np.float32) * 0.1 for _ in range(64)]
    m.predict_batch(clips)
    audio_s = sum(len(c) for c in clips) / sr
elif mode == "windowed":
    wav = rng.standard_normal(int(sr * seconds)).astype(np.float32) * 0.1
    r = m.predict(wav)
    audio_s = seconds
else:  # whole: the file as one clip (what a tool without windowing does)
    m.max_seconds = 1e9
    wav = rng.standard_normal(int(sr * seconds)).astype(np.float32) * 0.1
    m.predict(wav)
    audio_s = seconds
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"name": name, "mode": mode, "audio_s": round(audio_s, 1), "wall_s": round(dt, 2),
                  "x_realtime": round(audio_s / dt, 1), "peak_rss_mb": round(peak / 1024),
                  "rss_growth_mb": round((peak - base) / 1024)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", nargs="+", default=["audio-cnn-synth", "wav2vec2-synth"])
    ap.add_argument("--seconds", type=float, default=300.0)
    a = ap.parse_args()
    rows = []
    for name in a.checkpoints:
        for mode in ("clips", "windowed", "whole"):
            p = subprocess.run([sys.executable, "-c", CHILD, name, mode, str(a.seconds)],
                               capture_output=True, text=True)
            if p.returncode != 0:
                rows.append({"name": name, "mode": mode, "error": p.stderr.strip().splitlines()[-1][:200]})
            else:
                rows.append(json.loads(p.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print("\n| checkpoint | input | audio (s) | wall (s) | x real time | peak RSS (MB) | RSS growth (MB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['name']} | {r['mode']} | | | | failed: {r['error']} | |")
        else:
            print(f"| {r['name']} | {r['mode']} | {r['audio_s']} | {r['wall_s']} | {r['x_realtime']} | "
                  f"{r['peak_rss_mb']} | {r['rss_growth_mb']} |")


if __name__ == "__main__":
    main()
