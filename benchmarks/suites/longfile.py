"""longfile: the memory and wall time of ``python -m zoo infer`` on a long file (docs/performance.md,
"Long files").

The file: synthetic-corpus utterances joined by pauses with room noise (the ``stream`` suite's
recording), resampled to 8 kHz (telephone audio: the model's 16 kHz comes from the streaming
resampler) and repeated until it lasts 30 minutes, then 2 hours (16-bit WAV). Each measurement is
one whole ``python -m zoo infer`` process (``audio-cnn-synth`` on the CPU, ``--out`` a JSONL file),
its peak resident set size read from the kernel when it ends (``wait4``'s ``ru_maxrss``, what
``/usr/bin/time -v`` prints), set against the same command on a 1-second file: that process is
Python, torch, Lightning and the model, which no reading strategy changes; the growth above it is
what the file costs. ``infer`` reads a long file a block at a time (soundfile blocks, soxr's
streaming resampler) in both modes, so the growth is set by the window, the batch and the open
speech segment, not by the file's length: the goal is that the 2-hour file grows the process by
less than 400 MB, and by less over the 30-minute file than a quarter of what the extra 90 minutes
would take as one float32 array at the model's 16 kHz (345 MB). Within one run the resident size
swings by about 130 MB from batch to batch (a batch's activations come and go), so a longer run's
peak catches a higher swing: "flat" cannot mean equal to the megabyte.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import ROOT, Suite, child_env

DESCRIPTION = ("peak RSS and wall time of a whole `python -m zoo infer` process on a 30-minute and a 2-hour "
               "8 kHz file (windows and --segment vad), against the same process on a 1-second file")

MODEL = "audio-cnn-synth"
RATE = 8000
GROWTH_GOAL_MB = 400.0  # the bound, for what the file costs above the loaded process
FLAT_SHARE = 0.25  # the longer file may cost this share of its extra audio held whole (float32, 16 kHz)


def write_long_wav(path: Path, recording: Path, seconds: float) -> None:
    """``recording`` at 8 kHz, repeated to ``seconds`` and written a block at a time."""
    import numpy as np
    import soundfile as sf

    from zoo.data.audio import read_audio, resample

    wav, sr = read_audio(str(recording))
    piece = np.clip(resample(wav, sr, RATE), -1, 1 - 1 / 32768)
    total = int(round(seconds * RATE))
    with sf.SoundFile(path, "w", samplerate=RATE, channels=1, subtype="PCM_16") as f:
        for start in range(0, total, piece.size):
            f.write(piece[: total - start])


def infer_process(path: Path, out: Path, *extra: str) -> dict:
    """One ``python -m zoo infer`` run: its peak RSS (MB), wall time (s) and the rows it wrote."""
    env = child_env()
    cmd = [sys.executable, "-m", "zoo", "infer", "--model", MODEL, str(path), "--out", str(out),
           "--device", "cpu", "--no-progress", *extra]
    err = out.with_suffix(".stderr")
    with open(err, "w") as fe:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=fe, env=env, cwd=str(ROOT))
        # wait4: this child's own rusage (getrusage(RUSAGE_CHILDREN) would be the max over all children)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd[2:])} exited {p.returncode}:\n{err.read_text()[-3000:]}")
    (row,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
    out.unlink()  # the 2-hour track is a few MB; the next run writes its own
    return {"peak_mb": usage.ru_maxrss / 1024, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "parts": len(row.get("track", [])),
            "duration": row["duration"], "label": row["label"]}


def run(args, work: Path) -> Suite:
    from benchmarks.suites.stream import make_recording

    s = Suite("longfile", f"a long file grows the whole `infer` process by < {GROWTH_GOAL_MB:.0f} MB above "
                          "the same process on a 1-second file, and the 4x longer file by less over the "
                          f"shorter one than {FLAT_SHARE:.0%} of its extra audio held whole: memory bounded "
                          "by the window, not the file")
    # the shorter file holds more than one batch of windows (16 x 2 s), so both run full batches
    first = max(1.0, (2.0 if args.quick else 30.0) * args.scale)
    minutes = (first, 4 * first)
    rec = json.loads(make_recording(work, 20.0 if args.quick else 60.0).read_text())
    paths = {"1 s": work / "one_second.wav", **{f"{m:g} min": work / f"long_{m:g}min.wav" for m in minutes}}
    for path, seconds in zip(paths.values(), (1.0, *(m * 60 for m in minutes))):
        write_long_wav(path, Path(rec["wav"]), seconds)
    met = True
    modes = [("windows", ()), ("--segment vad", ("--segment", "vad"))]
    if args.quick:  # a smoke test: three processes, not six
        modes = modes[:1]
        s.notes.append("--quick: windows mode only")
    for mode, extra in modes:
        base = None
        growth = {}
        for name, path in paths.items():
            r = infer_process(path, work / f"{path.stem}_{mode.split()[-1]}.jsonl", *extra)
            if base is None:
                base = r["peak_mb"]
                # the recording's first second is room noise: "no speech energy" (no VAD segment), so
                # nothing runs through the model: the process as loaded
                s.add(f"{mode}, 1-second file: peak RSS of the process (Python, torch, Lightning, model)",
                      r["peak_mb"], "MB", wall_s=r["wall_s"])
                s.add(f"{mode}, 1-second file: wall time", r["wall_s"], "s")
                s.add(f"{mode}, 1-second file: CPU time", r["cpu_s"], "s")
                continue
            growth[name] = r["peak_mb"] - base
            parts = "windows" if mode == "windows" else "speech segments"
            s.add(f"{mode}, {name} at {RATE} Hz: peak RSS of the process", r["peak_mb"], "MB",
                  duration_s=r["duration"], parts=r["parts"])
            s.add(f"{mode}, {name}: growth above the 1-second file", growth[name], "MB")
            s.add(f"{mode}, {name}: wall time ({r['parts']} {parts} labelled)", r["wall_s"], "s")
            s.add(f"{mode}, {name}: CPU time (user + system; a shared machine stretches the wall time)",
                  r["cpu_s"], "s")
        short, long = (growth[f"{m:g} min"] for m in minutes)
        extra_mb = (minutes[1] - minutes[0]) * 60 * 16000 * 4 / 2**20  # what whole-file reading would add
        s.add(f"{mode}: growth of the {minutes[1]:g}-min file over the {minutes[0]:g}-min file", long - short, "MB",
              audio_held_whole_mb=extra_mb)
        met = met and long < GROWTH_GOAL_MB and long - short < FLAT_SHARE * extra_mb
    s.met = met
    s.notes.append(f"`python -m zoo infer --model {MODEL} FILE --out FILE.jsonl --device cpu --no-progress` in a "
                   f"fresh process per row, torch's default threads ({os.cpu_count()} cores); the file is "
                   f"a {rec['seconds']:.0f}-second joined synthetic recording repeated, 16-bit, {RATE} Hz")
    return s
