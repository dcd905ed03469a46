"""summary.md and plots, computed from results.csv alone (``summarize`` is the one place the
numbers come from; ``python -m zoo ablate --summary results.csv`` reruns it).

Per cell: mean ± sample standard deviation (n - 1) over its finished runs (seeds x folds), as SER
papers report WA (accuracy), UA (mean per-class recall) and macro-F1. The best cell (by
``best_by``) is compared with the second best on the runs they share (same seed and fold):
the mean paired difference, its standard deviation, how often the best one won and a paired
t-test, whose p < 0.05 is the verdict. The cells' own spread (the larger of their standard
deviations) is reported beside it but is not the test: over folds it holds the differences
between test speakers, which pairing removes.
"""
from __future__ import annotations

import math
from pathlib import Path

from .results import read_results

SIGNIFICANCE = 0.05  # paired t-test level of the best-vs-second verdict

PLOTS = {"metrics": "metrics.png", "confusion": "confusion_matrices.png", "per_class": "per_class_f1.png"}


def _mean_std(xs: list[float]) -> tuple[float, float]:
    n = len(xs)
    if n == 0:
        return float("nan"), float("nan")
    m = sum(xs) / n
    if n < 2:
        return m, float("nan")
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))


def summarize(path: Path, best_by: str | None = None, best_mode: str | None = None) -> dict:
    """The numbers of summary.md, from results.csv."""
    axes, metrics, rows = read_results(Path(path))
    best_by = best_by or ("test/UA" if "test/UA" in metrics else metrics[0])
    if best_by not in metrics:
        from ..errors import ZooUserError

        raise ZooUserError(f"best_by {best_by!r} is not a reported metric of {path} ({metrics})")
    best_mode = best_mode or ("min" if "loss" in best_by else "max")
    cells: dict[str, dict] = {}
    for r in rows:
        c = cells.setdefault(r["cell"], {"cell": r["cell"], "axes": {a: r.get(a, "") for a in axes},
                                         "runs": [], "failed": []})
        (c["runs"] if r["status"] == "ok" else c["failed"]).append(r)
    for c in cells.values():
        ok = c["runs"]
        c["n"], c["n_total"] = len(ok), len(ok) + len(c["failed"])
        c["stats"] = {m: _mean_std([r[m] for r in ok if not math.isnan(r[m])]) for m in metrics}
        c["values"] = {m: [r[m] for r in ok] for m in metrics}
        rt = [r["runtime_s"] for r in ok if not math.isnan(r["runtime_s"])]
        c["runtime_s"] = sum(rt) / len(rt) if rt else float("nan")
        c["classes"], c["confusion"], c["f1"] = _per_class(ok)
    ranked = sorted((c for c in cells.values() if c["n"] and not math.isnan(c["stats"][best_by][0])),
                    key=lambda c: c["stats"][best_by][0], reverse=best_mode == "max")
    out = {"ablation": rows[0]["ablation"] if rows else "", "axes": axes, "metrics": metrics,
           "best_by": best_by, "best_mode": best_mode, "cells": list(cells.values()),
           "n_runs": len(rows), "n_ok": sum(c["n"] for c in cells.values()),
           "best": ranked[0]["cell"] if ranked else None,
           "second": ranked[1]["cell"] if len(ranked) > 1 else None, "paired": None}
    if len(ranked) > 1:
        out["paired"] = paired(ranked[0], ranked[1], best_by, best_mode)
    out["effects"] = axis_effects([r for c in cells.values() for r in c["runs"]], axes, best_by, best_mode)
    return out


def _ttest(a: list[float], b: list[float]) -> float:
    """Paired t-test p-value: NaN under two pairs or when every difference is zero; 0 when every
    pair differs by the same nonzero amount (t's limit; scipy would say NaN)."""
    diffs = [x - y for x, y in zip(a, b)]
    if len(diffs) < 2:
        return float("nan")
    mean, std = _mean_std(diffs)
    if std <= 1e-12:
        return 0.0 if abs(mean) > 1e-12 else float("nan")
    import warnings

    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_rel(a, b).pvalue)


def axis_effects(ok: list[dict], axes: list[str], metric: str, mode: str) -> list[dict]:
    """Each value of each axis against the axis's first value, paired over the runs that agree
    on everything else (the other axes' values, seed and fold)."""
    out = []
    sign = 1 if mode == "max" else -1
    for a in axes:
        values = list(dict.fromkeys(r[a] for r in ok if r.get(a)))
        if len(values) < 2:
            continue
        others = [x for x in axes if x != a]

        def key(r):
            return tuple(r.get(x, "") for x in others), r["seed"], r["fold"]
        ref = {key(r): r[metric] for r in ok if r.get(a) == values[0] and not math.isnan(r[metric])}
        for v in values[1:]:
            pairs = [(r[metric], ref[key(r)]) for r in ok
                     if r.get(a) == v and key(r) in ref and not math.isnan(r[metric])]
            diffs = [sign * (x - y) for x, y in pairs]
            mean, std = _mean_std(diffs)
            out.append({"axis": a, "value": v, "baseline": values[0], "n": len(diffs), "mean": mean,
                        "std": std, "wins": sum(d > 0 for d in diffs),
                        "p": _ttest([x for x, _ in pairs], [y for _, y in pairs])})
    return out


def paired(best: dict, second: dict, metric: str, mode: str) -> dict:
    """Best minus second best on the (seed, fold) pairs both finished."""
    a = {(r["seed"], r["fold"]): r[metric] for r in best["runs"]}
    b = {(r["seed"], r["fold"]): r[metric] for r in second["runs"]}
    keys = sorted(k for k in a if k in b and not (math.isnan(a[k]) or math.isnan(b[k])))
    sign = 1 if mode == "max" else -1
    diffs = [sign * (a[k] - b[k]) for k in keys]
    mean, std = _mean_std(diffs)
    spread = max((s for s in (best["stats"][metric][1], second["stats"][metric][1]) if not math.isnan(s)),
                 default=float("nan"))
    p = _ttest([a[k] for k in keys], [b[k] for k in keys])
    t = float("nan")
    if len(diffs) >= 2 and std > 1e-12:
        t = mean / (std / math.sqrt(len(diffs)))
    elif p == 0.0:  # the same nonzero difference on every pair: t's limit
        t = math.copysign(math.inf, mean)
    return {"n": len(diffs), "pairs": keys, "diffs": diffs, "mean": mean, "std": std, "spread": spread,
            "wins": sum(d > 0 for d in diffs), "t": t, "p": p,
            # the verdict: a paired test, not the cells' spread (which holds the fold differences)
            "separated": not math.isnan(p) and p < SIGNIFICANCE and mean > 0}


def _per_class(ok: list[dict]):
    """Class names, the mean row-normalised confusion matrix (each run weighs the same) and the
    mean per-class F1 over the runs."""
    classes: list[str] = []
    for r in ok:
        for c in r.get("classes") or []:
            if c not in classes:
                classes.append(c)
    if not classes:
        return [], None, {}
    n = len(classes)
    acc = [[0.0] * n for _ in range(n)]
    cnt = [[0] * n for _ in range(n)]
    for r in ok:
        if not r.get("confusion"):
            continue
        idx = [classes.index(c) for c in r["classes"]]
        for i, row in enumerate(r["confusion"]):
            tot = sum(row)
            if not tot:
                continue
            for j, v in enumerate(row):
                acc[idx[i]][idx[j]] += v / tot
            for j in range(n):
                cnt[idx[i]][j] += 1
    cm = [[acc[i][j] / cnt[i][j] if cnt[i][j] else float("nan") for j in range(n)] for i in range(n)]
    f1 = {}
    for c in classes:
        xs = [r.get(f"test/F1/{c}", float("nan")) for r in ok]
        xs = [x for x in xs if not math.isnan(x)]
        f1[c] = sum(xs) / len(xs) if xs else float("nan")
    return classes, cm, f1


# -- markdown ----------------------------------------------------------------------------------------
def fmt(ms: tuple[float, float], digits: int = 3) -> str:
    m, s = ms
    if math.isnan(m):
        return "–"
    return f"{m:.{digits}f}" if math.isnan(s) else f"{m:.{digits}f} ± {s:.{digits}f}"


def markdown(s: dict, plots: dict[str, str] | None = None, title: str | None = None) -> str:
    metrics, best_by = s["metrics"], s["best_by"]
    lines = [f"# Ablation: {title or s['ablation']}", ""]
    seeds = sorted({r["seed"] for c in s["cells"] for r in c["runs"] + c["failed"] if r["seed"] is not None})
    folds = sorted({r["fold"] for c in s["cells"] for r in c["runs"] + c["failed"] if r["fold"] is not None})
    lines.append(f"{s['n_ok']} of {s['n_runs']} runs finished; seeds {seeds}"
                 + (f", folds {folds}" if folds else "") + ". Mean ± standard deviation over each "
                 "cell's runs (seeds" + (" x folds" if folds else "") + "); WA = accuracy, UA = mean "
                 "per-class recall, macro-F1 = mean per-class F1, all on the test split. "
                 f"Best cell by {best_by} ({s['best_mode']}) in bold.")
    lines += ["", "| cell | n | " + " | ".join(metrics) + " | runtime per run (s) |",
              "|---|---|" + "---|" * len(metrics) + "---|"]
    for c in s["cells"]:
        name = f"**{c['cell']}** (best)" if c["cell"] == s["best"] else c["cell"]
        vals = [fmt(c["stats"][m]) for m in metrics]
        if c["cell"] == s["best"]:
            vals[metrics.index(best_by)] = f"**{vals[metrics.index(best_by)]}**"
        rt = "–" if math.isnan(c["runtime_s"]) else f"{c['runtime_s']:.0f}"
        lines.append(f"| {name} | {c['n']}/{c['n_total']} | " + " | ".join(vals) + f" | {rt} |")
    lines.append("")
    lines += _paired_text(s)
    if s.get("effects"):
        lines += ["", "## Each axis, paired", "",
                  f"Each value against the axis's first value, on the runs that agree on everything "
                  f"else (other axes, seed, fold); difference in {best_by}"
                  + (" (lower is better, sign flipped)" if s["best_mode"] == "min" else "") + ". "
                  "Paired runs share their seed and split; an axis that changes the data itself "
                  "(e.g. a filter) also changes which utterances are tested.", "",
                  "| axis | value vs first | pairs | mean difference ± std | better in | p (paired t) |",
                  "|---|---|---|---|---|---|"]
        for e in s["effects"]:
            diff = "–" if math.isnan(e["mean"]) else (f"{e['mean']:+.3f}" + (
                "" if math.isnan(e["std"]) else f" ± {e['std']:.3f}"))
            pv = "–" if math.isnan(e["p"]) else f"{e['p']:.3f}"
            lines.append(f"| {e['axis']} | {e['value']} vs {e['baseline']} | {e['n']} | {diff} | "
                         f"{e['wins']} of {e['n']} | {pv} |")
    failed = [(r, c) for c in s["cells"] for r in c["failed"]]
    if failed:
        lines += ["", "## Runs that did not finish", "", "| run | status | error (last line) |", "|---|---|---|"]
        for r, c in failed:
            err = (r.get("error") or "").strip().splitlines()
            msg = (err[-1] if err else "").replace("|", "\\|")[:200]
            lines.append(f"| {c['cell']}/{_run_name(r)} | {r['status']} | {msg} |")
    classes = [x for c in s["cells"] for x in c["classes"]]
    classes = list(dict.fromkeys(classes))
    if classes:
        lines += ["", "## Per-class F1 (test, mean over runs)", "",
                  "| cell | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
        for c in s["cells"]:
            if c["n"]:
                lines.append(f"| {c['cell']} | " + " | ".join(
                    "–" if math.isnan(c["f1"].get(k, float("nan"))) else f"{c['f1'][k]:.2f}" for k in classes) + " |")
    if plots:
        lines += ["", "## Plots", ""]
        for key, label in (("metrics", "Test metrics per cell (bars: mean, error bars: standard "
                                       "deviation, dots: runs)"),
                           ("confusion", "Row-normalised test confusion matrices, mean over each cell's runs"),
                           ("per_class", "Per-class test F1, mean over each cell's runs")):
            if key in plots:
                lines += [f"{label}:", "", f"![{key}]({plots[key]})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _run_name(r: dict) -> str:
    return f"seed{r['seed']}" + (f"-fold{r['fold']}" if r.get("fold") is not None else "")


def _paired_text(s: dict) -> list[str]:
    p, best_by = s["paired"], s["best_by"]
    if s["best"] is None:
        return ["No cell finished a run."]
    if p is None:
        return [f"Only one cell finished: {s['best']}."]
    cells = {c["cell"]: c for c in s["cells"]}
    b, c2 = cells[s["best"]], cells[s["second"]]
    out = ["## Best vs second best", "",
           f"Best: **{s['best']}** ({best_by} {fmt(b['stats'][best_by])}); second: {s['second']} "
           f"({fmt(c2['stats'][best_by])})."]
    if p["n"] == 0:
        return out + ["", "They share no finished (seed, fold) pair, so no paired comparison."]
    unit = "runs" if any(k[1] is not None for k in p["pairs"]) else "seeds"
    unit = unit if p["n"] > 1 else unit[:-1]
    txt = (f"Paired over {p['n']} matching {unit}: the best is ahead by {p['mean']:.3f}"
           + ("" if math.isnan(p["std"]) else f" ± {p['std']:.3f}")
           + f" {best_by} (ahead in {p['wins']} of {p['n']}).")
    if p["n"] < 2:
        txt += " One pair cannot rank them: more seeds or folds can."
    elif math.isnan(p["p"]):
        txt += " They tie on every pair."
    elif math.isinf(p["t"]):
        txt += (" Every pair differs by the same amount (no variance: t is infinite)"
                + (": **these runs separate the two cells**." if p["separated"] else "."))
    else:
        txt += f" Paired t-test: t = {p['t']:.2f}, p = {p['p']:.3f} (n = {p['n']})"
        if p["separated"]:
            txt += ": **these runs separate the two cells**."
        else:
            txt += (": **these runs do not separate the two cells**"
                    + (" (with so few pairs only a large, consistent difference can reach p < 0.05)."
                       if p["n"] < 5 else "."))
        if not math.isnan(p["spread"]):
            txt += (f" Each cell's runs vary by up to {p['spread']:.3f} (standard deviation); "
                    + ("with folds, much of it is the difference between test folds (speakers, when folds "
                       "are speaker groups), which pairing removes."
                       if any(k[1] is not None for k in p["pairs"]) else "the spread between seeds."))
    return out + ["", txt]


# -- plots -------------------------------------------------------------------------------------------
def plot(s: dict, out_dir: Path) -> dict[str, str]:
    """The three PNGs; returns key -> file name (relative to out_dir)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cells = [c for c in s["cells"] if c["n"]]
    written: dict[str, str] = {}
    if not cells:
        return written
    names = [c["cell"] for c in cells]
    metrics = s["metrics"]
    h = max(2.5, 0.45 * len(cells) + 1.2)
    fig, axs = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics) + 1.5, h), sharey=True, squeeze=False)
    y = np.arange(len(cells))
    for ax, m in zip(axs[0], metrics):
        means = [c["stats"][m][0] for c in cells]
        stds = [0 if math.isnan(c["stats"][m][1]) else c["stats"][m][1] for c in cells]
        colors = ["tab:orange" if c["cell"] == s["best"] else "tab:blue" for c in cells]
        ax.barh(y, means, xerr=stds, color=colors, alpha=0.75, capsize=3)
        for i, c in enumerate(cells):
            ax.scatter(c["values"][m], [i] * len(c["values"][m]), s=10, color="black", zorder=3)
        if m.endswith("/UA") and cells[0]["classes"]:
            ax.axvline(1 / len(cells[0]["classes"]), color="gray", ls="--", lw=1, label="chance")
            ax.legend(loc="lower right", fontsize=7)
        ax.set_title(m)
        ax.set_xlim(0, 1 if all(0 <= v <= 1 for c in cells for v in c["values"][m]) else None)
        ax.grid(axis="x", alpha=0.3)
    axs[0][0].set_yticks(y, names)
    axs[0][0].invert_yaxis()
    fig.suptitle(f"{s['ablation']}: mean ± std over runs (best by {s['best_by']} in orange)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_dir / PLOTS["metrics"], dpi=110)
    plt.close(fig)
    written["metrics"] = PLOTS["metrics"]

    with_cm = [c for c in cells if c["confusion"] is not None]
    if with_cm:
        ncol = min(3, len(with_cm))
        nrow = math.ceil(len(with_cm) / ncol)
        k = max(len(c["classes"]) for c in with_cm)
        fig, axs = plt.subplots(nrow, ncol, figsize=(ncol * (0.5 * k + 2.2), nrow * (0.5 * k + 1.8)),
                                squeeze=False)
        for ax in axs.flat[len(with_cm):]:
            ax.axis("off")
        for ax, c in zip(axs.flat, with_cm):
            cm = np.array(c["confusion"], dtype=float)
            ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
            n = len(c["classes"])
            short = [x[:4] for x in c["classes"]]
            ax.set_xticks(range(n), short, rotation=90, fontsize=7)
            ax.set_yticks(range(n), short, fontsize=7)
            for i in range(n):
                for j in range(n):
                    if not math.isnan(cm[i, j]):
                        ax.text(j, i, f"{cm[i, j]:.2f}"[1:] if cm[i, j] < 1 else "1", ha="center",
                                va="center", fontsize=6, color="white" if cm[i, j] > 0.5 else "black")
            ax.set_title(f"{c['cell']} (n={c['n']})", fontsize=8)
            ax.set_xlabel("predicted", fontsize=7)
            ax.set_ylabel("true", fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / PLOTS["confusion"], dpi=110)
        plt.close(fig)
        written["confusion"] = PLOTS["confusion"]

        classes = list(dict.fromkeys(x for c in with_cm for x in c["classes"]))
        f1 = np.array([[c["f1"].get(k, np.nan) for k in classes] for c in with_cm])
        fig, ax = plt.subplots(figsize=(0.8 * len(classes) + 3, 0.45 * len(with_cm) + 1.6))
        ax.imshow(f1, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(with_cm)), [c["cell"] for c in with_cm], fontsize=8)
        for i in range(f1.shape[0]):
            for j in range(f1.shape[1]):
                if not np.isnan(f1[i, j]):
                    ax.text(j, i, f"{f1[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="black" if f1[i, j] > 0.6 else "white")
        ax.set_title("per-class test F1 (mean over runs)", fontsize=9)
        fig.tight_layout()
        fig.savefig(out_dir / PLOTS["per_class"], dpi=110)
        plt.close(fig)
        written["per_class"] = PLOTS["per_class"]
    return written


def write_summary(results_csv: Path, out_dir: Path | None = None, best_by: str | None = None,
                  best_mode: str | None = None, title: str | None = None) -> Path:
    """summary.md (+ PNGs) next to results.csv (or in out_dir); returns summary.md's path."""
    results_csv = Path(results_csv)
    out_dir = Path(out_dir or results_csv.parent)
    s = summarize(results_csv, best_by, best_mode)
    plots = plot(s, out_dir)
    path = out_dir / "summary.md"
    path.write_text(markdown(s, plots, title), encoding="utf-8")
    return path
