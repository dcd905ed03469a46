"""``python -m zoo manifest``: write any registered corpus as a manifest CSV.

A manifest is the zoo's common format: once written it can be edited, filtered, merged with other
corpora and trained on with ``configs/data/manifest.yaml``. It carries every column the corpus
has: id, path, label, text, speaker, session, group, split, arousal, valence, dominance (in the
zoo's range [0, 1]) and soft (the annotators' distribution, JSON).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

from ..errors import ProblemLog
from .corpora.base import get_corpus, registry
from .utterance import DIMENSIONS

COLUMNS = ["id", "path", "label", "text", "speaker", "session", "group", "split", *DIMENSIONS, "soft"]


def exportable() -> list[str]:
    """Registered corpora that ``python -m zoo manifest NAME --root DIR`` can write."""
    return [n for n, c in registry().items() if c.exportable]


def export_manifest(corpus: str, root: str, out: str, on_error: str = "raise",
                    tie_break: str = "intensity") -> int:
    from .labels import apply_label_policy, soft_label

    problems = ProblemLog(on_error)
    cls = get_corpus(corpus)
    root_p = Path(root).expanduser()
    c = cls(root=str(root_p))
    utts = c.load(problems)
    kept = []
    for u in utts:  # a manifest row needs its audio file
        if u.audio:
            kept.append(u)
        else:
            problems.add(u.meta.get("csv") or u.id, f"wav not found: {u.id}", row=u.meta.get("row"))
    problems.check(f"{corpus} at {root_p}")
    utts, dropped = apply_label_policy(kept, tie_break=tie_break, problems=problems)
    out_p = Path(out)
    out_p.parent.mkdir(parents=True, exist_ok=True)
    with open(out_p, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for u in utts:
            soft = ""
            if u.votes or u.soft:
                names = sorted(set(u.votes) | set(u.soft or {}))
                dist = soft_label(u, names, ignore_unknown=True)
                soft = json.dumps({n: round(p, 6) for n, p in zip(names, dist) if p}, ensure_ascii=False)
            w.writerow([u.id, u.audio, u.label, u.text or "", u.speaker or "", u.session or "",
                        u.group or "", u.split or "",
                        *(f"{u.dims[d]:.6g}" if d in u.dims else "" for d in DIMENSIONS), soft])
    print(f"wrote {len(utts)} rows to {out_p}" + (f" (dropped: {dict(dropped)})" if dropped else ""))
    folder = str(out_p.parent.resolve())
    if any(os.path.commonpath([os.path.realpath(u.audio.partition("::")[0]), folder]) != folder
           for u in utts):
        print(f"the audio lies outside {folder}: train on this manifest with the corpus option "
              f"allow_outside_root: true (--data.corpus.allow_outside_root true) or "
              f"root: {root_p.resolve()}")
    return len(utts)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m zoo manifest", description=__doc__)
    p.add_argument("corpus", choices=exportable())
    p.add_argument("--root", required=True, help="the corpus folder")
    p.add_argument("--out", required=True, help="manifest CSV to write")
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise")
    a = p.parse_args(argv)
    export_manifest(a.corpus, a.root, a.out, a.on_error)
