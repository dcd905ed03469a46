"""The setup report of the DataModule: utterances per split and class, what was dropped and
cropped, and the leakage check (shared transcripts and byte-identical audio across splits)."""
from __future__ import annotations

from collections import Counter
from typing import Callable, Sequence

from .splits import leakage_report
from .utterance import Utterance


def setup_report(title: str, utts: Sequence[Utterance], splits: dict[str, list[Utterance]],
                 class_names: Sequence[str], *, split_source: str, dropped: Counter,
                 max_seconds: float | None, durations: dict[str, float], check_leakage: bool,
                 digest: Callable[[str], str] | None) -> tuple[list[str], dict]:
    """``(lines, entries)``: the report's lines to log, and its entries for
    ``EmotionDataModule.report`` (``cropped``, ``leakage``, ``counts``, ``dropped``). ``digest``
    hashes an audio file for the leakage check (None: the audio is not compared)."""
    entries: dict = {}
    lines = [f"{title}: {len(utts)} utterances, {len(class_names)} classes, split by {split_source}"]
    if dropped:
        lines.append("  dropped: " + ", ".join(f"{n} {r}" for r, n in dropped.most_common()))
    if max_seconds:
        # a long file is decoded once into the cache, but only max_seconds of it enter a batch
        long = [d for u in utts if (d := durations.get(u.id, 0.0)) > max_seconds]
        entries["cropped"] = len(long)
        if long:
            lines.append(f"  cropped to max_seconds ({max_seconds:g} s): {len(long)} clip(s), "
                         f"the longest {max(long):.1f} s")
    for s in ("train", "val", "test"):
        c = Counter(u.label for u in splits[s])
        lines.append(f"  {s:5s} {len(splits[s]):6d}  " + " ".join(f"{k}={c.get(k, 0)}" for k in class_names))
    if check_leakage:
        flat = [u for s in ("train", "val", "test") for u in splits[s]]
        idx, start = {}, 0
        for s in ("train", "val", "test"):
            idx[s] = list(range(start, start + len(splits[s])))
            start += len(splits[s])
        leak = leakage_report(flat, idx, digest=digest)
        entries["leakage"] = leak
        lines.append("  leakage check: " + ", ".join(f"{k}={v}" for k, v in leak.items()))
    entries["counts"] = {s: len(v) for s, v in splits.items()}
    entries["dropped"] = dict(dropped)
    return lines, entries
