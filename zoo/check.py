"""``python -m zoo check --config DATA.yaml``: scan a corpus as configured, without training.

Reads the data section of the config (the one ``fit`` would use), decodes every audio file in
worker processes and prints: rows, readable / unreadable / missing audio, a duration histogram,
sample rates and channel counts, silent and clipped files, label distribution, annotator
agreement, text encoding problems, duplicate ids and byte-identical audio, speakers per split and
the leakage report. Exits 1 when the corpus cannot be trained on as configured, saying why.
``--exclude-list FILE`` writes the rows to leave out (the data option ``exclude: FILE`` reads it).

Lightning is not imported; nothing from the config is executed (corpus classes are looked up in
the zoo's registry by name, never imported from an arbitrary dotted path).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from .errors import ProblemLog, ZooUserError
from .data.audio import MIN_SECONDS
from .ranges import DATA_OPTIONS, check_options, is_ranged

log = logging.getLogger("zoo")

#: peak below this (about -80 dBFS) is a silent file; a share of samples at full scale above
#: CLIP_SHARE is a clipped one (both kept for training, listed here)
SILENT_PEAK = 1e-4
CLIP_LEVEL, CLIP_SHARE = 0.999, 0.001
DURATION_BINS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 60.0, float("inf"))


# -- config ---------------------------------------------------------------------------------------

def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def data_options(configs: list[str], overrides: list[tuple[list[str], object]] | None = None) -> dict:
    """The DataModule's init_args from one or more configs (a data config or a whole fit config)."""
    import yaml

    merged: dict = {}
    for c in configs:
        p = Path(c)
        if not p.is_file():
            raise ZooUserError(f"config {c} does not exist")
        try:
            cfg = yaml.safe_load(p.read_bytes().decode("utf-8")) or {}
        except UnicodeDecodeError as e:
            raise ZooUserError(f"config {c} is not a text file (byte {e.start} is not UTF-8); a config is a "
                               "YAML text file") from None
        except yaml.YAMLError as e:
            raise ZooUserError(f"config {c} is not valid YAML: {e}") from None
        if not isinstance(cfg, dict):
            raise ZooUserError(f"config {c}: expected a mapping at the top")
        data = cfg.get("data", cfg)
        if isinstance(data, dict) and "init_args" in data:
            data = data["init_args"]
        merged = _merge(merged, data if isinstance(data, dict) else {})
    for key, value in overrides or []:
        _set_option(merged, key, value)
    if "corpus" not in merged:
        raise ZooUserError(f"no data.init_args.corpus in {', '.join(configs) or 'the options'} (give the data "
                           "config, e.g. configs/data/synthetic.yaml)")
    # every range fit checks (zoo.ranges: the DataModule's and the split's), before any file is read
    bad = check_options(merged, DATA_OPTIONS, "data.")
    if bad:
        raise ZooUserError("; ".join(bad))
    split_options(merged)
    return merged


def split_options(opts: dict):
    """The configured :class:`SplitOptions` (its ranges checked), or a ZooUserError."""
    from .data.splits import SplitOptions

    try:
        return SplitOptions(**(opts.get("split") or {}))
    except TypeError as e:
        raise ZooUserError(f"split: {e}") from None


def data_overrides(args: list[str]) -> list[tuple[list[str], object]]:
    """``--data.corpus.path X`` / ``--data.init_args.batch_size=8`` options, as ``fit`` takes them:
    (keys below ``data``, value read as YAML)."""
    import yaml

    out, i = [], 0
    while i < len(args):
        a = args[i]
        opt, eq, value = a.partition("=")
        if not opt.startswith("--data."):
            raise ZooUserError(f"check takes --config FILE and data options (--data.KEY VALUE, e.g. "
                               f"--data.corpus.path x.csv); not {opt}")
        if not eq:
            if i + 1 >= len(args):
                raise ZooUserError(f"{opt} needs a value")
            value = args[i + 1]
            i += 1
        i += 1
        keys = [k for k in opt[len("--data."):].split(".") if k != "init_args"]
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        out.append((keys, parsed))
    return out


def _set_option(opts: dict, keys: list[str], value) -> None:
    """Set ``keys`` (``corpus.path``, ``split.fold``, ``batch_size``) in the DataModule's options;
    a corpus option goes into the corpus's ``init_args``."""
    if not keys:
        return
    if keys[0] == "corpus" and len(keys) > 1:
        spec = opts.get("corpus")
        if isinstance(spec, str) or spec is None:
            spec = {"class_path": spec, "init_args": {}} if spec else {"init_args": {}}
        spec = dict(spec)
        if keys[1] == "class_path":
            spec["class_path"] = value
        else:
            spec["init_args"] = _merge(spec.get("init_args") or {}, _nested(keys[1:], value))
        opts["corpus"] = spec
        return
    opts.update(_merge(opts, _nested(keys, value)))


def _nested(keys: list[str], value) -> dict:
    out = value
    for k in reversed(keys):
        out = {k: out}
    return out


def build_corpus(spec):
    """A corpus from its config: ``{class_path, init_args}`` or a registered name; looked up in
    the registry (``zoo.data.corpora.X`` or ``X``), corpora nested in ``corpora:`` lists too."""
    from .data.corpora.base import Corpus, registry

    by_name = {}
    for name, cls in registry().items():
        by_name[name] = by_name[cls.__name__] = by_name[f"zoo.data.corpora.{cls.__name__}"] = cls
        by_name[f"{cls.__module__}.{cls.__qualname__}"] = cls
    if isinstance(spec, str):
        spec = {"class_path": spec, "init_args": {}}
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise ZooUserError(f"corpus must be {{class_path: zoo.data.corpora.NAME, init_args: {{...}}}}, got {spec!r}")
    cls = by_name.get(spec["class_path"])
    if cls is None:
        raise ZooUserError(f"unknown corpus {spec['class_path']!r}; registered: {', '.join(registry())}")
    args = dict(spec.get("init_args") or {})
    # the corpus's ranges (zoo.ranges types in its signature), as fit checks them when parsing
    import typing

    hints = typing.get_type_hints(cls.__init__)
    bad = check_options(args, {n: t for n, t in hints.items() if is_ranged(t)}, "data.corpus.")
    if bad:
        raise ZooUserError("; ".join(bad))
    for k, v in args.items():  # a multi-corpus corpus holds corpora
        if isinstance(v, list) and v and all(isinstance(x, dict) and "class_path" in x for x in v):
            args[k] = [build_corpus(x) for x in v]
    try:
        corpus = cls(**args)
    except TypeError as e:
        raise ZooUserError(f"corpus {spec['class_path']}: {e}") from None
    assert isinstance(corpus, Corpus)
    return corpus


# -- one file (runs in a worker process) ------------------------------------------------------------

def scan_file(path: str) -> dict:
    """What one audio file is: status ok / missing / unreadable, and for a readable one its rate,
    channels, duration, peak, share of clipped samples and sha1."""
    import soundfile as sf

    from .data.audio import _open, audio_details, audio_exists, file_digest

    if not audio_exists(path):
        return {"status": "missing", "reason": "audio file not found"}
    try:
        info = audio_details(path, check_samples=False)
        data, _ = sf.read(_open(path), dtype="float32", always_2d=True)
        if not np.isfinite(data).all():
            n = int((~np.isfinite(data)).sum())
            raise ValueError(f"{n} non-finite sample(s) (NaN or inf)")
        peak = float(np.abs(data).max()) if data.size else 0.0
        clipped = float((np.abs(data) >= CLIP_LEVEL).mean()) if data.size else 0.0
        return {"status": "ok", "sr": info.samplerate, "channels": info.channels,
                "duration": info.frames / info.samplerate, "subtype": info.subtype, "peak": peak,
                "clipped": clipped, "digest": file_digest(path)}
    except Exception as e:  # every failure is a finding about this file, not a crash of the scan
        return {"status": "unreadable", "reason": str(e) or type(e).__name__}


def _progress(it, total: int, enabled: bool):
    if not enabled:
        return it
    try:
        from tqdm import tqdm

        return tqdm(it, total=total, desc="audio", unit="file", file=sys.stderr, mininterval=0.5)
    except ImportError:  # pragma: no cover
        return it


# -- the scan ---------------------------------------------------------------------------------------

def _fleiss_kappa(rows: list[tuple[str, ...]]) -> float | None:
    """Fleiss' kappa over rows with the same number of votes (the most common count)."""
    if not rows:
        return None
    n = Counter(len(r) for r in rows).most_common(1)[0][0]
    rows = [r for r in rows if len(r) == n]
    if n < 2 or len(rows) < 2:
        return None
    cats = sorted({v for r in rows for v in r})
    counts = np.array([[r.count(c) for c in cats] for r in rows], dtype=np.float64)
    p_i = ((counts * (counts - 1)).sum(1)) / (n * (n - 1))
    p_j = counts.sum(0) / counts.sum()
    pe = float((p_j ** 2).sum())
    return None if pe >= 1 else float((p_i.mean() - pe) / (1 - pe))


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def check(configs: list[str], workers: int = 2, exclude_list: str | None = None,
          progress: bool = True, out=None, overrides: list[tuple[list[str], object]] | None = None) -> int:
    """Scan the corpus the configs describe; print the report to ``out``; the exit status."""
    from .data.labels import agreement, apply_label_policy
    from .data.rows import drop_excluded_problems, normalize_text, problem_key, read_exclude_list, \
        respell_labels, spellings
    from .data.splits import assign_splits, leakage_report, split_fingerprint

    out = out or sys.stdout

    def say(line: str = "") -> None:
        print(line, file=out)

    opts = data_options(configs, overrides)
    corpus = build_corpus(opts["corpus"])
    on_error = opts.get("on_error", "raise")
    corpus.prepare()
    problems = ProblemLog("skip", max_listed=10 ** 9)
    cap = _Capture()
    log.addHandler(cap)
    try:
        utts = [normalize_text(u) for u in corpus.load(problems)]
    finally:
        log.removeHandler(cap)
    n_rows = len(utts) + len(problems)
    exclude = read_exclude_list(opts["exclude"]) if opts.get("exclude") else None
    n_excluded = 0
    if exclude is not None:
        kept = [u for u in utts if u.id not in exclude and u.audio not in exclude]
        n_excluded = len(utts) - len(kept) + drop_excluded_problems(problems, exclude)
        utts = kept
    say(f"corpus: {corpus.title}")
    say(f"rows: {n_rows} ({len(utts)} read, {len(problems)} refused by the reader"
        + (f", {n_excluded} excluded by {opts['exclude']}" if n_excluded else "") + ")")

    utts, dropped = apply_label_policy(utts, tie_break=opts.get("tie_break", "intensity"),
                                       min_agreement=float(opts.get("min_agreement", 0.0) or 0.0),
                                       problems=problems)
    lm = opts.get("label_map") or getattr(corpus, "label_map", None)
    defaults = corpus.default_class_names
    if lm:
        from .data.label_map import apply_label_map, load_label_map

        m = load_label_map(lm)
        utts, unmapped = apply_label_map(utts, m)
        dropped.update(unmapped)
        defaults = m.classes
    names = list(opts.get("class_names") or defaults or spellings(utts))
    respell_labels(utts, names)
    for u in utts:
        if u.label not in names:
            problems.add(u.meta.get("csv") or u.meta.get("manifest") or u.audio or u.id,
                         f"label {u.label!r} is not one of class_names {names}", row=u.meta.get("row"),
                         column="label")
    utts = [u for u in utts if u.label in set(names)]

    # audio, in worker processes
    paths = sorted({u.audio for u in utts if u.audio})
    results: dict[str, dict] = {}
    if paths:
        chunk = max(1, min(64, len(paths) // (4 * max(1, workers)) or 1))
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                for p, r in _progress(zip(paths, pool.map(scan_file, paths, chunksize=chunk)), len(paths), progress):
                    results[p] = r
        else:
            for p in _progress(paths, len(paths), progress):
                results[p] = scan_file(p)
    min_seconds = float(opts.get("min_seconds", MIN_SECONDS))
    bad: list[tuple[str, str, str]] = []  # (exclude entry, where, reason)
    usable = []
    for u in utts:
        source = u.meta.get("manifest") or u.meta.get("csv")
        where = f"{u.audio or u.id}" + (f" ({source}, row {u.meta['row']})" if u.meta.get("row") is not None
                                        else f" ({source})" if source else "")
        r = results.get(u.audio) if u.audio else {"status": "missing", "reason": f"no audio file for {u.id}"}
        if r["status"] == "ok" and r["duration"] < min_seconds:
            r = {**r, "status": "unreadable", "reason": f"shorter than min_seconds ({r['duration']:.3f} s)"}
        if r["status"] != "ok":
            bad.append((u.id, where, r["reason"]))
        else:
            usable.append(u)
    for p in problems.items:
        # where = the problem's text without its reason (which may hold ": " itself)
        bad.append((problem_key(p.source, p.row), str(p)[: -len(p.reason) - 2], p.reason))

    ok = [results[u.audio] for u in usable]
    status = Counter(results[p]["status"] if p in results else "missing" for p in paths)
    say(f"audio: {len(paths)} files: {status.get('ok', 0)} readable, {status.get('unreadable', 0)} unreadable, "
        f"{status.get('missing', 0)} missing")
    if ok:
        durs = np.array([r["duration"] for r in ok])
        say(f"durations: {durs.sum() / 3600:.2f} h in all, min {durs.min():.2f} s, median "
            f"{np.median(durs):.2f} s, max {durs.max():.2f} s")
        hist = np.histogram(durs, bins=DURATION_BINS)[0]
        width = max(1, int(hist.max()))
        for lo, hi, n in zip(DURATION_BINS[:-1], DURATION_BINS[1:], hist):
            label = f"{lo:g}-{hi:g} s" if hi != float("inf") else f">= {lo:g} s"
            say(f"  {label:>10s} {n:7d} {'#' * round(40 * n / width)}")
        max_s = opts.get("max_seconds", 10.0)
        if max_s:
            n_long = int((durs > float(max_s)).sum())
            if n_long:
                say(f"  {n_long} clip(s) longer than max_seconds ({float(max_s):g} s): cropped in training")
        say("sample rates: " + ", ".join(f"{k} Hz x {v}" for k, v in sorted(Counter(r["sr"] for r in ok).items())))
        say("channels: " + ", ".join(f"{k} x {v}" for k, v in sorted(Counter(r["channels"] for r in ok).items())))
        say("sample formats: " + ", ".join(f"{k} x {v}" for k, v in sorted(Counter(r["subtype"] for r in ok).items())))
        silent = [u.audio for u in usable if results[u.audio]["peak"] < SILENT_PEAK]
        clipped = [u.audio for u in usable if results[u.audio]["clipped"] > CLIP_SHARE]
        say(f"silent files (peak < {SILENT_PEAK:g}): {len(silent)}" + "".join(f"\n  {p}" for p in silent[:10]))
        say(f"clipped files (> {CLIP_SHARE:.1%} of samples at full scale): {len(clipped)}"
            + "".join(f"\n  {p}" for p in clipped[:10]))
        digests = defaultdict(list)
        for u in usable:
            digests[results[u.audio]["digest"]].append(u)
        same = [g for g in digests.values() if len({u.audio for u in g}) > 1]
        say(f"byte-identical audio: {len(same)} group(s)" + "".join(
            f"\n  {', '.join(sorted({u.audio for u in g})[:4])}" for g in same[:10]))

    # labels, annotators, text
    c = Counter(u.label for u in usable)
    say(f"labels ({len(names)} classes): " + ", ".join(f"{k}={c.get(k, 0)}" for k in names))
    if dropped:
        say("dropped by the label policy: " + ", ".join(f"{n} {r}" for r, n in Counter(dropped).most_common()))
    voted = [u for u in usable if u.votes]
    if voted:
        agr = [agreement(u.votes) for u in voted]
        kappa = _fleiss_kappa([tuple(u.votes) for u in voted])
        say(f"annotators: {len(voted)} rows with votes, mean agreement {np.mean(agr):.3f}, "
            f"unanimous {np.mean([a >= 1 - 1e-9 for a in agr]):.1%}"
            + (f", Fleiss' kappa {kappa:.3f}" if kappa is not None else ""))
    texts = [u for u in usable if u.text]
    enc = [m for m in cap.messages if "UTF-8" in m or "cp949" in m or "encoding" in m]
    enc += [f"{u.id}: U+FFFD (a byte that was not text) in the transcript" for u in texts if "\ufffd" in u.text]
    say(f"transcripts: {len(texts)} of {len(usable)} rows" + (
        f", {sum(not (u.text or '').strip() for u in usable)} empty" if texts else ""))
    # valid segments (laughter, a sigh) whose transcript has no words: text models leave them out
    wordless = [u for u in usable if not (u.text or "").strip() and (u.meta.get("raw_text") or "").strip()]
    if wordless:
        say(f"transcripts without words (nonverbal tags only; text models leave them out): {len(wordless)}"
            + "".join(f"\n  {u.id}: {u.meta['raw_text']!r}" for u in wordless[:10]))
    say(f"text encoding problems: {len(enc)}" + "".join(f"\n  {m}" for m in enc[:10]))
    ids = Counter(u.id for u in usable)
    dups = [i for i, n in ids.items() if n > 1]
    say(f"duplicate ids: {len(dups)}" + (f" ({', '.join(dups[:10])})" if dups else ""))

    # splits, speakers, leakage
    reasons = []
    so = split_options(opts)
    if len({u.label for u in usable}) >= 2:
        with_split = [u for u in usable if u.split]
        if so.use_split_column and with_split and len(with_split) == len(usable):
            idx = {s: [i for i, u in enumerate(usable) if u.split == s] for s in ("train", "val", "test")}
        else:
            try:
                idx = assign_splits(usable, so, seed=int(opts.get("seed", 0)))
            except ZooUserError as e:
                idx = None
                reasons.append(f"the split cannot be made: {e}")
        if idx is not None:
            say(f"splits ({'split column' if so.use_split_column and with_split else so.mode}), fingerprint "
                f"{split_fingerprint(usable[i].id for i in idx['test'])} (sorted test ids; a run's hparams.yaml has it):")
            for s in ("train", "val", "test"):
                us = [usable[i] for i in idx[s]]
                spk = {u.speaker for u in us if u.speaker}
                groups = {u.group for u in us if u.group}
                cs = Counter(u.label for u in us)
                say(f"  {s:5s} {len(us):6d} rows, {len(spk)} speakers" + (f", {len(groups)} groups" if groups else "")
                    + "  " + " ".join(f"{k}={cs.get(k, 0)}" for k in names))
            from .data.audio import file_digest

            say("leakage: " + ", ".join(f"{k}={v}" for k, v in leakage_report(usable, idx, digest=file_digest).items()))
            if not idx["train"]:
                reasons.append("the train split is empty")
            missing = [k for k in names if not any(usable[i].label == k for i in idx["train"])]
            if missing:  # trainable, but the model can never predict these
                say(f"warning: class(es) with no training row: {', '.join(missing)}")

    # the verdict
    if bad:
        say(f"problems: {len(bad)}")
        for _, where, reason in bad[:50]:
            say(f"  {where}: {reason}")
        if len(bad) > 50:
            say(f"  ... and {len(bad) - 50} more")
        if on_error == "raise":
            reasons.append(f"{len(bad)} problem row(s) and on_error is raise: fix them, set on_error: skip, or "
                           "write them with --exclude-list FILE and set the data option exclude: FILE")
    if len({u.label for u in usable}) < 2:
        reasons.append(f"fewer than two classes with usable rows ({len(usable)} usable rows)")
    if exclude_list:
        with open(exclude_list, "w", encoding="utf-8") as f:
            f.write("# rows to leave out: python -m zoo check wrote this; the data option exclude: reads it\n")
            for entry, _, reason in bad:
                f.write(f"{entry}\t{reason}\n")
        say(f"exclude list: {len(bad)} row(s) written to {exclude_list}")
    if reasons:
        say("cannot be trained on as configured:\n  " + "\n  ".join(reasons))
        return 1
    say(f"ok: {len(usable)} usable rows")
    return 0


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m zoo check", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", action="append", default=[],
                   help="data config (or a whole fit config); repeat to combine, later ones win")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="processes decoding audio (default: up to 4)")
    p.add_argument("--exclude-list", default=None,
                   help="write the problem rows here, one a line (the data option exclude: reads it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.epilog = ("Data options as fit takes them override the configs: --data.corpus.path x.csv, "
                "--data.batch_size 8, --data.init_args.split.fold 2 (--data.KEY=VALUE too).")
    a, rest = p.parse_known_args(argv)
    overrides = data_overrides(rest)
    if not a.config and not overrides:
        raise ZooUserError("check needs --config DATA.yaml (or the data options, e.g. --data.corpus "
                           "zoo.data.corpora.Manifest --data.corpus.path x.csv)")
    if a.workers < 1:
        raise ZooUserError("--workers must be at least 1")
    # user errors (a bad config, an unreadable manifest) reach the CLI as ZooUserError: one paragraph
    raise SystemExit(check(a.config, workers=a.workers, exclude_list=a.exclude_list,
                           progress=not a.no_progress, overrides=overrides))
