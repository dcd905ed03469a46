"""What a run left on disk, and results.csv.

A run is complete when its ``metrics.csv`` (CSVLogger) holds every reported metric and, for test
metrics, its ``confusion_matrix_test.csv`` was written: the files the fit itself writes, never a
flag of our own that could claim success for a run that died. Standard library only.
"""
from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

RUN_INFO = "ablation_run.json"  # command, exit code, runtime (metadata, not the completion test)
LOG = "log.txt"


@dataclass
class RunResult:
    id: str
    status: str  # ok | failed | not run
    error: str = ""
    metrics: dict[str, float] = field(default_factory=dict)  # every test/* value + the reported ones
    epochs: int | None = None
    runtime_s: float | None = None
    classes: list[str] | None = None
    confusion: list[list[int]] | None = None  # counts, rows = true class

    @property
    def complete(self) -> bool:
        return self.status == "ok"


def read_metrics_csv(path: Path) -> tuple[dict[str, float], int | None]:
    """The last logged value of every column of a CSVLogger metrics.csv, and the epochs trained."""
    values: dict[str, float] = {}
    epochs = None
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                for k, v in row.items():
                    if k is None or v in (None, ""):
                        continue
                    try:
                        x = float(v)
                    except ValueError:
                        continue
                    values[k] = x
                    if k == "epoch" and not any(c.startswith("test/") and row.get(c) for c in row):
                        epochs = int(x) + 1
    except (OSError, csv.Error):
        return {}, None
    return values, epochs


def read_confusion(path: Path) -> tuple[list[str], list[list[int]]] | None:
    """``confusion_matrix_test.csv`` as written by zoo.models.plots.save_confusion_matrix."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        classes = rows[0][1:]
        counts = [[int(v) for v in r[1:]] for r in rows[1:]]
    except (OSError, IndexError, ValueError, csv.Error):
        return None
    if not classes or len(counts) != len(classes) or any(len(r) != len(classes) for r in counts):
        return None
    return classes, counts


def read_run(run_dir: Path, metrics: Iterable[str], run_id: str = "") -> RunResult:
    """The run's results from its directory; status ``ok`` only when they are all there."""
    metrics = list(metrics)
    run_dir = Path(run_dir)
    info = read_info(run_dir)
    values, epochs = read_metrics_csv(run_dir / "metrics.csv")
    cm = read_confusion(run_dir / "confusion_matrix_test.csv")
    missing = [m for m in metrics if m not in values or not math.isfinite(values[m])]
    if any(m.startswith("test/") for m in metrics) and cm is None:
        missing.append("confusion_matrix_test.csv")
    kept = {k: v for k, v in values.items() if k.startswith("test/") or k in metrics}
    res = RunResult(run_id or run_dir.name, "ok" if not missing else "failed", metrics=kept, epochs=epochs,
                    runtime_s=info.get("runtime_s"), classes=cm[0] if cm else None,
                    confusion=cm[1] if cm else None)
    if missing:
        res.error = f"no {', '.join(missing)} in {run_dir}"
    elif info.get("returncode") not in (None, 0):
        res.error = f"exit code {info['returncode']} after its results were written"
    return res


def read_info(run_dir: Path) -> dict:
    try:
        return json.loads((Path(run_dir) / RUN_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def error_tail(log: Path) -> str:
    """Why a run failed, from its log.txt (see error_tail_text)."""
    try:
        text = Path(log).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"no log at {log}"
    return error_tail_text(text) or "the run printed nothing"


def error_tail_text(text: str, max_lines: int = 8, max_chars: int = 1500) -> str:
    """The part of a failed run's output that says why: the CLI's ``zoo: error:`` paragraph, or
    jsonargparse's ``error:`` line, or the last exception line of a traceback; else the last lines."""
    lines = [l.rstrip() for l in text.replace("\r", "\n").splitlines() if l.strip()]
    if not lines:
        return ""
    pat = re.compile(r"^(zoo: error:|error:|[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b)")
    start = None
    for i in range(len(lines) - 1, max(-1, len(lines) - 80), -1):
        if pat.match(lines[i]):
            start = i
            break
    if start is None:
        start = max(0, len(lines) - 5)
    return "\n".join(lines[start:start + max_lines])[-max_chars:]


# -- results.csv ------------------------------------------------------------------------------------
def per_class(classes: list[str], cm: list[list[int]]) -> dict[str, float]:
    """Per-class recall and F1 from a confusion matrix (rows = true class)."""
    out = {}
    n = len(classes)
    for i, c in enumerate(classes):
        tp = cm[i][i]
        support = sum(cm[i])
        predicted = sum(cm[r][i] for r in range(n))
        rec = tp / support if support else float("nan")
        prec = tp / predicted if predicted else 0.0
        f1 = 2 * prec * rec / (prec + rec) if support and (prec + rec) > 0 else (0.0 if support else float("nan"))
        out[f"test/recall/{c}"] = rec
        out[f"test/F1/{c}"] = f1
    return out


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def write_results(path: Path, ablation: str, axes: list[str], metrics: list[str], rows: list[dict]) -> None:
    """One row per run. Column layout (what summary.py relies on): ablation, cell, <axes...>,
    seed, fold, status, <reported metrics...>, runtime_s, epochs, then other test metrics,
    per-class recall/F1, classes, confusion (JSON counts), run_dir, stage, error."""
    extra, per = [], []
    for r in rows:
        res: RunResult = r["result"]
        for k in res.metrics:
            if k not in metrics and k not in extra:
                extra.append(k)
        if res.classes and res.confusion:
            for k in per_class(res.classes, res.confusion):
                if k not in per:
                    per.append(k)
    header = ["ablation", "cell", *axes, "seed", "fold", "status", *metrics, "runtime_s", "epochs",
              *extra, *per, "classes", "confusion", "run_dir", "stage", "error"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, header)
        w.writeheader()
        for r in rows:
            res = r["result"]
            rec = {"ablation": ablation, "cell": r["cell"], **r["axes"], "seed": r["seed"],
                   "fold": "" if r["fold"] is None else r["fold"], "status": res.status,
                   "runtime_s": None if res.runtime_s is None else round(res.runtime_s, 1),
                   "epochs": res.epochs, "run_dir": r["run_dir"], "stage": r["stage"], "error": res.error,
                   "classes": json.dumps(res.classes, ensure_ascii=False) if res.classes else "",
                   "confusion": json.dumps(res.confusion) if res.confusion else ""}
            for k in metrics + extra:
                rec[k] = res.metrics.get(k)
            if res.classes and res.confusion:
                rec.update(per_class(res.classes, res.confusion))
            w.writerow({k: _fmt(rec.get(k)) for k in header})
    tmp.replace(path)


def read_results(path: Path) -> tuple[list[str], list[str], list[dict]]:
    """results.csv -> (axes, reported metrics, rows with numbers parsed)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        rows = list(reader)
    try:
        axes = header[2:header.index("seed")]
        metrics = header[header.index("status") + 1:header.index("runtime_s")]
    except ValueError as e:
        from ..errors import ZooUserError

        raise ZooUserError(f"{path} is not a results.csv written by python -m zoo ablate ({e})") from e
    numeric = set(metrics) | {c for c in header if c.startswith("test/")} | {"runtime_s"}
    out = []
    for r in rows:
        d = dict(r)
        for k in numeric:
            v = d.get(k)
            d[k] = float(v) if v not in (None, "") else float("nan")
        d["seed"] = int(d["seed"]) if d.get("seed") not in (None, "") else None
        d["fold"] = int(d["fold"]) if d.get("fold") not in (None, "") else None
        d["classes"] = json.loads(d["classes"]) if d.get("classes") else None
        d["confusion"] = json.loads(d["confusion"]) if d.get("confusion") else None
        out.append(d)
    return axes, metrics, out

