"""Audio probing at setup: find missing, unreadable, empty or too short files before the first
epoch (header only; the samples are decoded by the loaders)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from .audio import audio_exists, audio_info
from .utterance import Utterance


def probe_audio(utts: Sequence[Utterance], *, read_header: bool, min_seconds: float,
                workers: int = 8) -> list[tuple[Utterance, str | None, float | None]]:
    """``(utterance, problem, seconds)`` per utterance, in order: the problem is None for a usable
    file; the duration is read from the header when ``read_header`` (else None: the file is only
    checked to exist), and a clip under ``min_seconds`` is a problem."""

    def check(u: Utterance):
        if not u.audio:
            return u, f"no audio file found for {u.id}", None
        if not audio_exists(u.audio):
            return u, "audio file not found", None
        if not read_header:
            return u, None, None
        try:
            return u, None, audio_info(u.audio)[2]
        except Exception as e:
            return u, f"unreadable audio: {e}", None

    out = []
    with ThreadPoolExecutor(workers) as pool:  # header reads wait on storage, not the CPU
        for u, err, dur in pool.map(check, utts):
            if err is None and dur is not None and dur < min_seconds:
                err = f"shorter than min_seconds ({dur:.2f} s < {min_seconds})"
            out.append((u, err, dur))
    return out
