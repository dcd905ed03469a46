"""A train-on-X / test-on-Y grid over the corpora a user has (``kind: cross_corpus`` ablation files).

For every corpus X whose root exists: ``python -m zoo fit`` on X (with the file's label map, so
every corpus speaks the same classes; tested on X's own test split), then ``python -m zoo test``
of that checkpoint on every other corpus Y, the whole of it (``test_split: all``). The matrix of
``test/UA`` (rows: trained on, columns: tested on; the diagonal is in-corpus) is written as
``matrix.csv``, ``matrix.md`` and ``matrix.png`` (a heat map). See docs/ablations.md.

    python -m zoo ablate --config configs/ablation/cross_corpus.yaml [--dry-run]
"""
from __future__ import annotations

import csv
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable

from ..errors import ZooUserError

KEYS = ("name", "kind", "description", "label_map", "corpora", "model", "trainer", "overrides", "seed", "metric")


def load(path: str | Path) -> dict:
    import yaml

    path = Path(path)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    unknown = [k for k in doc if k not in KEYS]
    if unknown:
        raise ZooUserError(f"{path}: unknown key(s) {', '.join(unknown)}; a cross_corpus file has {', '.join(KEYS)}")
    for k in ("name", "label_map", "corpora", "model"):
        if not doc.get(k):
            raise ZooUserError(f"{path}: {k} is required")
    corpora = {}
    for name, c in doc["corpora"].items():
        c = {"config": c} if isinstance(c, str) else dict(c or {})
        if not c.get("config") or not Path(c["config"]).is_file():
            raise ZooUserError(f"{path}: corpora.{name}.config: data config {c.get('config')!r} not found")
        if not c.get("root"):
            init = (yaml.safe_load(Path(c["config"]).read_text())["data"]["init_args"]["corpus"]).get("init_args", {})
            c["root"] = init.get("root") or init.get("path")
        corpora[str(name)] = c
    as_list = lambda v: [v] if isinstance(v, str) else list(v or [])  # noqa: E731
    return {"name": doc["name"], "label_map": doc["label_map"], "corpora": corpora,
            "model": as_list(doc["model"]), "trainer": as_list(doc.get("trainer")),
            "overrides": dict(doc.get("overrides") or {}), "seed": int(doc.get("seed", 0)),
            "metric": doc.get("metric", "test/UA")}


def plan(spec: dict, out: Path) -> tuple[list[tuple[str, str, list[str]]], list[str]]:
    """(train corpus, test corpus or None, argv) per command, and the corpora skipped (no root)."""
    from .spec import cli_value

    have = {n: c for n, c in spec["corpora"].items() if c.get("root") and Path(c["root"]).expanduser().exists()}
    missing = [n for n in spec["corpora"] if n not in have]
    cfgs = [a for f in spec["model"] + spec["trainer"] for a in ("--config", f)]
    sets = [f"--{k}={cli_value(v)}" for k, v in spec["overrides"].items()]
    cmds = []
    for x, cx in have.items():
        log = ["--trainer.logger.init_args.save_dir", str(out), "--trainer.logger.init_args.version", "0"]
        cmds.append((x, None, ["fit", "--config", cx["config"], *cfgs, f"--data.corpus.root={cx['root']}",
                               f"--data.label_map={spec['label_map']}", *sets, f"--seed_everything={spec['seed']}",
                               "--checkpoint.filename=best", "--test_after_fit=true",
                               *log, "--trainer.logger.init_args.name", f"train_{x}"]))
        run = out / f"train_{x}" / "version_0"
        for y, cy in have.items():
            if y != x:
                cmds.append((x, y, ["test", "--config", str(run / "config.yaml"), "--config", cy["config"],
                                    f"--data.corpus.root={cy['root']}", "--data.test_split=all",
                                    "--ckpt_path", str(run / "checkpoints" / "best.ckpt"),
                                    # not beside the checkpoint (test-best/, the default): one folder per pair
                                    "--eval_dir", str(out / f"test_{x}_on_{y}" / "version_0")]))
    return cmds, missing


def _metric(run_dir: Path, key: str) -> float | None:
    f = run_dir / "metrics.csv"
    if not f.is_file():
        return None
    vals = [r[key] for r in csv.DictReader(open(f, encoding="utf-8")) if r.get(key)]
    return float(vals[-1]) if vals else None


def _subprocess(argv: list[str]) -> int:
    return subprocess.run([sys.executable, "-m", "zoo", *argv]).returncode


def run(spec: dict, out: Path, *, dry_run: bool = False, execute: Callable[[list[str]], int] = _subprocess) -> dict:
    cmds, missing = plan(spec, out)
    if missing:
        print(f"cross_corpus: skipped {', '.join(missing)} (root not found; set corpora.<name>.root)", file=sys.stderr)
    names = list(dict.fromkeys(x for x, _, _ in cmds))
    if len(names) < 2:
        raise ZooUserError(f"cross_corpus needs at least two corpora whose root exists; found {names or 'none'}"
                           + (f" (missing: {', '.join(sorted(missing))})" if missing else ""))
    if dry_run:
        for _, _, argv in cmds:
            print(shlex.join(["python", "-m", "zoo", *argv]))
        return {}
    for x, y, argv in cmds:
        rc = execute(argv)
        if rc != 0:
            raise ZooUserError(f"cross_corpus: `python -m zoo {shlex.join(argv[:1])}` for train {x}"
                               + (f", test {y}" if y else "") + f" failed (exit {rc}): {shlex.join(argv)}")
    m = spec["metric"]
    matrix = {x: {y: _metric(out / (f"train_{x}" if x == y else f"test_{x}_on_{y}") / "version_0", m)
                  for y in names} for x in names}
    write(matrix, out, m, spec["label_map"])
    return matrix


def write(matrix: dict, out: Path, metric: str, label_map: str) -> None:
    names = list(matrix)
    out.mkdir(parents=True, exist_ok=True)
    fmt = lambda v: "" if v is None else f"{v:.4f}"  # noqa: E731
    with open(out / "matrix.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trained on \\ tested on", *names])
        for x in names:
            w.writerow([x, *(fmt(matrix[x][y]) for y in names)])
    lines = [f"# Cross-corpus {metric} (label map {label_map})", "",
             "Rows: trained on; columns: tested on (the whole corpus; the diagonal: the corpus's own test split).", "",
             "| trained on \\ tested on | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for x in names:
        lines.append(f"| {x} | " + " | ".join(fmt(matrix[x][y]) or "-" for y in names) + " |")
    (out / "matrix.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    data = np.array([[np.nan if matrix[x][y] is None else matrix[x][y] for y in names] for x in names])
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 1.0 * len(names) + 1.5))
    im = ax.imshow(data, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    for i in range(len(names)):
        for j in range(len(names)):
            if not np.isnan(data[i, j]):
                ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center", color="w" if data[i, j] < 0.6 else "k")
    fig.colorbar(im, ax=ax, label=metric)
    ax.set_title(f"cross-corpus {metric} ({label_map})")
    fig.tight_layout()
    fig.savefig(out / "matrix.png", dpi=120)
    plt.close(fig)
