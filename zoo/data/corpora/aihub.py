"""AI Hub KETI-02-002 (Korean multimodal emotion dialogues), read as users download it.

Layout (facts from public loaders of the real data; where a fact is uncertain both forms are
accepted):

* Three releases, ``4차년도`` (14,606 rows), ``5차년도`` (10,011) and ``5차년도_2차`` (19,374),
  each one CSV plus a zip of ``{wav_id}.wav`` files. The CSV names vary between downloads
  (``4차년도.csv``, ``4차_14606.csv``, ``5차년도_2차.csv``; the synthetic corpus writes
  ``synthetic.csv``): every ``*.csv`` directly in the root that has a ``wav_id`` column and
  annotator columns is read; one without either (a sidecar such as ``synthetic_meta.csv``) is
  skipped with an info log.
* CSV encoding cp949; UTF-8 with or without BOM is accepted too (detected per file).
* Header, verbatim: ``wav_id, 발화문, 상황, 1번 감정, 1번 감정세기, ..., 4번 감정, 4번감정세기,
  5번 감정, 5번 감정세기, 나이, 성별``. Headers are matched ignoring whitespace; cells are
  stripped of stray tabs and spaces.
* Wavs are found recursively below the root (unzipped folders may nest: ``5차년도/5차_wav/*.wav``)
  and inside every ``*.zip`` below the root; a zip member's audio string is
  ``"/abs/path/archive.zip::member/path.wav"`` (split at the first ``"::"``, open the member with
  :meth:`zipfile.ZipFile.open` using the name exactly as written). A file on disk wins over a zip
  member with the same stem. Matching is by stem, case-insensitive.
* 16 rows of ``4차년도`` name a wav_id whose wav is stored under another name; the known pairs
  ship as ``zoo/data/resources/aihub_renamed_wavs.tsv`` and are applied. Whatever is still
  missing is reported per row; wavs no row refers to ("orphans") are counted.

Annotator labels (mixed case across releases) are mapped to the canonical spelling of
:data:`~zoo.data.utterance.AIHUB_EMOTIONS`; ``상황`` (the scripted situation, spelled ``anger`` /
``angry``, ``sad`` / ``sadness``, ...) is normalised the same way but kept only as
``meta["situation"]``, never as the label. Records carry ``votes`` and ``intensities``; the hard
or soft label is decided by :mod:`zoo.data.labels`.

Only the standard library is imported.

Longer than 500 lines because reading one download is one concern, and about a fifth of the file is
the layout facts above and the limits of conversation grouping, kept next to the code that relies on them.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import re
import zipfile
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from zoo.data.corpora.base import Corpus, CorpusInfo, decode_text, walk
from zoo.data.utterance import Utterance
from zoo.errors import CorpusError, ProblemLog
from zoo.ranges import NonNegativeFloat

log = logging.getLogger("zoo")

# The seven AI Hub KETI-02-002 classes, spelled as the corpus spells them, in alphabetical
# order: the one stable order used for class indices everywhere in the zoo.
AIHUB_EMOTIONS: tuple[str, ...] = (
    "Angry", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise",
)
#: seconds between consecutive wav_id timestamps that start a new conversation: the one default
#: of training, ``python -m zoo manifest aihub`` and :func:`conversation_groups`
CONVERSATION_GAP = 120.0

RENAMED_WAVS_FILE = Path(__file__).resolve().parent.parent / "resources" / "aihub_renamed_wavs.tsv"
N_ANNOTATORS = 5

# Spellings seen (or plausible) across releases, for annotator labels and 상황 alike.
EMOTION_ALIASES: dict[str, str] = {
    **{c.lower(): c for c in AIHUB_EMOTIONS},
    "anger": "Angry", "angry": "Angry", "분노": "Angry", "화남": "Angry",
    "disgust": "Disgust", "disgusted": "Disgust", "혐오": "Disgust",
    "fear": "Fear", "fearful": "Fear", "scared": "Fear", "공포": "Fear",
    "happiness": "Happiness", "happy": "Happiness", "joy": "Happiness", "행복": "Happiness",
    "기쁨": "Happiness",
    "neutral": "Neutral", "중립": "Neutral",
    "sadness": "Sadness", "sad": "Sadness", "슬픔": "Sadness",
    "surprise": "Surprise", "surprised": "Surprise", "놀람": "Surprise",
}

# Canonical (whitespace-free) header names.
COL_ID, COL_TEXT, COL_SITUATION, COL_AGE, COL_GENDER = "wav_id", "발화문", "상황", "나이", "성별"
VOTE_COLS = tuple(f"{i}번감정" for i in range(1, N_ANNOTATORS + 1))
INTENSITY_COLS = tuple(f"{i}번감정세기" for i in range(1, N_ANNOTATORS + 1))
REQUIRED_COLS = (COL_ID, COL_TEXT) + tuple(c for pair in zip(VOTE_COLS, INTENSITY_COLS) for c in pair)
OPTIONAL_COLS = (COL_SITUATION, COL_AGE, COL_GENDER)

_OBJECTID = re.compile(r"[0-9a-fA-F]{24}")


# ----------------------------------------------------------------------------------------------
# small helpers

def normalize_header(name: str) -> str:
    """Header key: BOM and all whitespace removed, ASCII lower-cased (``4번 감정세기`` -> ``4번감정세기``)."""
    return re.sub(r"\s+", "", name.replace("\ufeff", "")).lower()


def normalize_emotion(value: str) -> str | None:
    """Canonical AI Hub class name for a label or 상황 spelling, or ``None`` if unknown."""
    label = EMOTION_ALIASES.get(value.lower())
    return label if label is not None else EMOTION_ALIASES.get(re.sub(r"\s+", "", value).lower())


def objectid_time(wav_id: str) -> int | None:
    """Unix time (seconds) in a 24-hex-digit ObjectId (its first 8 digits), else ``None``."""
    wav_id = wav_id.strip()
    if not _OBJECTID.fullmatch(wav_id):
        return None
    return int(wav_id[:8], 16)


def load_renamed_wavs(path: str | Path | None = None) -> dict[str, str]:
    """The shipped ``csv_wav_id -> wav_stem`` pairs (tab-separated, ``#`` comments, one header)."""
    path = Path(path) if path is not None else RENAMED_WAVS_FILE
    pairs: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] == "csv_wav_id":
            continue
        pairs[parts[0].lower()] = parts[1].lower()
    return pairs


# ----------------------------------------------------------------------------------------------
# conversation grouping

def conversation_groups(
    wav_ids: Sequence[str],
    gap_seconds: float = CONVERSATION_GAP,
    keys: Sequence[Hashable] | None = None,
) -> list[str]:
    """Group utterances into conversations by the time stamped in their ObjectId wav ids.

    Rows are sorted by ``keys[i]`` (when given; e.g. ``(나이, 성별)``) and then by time (the first
    8 hex digits of the id, in whole seconds). Within one key a new group starts whenever the gap
    to the *previous* row exceeds ``gap_seconds`` (a gap equal to it stays in the group), so a
    group may span longer than ``gap_seconds`` as long as it has no hole that big. Group ids are
    ``"conv-<first wav_id of the group>"``; the result lists them in the input order. An id that
    is not a 24-hex-digit ObjectId gets a group of its own. ``gap_seconds=float("inf")`` puts all
    rows with the same key in one group.

    What this heuristic can and cannot guarantee:

    * It cannot name speakers (the corpus has no speaker column). A group is "rows recorded close
      together in time (by people of the same age and gender)", not "one speaker".
    * The same speaker recorded in two sessions lands in two groups, so a group-disjoint split is
      **not** speaker-independent.
    * Two sessions interleaved in time whose speakers share age and gender (or any two sessions,
      when ``keys`` is not given) merge into one group. Merging is the safe direction for
      leakage: a merged group stays in one split.
    * A pause longer than ``gap_seconds`` inside one conversation splits it in two, and the two
      halves may land in different splits. Larger gaps err on the safe side.
    """
    if gap_seconds < 0:
        raise ValueError(f"gap_seconds must be >= 0, got {gap_seconds!r}")
    n = len(wav_ids)
    if keys is None:
        keys = [None] * n
    if len(keys) != n:
        raise ValueError(f"conversation_groups: {len(keys)} keys for {n} wav ids")
    groups: list[str] = [""] * n
    timed = []
    for i, wav_id in enumerate(wav_ids):
        t = objectid_time(wav_id)
        if t is None:
            groups[i] = f"conv-{wav_id}"
        else:
            timed.append((repr(keys[i]), t, wav_id, i))
    timed.sort()
    current, prev_key, prev_t = None, None, 0
    for key, t, wav_id, i in timed:
        if current is None or key != prev_key or t - prev_t > gap_seconds:
            current = f"conv-{wav_id}"
        groups[i] = current
        prev_key, prev_t = key, t
    return groups


# ----------------------------------------------------------------------------------------------
# the corpus

@dataclass
class AihubSummary:
    """What :func:`read_aihub` found, for logs and reports."""

    root: str
    csv_files: list[str] = field(default_factory=list)
    skipped_csvs: list[str] = field(default_factory=list)  # CSVs without a wav_id column
    encodings: dict[str, str] = field(default_factory=dict)
    rows_read: int = 0
    rows_by_release: dict[str, int] = field(default_factory=dict)
    utterances: int = 0  # rows returned (rows without problems)
    wav_files: int = 0  # wavs on disk
    zip_members: int = 0  # wavs inside zips
    bad_zips: list[str] = field(default_factory=list)  # unreadable archives (skipped, warned)
    duplicate_wav_files: int = 0  # wav stems found more than once (first one used)
    renamed_applied: int = 0
    missing_wavs: int = 0
    orphan_wavs: int = 0
    orphan_examples: list[str] = field(default_factory=list)
    duplicate_transcript_rows: int = 0  # returned rows whose 발화문 another returned row shares
    duplicate_transcripts: int = 0  # distinct 발화문 occurring more than once
    duplicate_rows_by_release: dict[str, int] = field(default_factory=dict)
    empty_texts: int = 0
    unknown_situations: Counter = field(default_factory=Counter)
    conversations: int = 0

    def __str__(self) -> str:
        lines = [
            f"{'synthetic corpus (AI Hub layout)' if (Path(self.root) / '.synthetic.json').is_file() else 'AI Hub corpus'}"
            f" at {self.root}: {self.utterances} utterances from {self.rows_read} rows "
            f"in {len(self.csv_files)} CSV(s) ({', '.join(f'{k}: {v}' for k, v in self.rows_by_release.items())})",
            f"  wavs: {self.wav_files} on disk, {self.zip_members} in zips; {self.renamed_applied} "
            f"renamed wav(s) matched, {self.missing_wavs} missing, {self.orphan_wavs} orphan(s)"
            + (f" (e.g. {', '.join(self.orphan_examples)})" if self.orphan_examples else ""),
            f"  duplicate transcripts: {self.duplicate_transcript_rows} rows share their 발화문 with "
            f"another row ({self.duplicate_transcripts} distinct texts"
            + (f"; by release: {', '.join(f'{k}: {v}' for k, v in self.duplicate_rows_by_release.items())}"
               if self.duplicate_rows_by_release else "") + ")",
            f"  conversations (time-gap groups): {self.conversations}",
        ]
        if self.bad_zips:
            lines.append(f"  unreadable zip archives (skipped): {', '.join(self.bad_zips)}")
        if self.skipped_csvs:
            lines.append(f"  skipped CSVs without a wav_id column: {', '.join(self.skipped_csvs)}")
        if self.unknown_situations:
            lines.append(f"  unknown 상황 values kept as written: {dict(self.unknown_situations)}")
        return "\n".join(lines)


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]], str]:
    text, encoding = decode_text(path.read_bytes(), path)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "," not in first and "\t" in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, [])
    rows = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        rows.append((reader.line_num, cells))
    return header, rows, encoding


def _index_wavs(root: Path, summary: AihubSummary) -> dict[str, str]:
    """stem (lower case) -> audio string, files on disk first, then zip members."""
    index: dict[str, str] = {}

    def add(stem: str, audio: str) -> None:
        key = stem.lower()
        if key in index:
            summary.duplicate_wav_files += 1
        else:
            index[key] = audio

    def junk(name: str) -> bool:  # macOS resource forks and metadata folders
        return name.startswith("._") or "__MACOSX" in name

    wavs, zips = [], []
    seen_dirs: set[tuple[int, int]] = set()
    # absolute paths, no per-file resolve(); symlinked folders are followed (once each)
    for folder, dirs, files in walk(root.resolve()):
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen_dirs:
            dirs[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        dirs[:] = sorted(d for d in dirs if not junk(d))
        for name in files:
            lower = name.lower()
            if lower.endswith(".wav") and not junk(name):
                wavs.append(os.path.join(folder, name))
            elif lower.endswith(".zip"):
                zips.append(Path(folder, name))
    for path in sorted(wavs):
        summary.wav_files += 1
        add(os.path.basename(path)[: -len(".wav")], path)
    for z in sorted(zips):
        try:
            with zipfile.ZipFile(z) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as e:
            # rows whose wav was only in this archive are reported as missing, row by row
            log.warning("%s: cannot read the zip archive (%s); skipped. Re-download or unzip it.", z, e)
            summary.bad_zips.append(str(z))
            continue
        zpath = str(z)
        for member in sorted(names):
            base = re.split(r"[\\/]", member)[-1]  # zips made on Windows may use backslashes
            if member.endswith(("/", "\\")) or not base.lower().endswith(".wav") or junk(member) or junk(base):
                continue
            summary.zip_members += 1
            add(base[: -len(".wav")], f"{zpath}::{member}")
    return index


def _int_or_str(value: str) -> int | str | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        try:
            f = float(value)
            return int(f) if f.is_integer() else value
        except ValueError:
            return value


def read_aihub(
    root: str | Path,
    *,
    problems: ProblemLog,
    conversation_gap: float = CONVERSATION_GAP,
    group_by_demographics: bool = True,
    require_audio: bool = True,
    renamed_wavs: Mapping[str, str] | str | Path | None = None,
) -> tuple[list[Utterance], AihubSummary]:
    """Read an AI Hub KETI-02-002 folder; return its utterances and an :class:`AihubSummary`.

    Each record: ``id`` = wav_id, ``audio`` = the wav's absolute path (or
    ``"archive.zip::member.wav"``), ``text`` = 발화문, ``votes`` = the five annotator labels
    (canonical spelling), ``intensities`` = their five 0-2 intensities, ``label = None`` (see
    :func:`zoo.data.labels.apply_label_policy`), ``speaker = None`` (the corpus names no
    speakers), ``group`` = a conversation id from :func:`conversation_groups` (``conversation_gap``
    seconds; within the same (나이, 성별) when ``group_by_demographics``). ``meta``: ``release``
    (CSV stem), ``csv`` (path), ``row`` (1-based line, header = 1), ``situation`` (normalised
    상황), ``age``, ``gender`` and, for a renamed wav, ``wav_stem``.

    Bad rows (unknown label, bad intensity, duplicate wav_id, wav not found when
    ``require_audio``) are recorded in ``problems`` with CSV and row and left out of the result;
    call ``problems.check(...)`` afterwards to raise or report them. Structural errors (root not
    a folder, no label CSV, a label CSV lacking a column, an undecodable file) raise
    :class:`CorpusError` at once; an unreadable zip is skipped with a warning (rows whose wav
    was only in it then report missing wavs). With ``require_audio=False`` rows whose wav is
    missing are kept with ``audio=None`` (for text-only use). ``renamed_wavs`` overrides the
    shipped ``csv_wav_id -> wav_stem`` table (a mapping or a TSV path).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise CorpusError(f"AI Hub root {root} is not a folder; point root at the folder that holds "
                          "the release CSVs and the wav zips (or unzipped wav folders)")
    summary = AihubSummary(root=str(root))
    if renamed_wavs is None or isinstance(renamed_wavs, (str, Path)):
        renamed = load_renamed_wavs(renamed_wavs)
    else:
        renamed = {k.lower(): v.lower() for k, v in renamed_wavs.items()}

    # 1. rows from every label CSV in the root
    records = []  # (csv path, release, line, fields dict, ok)
    for path in sorted(p for p in root.iterdir() if p.suffix.lower() == ".csv" and p.is_file()):
        header, rows, encoding = _read_csv(path)
        keys = [normalize_header(h) for h in header]
        if COL_ID not in keys or not any(c in keys for c in VOTE_COLS):
            # a sidecar (e.g. the synthetic corpus's synthetic_meta.csv): no annotator columns
            log.info("%s: no wav_id or annotator columns, not an AI Hub label file; skipped", path.name)
            summary.skipped_csvs.append(path.name)
            continue
        missing = [c for c in REQUIRED_COLS if c not in keys]
        if missing:
            raise CorpusError(
                f"{path}: has a wav_id column but lacks the column(s) {', '.join(map(repr, missing))} "
                "(headers are matched ignoring spaces). An AI Hub label CSV has: wav_id, 발화문, 상황, "
                "1번 감정, 1번 감정세기, ..., 5번 감정, 5번 감정세기, 나이, 성별. If this file is not "
                "a label file, move it out of the corpus root.")
        pos = {k: i for i, k in reversed(list(enumerate(keys)))}  # first occurrence wins
        shown = {k: header[i].replace("\ufeff", "").strip() for k, i in pos.items()}
        release = path.stem
        summary.csv_files.append(path.name)
        summary.encodings[path.name] = encoding
        summary.rows_by_release[release] = len(rows)
        summary.rows_read += len(rows)
        for line, cells in rows:
            def cell(col: str) -> str:
                i = pos.get(col)
                return cells[i].strip() if i is not None and i < len(cells) else ""

            ok = True
            wav_id = cell(COL_ID)
            if not wav_id:
                problems.add(path, "empty wav_id", row=line, column=shown[COL_ID])
                continue
            votes, levels = [], []
            for vcol, icol in zip(VOTE_COLS, INTENSITY_COLS):
                raw = cell(vcol)
                label = normalize_emotion(raw) if raw else None
                if label is None:
                    problems.add(path, f"unknown label: {raw!r} (expected one of "
                                 f"{', '.join(AIHUB_EMOTIONS)})" if raw else "missing label",
                                 row=line, column=shown[vcol])
                    ok = False
                votes.append(label)
                raw = cell(icol)
                level = _int_or_str(raw)
                if not isinstance(level, int) or not 0 <= level <= 2:
                    problems.add(path, f"bad intensity: {raw!r} (expected 0, 1 or 2)" if raw
                                 else "missing intensity", row=line, column=shown[icol])
                    ok = False
                levels.append(level)
            situation_raw = cell(COL_SITUATION)
            situation = normalize_emotion(situation_raw) if situation_raw else None
            if situation_raw and situation is None:
                summary.unknown_situations[situation_raw] += 1
                situation = situation_raw
            fields = {
                "wav_id": wav_id, "text": cell(COL_TEXT) or None, "votes": votes, "levels": levels,
                "situation": situation, "age": _int_or_str(cell(COL_AGE)),
                "gender": cell(COL_GENDER) or None,
            }
            records.append((path, release, line, fields, ok))

    if not summary.csv_files:
        raise CorpusError(
            f"no AI Hub label CSV in {root}: expected the release CSVs (e.g. 4차년도.csv, with a "
            "wav_id column) directly in that folder"
            + (f"; skipped {', '.join(summary.skipped_csvs)} (no wav_id column)" if summary.skipped_csvs else ""))

    # 2. audio
    index = _index_wavs(root, summary)
    used: set[str] = set()
    seen: dict[str, tuple[Path, int]] = {}
    kept = []
    for path, release, line, f, ok in records:
        key = f["wav_id"].lower()
        if key in seen:
            first_csv, first_line = seen[key]
            problems.add(path, f"duplicate wav_id: {f['wav_id']} (first at {first_csv.name} row "
                         f"{first_line})", row=line, column="wav_id")
            continue
        seen[key] = (path, line)
        audio, stem = index.get(key), key
        if audio is None and key in renamed and renamed[key] in index:
            stem = renamed[key]
            audio = index[stem]
            summary.renamed_applied += 1
        if audio is not None:
            used.add(stem)
        elif require_audio:
            summary.missing_wavs += 1
            problems.add(path, f"wav not found: {f['wav_id']}.wav", row=line, column="wav_id")
            ok = False
        if ok:
            kept.append((path, release, line, f, audio, stem))
    orphans = sorted(s for s in index if s not in used)
    summary.orphan_wavs = len(orphans)
    summary.orphan_examples = orphans[:5]
    if orphans:
        log.info("%s: %d wav(s) that no CSV row refers to (orphans), e.g. %s", root, len(orphans),
                 ", ".join(orphans[:5]))

    # 3. conversations and records
    keys = [(f["age"], f["gender"]) for _, _, _, f, _, _ in kept] if group_by_demographics else None
    groups = conversation_groups([f["wav_id"] for _, _, _, f, _, _ in kept], conversation_gap, keys)
    utts = []
    for (path, release, line, f, audio, stem), group in zip(kept, groups):
        meta = {"release": release, "csv": str(path), "row": line, "situation": f["situation"],
                "age": f["age"], "gender": f["gender"]}
        if stem != f["wav_id"].lower():
            meta["wav_stem"] = stem
        utts.append(Utterance(id=f["wav_id"], audio=audio, text=f["text"], label=None,
                              votes=tuple(f["votes"]), intensities=tuple(f["levels"]),
                              speaker=None, group=group, meta=meta))
    summary.utterances = len(utts)
    summary.conversations = len(set(groups))
    summary.empty_texts = sum(u.text is None for u in utts)

    # 4. duplicate transcripts (content repeated across rows, e.g. in 5차년도_2차)
    norm = [" ".join(u.text.split()) if u.text else None for u in utts]
    counts = Counter(t for t in norm if t)
    dup_by_release: Counter = Counter()
    for u, t in zip(utts, norm):
        if t and counts[t] > 1:
            dup_by_release[u.meta["release"]] += 1
    summary.duplicate_transcript_rows = sum(dup_by_release.values())
    summary.duplicate_transcripts = sum(1 for n in counts.values() if n > 1)
    summary.duplicate_rows_by_release = dict(dup_by_release)
    if summary.unknown_situations:
        log.info("%s: unknown 상황 values kept as written: %s", root, dict(summary.unknown_situations))
    return utts, summary


class AIHub(Corpus, name="aihub"):
    """AI Hub KETI-02-002 (감정 분류를 위한 대화 음성 데이터셋) as downloaded: CSVs + wav folders/zips.

    Args:
        root: Folder holding the release CSVs (cp949 or UTF-8) and the wavs (any nesting) or zips.
        conversation_gap: Seconds between consecutive wav_id timestamps that start a new
            conversation (the corpus has no speaker column; conversations are the split groups).
        group_by_demographics: Only join rows into one conversation when 나이/성별 match.
        require_audio: Report rows whose wav is missing at once. Off by default: a text-only
            model can use them, and the DataModule reports them when the model consumes audio.
    """

    default_class_names = AIHUB_EMOTIONS
    info = CorpusInfo(
        title="AI Hub KETI-02-002", language="Korean",
        size="43,991 utterances in 3 releases", classes="7: " + ", ".join(AIHUB_EMOTIONS),
        speakers="not named (conversations from wav_id times)",
        protocol="group split by conversation, 70/10/20",
        source="aihub.or.kr (감정 분류를 위한 대화 음성 데이터셋; Korean residents)",
        config="configs/data/aihub.yaml")

    def __init__(self, root: str, conversation_gap: NonNegativeFloat = CONVERSATION_GAP,
                 group_by_demographics: bool = True, require_audio: bool = False):
        self.root = root
        self.conversation_gap = conversation_gap
        self.group_by_demographics = group_by_demographics
        self.require_audio = require_audio
        self._synthetic = False

    @property
    def title(self) -> str:
        # the synthetic corpus is in this layout; its reports must not pass it off as AI Hub's
        return "synthetic Korean corpus (AI Hub layout)" if getattr(self, "_synthetic", False) else super().title

    def stands_in_for(self) -> tuple[str, str, str] | None:
        # a corpus made by `python -m zoo synth` (the demo) is in this layout: point root at the
        # real release and the same config trains on it
        return ("root", "/data/aihub", "AI Hub KETI-02-002") if getattr(self, "_synthetic", False) else None

    def load(self, problems: ProblemLog) -> list[Utterance]:
        root = Path(self.root).expanduser()
        if not root.exists():
            raise CorpusError(
                f"AI Hub root {str(root)!r} does not exist. Point root at the folder holding the "
                "downloaded release CSVs and wavs (docs/data.md). To try the zoo without the data, "
                "use the synthetic corpus: --config configs/data/synthetic.yaml, or `python -m zoo synth "
                "--out data/demo-corpus` (what `make demo` does) and root: data/demo-corpus.")
        if (root / ".synthetic.json").is_file():  # made by `python -m zoo synth`: say so in every report
            self._synthetic = True
        utts, summary = read_aihub(root, problems=problems, conversation_gap=self.conversation_gap,
                                   group_by_demographics=self.group_by_demographics,
                                   require_audio=self.require_audio)
        log.info("%s", summary)
        return utts
