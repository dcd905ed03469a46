"""``python -m zoo manifest``: write any supported corpus as a manifest CSV (path,label,...).

A manifest is the zoo's common format: once written it can be edited, filtered, merged with other
corpora and trained on with ``configs/data/manifest.yaml``.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

from ..errors import ProblemLog, ZooUserError

CORPORA = ("emodb", "aihub")


def export_manifest(corpus: str, root: str, out: str, on_error: str = "raise",
                    tie_break: str = "intensity") -> int:
    from .labels import apply_label_policy

    problems = ProblemLog(on_error)
    root_p = Path(root).expanduser()
    if corpus == "emodb":
        from .corpora.emodb import load_emodb

        utts = load_emodb(root_p, problems=problems)
    elif corpus == "aihub":
        from .corpora.aihub import load_aihub

        utts = load_aihub(root_p, problems=problems)
    else:
        raise ZooUserError(f"unknown corpus {corpus!r}; choose from {', '.join(CORPORA)}")
    problems.check(f"{corpus} at {root_p}")
    utts, dropped = apply_label_policy(utts, tie_break=tie_break, problems=problems)
    out_p = Path(out)
    out_p.parent.mkdir(parents=True, exist_ok=True)
    with open(out_p, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "path", "label", "text", "speaker", "group"])
        for u in utts:
            w.writerow([u.id, u.audio, u.label, u.text or "", u.speaker or "", u.group or ""])
    print(f"wrote {len(utts)} rows to {out_p}" + (f" (dropped: {dict(dropped)})" if dropped else ""))
    return len(utts)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m zoo manifest", description=__doc__)
    p.add_argument("corpus", choices=CORPORA)
    p.add_argument("--root", required=True, help="the corpus folder")
    p.add_argument("--out", required=True, help="manifest CSV to write")
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise")
    a = p.parse_args(argv)
    export_manifest(a.corpus, a.root, a.out, a.on_error)
