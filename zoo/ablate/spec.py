"""The ablation file: read, validate (every error names its key) and expand into runs.

An ablation is a grid of *cells* (one choice per axis) times ``seeds`` times ``folds``; each
(cell, seed, fold) is one *run*: an independent ``python -m zoo fit``. Only PyYAML and the
standard library are imported here, so ``python -m zoo ablate --dry-run`` stays fast.
"""
from __future__ import annotations

import difflib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ZooUserError

TOP_KEYS = ("name", "description", "base", "overrides", "prerequisites", "checkpoints", "cross", "zip",
            "seeds", "seed_data", "folds", "metrics", "best_by", "best_mode")
PREREQ_AXIS = "prerequisite"
VARIANT_KEYS = ("config", "set", "checkpoints")
DEFAULT_METRICS = ("test/WA", "test/UA", "test/macro_F1")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def _err(where: str, msg: str) -> ZooUserError:
    return ZooUserError(f"{where}: {msg}")


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def cli_value(v: Any) -> str:
    """A value as jsonargparse reads it back from the command line."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def value_name(v: Any) -> str:
    """A short, path-safe name for an axis value (0.6 -> '0.6', [8, 16] -> '8-16')."""
    if isinstance(v, (list, tuple)):
        s = "-".join(value_name(x) for x in v)
    elif isinstance(v, dict):
        raise ValueError("a mapping needs a name")
    else:
        s = cli_value(v)
    return _UNSAFE.sub("_", s).strip("_") or "_"


@dataclass(frozen=True, eq=False)  # compared by identity: values may be lists
class Choice:
    """One value of one axis: config files to stack, dotted keys to set, and checkpoints taken
    from another choice of the same axis (a prerequisite stage, e.g. late fusion's branches)."""

    axis: str
    name: str
    configs: tuple[str, ...] = ()
    sets: tuple[tuple[str, Any], ...] = ()
    checkpoints: tuple[tuple[str, str], ...] = ()  # dotted key -> name of another choice
    named_axis: bool = False  # a config/variant axis: the cell name shows the choice name alone

    @property
    def label(self) -> str:
        return self.name if self.named_axis else f"{self.axis}={self.name}"


@dataclass
class Cell:
    name: str
    rows: tuple[tuple[Choice, ...], ...]  # one row per axis group (a zip group's row has several)

    @property
    def choices(self) -> tuple[Choice, ...]:
        return tuple(c for row in self.rows for c in row)

    def choice(self, axis: str) -> Choice:
        return next(c for c in self.choices if c.axis == axis)


@dataclass
class Run:
    cell: Cell
    seed: int
    fold: int | None
    deps: dict[str, "Run"] = field(default_factory=dict)  # dotted key -> run whose best.ckpt it takes
    stage: int = 0

    @property
    def name(self) -> str:
        return f"seed{self.seed}" + (f"-fold{self.fold}" if self.fold is not None else "")

    @property
    def id(self) -> str:
        return f"{self.cell.name}/{self.name}"


@dataclass
class Ablation:
    name: str
    path: Path
    description: str
    base: list[str]
    overrides: list[tuple[str, Any]]
    groups: list[list[list[Choice]]]  # per group: its rows (one choice per axis of the group)
    axes: list[str]
    seeds: list[int]
    seed_data: bool
    folds: int | None
    metrics: list[str]
    best_by: str
    best_mode: str
    prereqs: list[Choice] = field(default_factory=list)  # stage-0 cells outside the grid
    checkpoints: list[tuple[str, str]] = field(default_factory=list)  # every grid cell: key -> prereq
    #: folds named in the file (``folds:`` a list): fold k's split options (test_speakers, ...)
    fold_splits: list[dict[str, Any]] | None = None

    def cells(self) -> list[Cell]:
        """Prerequisite cells first, then the grid. An axis with a single value does not vary,
        so it is left out of the cell names (it is still a column of results.csv)."""
        cells = [Cell(p.name, ((p,),)) for p in self.prereqs]
        varying = {c.axis for g in self.groups if len(g) > 1 for c in g[0]}
        for rows in itertools.product(*self.groups):
            rows = tuple(tuple(r) for r in rows)
            labels = [c.label for row in rows for c in row if c.axis in varying]
            name = ",".join(labels or [c.label for row in rows for c in row]) or "base"
            cells.append(Cell(name, rows))
        seen: set[str] = set()
        for c in cells:
            if c.name in seen:
                raise _err(str(self.path), f"two cells are both named {c.name!r}; give the axis values "
                                           "distinct names (a mapping name -> value)")
            seen.add(c.name)
        return cells

    def runs(self) -> list[Run]:
        """Every (cell, seed, fold), prerequisite stages first, then by seed and fold, so a run
        stopped half-way leaves whole comparisons (every cell of seed 0) rather than whole cells."""
        cells = self.cells()
        by_rows = {c.rows: c for c in cells}
        folds = list(range(self.folds)) if self.folds else [None]
        runs = {(c.name, s, k): Run(c, s, k) for s in self.seeds for k in folds for c in cells}
        prereq = {p.name for p in self.prereqs}
        for run in runs.values():
            if run.cell.choices[:1] and run.cell.choices[0].axis == PREREQ_AXIS:
                continue
            for key, ref in self.checkpoints:
                run.deps[key] = runs[(ref, run.seed, run.fold)]
            for gi, row in enumerate(run.cell.rows):
                for ch in row:
                    for key, ref in ch.checkpoints:
                        if ref in prereq and ref not in [x.name for x in _column(self.groups, ch.axis)]:
                            run.deps[key] = runs[(ref, run.seed, run.fold)]
                            continue
                        # the referenced value's row of this group; every other group stays put
                        dep_row = next(tuple(r) for r in self.groups[gi]
                                       if any(x.axis == ch.axis and x.name == ref for x in r))
                        dep_cell = by_rows[run.cell.rows[:gi] + (dep_row,) + run.cell.rows[gi + 1:]]
                        run.deps[key] = runs[(dep_cell.name, run.seed, run.fold)]

        def stage(r: Run, path=()) -> int:
            if r.id in path:
                raise _err(r.cell.name, "checkpoints form a cycle: " + " -> ".join((*path, r.id)))
            return max((1 + stage(d, (*path, r.id)) for d in r.deps.values()), default=0)
        for r in runs.values():
            r.stage = stage(r)
        order = {c.name: i for i, c in enumerate(cells)}
        return sorted(runs.values(), key=lambda r: (r.stage, r.seed, -1 if r.fold is None else r.fold,
                                                    order[r.cell.name]))


# -- parsing ----------------------------------------------------------------------------------------
def load(path: str | Path) -> Ablation:
    """Read and check an ablation file; every problem is reported with the key it is under."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ZooUserError(f"ablation file not found: {path}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ZooUserError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(doc, dict):
        raise _err(str(path), "an ablation file is a mapping with name, base, cross/zip, seeds, ...")
    for k in doc:
        if k not in TOP_KEYS:
            hint = " (use cross: or zip:)" if k in ("axes", "grid", "mode") else _suggest(str(k), TOP_KEYS)
            raise _err(f"{path}: {k}", f"unknown key{hint}; known: {', '.join(TOP_KEYS)}")

    name = doc.get("name")
    if not isinstance(name, str) or not name.strip() or _UNSAFE.sub("", name) != name:
        raise _err("name", f"a short name of letters, digits, '.', '_', '-' is required, got {name!r}")
    base = doc.get("base")
    if isinstance(base, str):
        base = [base]
    if not isinstance(base, list) or not base:
        raise _err("base", "a list of config files (data + trainer), e.g. [configs/data/synthetic.yaml, "
                           "configs/trainer/cpu.yaml]")
    base = [_config_path(p, path, f"base[{i}]") for i, p in enumerate(base)]
    overrides = _settings(doc.get("overrides") or {}, "overrides")

    groups: list[list[list[Choice]]] = []
    axes: list[str] = []
    cross = doc.get("cross") or {}
    if not isinstance(cross, dict):
        raise _err("cross", "a mapping: axis -> list of values or of config files")
    zips = doc.get("zip") or []
    if isinstance(zips, dict):
        zips = [zips]
    if not isinstance(zips, list):
        raise _err("zip", "a mapping of axes of equal length (or a list of such mappings)")
    # a value axis is labelled by its key's last part (min_agreement) unless two axes share it
    keys = [k for k in cross] + [k for z in zips if isinstance(z, dict) for k in z]
    lasts = [str(k).rsplit(".", 1)[-1] for k in keys]
    label = {k: (last if lasts.count(last) == 1 else str(k)) for k, last in zip(keys, lasts)}
    for key, spec in cross.items():
        axis = _axis(key, spec, path, f"cross.{key}", label.get(key))
        groups.append([[c] for c in axis])
    for gi, z in enumerate(zips):
        where = "zip" if len(zips) == 1 else f"zip[{gi}]"
        if not isinstance(z, dict) or not z:
            raise _err(where, "a mapping of axes of equal length")
        cols = [_axis(k, v, path, f"{where}.{k}", label.get(k)) for k, v in z.items()]
        lengths = {k: len(c) for k, c in zip(z, cols)}
        if len(set(lengths.values())) != 1:
            raise _err(where, f"zipped axes need the same number of values, got {lengths}")
        groups.append([list(row) for row in zip(*cols)])
    for group in groups:
        for c in group[0]:
            if c.axis == PREREQ_AXIS:
                raise _err(c.axis, "this label is reserved for prerequisites: choose another")
            if c.axis in axes:
                raise _err(c.axis, "this axis is given twice")
            axes.append(c.axis)
    prereqs = []
    pre = doc.get("prerequisites") or {}
    if not isinstance(pre, dict):
        raise _err("prerequisites", "a mapping: name -> config file(s) or {config, set}")
    for nm, v in pre.items():
        w = f"prerequisites.{nm}"
        c = _variant(PREREQ_AXIS, nm, v, path, w)
        if c.checkpoints:
            raise _err(f"{w}.checkpoints", "prerequisites are the first stage; they take no checkpoints")
        prereqs.append(c)
    pre_names = [c.name for c in prereqs]
    top_ckpts = _settings(doc.get("checkpoints") or {}, "checkpoints")
    for key, ref in top_ckpts:
        if ref not in pre_names:
            raise _err(f"checkpoints.{key}", f"{ref!r} must name one of the prerequisites ({pre_names})")
    if pre_names and not top_ckpts and not any(c.checkpoints for g in groups for row in g for c in row):
        raise _err("prerequisites", "nothing takes their checkpoints; add checkpoints: {dotted key: name}")
    for group in groups:  # references name another value of their own axis, or a prerequisite
        for row in group:
            for c in row:
                names = [x.name for x in _column(groups, c.axis)]
                for key, ref in c.checkpoints:
                    if ref == c.name or ref not in names + pre_names:
                        raise _err(f"{c.axis}.{c.name}.checkpoints.{key}",
                                   f"{ref!r} must name another value of the axis {c.axis!r} ({names}) "
                                   f"or a prerequisite ({pre_names})")

    seeds = doc.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                          and s >= 0 for s in seeds):
        raise _err("seeds", f"a list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise _err("seeds", f"repeated seed in {seeds}")
    seed_data = doc.get("seed_data", True)
    if not isinstance(seed_data, bool):
        raise _err("seed_data", f"true or false, got {seed_data!r}")
    folds = doc.get("folds")
    fold_splits = None
    if isinstance(folds, list):  # folds named in the file: each one's split options
        fold_splits = [_fold_split(f, f"folds[{i}]") for i, f in enumerate(folds)]
        if len(fold_splits) < 2:
            raise _err("folds", "name at least two folds")
        folds = len(fold_splits)
    elif folds is not None and (isinstance(folds, bool) or not isinstance(folds, int) or folds < 2):
        raise _err("folds", f"an integer >= 2 (k-fold over the DataModule's groups), or a list of folds, "
                            f"each {{test_speakers: [...], val_speakers: [...]}}, got {folds!r}")
    metrics = doc.get("metrics", list(DEFAULT_METRICS))
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) and m for m in metrics):
        raise _err("metrics", f"a list of logged metric names such as test/UA, got {metrics!r}")
    best_by = doc.get("best_by", "test/UA" if "test/UA" in metrics else metrics[0])
    if best_by not in metrics:
        raise _err("best_by", f"{best_by!r} is not one of metrics {metrics}")
    best_mode = doc.get("best_mode", "min" if "loss" in best_by else "max")
    if best_mode not in ("max", "min"):
        raise _err("best_mode", f"max or min, got {best_mode!r}")

    # keys the ablation sets per run: set elsewhere they would silently lose or win
    reserved = {"trainer.default_root_dir": "the run directory", "test_after_fit": "always true",
                "checkpoint.filename": "best (prerequisite stages find best.ckpt)"}
    if seeds:
        reserved["seed_everything"] = "seeds:"
        if seed_data:
            reserved["data.init_args.seed"] = "seeds: (seed_data: true)"
    if folds:
        for k in (("mode", "num_folds", "fold") if fold_splits is None else
                  sorted({k for f in fold_splits for k in f})):
            reserved[f"data.init_args.split.{k}"] = "folds:"
    all_sets = [("overrides", k) for k, _ in overrides] + [("checkpoints", k) for k, _ in top_ckpts] + [
        (f"{c.axis}.{c.name}", k) for c in [*prereqs, *(c for g in groups for row in g for c in row)]
        for k in [*(s for s, _ in c.sets), *(s for s, _ in c.checkpoints)]]
    for where, k in all_sets:
        if k in reserved:
            raise _err(f"{where}: {k}", f"set by the ablation itself ({reserved[k]})")
    return Ablation(name=name, path=path, description=str(doc.get("description") or "").strip(),
                    base=base, overrides=overrides, groups=groups, axes=axes, seeds=seeds,
                    seed_data=seed_data, folds=folds, metrics=metrics, best_by=best_by, best_mode=best_mode,
                    prereqs=prereqs, checkpoints=top_ckpts, fold_splits=fold_splits)


#: what a fold named in the file may set (``data.init_args.split.<key>``)
FOLD_KEYS = ("test_speakers", "val_speakers", "group_by", "val_fraction")


def _fold_split(f: Any, where: str) -> dict[str, Any]:
    """One fold named in the file: the speakers (or groups, sessions) it tests on, and optionally
    those it validates on, as split options; the folds then stay the same whatever the seed."""
    if not isinstance(f, dict) or not f.get("test_speakers"):
        raise _err(where, "a fold is a mapping with test_speakers (a list) and optionally val_speakers, "
                          f"group_by, val_fraction; got {f!r}")
    for k, v in f.items():
        if k not in FOLD_KEYS:
            raise _err(f"{where}.{k}", f"unknown key{_suggest(str(k), FOLD_KEYS)}; known: {', '.join(FOLD_KEYS)}")
        if k.endswith("_speakers") and (not isinstance(v, list) or not all(isinstance(x, (str, int)) for x in v)):
            raise _err(f"{where}.{k}", f"a list of speaker (or group, session) names, got {v!r}")
    return {k: ([str(x) for x in v] if k.endswith("_speakers") else v) for k, v in f.items()}


def _column(groups, axis):
    for group in groups:
        if group and axis in [c.axis for c in group[0]]:
            i = [c.axis for c in group[0]].index(axis)
            return [row[i] for row in group]
    return []


def _config_path(p: Any, ablation_file: Path, where: str) -> str:
    """A config file as written when it exists from the working directory, else next to the
    ablation file (returned absolute, so the printed commands work from the working directory)."""
    if not isinstance(p, str) or not p:
        raise _err(where, f"a config file path, got {p!r}")
    if Path(p).is_file():
        return p
    beside = ablation_file.parent / p
    if beside.is_file():
        return str(beside.resolve())
    raise _err(where, f"config file not found: {p} (looked in {Path.cwd()} and {ablation_file.parent})")


def _is_configs(v: Any) -> bool:
    if isinstance(v, str):
        return v.endswith((".yaml", ".yml"))
    return isinstance(v, list) and bool(v) and all(isinstance(x, str) and x.endswith((".yaml", ".yml"))
                                                   for x in v)


def _settings(d: Any, where: str) -> list[tuple[str, Any]]:
    if not isinstance(d, dict):
        raise _err(where, "a mapping of dotted keys to values, e.g. {trainer.max_epochs: 2}")
    out = []
    for k, v in d.items():
        if not isinstance(k, str) or not _KEY.match(k):
            raise _err(f"{where}.{k}", "not a dotted config key (e.g. data.init_args.batch_size)")
        out.append((k, v))
    return out


def _axis(key: Any, spec: Any, path: Path, where: str, short: str | None = None) -> list[Choice]:
    """An axis: a dotted key with values (a list, or a mapping name -> value), or a list /
    mapping of config-file choices (a file, a list of files stacked in order, or
    {config, set, checkpoints})."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise _err(where, "an axis is named by a dotted config key or a plain label such as model")
    short = short or key.rsplit(".", 1)[-1]
    if isinstance(spec, list) and spec and all(_is_configs(v) for v in spec):
        if "." in key:
            raise _err(where, "a list of config files is an axis with a plain label (e.g. model), "
                              "not a dotted key")
        out = []
        for i, v in enumerate(spec):
            files = [v] if isinstance(v, str) else list(v)
            out.append(Choice(key, value_name(Path(files[0]).stem),
                              tuple(_config_path(f, path, f"{where}[{i}]") for f in files), named_axis=True))
        return _unique(out, where)
    if isinstance(spec, dict) and spec and "." not in key:
        return [_variant(key, name, v, path, f"{where}.{name}") for name, v in spec.items()]
    if "." not in key:
        raise _err(where, "a plain label takes config files (a list, or a mapping name -> files); "
                          "values need a dotted key such as data.init_args.min_agreement")
    if isinstance(spec, dict) and spec:
        return _unique([Choice(short, str(n), sets=((key, v),)) for n, v in spec.items()], where)
    if isinstance(spec, list) and spec:
        out = []
        for v in spec:
            try:
                out.append(Choice(short, value_name(v), sets=((key, v),)))
            except ValueError:
                raise _err(where, f"the value {v!r} needs a name: write the axis as a mapping "
                                  "name -> value") from None
        return _unique(out, where)
    raise _err(where, f"a non-empty list of values (or of config files), got {spec!r}")


def _unique(choices: list[Choice], where: str) -> list[Choice]:
    names = [c.name for c in choices]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise _err(where, f"two values share the name {dup[0]!r}; use a mapping name -> value")
    return choices



def _variant(axis: str, name: Any, v: Any, path: Path, w: str) -> Choice:
    """A named value of a config axis: a file, a list of files, or {config, set, checkpoints}."""
    nm = str(name)
    if _UNSAFE.sub("", nm) != nm:
        raise _err(w, "a value name of letters, digits, '.', '_', '+', '-'")
    if _is_configs(v):
        files = [v] if isinstance(v, str) else list(v)
        return Choice(axis, nm, tuple(_config_path(f, path, w) for f in files), named_axis=True)
    if not isinstance(v, dict):
        raise _err(w, "a config file, a list of config files, or {config, set, checkpoints}")
    for k in v:
        if k not in VARIANT_KEYS:
            raise _err(f"{w}.{k}", f"unknown key{_suggest(str(k), VARIANT_KEYS)}; known: {', '.join(VARIANT_KEYS)}")
    files = v.get("config") or []
    files = [files] if isinstance(files, str) else files
    if not isinstance(files, list):
        raise _err(f"{w}.config", "a config file or a list of them")
    ckpts = v.get("checkpoints") or {}
    if not isinstance(ckpts, dict) or not all(isinstance(r, str) for r in ckpts.values()):
        raise _err(f"{w}.checkpoints", "a mapping: dotted key -> name of another value of this axis "
                                       "or of a prerequisite (its run's best checkpoint is passed)")
    return Choice(axis, nm, tuple(_config_path(f, path, f"{w}.config") for f in files),
                  tuple(_settings(v.get("set") or {}, f"{w}.set")), tuple(_settings(ckpts, f"{w}.checkpoints")),
                  named_axis=True)
