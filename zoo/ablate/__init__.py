"""``python -m zoo ablate``: an ablation grid from one file.

An ablation file names a base config (data + trainer), the axes to vary (config files or dotted
keys, crossed or zipped), ``seeds`` and ``folds``, and the metrics to report. Every (cell, seed,
fold) is one independent ``python -m zoo fit`` subprocess writing into its own directory, so the
same list of commands (``--dry-run``) runs as a SLURM array or a wandb sweep. Results are read back
from each run's own files into ``results.csv``; ``summary.md`` and the plots are computed from
results.csv alone. See docs/ablations.md.

Importing this package is light (no torch, no Lightning): ``python -m zoo ablate --help`` is fast.
"""
from __future__ import annotations

import argparse
import fnmatch
import shlex
import sys
from pathlib import Path

from ..errors import ZooUserError

__all__ = ["main"]

EPILOG = """\
examples:
  python -m zoo ablate --config configs/ablation/modality.yaml
  python -m zoo ablate --config configs/ablation/labels.yaml --jobs 2
  python -m zoo ablate --config configs/ablation/modality.yaml --resume      # after a crash or Ctrl-C
  python -m zoo ablate --config configs/ablation/modality.yaml --dry-run > commands.txt   # SLURM array
  python -m zoo ablate --config configs/ablation/modality.yaml --collect     # gather runs made elsewhere
  python -m zoo ablate --summary runs/ablation/modality/results.csv          # summary.md from results.csv
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m zoo ablate", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Run an ablation grid (cells x seeds x folds, each an independent `python -m zoo fit`) "
                    "and write results.csv, summary.md and plots.")
    p.add_argument("--config", help="the ablation file (configs/ablation/*.yaml)")
    p.add_argument("--out", help="output folder (default: runs/ablation/<name>)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once, each its own process (default 1)")
    p.add_argument("--resume", action="store_true",
                   help="keep runs whose results are complete on disk, rerun the others")
    p.add_argument("--overwrite", action="store_true", help="delete this grid's earlier runs and start again")
    p.add_argument("--dry-run", action="store_true",
                   help="print one `python -m zoo fit ...` command per run (prerequisite stages first), run nothing")
    p.add_argument("--stage", type=int, help="only runs of this stage (0: no prerequisites; 1: needs "
                                             "checkpoints of stage 0, e.g. late fusion)")
    p.add_argument("--only", action="append", default=[], metavar="PATTERN",
                   help="only runs whose id (cell/seedS[-foldK]) or cell matches this glob (repeatable)")
    p.add_argument("--index", type=int, help="only the INDEX-th run of the (filtered) list, 0-based: "
                                             "one array task (SLURM_ARRAY_TASK_ID, a wandb sweep)")
    p.add_argument("--sweep", metavar="FILE", help="with --dry-run: also write a wandb grid sweep over --index")
    p.add_argument("--collect", action="store_true",
                   help="run nothing: gather the runs on disk into results.csv and summary.md")
    p.add_argument("--summary", metavar="RESULTS_CSV", help="only recompute summary.md and plots from a results.csv")
    p.add_argument("--best-by", help="metric that picks the best cell (default: the file's best_by, or test/UA)")
    p.add_argument("--fit-command", default=None,
                   help="the command each run starts with (default: 'python -m zoo fit'; e.g. 'srun python -m zoo fit')")
    p.add_argument("--no-check", action="store_true",
                   help="skip the preflight that parses every cell's arguments with the zoo CLI first")
    return p


def _kind(path: str) -> str | None:
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None  # spec.load reports it
    return doc.get("kind") if isinstance(doc, dict) else None


def main(argv: list[str] | None = None) -> None:
    try:
        _main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None


def _main(argv: list[str] | None) -> None:
    args = _parser().parse_args(argv)
    if args.jobs < 1:
        raise ZooUserError(f"--jobs must be >= 1, got {args.jobs}")
    if args.summary:
        from .summary import write_summary

        path = Path(args.summary)
        if not path.is_file():
            raise ZooUserError(f"results file not found: {path}")
        print(f"written: {write_summary(path, best_by=args.best_by)}")
        return
    if not args.config:
        raise ZooUserError("--config is required (an ablation file, e.g. configs/ablation/modality.yaml)")
    if _kind(args.config) == "cross_corpus":  # a train-on-X / test-on-Y grid (cross_corpus.py)
        from . import cross_corpus

        spec = cross_corpus.load(args.config)
        out = Path(args.out or Path("runs") / "ablation" / spec["name"])
        if cross_corpus.run(spec, out, dry_run=args.dry_run):
            print(f"written: {out / 'matrix.md'}, {out / 'matrix.csv'}, {out / 'matrix.png'}")
        return
    from . import results as R
    from . import runner
    from .spec import load

    abl = load(args.config)
    out = Path(args.out or Path("runs") / "ablation" / abl.name)
    runs = abl.runs()
    selected = [r for r in runs if (args.stage is None or r.stage == args.stage) and (
        not args.only or any(fnmatch.fnmatchcase(r.id, p) or fnmatch.fnmatchcase(r.cell.name, p)
                             for p in args.only))]
    if args.index is not None:
        if not 0 <= args.index < len(selected):
            raise ZooUserError(f"--index {args.index} is out of range: {len(selected)} run(s) selected")
        selected = [selected[args.index]]
    if not selected:
        raise ZooUserError("no run of the grid matches --stage/--only")
    fit_command = shlex.split(args.fit_command) if args.fit_command else list(runner.DEFAULT_FIT)

    if args.dry_run:
        stages = sorted({r.stage for r in selected})
        print(f"# {abl.name}: {len(selected)} run(s) of {len(runs)}"
              + (f"; stages {stages}: a stage-N run needs the stage-(N-1) runs finished" if len(stages) > 1 else ""),
              file=sys.stderr)
        try:
            for r in selected:
                print(runner.display(fit_command, runner.fit_args(abl, r, out)))
            sys.stdout.flush()
        except BrokenPipeError:  # e.g. piped into head
            sys.stderr.close()
            raise SystemExit(0)
        if args.sweep:
            _write_sweep(Path(args.sweep), args, abl, out, len(selected))
        return

    # results.csv lists cells in the file's order (the runs ran prerequisite stages first)
    cell_order = {c.name: i for i, c in enumerate(abl.cells())}
    by_cell = sorted(runs, key=lambda r: (cell_order[r.cell.name], r.seed, -1 if r.fold is None else r.fold))

    def write(executed: dict) -> int:
        rows, bad = [], 0
        for r in by_cell:
            res = executed.get(r.id)
            if res is None:
                d = runner.run_dir(out, r)
                res = R.read_run(d, abl.metrics, r.id) if d.exists() else R.RunResult(r.id, "not run")
                if d.exists() and not res.complete:
                    res.error = R.error_tail(d / R.LOG) if (d / R.LOG).exists() else res.error
            bad += not res.complete
            rows.append({"cell": r.cell.name, "axes": {c.axis: c.name for c in r.cell.choices if c.axis in abl.axes},
                         "seed": r.seed, "fold": r.fold, "run_dir": str(runner.run_dir(out, r)),
                         "stage": r.stage, "result": res})
        R.write_results(out / "results.csv", abl.name, abl.axes, abl.metrics, rows)
        from .summary import write_summary

        path = write_summary(out / "results.csv", best_by=args.best_by or abl.best_by,
                             best_mode=abl.best_mode)
        print(f"results: {out / 'results.csv'}\nsummary: {path}")
        return bad

    if args.collect:
        bad = write({})
        raise SystemExit(1 if bad else 0)

    failed_cells: dict[str, str] = {}
    if not args.no_check:
        todo = {r.cell.name: r for r in reversed(selected)}  # one run per cell is enough to parse
        print(f"checking the arguments of {len(todo)} cell(s) with the zoo CLI ...", flush=True)
        failed_cells = runner.preflight({c: runner.fit_args(abl, r, out) for c, r in todo.items()})
        if failed_cells and len(failed_cells) == len(todo):
            raise ZooUserError("no cell's arguments parse, so nothing was run:\n" + "\n".join(
                f"  {c}: {e}" for c, e in failed_cells.items()))
        for c, e in failed_cells.items():
            print(f"  {c}: its arguments do not parse; its runs are recorded as failed:\n    {e}")
    print(f"{abl.name}: {len(selected)} run(s) -> {out}", flush=True)
    executed: dict = {}
    try:
        runner.execute(abl, selected, out, jobs=args.jobs, resume=args.resume, overwrite=args.overwrite,
                       fit_command=fit_command, failed_cells=failed_cells, into=executed,
                       log=lambda s: print(s, flush=True))
    except KeyboardInterrupt:
        if args.index is None:
            write(executed)
        print("interrupted; `--resume` runs what did not finish", file=sys.stderr)
        raise SystemExit(130)
    if args.index is not None:  # one array task: the gathering is --collect's job
        res = next(iter(executed.values()))
        raise SystemExit(0 if res.complete else 1)
    bad = write(executed)
    if bad:
        print(f"{bad} run(s) did not finish; see results.csv (error column) and their log.txt", file=sys.stderr)
        raise SystemExit(1)


def _write_sweep(path: Path, args, abl, out: Path, n: int) -> None:
    """A wandb grid sweep: one agent job per --index (run `--collect` when the sweep is done)."""
    import yaml

    cmd = ["${env}", "python", "-m", "zoo", "ablate", "--config", args.config, "--out", str(out), "--resume"]
    if args.stage is not None:
        cmd += ["--stage", str(args.stage)]
    for p in args.only:
        cmd += ["--only", p]
    if args.fit_command:
        cmd += ["--fit-command", args.fit_command]
    sweep = {"name": abl.name, "method": "grid", "program": "zoo",
             "parameters": {"index": {"values": list(range(n))}}, "command": [*cmd, "${args}"]}
    path.write_text(yaml.safe_dump(sweep, sort_keys=False), encoding="utf-8")
    print(f"# wandb sweep written to {path}: wandb sweep {path}; wandb agent <id>", file=sys.stderr)
