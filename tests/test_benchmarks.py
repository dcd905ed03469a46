"""The benchmark runner runs (a smoke test at the smallest sizes: that it works, not how fast)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# this checkout's zoo and benchmarks package first, whichever zoo the environment has installed
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def test_benchmark_suites_run_and_report_goals(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--scale", "0.1",
                        "--suite", "rates", "index", "bucketing", "data", "--json", str(out)],
                       capture_output=True, text=True, timeout=600, cwd=ROOT, env=ENV)
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


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=ROOT, env=ENV)


def test_help_lists_every_registered_suite():
    r = _run("-c", "import json; from benchmarks.suites import SUITES; "
                   "print(json.dumps({k: m.DESCRIPTION for k, m in SUITES.items()}))")
    assert r.returncode == 0, r.stderr[-2000:]
    suites = json.loads(r.stdout)
    assert {"data", "rates", "index", "bucketing", "train", "cache", "infer", "stream"} <= set(suites)
    r = _run("-m", "benchmarks.run", "--help")
    assert r.returncode == 0, r.stderr[-2000:]
    for name, description in suites.items():
        # each suite's row in the table: its name, then the start of its description
        assert f"  {name:<11}{description.split()[0]} " in r.stdout


def test_old_spelling_names_the_new_one():
    r = _run(str(ROOT / "benchmarks" / "run.py"), "--quick")
    assert r.returncode != 0
    assert r.stderr.strip() == "run the benchmarks as a module from the repository root: " \
                               "python -m benchmarks.run --quick"


def test_stream_suite_quick_measures_latency_and_serves_concurrent_streams(tmp_path):
    for mod in ("silero_vad", "fastapi", "uvicorn", "websockets"):
        pytest.importorskip(mod)
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--scale", "0.1", "--suite", "stream",
                        "--json", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    (s,) = json.loads(out.read_text())["suites"]
    rows = {row["what"]: row for row in s["rows"]}
    close = [row for what, row in rows.items() if what.endswith("latency from VAD close, p95")]
    # audio-cnn-synth and the default-size AudioCNN, each with segments found and a paced clock
    # that cannot report an event before the chunk that closed its segment arrived
    assert len(close) == 2 and all(row["segments"] > 0 for row in close)
    assert all(0 <= row["p50"] <= row["value"] <= row["max"] for row in close)
    assert all(row["value"] > 0 for what, row in rows.items() if "real-time factor" in what)
    # the serve process took two real-time streams: every frame arrived, every segment came back
    (held,) = [row for what, row in rows.items() if "concurrent real-time streams held" in what]
    (trial,) = held["trials"]
    assert trial["streams"] == 2 and trial["n_errors"] == 0 and trial["dropped_samples"] == 0
    assert trial["segments"] == trial["expected"] > 0


def test_longfile_suite_quick_measures_whole_infer_processes(tmp_path):
    pytest.importorskip("silero_vad")
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--scale", "0.1", "--suite", "longfile",
                        "--json", str(out)], capture_output=True, text=True, timeout=900, cwd=ROOT, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    (s,) = json.loads(out.read_text())["suites"]
    peaks = {row["what"]: row for row in s["rows"] if row["what"].endswith("peak RSS of the process")}
    # a 1-minute and a 4-minute file: windows of 4 s every 2 s, read a block at a time (--quick: no VAD run)
    assert len(peaks) == 2 and [row["parts"] for what, row in peaks.items() if what.startswith("windows, ")] == [29, 119]
    assert [row["duration_s"] for what, row in peaks.items() if what.startswith("windows, ")] == [60.0, 240.0]
    # each process holds torch and the model: hundreds of MB, measured per process
    assert all(row["value"] > 200 for row in s["rows"] if row["unit"] == "MB" and "peak RSS" in row["what"])
    assert s["met"] in (True, False)


def test_train_goal_is_judged_against_the_faster_trainer_configuration():
    from benchmarks.suites.train import verdict

    zoo = {"samples_s": 1.2, "peak_mb": 1000.0}
    slow, fast = {"samples_s": 0.7, "peak_mb": 950.0}, {"samples_s": 1.5, "peak_mb": 950.0}
    # the zoo beats the default random batches but not group_by_length: not met, whichever order
    assert verdict(zoo, {"random": slow, "group_by_length": fast}) == (False, "group_by_length")
    assert verdict(zoo, {"random": fast, "group_by_length": slow}) == (False, "random")
    # faster than both, and memory against the faster one's (1000 / 950 <= 1.1)
    assert verdict({**zoo, "samples_s": 1.6}, {"random": slow, "group_by_length": fast}) == (True, "group_by_length")
    # memory over 1.1x the faster configuration's fails even when the slower one used more
    heavy = {"samples_s": 1.6, "peak_mb": 1100.0}
    assert verdict(heavy, {"random": {"samples_s": 0.7, "peak_mb": 2000.0}, "group_by_length": fast})[0] is False


def test_folder_suite_picks_the_pipelines_fastest_batch_size_and_compares_probabilities():
    from benchmarks.suites.folder import best_batch, max_diff

    assert best_batch({1: {"files_s": 3.0}, 8: {"files_s": 5.0}, 16: {"files_s": 4.0}}) == 8
    a = {"x.wav": {"Angry": 0.75, "Sad": 0.25}, "y.wav": {"Angry": 0.5, "Sad": 0.5}}
    b = {"x.wav": {"Angry": 0.5, "Sad": 0.5}, "y.wav": {"Angry": 0.5, "Sad": 0.5}}
    assert max_diff(a, b) == 0.25 and max_diff(a, a) == 0.0
    with pytest.raises(RuntimeError, match="different files"):
        max_diff(a, {"x.wav": a["x.wav"]})
