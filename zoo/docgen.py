"""Docs tables generated from code: the text between two marker comments of a Markdown file is
replaced by a table the code renders, and ``--check`` tells a stale file (the tests call
``render``). Used by ``python -m zoo.data.corpus_table`` and ``python -m zoo.nn.ssl.table``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable


def replace_between(doc: str, begin: str, end: str, body: str, name: str) -> str:
    """``doc`` with the text between the lines ``begin`` and ``end`` replaced by ``body``."""
    if begin not in doc or end not in doc:
        raise ValueError(f"{name} lacks the markers {begin!r} ... {end!r}")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def main(argv, *, prog: str, description: str, doc: Path, render: Callable[[str], str], what: str) -> int:
    """Rewrite ``doc`` with ``render`` (or, with ``--check``, exit 1 when that would change it)."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--check", action="store_true", help=f"exit 1 when {doc.name} is stale")
    p.add_argument("--doc", default=str(doc))
    a = p.parse_args(argv)
    path = Path(a.doc)
    old = path.read_text(encoding="utf-8")
    new = render(old)
    if a.check:
        if new != old:
            print(f"{path}: the {what} is stale; run {prog}", file=sys.stderr)
            return 1
        return 0
    path.write_text(new, encoding="utf-8")
    return 0
