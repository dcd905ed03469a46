"""The zoo's performance, measured side by side with what a user would use instead.

    python -m benchmarks.run [--suite NAME ...] [--quick] [--json out.json]

from the repository root. Each suite (one module in benchmarks/suites, listed in
benchmarks/suites/__init__.py) states its goal and whether this run met it.
"""
from __future__ import annotations

import sys

if not __package__:  # started by path: the package imports below need the repository root
    sys.exit("run the benchmarks as a module from the repository root: python -m benchmarks.run "
             + " ".join(sys.argv[1:]))

import argparse
import json
import os
import platform
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

from benchmarks.common import ROOT, Suite
from benchmarks.suites import SUITES

EPILOG = """\
`--quick` shrinks every suite (about 5 minutes on 2 cores; for a smoke test, not for numbers);
`--scale` shrinks further (the test suite runs `--quick --scale 0.1`). Measurements that need
their own peak memory run in a fresh subprocess. The numbers of the last full run are in
docs/performance.md.
"""


def _help_text() -> str:
    """The module docstring and a table of the suites with their descriptions."""
    table = [textwrap.fill(mod.DESCRIPTION, width=100, initial_indent=f"  {name:<11}",
                           subsequent_indent=" " * 13) for name, mod in SUITES.items()]
    return __doc__ + "\nSuites:\n\n" + "\n".join(table) + "\n"


def _fmt(v) -> str:
    if isinstance(v, float) and v and abs(v) < 1e-3:
        return f"{v:.1e}"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def print_table(suites: list[Suite]) -> None:
    for s in suites:
        verdict = {True: "goal met", False: "GOAL NOT MET", None: "not judged"}[s.met]
        print(f"\n== {s.name}: {verdict}\n   goal: {s.goal}")
        width = max([len(r["what"]) for r in s.rows] + [10])
        for r in s.rows:
            print(f"   {r['what']:<{width}}  {_fmt(r['value']):>12} {r['unit']}")
        for n in s.notes:
            print(f"   note: {n}")


def markdown(suites: list[Suite]) -> str:
    """The tables as Markdown (docs/performance.md embeds them)."""
    out = []
    for s in suites:
        verdict = {True: "goal met", False: "**goal not met**", None: "not judged"}[s.met]
        out += [f"### {s.name}: {verdict}", "", f"Goal: {s.goal}.", "", "| measurement | value | unit |",
                "|---|---:|---|"]
        out += [f"| {r['what']} | {_fmt(r['value'])} | {r['unit']} |" for r in s.rows]
        out += [""] + [f"- {n}" for n in s.notes] + [""]
    return "\n".join(out)


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "processor": platform.processor()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["processor"] = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().split()[1]
        info["memory_gb"] = round(int(mem) / 2**20, 1)
    except OSError:
        pass
    try:
        info["load_avg_1m"] = os.getloadavg()[0]
    except OSError:
        pass
    import importlib.metadata as md

    versions = {}
    for pkg in ("torch", "torchaudio", "lightning", "transformers", "soxr", "soundfile", "numpy", "zoo"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    try:
        versions["zoo_git"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                             capture_output=True, text=True).stdout.strip() or None
    except OSError:
        pass
    return {"machine": info, "versions": versions}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=_help_text(), epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", nargs="+", choices=list(SUITES), default=list(SUITES))
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test, ~5 min)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every size by this (default 1)")
    ap.add_argument("--json", type=Path, help="write every figure with its unit, the machine and versions")
    ap.add_argument("--markdown", type=Path, help="also write the tables as Markdown")
    ap.add_argument("--workdir", type=Path, help="where the generated corpora go (default: a temp dir)")
    args = ap.parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "disabled")
    suites: list[Suite] = []
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        work = args.workdir or Path(tmp)
        for name in args.suite:
            t = time.perf_counter()
            print(f"[{name}] running ...", file=sys.stderr, flush=True)
            wd = work / name
            wd.mkdir(parents=True, exist_ok=True)
            s = SUITES[name].run(args, wd)
            s.notes.append(f"suite wall time {time.perf_counter() - t:.0f} s")
            suites.append(s)
    if args.quick:
        print("\n--quick: small sizes for a smoke test; the numbers and verdicts are not the "
              "measurement (docs/performance.md has the full run)")
    print_table(suites)
    if args.json:
        doc = {**machine(), "quick": args.quick, "scale": args.scale,
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "suites": [s.__dict__ for s in suites]}
        args.json.write_text(json.dumps(doc, indent=1, default=float))
        print(f"\nwrote {args.json}")
    if args.markdown:
        args.markdown.write_text(markdown(suites), encoding="utf-8")
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
