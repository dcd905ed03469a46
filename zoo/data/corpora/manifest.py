"""Any corpus through a manifest: a CSV/TSV or JSONL file listing audio files and labels.

Columns (CSV header / JSON keys; matched case-insensitively, surrounding spaces ignored):

* ``path`` (required): audio file, absolute or relative to the manifest's folder
  (``archive.zip::member.wav`` is accepted; the zip part is resolved the same way); it must lie
  inside the corpus root (the manifest's folder unless ``root`` is set) unless
  ``allow_outside_root: true``;
* ``label`` (required): the class name, used as written;
* ``text``, ``speaker``, ``session``, ``group``, ``split``, ``id`` (optional). ``split`` is
  ``train``, ``val`` (also ``valid``, ``validation``, ``dev``) or ``test``, any case; empty = not
  fixed;
* ``arousal``, ``valence``, ``dominance`` (optional): ratings in the zoo's range [0, 1] (what
  ``python -m zoo manifest`` writes); empty = not rated;
* ``soft`` (optional): the annotators' label distribution as a JSON object
  (``{"Angry": 0.6, "Neutral": 0.4}``);
* any other column is kept in ``meta`` under its own name.

Formats by extension: ``.csv`` (comma), ``.tsv`` (tab), ``.jsonl`` / ``.ndjson`` (one JSON object a
line) and ``.json`` (JSON lines, or one JSON array of objects). Text is UTF-8 with or without BOM
(cp949 is accepted too, and a cp949 file with some rows in UTF-8 is read line by line, with a
warning naming those rows). Audio files are not opened here: the DataModule validates them.

Only the standard library is imported.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections import Counter
from pathlib import Path, PurePath
from typing import Any

from zoo.data.corpora.base import Corpus, CorpusInfo, decode_text, normalize_dims
from zoo.data.utterance import DIMENSIONS, Utterance
from zoo.errors import CorpusError, ProblemLog

log = logging.getLogger("zoo")

REQUIRED = ("path", "label")
KNOWN = ("path", "label", "text", "speaker", "session", "group", "split", "id", "soft") + DIMENSIONS
SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val",
    "test": "test", "testing": "test", "eval": "test",
}
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}


def normalize_split(value: str) -> str | None:
    """``train`` / ``val`` / ``test`` for the accepted spellings, ``None`` otherwise."""
    return SPLIT_ALIASES.get(value.strip().lower())


def _rows_csv(text: str, delimiter: str, path: Path,
              problems: ProblemLog | None = None) -> tuple[list[str], list[tuple[int, dict]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.replace("\ufeff", "").strip() for h in next(reader, [])]
    if not any(header):
        raise CorpusError(f"{path}: the manifest is empty (expected a header with columns path,label)")
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        key = h.lower()
        if h and key in seen:
            # a second `label` column would silently win over the first
            raise CorpusError(f"{path}: the header names the column {h!r} twice (columns {seen[key] + 1} and "
                              f"{i + 1}: {','.join(header)}); rename or remove one")
        seen[key] = i
    rows = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        extra = cells[len(header):]
        if problems is not None and (len(cells) < len(header) or any(c.strip() for c in extra)):
            # a shifted row (an unquoted delimiter in a transcript, a lost cell) would put the
            # text in the label column: refused, not guessed
            problems.add(path, f"{len(cells)} cell(s) where the header has {len(header)}"
                         + (" (an unquoted delimiter inside a field?)" if extra else ""),
                         row=reader.line_num)
            continue
        rows.append((reader.line_num, {h: (cells[i] if i < len(cells) else "")
                                       for i, h in enumerate(header) if h}))
    return [h for h in header if h], rows


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """json's object_pairs_hook: a key given twice (json keeps the last silently) is an error."""
    seen: set[str] = set()
    for k, _ in pairs:
        key = str(k).strip().lower()
        if key in seen:
            raise _DuplicateKey(k)
        seen.add(key)
    return dict(pairs)


def _rows_json(text: str, path: Path, problems: ProblemLog) -> tuple[list[str], list[tuple[int, dict]]]:
    stripped = text.lstrip()
    items: list[tuple[int, Any]] = []
    if stripped.startswith("["):  # one JSON array
        try:
            data = json.loads(text, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}: invalid JSON ({e})") from None
        except _DuplicateKey as e:
            raise CorpusError(f"{path}: an object gives the key {e.args[0]!r} twice") from None
        items = [(i + 1, obj) for i, obj in enumerate(data)]  # "row" = position in the array
    else:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append((n, json.loads(line, object_pairs_hook=_unique_keys)))
            except json.JSONDecodeError as e:
                problems.add(path, f"invalid JSON: {e.msg}", row=n)
            except _DuplicateKey as e:
                problems.add(path, f"the key {e.args[0]!r} is given twice in this object", row=n)
    header: list[str] = []
    rows = []
    for n, obj in items:
        if not isinstance(obj, dict):
            problems.add(path, f"not a JSON object: {type(obj).__name__}", row=n)
            continue
        obj = {str(k).strip(): v for k, v in obj.items()}
        for k in obj:
            if k not in header:
                header.append(k)
        rows.append((n, obj))
    return header, rows


def _as_str(value: Any) -> str:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value).strip()


def _resolve(raw: str, base: Path) -> str:
    zip_part, sep, member = raw.partition("::")
    p = Path(os.path.expanduser(zip_part))
    if not p.is_absolute():
        p = base / p
    return os.path.normpath(str(p)) + (sep + member if sep else "")


def load_manifest(path: str | Path, *, problems: ProblemLog, root: str | Path | None = None,
                  allow_outside_root: bool = False) -> list[Utterance]:
    """Read a manifest into :class:`Utterance` records (``label`` set, no votes).

    ``id`` is the ``id`` column when given, else the audio file's stem; ids are made unique by
    appending ``-2``, ``-3``, ... in file order. ``meta`` holds every extra column plus
    ``manifest`` (the file) and ``row`` (1-based line; the CSV header is line 1) unless a column of
    that name already fills them.

    A missing file, an unknown extension or a missing required column raises
    :class:`CorpusError` naming the file and column. A row with an empty ``path`` or ``label``, an
    unknown ``split`` value, a cell count other than the header's, an ``id`` or audio path already
    given by an earlier row, or an audio path outside ``root`` (default: the manifest's folder;
    ``allow_outside_root`` lifts this) is recorded in ``problems`` with its row number and left
    out; call ``problems.check(...)`` afterwards.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CorpusError(f"manifest {path} does not exist (or is not a file)")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CorpusError(f"manifest {path}: unknown extension {path.suffix!r}; use one of "
                          f"{', '.join(FORMATS)}")
    text, encoding = decode_text(path.read_bytes(), path)
    if "+" in encoding:  # e.g. a cp949 file with rows pasted in as UTF-8: each line decoded as written
        log.warning("manifest %s: %s", path, encoding)
    if fmt in ("csv", "tsv"):
        header, rows = _rows_csv(text, "," if fmt == "csv" else "\t", path, problems)
    else:
        header, rows = _rows_json(text, path, problems)
    # column name (as written) for each canonical known column; others go to meta
    by_key: dict[str, str] = {}
    for h in header:
        key = h.strip().lower()
        if key in KNOWN and key not in by_key:
            by_key[key] = h
    missing = [c for c in REQUIRED if c not in by_key]
    if missing:
        raise CorpusError(f"manifest {path} lacks the column(s) {', '.join(map(repr, missing))} "
                          f"(found: {', '.join(header) or 'none'}); required: path,label; "
                          "optional: text,speaker,session,group,split,id,arousal,valence,dominance,soft")
    extras = [h for h in header if h not in by_key.values()]
    base = path.parent.resolve()
    fence = os.path.realpath(os.path.expanduser(str(root))) if root else str(base)
    utts: list[Utterance] = []
    ids: Counter = Counter()
    first_id: dict[str, int] = {}  # explicit id -> row that gave it
    first_path: dict[str, int] = {}  # audio path -> row that gave it
    for line, row in rows:
        def get(key: str) -> str:
            return _as_str(row.get(by_key[key])) if key in by_key else ""

        raw_path, label, split_raw = get("path"), get("label"), get("split")
        ok = True
        if not raw_path:
            problems.add(path, "empty path", row=line, column=by_key["path"])
            ok = False
        if not label:
            problems.add(path, "empty label", row=line, column=by_key["label"])
            ok = False
        split = normalize_split(split_raw) if split_raw else None
        if split_raw and split is None:
            problems.add(path, f"unknown split: {split_raw!r} (expected train, val or test)",
                         row=line, column=by_key["split"])
            ok = False
        dims: dict[str, float] = {}
        try:
            dims = normalize_dims({d: float(get(d)) for d in DIMENSIONS if get(d)}, (0.0, 1.0))
        except ValueError as e:
            problems.add(path, f"bad rating: {e} (manifest ratings are in [0, 1])", row=line)
            ok = False
        soft = None
        if get("soft"):
            try:
                soft = {str(k): float(v) for k, v in json.loads(get("soft")).items()}
            except (ValueError, AttributeError, TypeError):
                problems.add(path, f"bad soft label: {get('soft')!r} (expected a JSON object of "
                             "class -> share)", row=line, column=by_key["soft"])
                ok = False
        if not ok:
            continue
        audio = _resolve(raw_path, base)
        real = os.path.realpath(audio.partition("::")[0])
        if not allow_outside_root and os.path.commonpath([real, fence]) != fence:
            problems.add(path, f"audio path {raw_path!r} lies outside the corpus root {fence} (set "
                         "the corpus option allow_outside_root: true, or root:, to allow it)",
                         row=line, column=by_key["path"])
            continue
        if audio in first_path:
            problems.add(path, f"duplicate audio path {raw_path!r} (also in row {first_path[audio]})",
                         row=line, column=by_key["path"])
            continue
        if get("id") and get("id") in first_id:
            problems.add(path, f"duplicate id {get('id')!r} (also in row {first_id[get('id')]})",
                         row=line, column=by_key["id"])
            continue
        first_path[audio] = line
        if get("id"):
            first_id[get("id")] = line
        uid = get("id") or PurePath(raw_path.partition("::")[2] or raw_path.partition("::")[0]).stem
        ids[uid] += 1
        if ids[uid] > 1:
            n = ids[uid]
            while f"{uid}-{n}" in ids:
                n += 1
            uid = f"{uid}-{n}"
            ids[uid] += 1
        meta: dict[str, Any] = {}
        for h in extras:
            value = row.get(h)
            meta[h] = value.strip() if isinstance(value, str) else value
        meta.setdefault("manifest", str(path))
        meta.setdefault("row", line)
        utts.append(Utterance(id=uid, audio=audio, text=get("text") or None, label=label,
                              speaker=get("speaker") or None, split=split,
                              session=get("session") or None, group=get("group") or None,
                              dims=dims, dims_scale=(0.0, 1.0) if dims else None, soft=soft,
                              meta=meta))
    log.info("manifest %s: %d utterance(s) from %d row(s)", path, len(utts), len(rows))
    return utts


class Manifest(Corpus, name="manifest"):
    """Any corpus described by a manifest: CSV/TSV or JSONL with ``path,label`` and optional
    ``text,speaker,session,split,arousal,valence,dominance,soft`` columns (paths absolute or
    relative to the manifest's folder; see docs/data.md).

    Args:
        path: The manifest file (.csv, .tsv, .jsonl, .ndjson or .json).
        root: The folder every audio path must lie in (after resolving ``..`` and symlinks); a
            row pointing elsewhere is a problem of its row. null: the manifest's own folder.
        allow_outside_root: Accept audio paths outside ``root`` (e.g. a manifest written by
            ``python -m zoo manifest`` into another folder than the corpus).
    """

    exportable = False  # it is already a manifest
    info = CorpusInfo(
        title="manifest", language="any", size="any", classes="the labels found (sorted)",
        dimensions="arousal, valence, dominance columns when present ([0, 1])",
        speakers="the speaker column", protocol="the split column, else a group split",
        source="python -m zoo manifest NAME, or your own CSV", config="configs/data/manifest.yaml")

    def __init__(self, path: str, root: str | None = None, allow_outside_root: bool = False):
        self.path = path
        self.root = root
        self.allow_outside_root = allow_outside_root

    @property
    def title(self) -> str:
        return f"manifest {self.path}"

    def load(self, problems: ProblemLog) -> list[Utterance]:
        return load_manifest(self.path, problems=problems, root=self.root,
                             allow_outside_root=self.allow_outside_root)
