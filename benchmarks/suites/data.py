"""data: utterances/s through the real EmotionDataModule beside a bare decode + resample loop."""
from __future__ import annotations

import os
import time
from pathlib import Path

from benchmarks.common import Suite, child
from benchmarks.corpora import write_aihub

DESCRIPTION = ("utterances/s from 48 kHz 16-bit wavs in the AI Hub layout to collated 16 kHz batches "
               "through the real EmotionDataModule (num_workers 0 and 2, cold and warm cache), beside "
               "the floor: decode + resample in a bare loop")


def run(args, work: Path) -> Suite:
    from zoo.data.audio import read_audio, resample

    n = max(50, int((300 if args.quick else 2000) * args.scale))
    s = Suite("data", "warm >= 2,000 utterances/s with 2 workers; cold within 1.5x of the floor "
                      "(num_workers 0 against the bare loop, both one process)")
    root = work / "aihub_wavs"
    write_aihub(root, n, audio="wav")
    wavs = sorted(root.rglob("*.wav"))
    s.add("clips (48 kHz PCM16, 1-10 s)", len(wavs), "files")
    s.add("audio", sum(f.stat().st_size for f in wavs) / 96_000 / 3600, "hours")
    os.system("sync")
    t = time.perf_counter()
    for f in wavs:
        w, sr = read_audio(str(f))
        resample(w, sr, 16000)
    floor = len(wavs) / (time.perf_counter() - t)
    s.add("floor: decode + resample, bare loop", floor, "utt/s")
    res = {}
    for workers in (0, 2):
        r = child("data", str(root), str(work / f"cache_w{workers}"), str(workers))
        res[workers] = r
        s.add(f"DataModule setup (validation, splits), workers={workers}", r["setup_s"], "s")
        s.add(f"DataModule cold, num_workers={workers}", r["cold"], "utt/s")
        s.add(f"DataModule warm, num_workers={workers}", r["warm"], "utt/s")
    s.add("cold (workers=0) / floor", res[0]["cold"] / floor, "x")
    s.met = res[2]["warm"] >= 2000 and res[0]["cold"] >= floor / 1.5
    s.notes.append("cold = first pass (decode, resample, write the int16 resample cache); "
                   "warm = the next epoch reading the cache; the page cache is warm in both")
    return s
