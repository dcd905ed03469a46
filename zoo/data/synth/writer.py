"""Writing a corpus: file layout, arguments stamp, README, folder checks, lock and worker pool."""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from zoo.data.corpora.aihub import AIHUB_EMOTIONS
from zoo.errors import ZooUserError

from .plan import CUES, _plan, _Row
from .prosody import utterance_dims
from .render import _render_job

log = logging.getLogger("zoo")

# Bump when the output for the same arguments changes: old stamps then no longer match.
FORMAT_VERSION = 1

HEADER: tuple[str, ...] = (
    "wav_id", "발화문", "상황", "1번 감정", "1번 감정세기", "2번 감정", "2번 감정세기",
    "3번 감정", "3번 감정세기", "4번 감정", "4번감정세기", "5번 감정", "5번 감정세기", "나이", "성별",
)
META_HEADER: tuple[str, ...] = ("wav_id", "speaker", "emotion", "cue", "arousal", "valence")
CSV_NAME = "synthetic.csv"
META_NAME = "synthetic_meta.csv"
WAV_DIR = "wav"
README_NAME = "README.md"
STAMP_NAME = ".synthetic.json"
PARTIAL_NAME = ".synthetic.partial.json"


def _stamp(size, seed, voice, words, both, num_speakers, sample_rate) -> dict:
    # "generator" keeps the module's name before the split into zoo.data.synth: the stamp must
    # stay byte for byte, or every corpus written before would no longer count as cached
    return {
        "generator": "zoo.data.synthetic", "version": FORMAT_VERSION, "size": int(size), "seed": int(seed),
        "voice": float(voice), "words": float(words), "both": float(both),
        "num_speakers": int(num_speakers), "sample_rate": int(sample_rate),
    }


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _args_of(data: dict | None) -> dict | None:
    return None if data is None else data.get("args")


def _complete(out: Path, stamp: dict) -> bool:
    if _args_of(_read_json(out / STAMP_NAME)) != stamp:
        return False
    if not (out / CSV_NAME).is_file() or not (out / META_NAME).is_file():
        return False
    wav_dir = out / WAV_DIR
    return wav_dir.is_dir() and sum(1 for p in wav_dir.iterdir() if p.suffix == ".wav") >= stamp["size"]


def _cli_command(stamp: dict) -> str:
    return (f"python -m zoo synth --out <this folder> --size {stamp['size']} --seed {stamp['seed']} "
            f"--voice {stamp['voice']:g} --words {stamp['words']:g} --both {stamp['both']:g} "
            f"--speakers {stamp['num_speakers']}"
            + ("" if stamp["sample_rate"] == 48000 else f" --sample-rate {stamp['sample_rate']}"))


def _readme(stamp: dict, rows: list[_Row], seconds: float) -> str:
    # the text names zoo.data.synthetic (the module before the split) so that the output stays
    # byte for byte what it was (FORMAT_VERSION 1)
    by_class = Counter(r.emotion for r in rows)
    by_cue = Counter(r.cue for r in rows)
    speakers = sorted({r.speaker for r in rows}, key=lambda s: s.id)
    sp = ", ".join(f"{s.id} ({s.gender}, {s.age}, {s.f0:.0f} Hz)" for s in speakers)
    return f"""# Synthetic AI Hub KETI-02-002-style corpus

A deterministic, synthetic Korean emotional speech corpus laid out like the AI Hub
"multimodal emotion dialogues" (KETI-02-002) releases, made by `zoo.data.synthetic` for tests,
demos and smoke runs. It is **not** real speech: a formant synthesiser reads Korean sentences,
and the emotion is carried by the words, by the prosody (after Murray & Arnott), or by both.

Made with:

    {_cli_command(stamp)}

or `zoo.data.synthetic.generate(out, size={stamp['size']}, seed={stamp['seed']}, voice={stamp['voice']:g}, words={stamp['words']:g}, both={stamp['both']:g}, num_speakers={stamp['num_speakers']}, sample_rate={stamp['sample_rate']})`.
The same arguments write the same bytes.

## Files

- `{CSV_NAME}`: cp949, the AI Hub header verbatim (`{",".join(HEADER)}`).
  `wav_id` is an ObjectId (first 8 hex digits = Unix time; rows of a conversation are seconds
  apart, conversations minutes to hours apart). `상황` is the conversation's scripted situation,
  not the label; the five `N번 감정` columns are annotator votes (sometimes disagreeing, sometimes
  lower- or upper-case), `N번 감정세기` their intensity 0-2.
- `{WAV_DIR}/{{wav_id}}.wav`: {stamp['sample_rate']} Hz, mono, PCM 16-bit, 2-6 s.
- `{META_NAME}` (UTF-8): `wav_id,speaker,emotion,cue`: the simulated speaker, the true rendered
  emotion, and the cue: `voice` = neutral words with emotional prosody, `words` = emotional
  words with neutral prosody, `both` = both. Neutral rows are neutral in words and voice.

## Contents

- {len(rows)} utterances, {seconds / 60:.1f} minutes of audio, {len({r.conversation for r in rows})} conversations
- true emotions: {", ".join(f"{e} {by_class.get(e, 0)}" for e in AIHUB_EMOTIONS)}
- cues: {", ".join(f"{c} {by_cue.get(c, 0)}" for c in CUES)}
- speakers: {sp}
"""


def _default_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def _prepare(out: Path, stamp: dict, overwrite: bool) -> bool:
    """Check OUT; return True when it already holds this corpus (nothing to do)."""
    if out.exists() and not out.is_dir():
        raise ZooUserError(f"synthetic corpus: {out} exists and is not a folder; choose another --out")
    if not out.exists():
        return False
    if not overwrite and _complete(out, stamp):
        return True
    entries = list(out.iterdir())
    if not entries or overwrite:
        return False
    old = _args_of(_read_json(out / STAMP_NAME)) or _args_of(_read_json(out / PARTIAL_NAME))
    if old == stamp:
        log.warning("synthetic corpus in %s is incomplete (an interrupted run?); writing it again", out)
        return False
    if old is not None:
        diff = ", ".join(f"{k}: {old.get(k)!r} -> {v!r}" for k, v in stamp.items() if old.get(k) != v)
        what = f"a synthetic corpus made with other arguments ({diff})"
    else:
        shown = ", ".join(sorted(p.name for p in entries)[:5]) + (", ..." if len(entries) > 5 else "")
        what = f"files that are not a synthetic corpus ({shown})"
    raise ZooUserError(
        f"synthetic corpus: {out} already holds {what}. Choose an empty or new --out folder, or "
        "pass overwrite=True (--overwrite) to replace the corpus files there.")


def _clear(out: Path) -> None:
    """Remove the files a previous corpus wrote (only those; other files are left alone)."""
    for name in (STAMP_NAME, PARTIAL_NAME, CSV_NAME, META_NAME, README_NAME):
        p = out / name
        if p.is_file():
            p.unlink()
    wav_dir = out / WAV_DIR
    if wav_dir.is_dir():
        for p in wav_dir.iterdir():
            if p.suffix == ".wav" and p.is_file():
                p.unlink()


def _generate(out, size, seed, voice, words, both, num_speakers, sample_rate, overwrite,
              workers) -> tuple[Path, bool, list[_Row] | None, float]:
    out = Path(out).expanduser()
    for name, value in (("size", size), ("seed", seed), ("num_speakers", num_speakers),
                        ("sample_rate", sample_rate)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ZooUserError(f"synthetic corpus: {name} must be an integer, got {value!r}")
    if seed < 0:
        raise ZooUserError(f"synthetic corpus: seed must be >= 0, got {seed}")
    if size < 1:
        raise ZooUserError(f"synthetic corpus: size must be >= 1, got {size}")
    if num_speakers < 1:
        raise ZooUserError(f"synthetic corpus: num_speakers must be >= 1, got {num_speakers}")
    if sample_rate < 8000:
        raise ZooUserError(f"synthetic corpus: sample_rate must be >= 8000 Hz, got {sample_rate}")
    fr = (voice, words, both)
    if any(not isinstance(f, (int, float)) or not math.isfinite(f) or f < 0 for f in fr):
        raise ZooUserError(f"synthetic corpus: cue fractions must be non-negative numbers, got "
                           f"voice={voice!r}, words={words!r}, both={both!r}")
    if abs(sum(fr) - 1.0) > 1e-6:
        raise ZooUserError(f"synthetic corpus: cue fractions voice + words + both must sum to 1, got "
                           f"{voice:g} + {words:g} + {both:g} = {sum(fr):g}")
    stamp = _stamp(size, seed, voice, words, both, num_speakers, sample_rate)
    # parallel fits (an ablation's --jobs, a SLURM array) may ask for the same corpus at once:
    # one process writes it, the others wait and then find it complete
    with _corpus_lock(out):
        return _write(out, stamp, size, seed, fr, num_speakers, sample_rate, overwrite, workers)


@contextlib.contextmanager
def _corpus_lock(out: Path):
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock (run one generator at a time)
        yield
        return
    with open(out.parent / f".{out.name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write_meta(out: Path, rows: list[_Row], seed: int) -> None:
    tmp = out / (META_NAME + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(META_HEADER)
        for r in rows:
            d = utterance_dims(r.emotion, r.prosody, r.speaker, seed, r.index)
            w.writerow([r.wav_id, r.speaker.id, r.emotion, r.cue, f"{d['arousal']:.4f}", f"{d['valence']:.4f}"])
    os.replace(tmp, out / META_NAME)  # a reader never sees half a file


def _upgrade_meta(out: Path, size, seed, fr, num_speakers) -> None:
    """A corpus written before the meta sidecar had arousal/valence gets them (the plan is
    redrawn, no audio is touched: the wavs and the label CSV stay byte for byte)."""
    with open(out / META_NAME, encoding="utf-8", newline="") as f:
        header = next(csv.reader(f), [])
    if tuple(header) != META_HEADER:
        log.info("synthetic corpus %s: adding arousal/valence to %s", out, META_NAME)
        _write_meta(out, _plan(size, seed, fr, num_speakers), seed)


def _write(out: Path, stamp: dict, size, seed, fr, num_speakers, sample_rate, overwrite,
           workers) -> tuple[Path, bool, list[_Row] | None, float]:
    if _prepare(out, stamp, overwrite):
        _upgrade_meta(out, size, seed, fr, num_speakers)
        return out, True, None, float((_read_json(out / STAMP_NAME) or {}).get("seconds", 0.0))
    out.mkdir(parents=True, exist_ok=True)
    _clear(out)
    (out / PARTIAL_NAME).write_text(json.dumps({"args": stamp}, indent=1) + "\n", encoding="utf-8")
    rows = _plan(size, seed, fr, num_speakers)
    wav_dir = out / WAV_DIR
    wav_dir.mkdir(exist_ok=True)
    jobs = [(r.index, str(wav_dir / f"{r.wav_id}.wav"), r.text, r.prosody, r.speaker, r.session, seed,
             sample_rate) for r in rows]
    workers = _default_workers() if workers is None else max(1, int(workers))
    workers = min(workers, max(1, len(jobs) // 16))
    # ~60 ms of one core per utterance: say what is happening before a minute of silence
    log.info("generating the synthetic corpus: %d utterances into %s (about %d s on %d "
                                  "process(es); cached afterwards) ...", size, out,
                                  max(1, round(0.06 * size / workers)), workers)
    from tqdm.auto import tqdm

    bar = dict(total=len(jobs), desc="synthetic corpus", unit="utt", leave=False,
               disable=not sys.stderr.isatty())
    if workers > 1:
        import multiprocessing as mp

        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ctx.Pool(workers) as pool:
            lengths = dict(tqdm(pool.imap_unordered(_render_job, jobs, chunksize=8), **bar))
    else:
        lengths = dict(tqdm(map(_render_job, jobs), **bar))
    seconds = sum(lengths.values()) / sample_rate

    with open(out / CSV_NAME, "w", encoding="cp949", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for r in rows:
            cells = [r.wav_id, r.text, r.situation]
            for v, lv in zip(r.votes, r.intensities):
                cells += [v, lv]
            w.writerow(cells + [r.speaker.age, r.speaker.gender])
    _write_meta(out, rows, seed)
    (out / README_NAME).write_text(_readme(stamp, rows, seconds), encoding="utf-8")
    (out / STAMP_NAME).write_text(json.dumps({"args": stamp, "seconds": round(seconds, 3)}, indent=1) + "\n",
                                  encoding="utf-8")
    (out / PARTIAL_NAME).unlink(missing_ok=True)
    return out, False, rows, seconds


def generate(out, size: int = 400, seed: int = 0, *, voice: float = 0.4, words: float = 0.3,
             both: float = 0.3, num_speakers: int = 8, sample_rate: int = 48000, overwrite: bool = False,
             workers: int | None = None) -> Path:
    """Write a synthetic AI Hub KETI-02-002-style corpus into ``out``; return the folder.

    size: utterances; seed: everything follows from it (same arguments -> same bytes);
    voice / words / both: fractions of rows whose emotion is in the prosody only, the words only,
    or both (they must sum to 1); num_speakers: simulated speakers (alternately female and male,
    ages 20-60); sample_rate: of the wavs (the real corpus: 48000). If ``out`` already holds a
    complete corpus made with the same arguments it is returned untouched; if it holds anything
    else a :class:`~zoo.errors.ZooUserError` is raised unless ``overwrite`` (which replaces the
    corpus files and leaves other files alone). ``workers``: processes rendering the wavs
    (default: the usable CPUs, at most 8); the output does not depend on it.
    """
    return _generate(out, size, seed, voice, words, both, num_speakers, sample_rate, overwrite, workers)[0]
