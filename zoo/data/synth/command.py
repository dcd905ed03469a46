"""The ``python -m zoo synth`` command line."""
from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Sequence

from zoo.data.corpora.aihub import AIHUB_EMOTIONS

from .writer import _generate


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m zoo synth --out DIR [--size N] [--seed S] ...``: write a synthetic corpus."""
    p = argparse.ArgumentParser(
        prog="zoo synth",
        description="Write a deterministic synthetic Korean emotional speech corpus in the AI Hub "
                    "KETI-02-002 layout (cp949 CSV + 48 kHz wavs + a meta sidecar).")
    p.add_argument("--out", required=True, help="output folder (created; reused when it already holds "
                                                "the same corpus)")
    p.add_argument("--size", type=int, default=400, help="number of utterances (default: 400)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--voice", type=float, default=0.4,
                   help="fraction of rows with emotional prosody and neutral words (default: 0.4)")
    p.add_argument("--words", type=float, default=0.3,
                   help="fraction of rows with emotional words and neutral prosody (default: 0.3)")
    p.add_argument("--both", type=float, default=0.3,
                   help="fraction of rows with emotional words and prosody (default: 0.3)")
    p.add_argument("--speakers", type=int, default=8, help="number of simulated speakers (default: 8)")
    p.add_argument("--sample-rate", type=int, default=48000,
                   help="sample rate of the wavs in Hz (default: 48000, as the real corpus)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes rendering audio (default: usable CPUs, at most 8)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the corpus files in --out even if they were made with other arguments")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    path, cached, rows, seconds = _generate(a.out, a.size, a.seed, a.voice, a.words, a.both, a.speakers,
                                            a.sample_rate, a.overwrite, a.workers)
    if cached:
        print(f"synthetic corpus up to date: {path} ({a.size} utterances, seed {a.seed}); nothing written")
    else:
        counts = Counter(r.emotion for r in rows)
        print(f"wrote {len(rows)} utterances ({seconds / 60:.1f} min of audio, "
              f"{len({r.speaker.id for r in rows})} speakers, "
              + " ".join(f"{e}={counts.get(e, 0)}" for e in AIHUB_EMOTIONS)
              + f") to {path} in {time.perf_counter() - t0:.1f} s")
    return 0
