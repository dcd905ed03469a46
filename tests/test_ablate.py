"""python -m zoo ablate: grid expansion, commands, execution (parallel, failing cells, resume after
a kill), results.csv, summary numbers recomputed from results.csv, plots, and a tiny end-to-end
ablation on the synthetic corpus through the real `python -m zoo fit`.

Most execution tests run a stand-in for `python -m zoo fit` (--fit-command, FAKE_FIT below) that
writes what a fit writes (metrics.csv, confusion_matrix_test.csv, checkpoints/best.ckpt) in a
fraction of a second, so the scheduling, failure and resume logic is tested without training;
the end-to-end test and the --print_config checks use the real CLI."""
import csv
import json
import math
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from zoo.ablate import results as R
from zoo.ablate import runner, spec
from zoo.ablate.summary import summarize
from zoo.errors import ZooUserError

ROOT = Path(__file__).resolve().parents[1]

# A stand-in for `python -m zoo fit`: reads the --key=value arguments the ablation passes and writes
# a run's outputs. model.init_args.{quality,noise,fail,sleep} steer it.
FAKE_FIT = r'''
import json, os, sys, time
kv = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
d = kv["trainer.default_root_dir"]
os.makedirs(d, exist_ok=True)
with open(os.environ["FAKE_FIT_LOG"], "a") as f:
    f.write(d + "\n")
for k, v in kv.items():
    if v.endswith("best.ckpt") and not os.path.exists(v):
        sys.exit(f"zoo: error: checkpoint not found: {v}")
if kv.get("model.init_args.fail") == "true":
    print("Traceback (most recent call last):\n  ...", file=sys.stderr)
    print("zoo: error: the model refused to train (fake failure)", file=sys.stderr)
    sys.exit(2)
if float(kv.get("model.init_args.sleep", 0)) and not os.environ.get("FAKE_NO_SLEEP"):
    open(os.path.join(d, "pid"), "w").write(str(os.getpid()))
    time.sleep(float(kv["model.init_args.sleep"]))
t_start = time.time()
time.sleep(0.3)  # long enough for parallel runs to overlap visibly
seed = int(kv["seed_everything"])
q, noise = float(kv.get("model.init_args.quality", 0.5)), float(kv.get("model.init_args.noise", 0.02))
ua = q + noise * (((seed * 7919 + int(q * 1000) * 13) % 11) - 5) / 5  # a fixed "seed noise"
os.makedirs(os.path.join(d, "checkpoints"), exist_ok=True)
open(os.path.join(d, "checkpoints", "best.ckpt"), "w").write("fake")
open(os.path.join(d, "config.yaml"), "w").write("seed_everything: %d\n" % seed)
with open(os.path.join(d, "metrics.csv"), "w") as f:
    f.write("epoch,step,train/loss,val/UA,test/WA,test/UA,test/macro_F1,test/loss\n")
    f.write("0,3,1.5,0.4,,,,\n1,7,1.2,0.5,,,,\n")
    f.write(f"1,8,,,{ua + 0.01},{ua},{ua - 0.01},1.1\n")
n = 10
right = int(round(ua * n))
with open(os.path.join(d, "confusion_matrix_test.csv"), "w") as f:
    f.write("true\\pred,a,b,c\n")
    for i, c in enumerate("abc"):
        row = [0, 0, 0]
        row[i] = right
        row[(i + 1) % 3] = n - right
        f.write(c + "," + ",".join(map(str, row)) + "\n")
open(os.path.join(d, "times"), "w").write(f"{t_start} {time.time()}")
'''


@pytest.fixture
def fake(tmp_path, monkeypatch):
    script = tmp_path / "fake_fit.py"
    script.write_text(FAKE_FIT)
    log = tmp_path / "fits.log"
    log.touch()
    monkeypatch.setenv("FAKE_FIT_LOG", str(log))
    monkeypatch.chdir(ROOT)  # the ablation files name configs/... relative to the repository

    def calls():
        return [Path(l).relative_to(tmp_path / "out").as_posix() for l in log.read_text().split()]
    return {"cmd": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}", "calls": calls}


def write(tmp_path, doc, name="abl.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(p)


BASE = ["configs/data/synthetic.yaml", "configs/trainer/cpu.yaml"]
AUDIO = ["configs/model/audio_cnn.yaml", "configs/model/tiny/audio_cnn.yaml"]
TEXT = ["configs/model/text_kobert.yaml", "configs/model/tiny/text_kobert.yaml"]


@pytest.fixture
def ablate(run):
    """`python -m zoo ablate ...` in this process (its imports are paid once); the fits it starts
    are subprocesses as always."""
    return lambda *args, cwd=ROOT: run("ablate", *args, cwd=cwd)


def rows_of(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- the grid ---------------------------------------------------------------------------------------
def test_cross_zip_seeds_and_folds_expand_to_the_full_grid(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    doc = {"name": "grid", "base": BASE, "seeds": [0, 1], "folds": 3,
           "cross": {"model": {"audio": AUDIO, "text": TEXT},
                     "data.init_args.label_mode": ["majority", "soft"]},
           "zip": {"model.init_args.dropout": [0.1, 0.3],
                   "trainer.max_epochs": {"short": 2, "long": 5}}}
    abl = spec.load(write(tmp_path, doc))
    cells = abl.cells()
    assert len(cells) == 2 * 2 * 2  # zipped axes move together: 2 rows, not 4
    names = [c.name for c in cells]
    assert "audio,label_mode=majority,dropout=0.1,max_epochs=short" in names
    assert "text,label_mode=soft,dropout=0.3,max_epochs=long" in names
    assert not any("dropout=0.1" in n and "max_epochs=long" in n for n in names)
    runs = abl.runs()
    assert len(runs) == 8 * 2 * 3
    assert len({r.id for r in runs}) == len(runs)
    assert runs[0].id == f"{names[0]}/seed0-fold0"  # seed 0, fold 0 of every cell first
    assert [r.cell.name for r in runs[:8]] == names
    args = runner.fit_args(abl, next(r for r in runs if r.id == "text,label_mode=soft,dropout=0.3,"
                                                              "max_epochs=long/seed1-fold2"), Path("out"))
    configs = [args[i + 1] for i, a in enumerate(args) if a == "--config"]
    assert configs == BASE + TEXT
    for a in ("--data.init_args.label_mode=soft", "--model.init_args.dropout=0.3", "--trainer.max_epochs=5",
              "--seed_everything=1", "--data.init_args.seed=1", "--data.init_args.split.mode=kfold",
              "--data.init_args.split.num_folds=3", "--data.init_args.split.fold=2", "--test_after_fit=true"):
        assert a in args, a
    # the settings come after the configs, so they win over what the files say
    assert max(i for i, a in enumerate(args) if a == "--config") < args.index("--trainer.max_epochs=5")


def test_no_axes_is_one_cell_and_seed_data_false_keeps_the_split(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    abl = spec.load(write(tmp_path, {"name": "seeds", "base": BASE, "seeds": [3, 4], "seed_data": False}))
    runs = abl.runs()
    assert [r.id for r in runs] == ["base/seed3", "base/seed4"]
    args = runner.fit_args(abl, runs[1], Path("o"))
    assert "--seed_everything=4" in args and not any(a.startswith("--data.init_args.seed") for a in args)


def test_checkpoints_make_a_second_stage_on_the_same_seed(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    doc = {"name": "st", "base": BASE, "seeds": [0, 1],
           "cross": {"model": {"audio": AUDIO, "text": TEXT, "fusion": {
               "config": ["configs/model/late_fusion.yaml"], "set": {"model.init_args.freeze_encoders": True},
               "checkpoints": {"model.init_args.audio_checkpoint": "audio",
                               "model.init_args.text_checkpoint": "text"}}},
               "model.init_args.dropout": [0.1, 0.2]}}
    abl = spec.load(write(tmp_path, doc))
    runs = abl.runs()
    assert [r.stage for r in runs] == [0] * 8 + [1] * 4  # prerequisites first
    r = next(r for r in runs if r.id == "fusion,dropout=0.2/seed1")
    assert {k: d.id for k, d in r.deps.items()} == {"model.init_args.audio_checkpoint": "audio,dropout=0.2/seed1",
                                                    "model.init_args.text_checkpoint": "text,dropout=0.2/seed1"}
    args = runner.fit_args(abl, r, Path("out"))
    assert "--model.init_args.audio_checkpoint=out/audio,dropout=0.2/seed1/checkpoints/best.ckpt" in args
    assert "--checkpoint.filename=best" in args


@pytest.mark.parametrize("doc, where", [
    ({"name": "x", "base": BASE, "axes": {}}, "axes"),
    ({"name": "x", "base": BASE, "seed": [1]}, "did you mean 'seeds'"),
    ({"name": "x", "base": ["configs/data/nope.yaml"]}, "base[0]"),
    ({"name": "x y", "base": BASE}, "name"),
    ({"name": "x", "base": BASE, "seeds": [0, "1"]}, "seeds"),
    ({"name": "x", "base": BASE, "folds": 1}, "folds"),
    ({"name": "x", "base": BASE, "metrics": ["test/UA"], "best_by": "test/WA"}, "best_by"),
    ({"name": "x", "base": BASE, "overrides": {"seed_everything": 3}}, "seed_everything"),
    ({"name": "x", "base": BASE, "folds": 3, "cross": {"data.init_args.split.fold": [0, 1]}}, "data.init_args.split.fold"),
    ({"name": "x", "base": BASE, "overrides": {"trainer max_epochs": 3}}, "overrides.trainer max_epochs"),
    ({"name": "x", "base": BASE, "zip": {"data.init_args.corpus.init_args.size": [1, 2], "trainer.max_epochs": [1]}}, "zip"),
    ({"name": "x", "base": BASE, "cross": {"model": {"a": {"configs": AUDIO}}}}, "model.a.configs"),
    ({"name": "x", "base": BASE, "cross": {"model.init_args.channels": [[8, 16], [8, 16]]}}, "share the name"),
    ({"name": "x", "base": BASE, "cross": {"model": {"a": AUDIO, "b": {"config": TEXT, "checkpoints": {
        "model.init_args.audio_checkpoint": "c"}}}}}, "model.b.checkpoints.model.init_args.audio_checkpoint"),
    ({"name": "x", "base": BASE, "cross": {"trainer.max_epochs": []}}, "cross.trainer.max_epochs"),
])
def test_bad_files_are_rejected_naming_the_key(tmp_path, monkeypatch, doc, where):
    monkeypatch.chdir(ROOT)
    with pytest.raises(ZooUserError) as e:
        spec.load(write(tmp_path, doc)).runs()
    assert where in str(e.value), str(e.value)


def test_bad_file_is_a_clear_cli_error(tmp_path, ablate):
    p = write(tmp_path, {"name": "x", "base": BASE, "crosss": {}})
    r = ablate("--config", p, "--dry-run")
    assert r.returncode == 2 and "crosss" in r.stderr and "did you mean 'cross'" in r.stderr
    assert "Traceback" not in r.stderr


def test_help_is_fast_and_light(ablate):
    code = ("import sys, time; t = time.time(); import zoo.ablate, zoo.ablate.spec, zoo.ablate.runner, "
            "zoo.ablate.results, zoo.ablate.summary; print(sorted(m for m in ('torch', 'lightning', "
            "'matplotlib', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    r = ablate("--help")
    assert r.returncode == 0 and "--resume" in r.stdout and "--dry-run" in r.stdout


# -- commands: what --dry-run prints is what the zoo CLI accepts -----------------------------------
def _print_config(run, line):
    argv = shlex.split(line)
    assert argv[:4] == ["python", "-m", "zoo", "fit"]
    r = run("fit", *argv[4:], "--print_config")
    assert r.returncode == 0, r.stderr[-3000:]
    return yaml.safe_load(r.stdout)


def test_dry_run_commands_parse_with_the_zoo_cli(tmp_path, run, ablate):
    r = ablate("--config", "configs/ablation/modality.yaml", "--dry-run", "--out", "o")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    abl = spec.load(ROOT / "configs/ablation/modality.yaml")
    assert len(lines) == len(abl.runs()) == len(abl.cells()) * len(abl.seeds)
    fusion = next(l for l in lines if "late_fusion/seed2" in l)
    cfg = _print_config(run, fusion)
    assert cfg["model"]["init_args"]["audio_checkpoint"] == "o/audio_cnn/seed2/checkpoints/best.ckpt"
    assert cfg["model"]["init_args"]["freeze_encoders"] is True
    assert cfg["seed_everything"] == 2 and cfg["data"]["init_args"]["seed"] == 2
    assert cfg["trainer"]["default_root_dir"] == "o/late_fusion/seed2"
    lg = cfg["trainer"]["logger"]
    assert (lg["init_args"]["save_dir"], lg["init_args"]["name"], lg["init_args"]["version"]) == (
        "o", "late_fusion", "seed2")  # CSVLogger log dir = the run dir
    assert cfg["checkpoint"]["filename"] == "best" and cfg["test_after_fit"] is True
    # stage filter: only the runs that need the others' checkpoints
    r1 = ablate("--config", "configs/ablation/modality.yaml", "--dry-run", "--stage", "1", "--out", "o")
    assert r1.stdout.splitlines() == [l for l in lines if "late_fusion" in l]


def test_every_shipped_ablation_file_expands_and_its_cells_parse(run):
    files = sorted((ROOT / "configs/ablation").glob("*.yaml"))
    assert {p.stem for p in files} >= {"modality", "labels", "fusion"}
    for p in files:
        if yaml.safe_load(p.read_text()).get("kind") == "cross_corpus":  # tests/test_cross_corpus.py runs it
            from zoo.ablate import cross_corpus

            assert len(cross_corpus.load(p)["corpora"]) >= 2
            continue
        abl = spec.load(p)
        runs = abl.runs()
        assert len(runs) == len(abl.cells()) * len(abl.seeds) * (abl.folds or 1)
        # the first cell and the first second stage of each file (the others differ in values only)
        for r in {runs[0].id: runs[0], **{r.id: r for r in runs[::-1] if r.deps}}.values():
            if r is runs[0] or r.id == next((x.id for x in runs if x.deps), None):
                _print_config(run, runner.display(list(runner.DEFAULT_FIT), runner.fit_args(abl, r, Path("o"))))


def test_wandb_runs_are_grouped_by_ablation_and_tagged_with_their_values(tmp_path, run, monkeypatch, ablate):
    monkeypatch.chdir(ROOT)
    p = write(tmp_path, {"name": "labels-wb", "base": BASE + ["configs/trainer/wandb.yaml"], "seeds": [1],
                         "cross": {"data.init_args.label_mode": ["majority", "soft"]}})
    r = ablate("--config", p, "--dry-run", "--out", "o")
    assert r.returncode == 0, r.stderr
    cfg = _print_config(run, r.stdout.splitlines()[1])
    csv_logger, wandb = cfg["trainer"]["logger"]
    assert csv_logger["class_path"].endswith("CSVLogger") and csv_logger["init_args"]["version"] == "seed1"
    w = wandb["init_args"]
    assert wandb["class_path"].endswith("WandbLogger")
    assert w["group"] == "labels-wb" and w["offline"] is True and w["project"] == "zoo"
    assert w["tags"] == ["label_mode=soft", "seed=1"]
    assert w["name"] == "label_mode=soft/seed1" and w["save_dir"] == "o/label_mode=soft/seed1"


def test_sweep_and_index_for_array_jobs(tmp_path, fake, ablate):
    p = write(tmp_path, {"name": "sw", "base": BASE, "seeds": [0, 1],
                         "cross": {"model.init_args.quality": [0.4, 0.6]}})
    out = tmp_path / "out"
    r = ablate("--config", p, "--out", str(out), "--dry-run", "--sweep", str(tmp_path / "sweep.yaml"))
    sweep = yaml.safe_load((tmp_path / "sweep.yaml").read_text())
    assert sweep["method"] == "grid" and sweep["parameters"]["index"]["values"] == [0, 1, 2, 3]
    assert sweep["command"][-1] == "${args}"
    # one array task runs exactly its line of the dry-run list; --collect gathers them afterwards
    for i in (2, 0):
        t = ablate("--config", p, "--out", str(out), "--index", str(i), "--fit-command", fake["cmd"], "--no-check")
        assert t.returncode == 0, t.stderr
    lines = r.stdout.splitlines()
    assert fake["calls"]() == [l.split("--trainer.default_root_dir=")[1].split()[0].split("/out/")[1]
                               for l in (lines[2], lines[0])]
    c = ablate("--config", p, "--out", str(out), "--collect")
    assert c.returncode == 1  # two runs never ran
    assert [x["status"] for x in rows_of(out / "results.csv")] == ["ok", "ok", "not run", "not run"]


# -- execution --------------------------------------------------------------------------------------
def test_a_failing_cell_is_recorded_and_the_others_go_on(tmp_path, fake, ablate):
    p = write(tmp_path, {"name": "fail", "base": BASE, "seeds": [0, 1], "cross": {"model": {
        "good": {"set": {"model.init_args.quality": 0.7}},
        "broken": {"set": {"model.init_args.fail": True}},
        "ok2": {"set": {"model.init_args.quality": 0.5}},
        "after_broken": {"checkpoints": {"model.init_args.audio_checkpoint": "broken"}},
        "after_good": {"checkpoints": {"model.init_args.audio_checkpoint": "good"}}}}})
    out = tmp_path / "out"
    r = ablate("--config", p, "--out", str(out), "--jobs", "2", "--fit-command", fake["cmd"], "--no-check")
    assert r.returncode == 1, r.stdout + r.stderr
    rows = {(x["cell"], x["seed"]): x for x in rows_of(out / "results.csv")}
    assert len(rows) == 10
    for s in "01":
        assert rows[("good", s)]["status"] == rows[("ok2", s)]["status"] == rows[("after_good", s)]["status"] == "ok"
        assert rows[("broken", s)]["status"] == "failed"
        assert "the model refused to train" in rows[("broken", s)]["error"]
        assert rows[("after_broken", s)]["status"] == "failed"
        assert "prerequisite broken/seed" in rows[("after_broken", s)]["error"]
    assert not any("after_broken" in c for c in fake["calls"]())  # never started
    summary = (out / "summary.md").read_text()
    assert "Runs that did not finish" in summary and "the model refused to train" in summary
    assert "**good** (best)" in summary
    # the failing run's own output is kept
    assert "fake failure" in (out / "broken" / "seed0" / "log.txt").read_text()


def test_preflight_records_a_cell_whose_arguments_do_not_parse(tmp_path, fake, ablate):
    """Before anything runs, every cell's arguments go through the zoo CLI's parser: a typo fails
    its own cell at once (recorded with the parser's message) instead of minutes into the grid."""
    p = write(tmp_path, {"name": "pre", "base": BASE, "cross": {"model": {
        "audio": AUDIO, "typo": {"config": AUDIO, "set": {"model.init_args.chanels": [8, 16, 16]}}}}})
    out = tmp_path / "out"
    r = ablate("--config", p, "--out", str(out), "--fit-command", fake["cmd"])
    assert r.returncode == 1
    assert fake["calls"]() == ["audio/seed0"]
    rows = {x["cell"]: x for x in rows_of(out / "results.csv")}
    assert rows["audio"]["status"] == "ok"
    assert rows["typo"]["status"] == "failed" and "chanels" in rows["typo"]["error"]
    assert "preflight" in rows["typo"]["error"]


def test_resume_reruns_only_what_is_unfinished_on_disk(tmp_path, fake, ablate):
    doc = {"name": "res", "base": BASE, "seeds": [0, 1],
           "cross": {"model.init_args.quality": {"lo": 0.4, "hi": 0.6}}}
    p = write(tmp_path, doc)
    out = tmp_path / "out"
    args = ["--config", p, "--out", str(out), "--fit-command", fake["cmd"], "--no-check"]
    assert ablate(*args).returncode == 0
    assert len(fake["calls"]()) == 4
    # no silent overwrite
    r = ablate(*args)
    assert r.returncode == 2 and "--resume" in r.stderr
    # a run whose metrics were lost (truncated by a crash) is unfinished, whatever else is there
    m = out / "quality=hi" / "seed0" / "metrics.csv"
    m.write_text(m.read_text().splitlines()[0] + "\n")
    before = (out / "quality=lo" / "seed1" / "metrics.csv").stat().st_mtime_ns
    r = ablate(*args, "--resume")
    assert r.returncode == 0, r.stderr
    assert fake["calls"]()[4:] == ["quality=hi/seed0"]
    assert (out / "quality=lo" / "seed1" / "metrics.csv").stat().st_mtime_ns == before
    assert [x["status"] for x in rows_of(out / "results.csv")] == ["ok"] * 4
    # a changed setting makes the finished runs it touches stale
    doc["cross"]["model.init_args.quality"]["hi"] = 0.65
    write(tmp_path, doc)
    assert ablate(*args, "--resume").returncode == 0
    assert sorted(fake["calls"]()[5:]) == ["quality=hi/seed0", "quality=hi/seed1"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_resume_after_the_ablation_is_killed(tmp_path, fake, sig):
    """Ctrl-C (SIGINT) stops the running child and records what finished; SIGKILL (a crash) takes
    the child along too. Either way --resume runs exactly the unfinished runs."""
    p = write(tmp_path, {"name": "kill", "base": BASE, "seeds": [0], "cross": {"model": {
        "a": {"set": {"model.init_args.quality": 0.5}},
        "slow": {"set": {"model.init_args.sleep": 60}},
        "c": {"set": {"model.init_args.quality": 0.6}}}}})
    out = tmp_path / "out"
    args = ["--config", p, "--out", str(out), "--fit-command", fake["cmd"], "--no-check"]
    # a shell without job control starts background jobs with SIGINT ignored (CI may run us so),
    # and Python keeps an inherited SIG_IGN: give the ablation the default, as a terminal would
    proc = subprocess.Popen([sys.executable, "-m", "zoo", "ablate", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    pid_file = out / "slow" / "seed0" / "pid"
    t0 = time.time()
    while not pid_file.exists():
        assert time.time() - t0 < 60 and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    time.sleep(0.2)
    child = int(pid_file.read_text())
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL), stdout + stderr
    t0 = time.time()
    while _alive(child):  # the child is gone (stopped by the ablation, or by the kernel: PDEATHSIG)
        assert time.time() - t0 < 15, "the running fit outlived the ablation"
        time.sleep(0.1)
    if sig == signal.SIGINT:  # what finished is on record
        rows = rows_of(out / "results.csv")
        assert [x["status"] for x in rows] == ["ok", "failed", "not run"]
        assert "interrupted" in rows[1]["error"]
    assert fake["calls"]() == ["a/seed0", "slow/seed0"]
    r = subprocess.run([sys.executable, "-m", "zoo", "ablate", *args, "--resume"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60, env={**os.environ, "FAKE_NO_SLEEP": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert fake["calls"]()[2:] == ["slow/seed0", "c/seed0"]
    assert [x["status"] for x in rows_of(out / "results.csv")] == ["ok"] * 3


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its reaper counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


# -- summary ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One fake ablation (3 cells x 4 seeds, --jobs 2) shared by the summary and plot tests."""
    tmp = tmp_path_factory.mktemp("finished")
    (tmp / "fake_fit.py").write_text(FAKE_FIT)
    p = write(tmp, {"name": "sum", "base": BASE, "seeds": [0, 1, 2, 3],
                    "cross": {"model.init_args.quality": {"low": 0.3, "mid": 0.55, "high": 0.6}},
                    "zip": {"model.init_args.noise": [0.08]}})
    out = tmp / "out"
    r = subprocess.run([sys.executable, "-m", "zoo", "ablate", "--config", p, "--out", str(out), "--jobs", "2",
                        "--fit-command", f"{shlex.quote(sys.executable)} {shlex.quote(str(tmp / 'fake_fit.py'))}",
                        "--no-check"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "FAKE_FIT_LOG": str(tmp / "fits.log")})
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def test_jobs_run_in_parallel_after_a_first_run_alone(finished):
    """--jobs 2: the first run of a data setting runs alone (it may generate the corpus and fill
    the caches, which two processes must not do at once); the others then overlap."""
    spans = sorted(tuple(map(float, p.read_text().split())) for p in finished.glob("*/*/times"))
    assert len(spans) == 12
    first = spans[0]
    assert all(s[0] >= first[1] for s in spans[1:])  # nothing started before the first one ended
    overlaps = sum(b[0] < a[1] for a, b in zip(spans[1:], spans[2:]))
    assert overlaps >= 3, spans


def test_summary_numbers_are_recomputed_from_results_csv(finished):
    rows = rows_of(finished / "results.csv")
    assert len(rows) == 12 and {x["status"] for x in rows} == {"ok"}
    # results.csv holds what each run wrote in its own metrics.csv
    for x in rows:
        m, _ = R.read_metrics_csv(Path(x["run_dir"]) / "metrics.csv")
        assert math.isclose(float(x["test/UA"]), m["test/UA"], rel_tol=1e-5)
    s = summarize(finished / "results.csv")
    text = (finished / "summary.md").read_text()
    by_cell = {}
    for x in rows:
        by_cell.setdefault(x["cell"], []).append(x)
    for c in s["cells"]:
        xs = by_cell[c["cell"]]
        for metric in ("test/WA", "test/UA", "test/macro_F1"):
            v = [float(x[metric]) for x in xs]
            mean, std = statistics.mean(v), statistics.stdev(v)
            assert math.isclose(c["stats"][metric][0], mean, abs_tol=1e-9)
            assert math.isclose(c["stats"][metric][1], std, abs_tol=1e-9)
            assert f"{mean:.3f} ± {std:.3f}" in text
        assert c["n"] == 4
    means = {c: statistics.mean(float(x["test/UA"]) for x in v) for c, v in by_cell.items()}
    best, second = sorted(means, key=means.get, reverse=True)[:2]
    assert s["best"] == best and s["second"] == second and f"**{best}** (best)" in text
    # paired: the same seeds of the two best cells
    a = {x["seed"]: float(x["test/UA"]) for x in by_cell[best]}
    b = {x["seed"]: float(x["test/UA"]) for x in by_cell[second]}
    d = [a[k] - b[k] for k in a]
    assert math.isclose(s["paired"]["mean"], statistics.mean(d), abs_tol=1e-9)
    assert math.isclose(s["paired"]["std"], statistics.stdev(d), abs_tol=1e-9)
    from scipy import stats

    assert math.isclose(s["paired"]["p"], stats.ttest_rel(list(a.values()), list(b.values())).pvalue, rel_tol=1e-6)
    spread = max(statistics.stdev(a.values()), statistics.stdev(b.values()))
    assert math.isclose(s["paired"]["spread"], spread, abs_tol=1e-9)
    # the verdict is the paired test; 0.6 vs 0.55 with seed noise 0.08 over 4 seeds does not pass it,
    # and the summary says so plainly
    assert s["paired"]["separated"] == (s["paired"]["p"] < 0.05) and not s["paired"]["separated"]
    assert "these runs do not separate the two cells" in text
    # each axis value against the first, paired by seed (the zipped noise axis has one value)
    effects = {(e["axis"], e["value"]): e for e in s["effects"]}
    assert set(effects) == {("quality", "mid"), ("quality", "high")}
    low = {x["seed"]: float(x["test/UA"]) for x in by_cell["quality=low"]}
    for v in ("mid", "high"):
        d = [float(x["test/UA"]) - low[x["seed"]] for x in by_cell[f"quality={v}"]]
        e = effects[("quality", v)]
        assert e["n"] == 4 and math.isclose(e["mean"], statistics.mean(d), abs_tol=1e-9)
        assert e["wins"] == sum(x > 0 for x in d)
        assert f"| quality | {v} vs low | 4 | {statistics.mean(d):+.3f} ± {statistics.stdev(d):.3f} |" in text
    # per-class F1 from the confusion matrices
    for c in s["cells"]:
        for x in by_cell[c["cell"]]:
            cm = json.loads(x["confusion"])
            tp = cm[0][0]
            f1 = 2 * tp / (sum(cm[0]) + sum(r[0] for r in cm))
            assert math.isclose(float(x["test/F1/a"]), f1, rel_tol=1e-5)


def test_a_clear_winner_is_reported_as_such(tmp_path, fake, ablate):
    p = write(tmp_path, {"name": "win", "base": BASE, "seeds": [0, 1, 2],
                         "cross": {"model.init_args.quality": {"weak": 0.3, "strong": 0.7}}})
    out = tmp_path / "out"
    assert ablate("--config", p, "--out", str(out), "--fit-command", fake["cmd"], "--no-check").returncode == 0
    s = summarize(out / "results.csv")
    assert s["best"] == "quality=strong" and s["paired"]["separated"] and s["paired"]["p"] < 0.05
    assert s["paired"]["wins"] == 3
    assert "these runs separate the two cells" in (out / "summary.md").read_text()


def test_plots_are_written_and_embedded(finished, ablate):
    import matplotlib.image as mpimg

    text = (finished / "summary.md").read_text()
    for name in ("metrics.png", "confusion_matrices.png", "per_class_f1.png"):
        img = mpimg.imread(finished / name)
        assert img.shape[0] > 100 and img.shape[1] > 100 and img.std() > 0.01  # not blank
        assert f"]({name})" in text
    # the summary is rebuilt from results.csv alone, anywhere
    other = finished.parent / "copy"
    other.mkdir()
    (other / "results.csv").write_bytes((finished / "results.csv").read_bytes())
    r = ablate("--summary", str(other / "results.csv"))
    assert r.returncode == 0, r.stderr
    assert (other / "summary.md").read_text() == text
    assert (other / "metrics.png").exists()


# -- end to end ------------------------------------------------------------------------------------
def test_tiny_ablation_end_to_end_on_the_synthetic_corpus(tmp_path, monkeypatch, ablate):
    """The real `python -m zoo fit`: two model families and late fusion from their checkpoints."""
    monkeypatch.chdir(ROOT)
    p = write(tmp_path, {
        "name": "e2e", "base": BASE,
        # the corpus test_model_configs.py uses too (generated once per cache)
        "overrides": {"data.init_args.corpus.init_args.size": 48, "data.init_args.batch_size": 8, "trainer.max_epochs": 1,
                      "trainer.limit_train_batches": 2, "trainer.limit_val_batches": 1},
        "seeds": [0],
        "cross": {"model": {"audio_cnn": AUDIO, "text_bert": TEXT, "late_fusion": {
            "config": ["configs/model/late_fusion.yaml", "configs/model/tiny/late_fusion.yaml"],
            "set": {"model.init_args.freeze_encoders": True, "model.init_args.fusion": "probs"},
            "checkpoints": {"model.init_args.audio_checkpoint": "audio_cnn",
                            "model.init_args.text_checkpoint": "text_bert"}}}}})
    out = tmp_path / "out"
    r = ablate("--config", p, "--out", str(out), "--no-check")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = rows_of(out / "results.csv")
    assert [x["cell"] for x in rows] == ["audio_cnn", "text_bert", "late_fusion"]
    for x in rows:
        assert x["status"] == "ok", x["error"]
        d = Path(x["run_dir"])
        for f in ("config.yaml", "metrics.csv", "checkpoints/best.ckpt", "confusion_matrix_test.csv", "log.txt"):
            assert (d / f).exists(), d / f
        m, _ = R.read_metrics_csv(d / "metrics.csv")
        assert float(x["test/UA"]) == pytest.approx(m["test/UA"], rel=1e-5)
        assert 0 <= float(x["test/UA"]) <= 1 and float(x["runtime_s"]) > 0
        cm = np.array(json.loads(x["confusion"]))
        assert cm.shape == (7, 7) and float(x["test/WA"]) == pytest.approx(np.trace(cm) / cm.sum(), abs=1e-4)
    cfg = yaml.safe_load((out / "late_fusion/seed0/config.yaml").read_text())
    assert cfg["model"]["init_args"]["audio_checkpoint"] == str(out / "audio_cnn/seed0/checkpoints/best.ckpt")
    assert cfg["model"]["init_args"]["text_checkpoint"] == str(out / "text_bert/seed0/checkpoints/best.ckpt")
    text = (out / "summary.md").read_text()
    assert "| late_fusion | 1/1 |" in text or "| **late_fusion** (best) | 1/1 |" in text
    assert (out / "metrics.png").exists() and (out / "confusion_matrices.png").exists()
    # everything is finished: --resume has nothing to run
    r = ablate("--config", p, "--out", str(out), "--no-check", "--resume")
    assert r.returncode == 0 and "start " not in r.stdout, r.stdout


def test_paired_verdict_is_not_fooled_by_the_spread_between_folds(tmp_path):
    """Leave-one-speaker-out: the test speaker moves both cells far more than the cells differ.
    A consistent gain on every fold must be called a separation even though it is smaller than
    each cell's spread over folds (the verdict once compared it with that spread)."""
    from scipy import stats

    speaker = [0.55, 0.9, 0.7, 0.62, 0.81, 0.75, 0.6, 0.88, 0.67, 0.72]  # fold (speaker) difficulty
    gain = [0.05, 0.03, 0.06, 0.04, 0.05, 0.02, 0.07, 0.03, 0.04, 0.05]
    header = ["ablation", "cell", "model", "seed", "fold", "status", "test/UA", "runtime_s"]
    lines = [",".join(header)]
    for k, (s, g) in enumerate(zip(speaker, gain)):
        lines.append(f"loso,base,base,0,{k},ok,{s},1")
        lines.append(f"loso,better,better,0,{k},ok,{s + g},1")
    path = tmp_path / "results.csv"
    path.write_text("\n".join(lines) + "\n")
    s = summarize(path)
    p = s["paired"]
    assert s["best"] == "better" and p["n"] == 10 and p["wins"] == 10
    assert p["spread"] > p["mean"]  # smaller than the spread between folds...
    assert math.isclose(p["p"], stats.ttest_rel([a + b for a, b in zip(speaker, gain)], speaker).pvalue, rel_tol=1e-6)
    assert p["separated"]  # ...yet the paired test separates them
    from zoo.ablate.summary import markdown

    text = markdown(s)
    assert "these runs separate the two cells" in text and "do not separate" not in text


def test_the_same_gain_on_every_fold_is_a_separation_in_both_tables(tmp_path):
    """A difference with no spread (every fold +0.05) is t's limit, p = 0, for the best-vs-second
    verdict and for the axis table alike (scipy alone says NaN there)."""
    from zoo.ablate.summary import markdown

    def results(gain):
        lines = ["ablation,cell,aug,seed,fold,status,test/UA,runtime_s"]
        for k, s in enumerate([0.55, 0.9, 0.7, 0.62]):
            lines += [f"loso,aug=off,off,0,{k},ok,{s},1", f"loso,aug=on,on,0,{k},ok,{s + gain},1"]
        path = tmp_path / f"results{gain}.csv"
        path.write_text("\n".join(lines) + "\n")
        return summarize(path)

    s = results(0.05)
    assert s["best"] == "aug=on" and s["paired"]["p"] == 0.0 and s["paired"]["t"] == math.inf
    assert s["paired"]["separated"]
    (e,) = s["effects"]
    assert (e["axis"], e["value"], e["baseline"], e["n"], e["wins"]) == ("aug", "on", "off", 4, 4)
    assert e["p"] == 0.0 and math.isclose(e["mean"], 0.05, abs_tol=1e-9)
    assert "| aug | on vs off | 4 | +0.050 ± 0.000 | 4 of 4 | 0.000 |" in markdown(s)
    # no difference at all is no evidence either way
    flat = results(0.0)
    assert math.isnan(flat["effects"][0]["p"]) and not flat["paired"]["separated"]
