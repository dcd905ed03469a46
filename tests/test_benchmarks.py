"""The benchmark runner runs (a smoke test at the smallest sizes: that it works, not how fast)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_suites_run_and_report_goals(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--scale", "0.1",
                        "--suite", "rates", "index", "bucketing", "data", "--json", str(out)],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["versions"]["torch"] and doc["machine"]["cpus"]
    suites = {s["name"]: s for s in doc["suites"]}
    assert set(suites) == {"rates", "index", "bucketing", "data"}
    for s in suites.values():
        assert s["goal"] and s["rows"] and all("unit" in row for row in s["rows"])
        assert s["met"] in (True, False)
    pad = {row["what"]: row["value"] for row in suites["bucketing"]["rows"]}
    # bucketing pads less than random batching on the same durations
    assert pad["padded share, length-bucketed batches"] < pad["padded share, random batches"]
    assert "== data:" in r.stdout and "goal:" in r.stdout
