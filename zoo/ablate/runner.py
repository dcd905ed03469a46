"""Commands and their execution: each run is one ``python -m zoo fit`` subprocess.

Runs go into ``<out>/<cell>/<run>/`` (the CSVLogger's log dir: config.yaml, metrics.csv,
checkpoints/, confusion_matrix_test.*, plus log.txt with the run's output). Standard library and
PyYAML only; Lightning is imported by the children (and by the preflight check's one child).
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ..errors import ZooUserError
from . import results as R
from .spec import Ablation, Run, cli_value

DEFAULT_FIT = ("python", "-m", "zoo", "fit")
CSV_LOGGER = "lightning.pytorch.loggers.CSVLogger"
_MISSING = object()
_yaml_cache: dict[str, Any] = {}


def run_dir(out: Path, run: Run) -> Path:
    return Path(out) / run.cell.name / run.name


def _yaml(path: str) -> Any:
    if path not in _yaml_cache:
        import yaml

        try:
            _yaml_cache[path] = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ZooUserError(f"cannot read the config file {path}: {e}") from e
    return _yaml_cache[path]


def _merge(old: Any, new: Any) -> Any:
    """jsonargparse's rule for a class spec given twice: the same class merges its init_args,
    another class replaces it."""
    if isinstance(old, dict) and isinstance(new, dict):
        if new.get("class_path", old.get("class_path")) != old.get("class_path"):
            return new
        out = dict(old)
        for k, v in new.items():
            out[k] = _merge(old.get(k), v) if isinstance(v, dict) else v
        return out
    return new


def _settings(abl: Ablation, run: Run) -> list[tuple[str, Any]]:
    return list(abl.overrides) + [kv for c in run.cell.choices for kv in c.sets]


def _configs(abl: Ablation, run: Run) -> list[str]:
    return list(abl.base) + [f for c in run.cell.choices for f in c.configs]


def resolved_logger(abl: Ablation, run: Run) -> Any:
    """The trainer.logger the run's configs and settings add up to (_MISSING: the CLI default)."""
    cur: Any = _MISSING
    for f in _configs(abl, run):
        d = _yaml(f)
        t = d.get("trainer") if isinstance(d, dict) else None
        if isinstance(t, dict) and "logger" in t:
            cur = _merge(None if cur is _MISSING else cur, t["logger"])
    for k, v in _settings(abl, run):
        if k == "trainer.logger":
            cur = _merge(None if cur is _MISSING else cur, v)
        elif k.startswith("trainer.logger."):
            cur = dict(cur) if isinstance(cur, dict) else {"class_path": CSV_LOGGER}
            node = cur
            parts = k.split(".")[2:]
            for p in parts[:-1]:
                node[p] = dict(node.get(p) or {})
                node = node[p]
            node[parts[-1]] = v
    return cur


def _is_csv(spec: Any) -> bool:
    return isinstance(spec, dict) and str(spec.get("class_path", "")).rsplit(".", 1)[-1] == "CSVLogger"


def logger_args(abl: Ablation, run: Run, out: Path) -> list[str]:
    """A CSVLogger whose log dir is the run dir comes first (results.csv reads its metrics.csv,
    and Lightning puts checkpoints and config.yaml under the first logger); any other configured
    logger follows, a wandb one grouped by ablation and tagged with the run's axis values."""
    d = run_dir(out, run)
    csv_init = {"save_dir": str(out), "name": run.cell.name, "version": run.name}  # log dir = d
    spec = resolved_logger(abl, run)
    if spec is _MISSING or spec is True or _is_csv(spec):
        return [f"--trainer.logger.init_args.{k}={cli_value(v)}" for k, v in csv_init.items()]
    loggers = spec if isinstance(spec, list) else ([] if spec in (None, False) else [spec])
    own = {"class_path": CSV_LOGGER, "init_args": csv_init}
    for lg in loggers:
        if _is_csv(lg):  # its other options (prefix, flush interval) are kept
            own = _merge(lg, own)
    specs = [own]
    tags = [f"{c.axis}={c.name}"[:64] for c in run.cell.choices] + [f"seed={run.seed}"] + (
        [f"fold={run.fold}"] if run.fold is not None else [])
    for lg in loggers:
        if _is_csv(lg) or not isinstance(lg, dict):
            continue
        lg = json.loads(json.dumps(lg))
        init = lg.setdefault("init_args", {}) or {}
        lg["init_args"] = init
        kind = str(lg.get("class_path", "")).rsplit(".", 1)[-1]
        if kind == "WandbLogger":
            init.update(save_dir=str(d), name=run.id, group=abl.name, job_type=run.cell.name[:64],
                        tags=list(dict.fromkeys([*(init.get("tags") or []), *tags])))
        elif "save_dir" in init or kind == "TensorBoardLogger":
            init["save_dir"] = str(d)
        specs.append(lg)
    return ["--trainer.logger", json.dumps(specs, ensure_ascii=False, separators=(",", ":"))]


def fit_args(abl: Ablation, run: Run, out: Path) -> list[str]:
    """The arguments of ``python -m zoo fit`` for one run: configs, then the ablation's
    overrides, the cell's values, seed and fold, prerequisite checkpoints, and the run dir."""
    args: list[str] = []
    for f in _configs(abl, run):
        args += ["--config", f]
    # the run's output goes to log.txt: a progress bar there is a wall of carriage returns
    args += ["--trainer.enable_progress_bar=false"]
    for k, v in _settings(abl, run):
        args += [f"--{k}={cli_value(v)}"]
    args += [f"--seed_everything={run.seed}"]
    if abl.seed_data:
        args += [f"--data.init_args.seed={run.seed}"]
    if run.fold is not None and abl.fold_splits is not None:  # a fold named in the file
        args += [f"--data.init_args.split.{k}={cli_value(v)}" for k, v in abl.fold_splits[run.fold].items()]
    elif run.fold is not None:
        args += ["--data.init_args.split.mode=kfold", f"--data.init_args.split.num_folds={abl.folds}",
                 f"--data.init_args.split.fold={run.fold}"]
    for key, dep in run.deps.items():
        args += [f"--{key}={run_dir(out, dep) / 'checkpoints' / 'best.ckpt'}"]
    # a fixed name, so a later stage finds the checkpoint without a glob
    args += ["--checkpoint.filename=best", "--test_after_fit=true",
             f"--trainer.default_root_dir={run_dir(out, run)}"]
    return args + logger_args(abl, run, out)


def display(fit_command: list[str], args: list[str]) -> str:
    return shlex.join([*fit_command, *args])


def _executable(fit_command: list[str]) -> list[str]:
    """The default command runs with this interpreter (the printed one says ``python``)."""
    if list(fit_command[:1]) == ["python"]:
        return [sys.executable, *fit_command[1:]]
    return list(fit_command)


def data_signature(abl: Ablation, run: Run) -> str:
    """Runs with the same data settings share a corpus and caches on disk; the first of them
    runs alone, so two processes never generate the same corpus at once."""
    files = [f for f in _configs(abl, run) if isinstance(_yaml(f), dict) and "data" in _yaml(f)]
    per_run = {"data.init_args.seed", "data.init_args.split.fold", "data.init_args.split.num_folds",
               "data.init_args.split.mode"}
    sets = [(k, v) for k, v in _settings(abl, run) if k.startswith("data") and k not in per_run]
    return json.dumps([files, sets], default=str, sort_keys=True)


# -- preflight ---------------------------------------------------------------------------------------
def preflight(jobs: dict[str, list[str]]) -> dict[str, str]:
    """Parse every cell's arguments with the zoo's own CLI (``--print_config``: nothing is
    built or trained); returns cell -> error for the cells that fail. One child process pays
    for the Lightning import, unless this process has already paid for it."""
    if "lightning" in sys.modules:
        return _check(jobs)
    code = "from zoo.ablate.runner import _preflight_child; _preflight_child()"
    p = subprocess.run([sys.executable, "-c", code], input=json.dumps(jobs), capture_output=True,
                       text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ZooUserError("the preflight check of the ablation's commands failed:\n" +
                           (p.stderr or p.stdout)[-3000:]) from None


def _check(jobs: dict[str, list[str]]) -> dict[str, str]:
    import contextlib
    import io

    from zoo.cli import build_cli

    errors = {}
    for cell, args in jobs.items():
        buf_out, buf_err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(buf_out), contextlib.redirect_stderr(buf_err):
                build_cli([*args, "--print_config"], run=False)
        except SystemExit as e:
            if e.code not in (0, None):
                errors[cell] = R.error_tail_text(buf_err.getvalue()) or f"exit code {e.code}"
        except Exception as e:  # noqa: BLE001 (reported per cell, the others go on)
            errors[cell] = f"{type(e).__name__}: {e}"
    return errors


def _preflight_child() -> None:
    import logging

    logging.disable(logging.WARNING)
    print(json.dumps(_check(json.loads(sys.stdin.read()))))


# -- execution ---------------------------------------------------------------------------------------
def _die_with_parent() -> None:  # pragma: no cover (runs in the child)
    """Linux: the child is killed when the ablation process dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class _Interrupted(KeyboardInterrupt):
    pass


def execute(abl: Ablation, runs: list[Run], out: Path, *, jobs: int = 1, resume: bool = False,
            overwrite: bool = False, fit_command: list[str] | None = None,
            failed_cells: dict[str, str] | None = None, into: dict[str, R.RunResult] | None = None,
            log: Callable[[str], None] = print) -> dict[str, R.RunResult]:
    """Run what is not complete on disk; returns run id -> result for every run given.

    A run that fails is recorded (with the tail of its output) and the others go on; a run whose
    prerequisite failed is not started. Ctrl-C / SIGTERM stop the children, record what finished
    and raise KeyboardInterrupt; ``into`` (if given) holds the results gathered so far.
    """
    fit_command = list(fit_command or DEFAULT_FIT)
    failed_cells = failed_cells or {}
    out = Path(out)
    results: dict[str, R.RunResult] = {} if into is None else into
    argv = {r.id: fit_args(abl, r, out) for r in runs}

    existing = [r for r in runs if run_dir(out, r).exists()]
    if existing and not (resume or overwrite):
        raise ZooUserError(
            f"{out} already holds {len(existing)} run(s) of this ablation (e.g. {run_dir(out, existing[0])}); "
            "pass --resume to keep the finished ones and run the rest, or --overwrite to start again")
    todo: list[Run] = []
    rerun: set[str] = set()
    for r in runs:  # prerequisite stages come first: a rerun prerequisite reruns what uses it
        d = run_dir(out, r)
        if d.exists() and resume and not any(dep.id in rerun for dep in r.deps.values()):
            res = R.read_run(d, abl.metrics, r.id)
            same = R.read_info(d).get("command") in (None, display(fit_command, argv[r.id]))
            if res.complete and same:
                results[r.id] = res
                continue
            log(f"  {r.id}: {'settings changed' if res.complete else 'unfinished'}; running it again")
        todo.append(r)
        rerun.add(r.id)
    # prerequisites outside this selection (--stage, --only, --index) are read from disk
    chosen = {r.id for r in runs}
    outside = {dep.id: R.read_run(run_dir(out, dep), abl.metrics, dep.id)
               for r in todo for dep in r.deps.values() if dep.id not in chosen}
    if todo and results:
        log(f"resume: {len(results)} finished run(s) kept, {len(todo)} to run")
    for r in todo:  # only now: a refused start must not delete anything
        if run_dir(out, r).exists():
            shutil.rmtree(run_dir(out, r))

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if jobs > 1 and "OMP_NUM_THREADS" not in env:  # parallel runs share the cores
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    warm = {data_signature(abl, r) for r in runs if r.id in results}
    warming: set[str] = set()
    running: dict[str, tuple[Run, subprocess.Popen, float, Any, str]] = {}
    pending = list(todo)
    total, done = len(runs), len(results)

    def finish(r: Run, rc: int | None, started: float, note: str = "") -> None:
        nonlocal done
        d = run_dir(out, r)
        info = R.read_info(d)
        info.update(returncode=rc, runtime_s=round(time.monotonic() - started, 1),
                    finished=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        (d / R.RUN_INFO).write_text(json.dumps(info, indent=1), encoding="utf-8")
        res = R.read_run(d, abl.metrics, r.id)
        if not res.complete:
            res.error = note or R.error_tail(d / R.LOG)
        results[r.id] = res
        done += 1
        shown = "  ".join(f"{m}={res.metrics[m]:.3f}" for m in abl.metrics if m in res.metrics)
        why = "" if res.complete else ": " + res.error.strip().splitlines()[-1][:200]
        log(f"[{done}/{total}] {r.id}: {res.status} ({info['runtime_s']:.0f} s)  {shown}{why}")

    def launch(r: Run) -> None:
        d = run_dir(out, r)
        d.mkdir(parents=True, exist_ok=True)
        shown = display(fit_command, argv[r.id])
        (d / R.RUN_INFO).write_text(json.dumps({
            "command": shown, "started": datetime.now(timezone.utc).isoformat(timespec="seconds")},
            indent=1), encoding="utf-8")
        logf = open(d / R.LOG, "w", encoding="utf-8")
        logf.write(f"$ {shown}\n")
        logf.flush()
        p = subprocess.Popen(_executable(fit_command) + argv[r.id], stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                             preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        running[r.id] = (r, p, time.monotonic(), logf, data_signature(abl, r))
        log(f"  start {r.id}" + (f" (pid {p.pid})" if jobs > 1 else ""))

    def on_term(signum, frame):
        raise _Interrupted()
    old_term = None
    if threading.current_thread() is threading.main_thread():
        old_term = signal.signal(signal.SIGTERM, on_term)
    try:
        while pending or running:
            i = 0
            while len(running) < jobs and i < len(pending):
                r = pending[i]
                if r.cell.name in failed_cells:
                    pending.pop(i)
                    results[r.id] = R.RunResult(r.id, "failed", "preflight: " + failed_cells[r.cell.name])
                    done += 1
                    log(f"[{done}/{total}] {r.id}: failed (its arguments do not parse; see results.csv)")
                    continue
                deps = [results.get(dep.id, outside.get(dep.id)) for dep in r.deps.values()]
                bad = [dep.id for dep, res in zip(r.deps.values(), deps) if res is not None and not res.complete]
                if bad:
                    pending.pop(i)
                    results[r.id] = R.RunResult(r.id, "failed", f"prerequisite {bad[0]} failed")
                    done += 1
                    log(f"[{done}/{total}] {r.id}: not started, prerequisite {bad[0]} failed")
                    continue
                sig = data_signature(abl, r)
                first = sig not in warm
                if any(res is None for res in deps) or sig in warming or (first and (warming or running)):
                    i += 1
                    continue
                pending.pop(i)
                if first:
                    warming.add(sig)
                launch(r)
            if not running and pending:  # nothing can start: only unfinishable dependencies left
                for r in pending:
                    results[r.id] = R.RunResult(r.id, "failed", "prerequisites never finished")
                break
            time.sleep(0.2)
            for rid, (r, p, t0, logf, sig) in list(running.items()):
                rc = p.poll()
                if rc is None:
                    continue
                logf.close()
                del running[rid]
                finish(r, rc, t0)
                warming.discard(sig)
                if results[rid].complete:
                    warm.add(sig)
    except KeyboardInterrupt:
        log(f"interrupted: stopping {len(running)} running run(s)")
        for r, p, t0, logf, sig in running.values():
            _kill(p, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for r, p, t0, logf, sig in running.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill(p, signal.SIGKILL)
                p.wait()
            logf.close()
            finish(r, p.returncode, t0, note="interrupted (Ctrl-C or SIGTERM); rerun with --resume")
        for r in pending:
            results[r.id] = R.RunResult(r.id, "not run", "interrupted before it started")
        raise
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    return results


def _kill(p: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(p.pid, sig)  # the child's whole session (DataLoader workers too)
    except (ProcessLookupError, PermissionError):
        pass
