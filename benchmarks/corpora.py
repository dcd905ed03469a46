"""Corpora written for the suites: a realistic duration mix and the AI Hub KETI-02-002 layout."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np


def durations(n: int, seed: int = 0) -> np.ndarray:
    """A realistic conversational mix: most clips 1.5-5 s, a long tail up to 10 s."""
    rng = np.random.default_rng(seed)
    return np.clip(1.0 + rng.gamma(2.0, 1.2, n), 1.0, 10.0)


def object_ids(n: int, seed: int = 0) -> list[str]:
    """MongoDB-ObjectId-like wav ids (the AI Hub form: the first 8 hex digits are a time), a few
    seconds apart so consecutive utterances group into conversations."""
    rng = np.random.default_rng(seed)
    t = 1_591_000_000 + np.cumsum(rng.integers(3, 20, n) + (rng.random(n) < 0.1) * 400)
    return [f"{int(s):08x}{i:016x}" for i, s in enumerate(t)]


def write_aihub(root: Path, n: int, *, audio: str, seed: int = 0, splits=(1.0,)) -> list[str]:
    """An AI Hub KETI-02-002 layout of ``n`` rows (cp949 CSVs, one per share in ``splits``).

    audio: ``wav`` (48 kHz PCM16 clips of :func:`durations`) or ``stub`` (empty files)."""
    import soundfile as sf

    # the test suite's seeded corpus fixture writers (the repository root is on the path when
    # the runner is started as ``python -m benchmarks.run`` there)
    from tests.fixtures.aihub import HEADER, make_row

    emotions = ["Angry", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]
    rng = np.random.default_rng(seed)
    ids = object_ids(n, seed)
    durs = durations(n, seed)
    root.mkdir(parents=True, exist_ok=True)
    names = ["4차년도", "5차년도", "5차년도_2차"]
    bounds = np.cumsum([0] + [int(round(s * n)) for s in splits])
    bounds[-1] = n
    for k in range(len(splits)):
        stem = names[k]
        wav_dir = root / stem / f"{stem}_wav"
        wav_dir.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(HEADER)
        for i in range(bounds[k], bounds[k + 1]):
            e = emotions[rng.integers(len(emotions))]
            votes = [(e, 1)] * 3 + [(emotions[rng.integers(7)], 1) for _ in range(2)]
            w.writerow(make_row(ids[i], "오늘 정말 기분이 " + "좋아" * (1 + i % 5), e.lower(), votes,
                                str(20 + i % 40), "여" if i % 2 else "남"))
            p = wav_dir / f"{ids[i]}.wav"
            if audio == "stub":
                p.touch()
            else:
                x = (rng.standard_normal(int(48_000 * durs[i])) * 3000).astype(np.int16)
                sf.write(p, x, 48_000, subtype="PCM_16")
        (root / f"{stem}.csv").write_bytes(buf.getvalue().encode("cp949"))
    return ids
