"""Crash safety: a non-finite loss stops the run at once; checkpoints are written atomically;
SIGTERM checkpoints before exit; a run killed mid-epoch resumes to the same result."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from zoo.callbacks import FiniteLossCheck, TrainingDiverged
from zoo.data import EmotionDataModule
from zoo.data.corpora import Manifest
from zoo.models import AudioCNN

SR = 16000


def tiny_corpus(root, n=24, seconds=0.5, n_test=6, text=False):
    """Two classes told apart by pitch, four speakers; a manifest with a fixed split (4 val clips).
    ``text``: a transcript column whose words also tell the classes apart."""
    (root / "wav").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    words = {"a": ["happy bright sunny day", "joy and smiles"], "b": ["sad grey rain", "tears and loss"]}
    lines = ["path,label,text,speaker,split" if text else "path,label,speaker,split"]
    t = np.arange(int(seconds * SR)) / SR
    for i in range(n):
        lab = "ab"[i % 2]
        f = (180 if lab == "a" else 420) * (1 + 0.05 * rng.standard_normal())
        x = 0.3 * np.sin(2 * np.pi * f * t) + 0.02 * rng.standard_normal(t.size)
        sf.write(root / "wav" / f"u{i:02d}.wav", x.astype(np.float32), SR, subtype="PCM_16")
        split = "test" if i >= n - n_test else "val" if i >= n - n_test - 4 else "train"
        said = f"{words[lab][i % 4 // 2]} {i}," if text else ""
        lines.append(f"wav/u{i:02d}.wav,{lab},{said}s{i % 4},{split}")
    (root / "m.csv").write_text("\n".join(lines) + "\n")
    return root / "m.csv"


class NaNAfter(AudioCNN):
    """An AudioCNN whose loss turns NaN at optimiser step ``bad_step``."""

    bad_step = 2

    def loss(self, logits, batch):
        out = super().loss(logits, batch)
        return out * math.nan if self.global_step >= self.bad_step else out


def test_a_nan_loss_stops_the_run_at_that_step_naming_the_batch(tmp_path):
    import lightning as L

    m = tiny_corpus(tmp_path)
    dm = EmotionDataModule(corpus=Manifest(path=str(m)), cache_dir=None, batch_size=4, modalities=["audio"])
    model = NaNAfter(class_names=["a", "b"], channels=[4, 4, 4], hidden=8)
    seen = []

    class Ids(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(list(batch.ids))

    trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[FiniteLossCheck(), Ids()])
    with pytest.raises(TrainingDiverged) as e:
        trainer.fit(model, dm)
    msg = str(e.value)
    assert "the training loss is nan at step 2 (epoch 0, batch 2)" in msg
    assert trainer.global_step == 2 and len(seen) == 3
    assert all(u in msg for u in seen[-1])  # the ids of the batch that diverged
    assert all(torch.isfinite(p).all() for p in model.parameters())  # no NaN step was taken
    # disabled: the run goes on (and the NaN reaches the weights)
    model = NaNAfter(class_names=["a", "b"], channels=[4, 4, 4], hidden=8)
    L.Trainer(max_steps=4, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, callbacks=[FiniteLossCheck(enabled=False)]).fit(model, dm)
    assert not all(torch.isfinite(p).all() for p in model.parameters())


def test_the_cli_checks_the_loss_by_default(run, tmp_path):
    r = run("fit", "--config", "configs/demo.yaml", "--print_config")
    assert r.returncode == 0
    assert "finite_loss:\n  enabled: true" in r.stdout


# -- crash safety: subprocess runs of `python -m zoo fit` on the tiny corpus --------------------

KILLER = '''
import os, signal
import lightning as L


class KillAt(L.Callback):
    """Send the process a signal after optimiser step `step` (a pre-emption or a kill -9)."""

    def __init__(self, step: int, sig: str = "SIGKILL"):
        self.step, self.sig = step, sig

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), getattr(signal, self.sig))


class FullDiskAt(L.Callback):
    """From epoch `epoch` on the disk is full: every checkpoint write stops half-way with ENOSPC."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            import errno
            import zoo.checkpointing as zc

            def full(f, data):
                f.write(bytes(data[: len(data) // 2]))
                f.flush()
                raise OSError(errno.ENOSPC, "No space left on device")

            zc._write_bytes = full
'''


def fit_config(tmp_path, m, kill=None):
    import yaml

    cfg = {
        "seed_everything": 3, "test_after_fit": True,
        "data": {"class_path": "zoo.data.EmotionDataModule", "init_args": {
            "corpus": {"class_path": "zoo.data.corpora.Manifest", "init_args": {"path": str(m)}},
            "batch_size": 4, "max_seconds": 0.3, "cache_dir": None, "num_workers": 0}},
        "model": {"class_path": "zoo.models.AudioCNN", "init_args": {
            "channels": [4, 8, 8], "hidden": 8, "dropout": 0.3}},
        "trainer": {"max_epochs": 4, "deterministic": True, "accelerator": "cpu", "devices": 1,
                    "enable_progress_bar": False, "enable_model_summary": False,
                    "default_root_dir": str(tmp_path / "runs"),
                    "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                               "init_args": {"save_dir": str(tmp_path / "runs"), "name": "zoo"}}},
    }
    if kill:
        cfg["trainer"]["callbacks"] = [{"class_path": "killer.KillAt", "init_args": kill}]
    path = tmp_path / ("kill.yaml" if kill else "fit.yaml")
    path.write_text(yaml.safe_dump(cfg))
    return path


def zoo_fit(tmp_path, config, *extra):
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "killer.py").write_text(KILLER)
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(repo)]), "WANDB_MODE": "disabled"}
    return subprocess.Popen([sys.executable, "-m", "zoo", "fit", "--config", str(config), *extra],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_metrics(run_dir):
    import csv

    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    [test] = [r for r in rows if r.get("test/UA")]
    return {k: float(test[k]) for k in ("test/loss", "test/UA", "test/WA")}


test_metrics.__test__ = False  # a helper, not a test


def _ckpt_step(path):
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def test_sigkill_mid_epoch_and_ckpt_path_last_end_like_an_uninterrupted_run(tmp_path):
    """4 epochs of 4 steps; killed (SIGKILL) at step 6, mid-epoch 1; `--ckpt_path last` resumes
    from the end of epoch 0 in the same run folder: the same test metrics, to the last digit."""
    m = tiny_corpus(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    pa = zoo_fit(a, fit_config(a, m))
    pb = zoo_fit(b, fit_config(b, m, kill={"step": 6}))
    out_b = pb.communicate(timeout=300)[0]
    assert pb.returncode == -9, out_b[-3000:]
    run = b / "runs" / "zoo" / "version_0"
    assert _ckpt_step(run / "checkpoints" / "last.ckpt") == 4  # the end of epoch 0
    pc = zoo_fit(b, fit_config(b, m), "--ckpt_path", "last")
    out_c = pc.communicate(timeout=300)[0]
    out_a = pa.communicate(timeout=300)[0]
    assert pa.returncode == 0, out_a[-3000:]
    assert pc.returncode == 0, out_c[-3000:]
    assert f"resuming {run} from {run / 'checkpoints' / 'last.ckpt'}" in out_c
    assert not (b / "runs" / "zoo" / "version_1").exists()  # continued in its own folder
    assert _ckpt_step(run / "checkpoints" / "last.ckpt") == 16
    assert (run / "metrics.before-resume-1.csv").is_file()
    assert test_metrics(run) == test_metrics(a / "runs" / "zoo" / "version_0")


def test_sigterm_writes_a_checkpoint_and_the_next_run_resumes(tmp_path):
    m = tiny_corpus(tmp_path)
    p = zoo_fit(tmp_path, fit_config(tmp_path, m, kill={"step": 6, "sig": "SIGTERM"}))
    out = p.communicate(timeout=300)[0]
    assert p.returncode == 143, out[-3000:]
    run = tmp_path / "runs" / "zoo" / "version_0"
    assert "SIGTERM: checkpoint written to" in out and "stopped by SIGTERM" in out
    assert _ckpt_step(run / "checkpoints" / "sigterm.ckpt") == 6
    p = zoo_fit(tmp_path, fit_config(tmp_path, m), "--ckpt_path", "last")
    out = p.communicate(timeout=300)[0]
    assert p.returncode == 0, out[-3000:]
    assert f"from {run / 'checkpoints' / 'sigterm.ckpt'}" in out
    assert _ckpt_step(run / "checkpoints" / "last.ckpt") == 16  # the run went on from step 6 to its end
    assert "test/UA" in open(run / "metrics.csv").read()
    import zoo  # a checkpoint with the resume state still loads with weights_only

    assert zoo.load(str(run / "checkpoints" / "last.ckpt")).class_names == ["a", "b"]


INTERRUPTED_SAVE = '''
import os, signal, sys
import torch
import zoo.checkpointing as zc

path = sys.argv[1]
io = zc.AtomicCheckpointIO()
io.save_checkpoint({"state_dict": {"w": torch.zeros(1000)}, "global_step": 1}, path)


def half_then_die(f, data):
    f.write(bytes(data[: len(data) // 2]))
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of writing the checkpoint


zc._write_bytes = half_then_die
io.save_checkpoint({"state_dict": {"w": torch.ones(1000)}, "global_step": 2}, path)
'''


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_file_whole(tmp_path):
    import subprocess
    import sys

    (tmp_path / "save.py").write_text(INTERRUPTED_SAVE)
    path = tmp_path / "checkpoints" / "last.ckpt"
    r = subprocess.run([sys.executable, str(tmp_path / "save.py"), str(path)], capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1])})
    assert r.returncode == -9, r.stderr.decode()[-2000:]
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # whole, and the old one
    assert ckpt["global_step"] == 1 and float(ckpt["state_dict"]["w"].sum()) == 0.0
    tmp = path.with_name("last.ckpt.tmp")
    assert tmp.is_file() and tmp.stat().st_size < path.stat().st_size  # the torn write went there


def test_each_epoch_draws_a_new_batch_order(tmp_path):
    """Lightning sets the epoch on the length-bucketing sampler (before, every epoch repeated
    epoch 0's batches in the same order)."""
    import lightning as L

    dm = EmotionDataModule(corpus=Manifest(path=str(tiny_corpus(tmp_path))), cache_dir=None, batch_size=4,
                           modalities=["audio"])
    model = AudioCNN(class_names=["a", "b"], channels=[4, 4, 4], hidden=8)
    orders: dict[int, list] = {}

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            orders.setdefault(trainer.current_epoch, []).append(tuple(batch.ids))

    L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, callbacks=[Record()]).fit(model, dm)
    assert len(orders) == 3 and len({tuple(o) for o in orders.values()}) == 3
    assert all(sorted(i for b in o for i in b) == sorted(i for b in orders[0] for i in b) for o in orders.values())


# -- bad values: refused when the config is read, before any run folder --------------------------

from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SYNTH = ["--config", str(REPO / "configs" / "data" / "synthetic.yaml"),
         "--config", str(REPO / "configs" / "model" / "audio_cnn.yaml")]

# (options, the sentence the error must hold); each one a value outside its range
BAD_VALUES = [
    (["--data.batch_size", "0"], "data.init_args.batch_size must be an integer > 0, got 0 (on the command line)"),
    (["--data.batch_size", "-3"], "data.init_args.batch_size must be an integer > 0, got -3"),
    (["--data.eval_batch_size", "0"], "data.init_args.eval_batch_size must be an integer > 0 (or null), got 0"),
    (["--data.max_seconds", "-1"], "data.init_args.max_seconds must be a number > 0 (or null), got -1"),
    (["--data.max_seconds", "0"], "data.init_args.max_seconds must be a number > 0 (or null), got 0"),
    (["--data.min_seconds", "-0.5"], "data.init_args.min_seconds must be a number >= 0, got -0.5"),
    (["--data.num_workers", "-1"], "data.init_args.num_workers must be an integer >= 0, got -1"),
    (["--data.sample_rate", "0"], "data.init_args.sample_rate must be an integer > 0, got 0"),
    (["--data.min_agreement", "1.5"], "data.init_args.min_agreement must be a number in [0, 1], got 1.5"),
    (["--data.seed", "-1"], "data.init_args.seed must be an integer in [0, 4294967295], got -1"),
    (["--data.split.val_fraction", "1"], "data.init_args.split.val_fraction must be a number in [0, 1), got 1"),
    (["--data.split.num_folds", "1"], "data.init_args.split.num_folds must be an integer >= 2, got 1"),
    (["--data.split.fold", "-1"], "data.init_args.split.fold must be an integer >= 0, got -1"),
    (["--model.init_args.dropout", "2"], "model.init_args.dropout must be a number in [0, 1), got 2"),
    (["--model.init_args.hidden", "0"], "model.init_args.hidden must be an integer > 0, got 0"),
    (["--model.init_args.channels", "[4, 0]"], "model.init_args.channels must be an integer > 0, got 0"),
    (["--model.init_args.label_smoothing", "1"], "model.init_args.label_smoothing must be a number in [0, 1)"),
    (["--model.init_args.mixup_alpha", "-0.2"], "model.init_args.mixup_alpha must be a number >= 0, got -0.2"),
    (["--model.init_args.optimizer.init_args.lr", "-1"],
     "model.init_args.optimizer.init_args.lr must be a number > 0, got -1.0"),
    (["--model.init_args.optimizer.init_args.weight_decay", "-0.1"],
     "model.init_args.optimizer.init_args.weight_decay must be a number >= 0"),
    (["--trainer.max_epochs", "-5"], "trainer.max_epochs must be an integer >= -1, got -5"),
    (["--trainer.accumulate_grad_batches", "0"], "trainer.accumulate_grad_batches must be an integer > 0"),
    (["--trainer.limit_train_batches", "1.5"],
     "trainer.limit_train_batches must be an integer >= 0 or a number in [0, 1], got 1.5"),
    (["--trainer.gradient_clip_val", "-1"], "trainer.gradient_clip_val must be a number >= 0"),
    (["--trainer.log_every_n_steps", "0"], "trainer.log_every_n_steps must be an integer > 0"),
    (["--seed_everything", "-3"], "seed_everything must be an integer in [0, 4294967295]"),
    (["--early_stopping.patience", "-1"], "early_stopping.patience must be an integer >= 0, got -1"),
    (["--checkpoint.save_top_k", "-2"], "checkpoint.save_top_k must be an integer >= -1, got -2"),
    (["--last_checkpoint.every_n_epochs", "-1"], "last_checkpoint.every_n_epochs must be an integer >= 0, got -1"),
    (["--trainer.devices", "0"], "trainer.devices must be an integer >= -1 and != 0, got 0"),
    (["--trainer.reload_dataloaders_every_n_epochs", "-1"],
     "trainer.reload_dataloaders_every_n_epochs must be an integer >= 0, got -1"),
    (["--data.corpus.size", "0"], "data.init_args.corpus.init_args.size must be an integer > 0, got 0"),
    (["--data.corpus.voice", "1.5"], "data.init_args.corpus.init_args.voice must be a number in [0, 1], got 1.5"),
    (["--data.corpus.conversation_gap", "-5"],
     "data.init_args.corpus.init_args.conversation_gap must be a number >= 0, got -5"),
]


@pytest.mark.parametrize("options,said", BAD_VALUES, ids=[" ".join(o) for o, _ in BAD_VALUES])
def test_a_value_outside_its_range_is_one_paragraph_before_any_run_folder(options, said, run, tmp_path):
    r = run("fit", *SYNTH, *options, cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "zoo: error: python -m zoo fit: " + said in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 3
    assert not (tmp_path / "runs").exists()  # nothing made before the error


@pytest.mark.parametrize("command", ["validate", "test", "predict"])
def test_evaluation_commands_check_the_same_ranges(command, run, tmp_path):
    r = run(command, *SYNTH, "--data.batch_size", "0", "--ckpt_path", str(tmp_path / "x.ckpt"), cwd=tmp_path)
    assert r.returncode == 2 and "data.init_args.batch_size must be an integer > 0, got 0" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_a_bad_value_in_a_config_file_names_the_file(run, tmp_path):
    (tmp_path / "t.yaml").write_text("trainer:\n  max_epochs: -4\ndata:\n  init_args:\n    max_seconds: -1\n")
    r = run("fit", *SYNTH, "--config", str(tmp_path / "t.yaml"), cwd=tmp_path)
    assert r.returncode == 2
    assert f"data.init_args.max_seconds must be a number > 0 (or null), got -1 (in {tmp_path / 't.yaml'})" in r.stderr


@pytest.mark.parametrize("content,said", [
    (bytes(range(256)) * 4, "is not a text file (byte 128 is not UTF-8)"),
    (b"data:\n  init_args: [unclosed\n  x: 1\n", "is not valid YAML at line 3, column 4"),
    (b"just a string\n", "holds a str, not a mapping of options"),
], ids=["binary", "not_yaml", "not_a_mapping"])
def test_a_config_that_is_not_text_or_not_yaml_names_the_file(content, said, run, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content)
    r = run("fit", *SYNTH, "--config", str(bad), cwd=tmp_path)
    assert r.returncode == 2 and f"--config {bad} {said}" in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr


def _numeric(t) -> bool:
    import typing

    if typing.get_origin(t) is not None:
        return any(_numeric(a) for a in typing.get_args(t))
    return t in (int, float)


def ranged_options():
    """(owner, option) -> type for every numeric option with a checked range, and the numeric
    options left without one. Enumerated from the signatures: the DataModule, the split, every
    model, every registered corpus; and Lightning's Trainer, the two callbacks and AdamW (the
    optimizer of every shipped config), whose ranges zoo.ranges keeps in tables."""
    import typing

    import torch
    from lightning.pytorch import Trainer
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    import zoo.models
    from zoo import ranges
    from zoo.data.corpora.base import registry
    from zoo.data.splits import SplitOptions

    ranged, plain = {}, {}
    owners = ([EmotionDataModule, SplitOptions] + [getattr(zoo.models, n) for n in zoo.models.__all__]
              + list(registry().values()))
    assert len(registry()) >= 12  # every corpus (a broken registry would make this test vacuous)
    for cls in owners:
        for klass in cls.__mro__:
            if klass.__module__.split(".")[0] != "zoo" or ("__init__" not in vars(klass) and klass is not SplitOptions):
                continue
            hints = typing.get_type_hints(klass if klass is SplitOptions else klass.__init__)
            for name, t in hints.items():
                key = (klass.__name__, name)
                if ranges.is_ranged(t):
                    ranged[key] = t
                elif _numeric(t) and name != "return":
                    plain[key] = t
    foreign = [(Trainer, "Trainer", ranges.TRAINER_OPTIONS), (torch.optim.AdamW, "optimizer", ranges.OPTIMIZER_OPTIONS),
               *((cls, group, ranges.CALLBACK_OPTIONS[group]) for cls, group in (
                   (EarlyStopping, "early_stopping"), (ModelCheckpoint, "checkpoint"), (ModelCheckpoint, "last_checkpoint")))]
    for cls, owner, table in foreign:
        hints = {n: t for n, t in typing.get_type_hints(cls.__init__).items() if n != "return"}
        if cls is not torch.optim.AdamW:  # the optimizer table also holds SGD's momentum
            assert not set(table) - set(hints), f"zoo.ranges names options {cls.__name__} does not have"
        for name, t in hints.items():
            if name not in table and _numeric(t) and (cls.__name__, name) not in ranges.UNRANGED_OPTIONS:
                plain[(cls.__name__, name)] = t
        ranged.update({(owner, k): t for k, t in table.items()})
    ranged[("CLI", "seed_everything")] = ranges.Seed
    return ranged, plain


# numeric options of the zoo's own classes still without a range: each with its reason (the
# Trainer's and the callbacks' are in zoo.ranges.UNRANGED_OPTIONS)
UNRANGED: set[tuple[str, str]] = set()


def test_every_numeric_option_has_a_range_and_the_docs_count_them():
    ranged, plain = ranged_options()
    assert not set(plain) - UNRANGED, f"numeric options without a range (zoo.ranges): {sorted(set(plain) - UNRANGED)}"
    assert not UNRANGED - set(plain), f"ranged now, so remove from UNRANGED: {sorted(UNRANGED - set(plain))}"
    # the enumeration reaches the corpora, the Trainer and the callbacks
    assert {("Synthetic", "size"), ("IEMOCAP", "sessions"), ("Trainer", "devices"),
            ("last_checkpoint", "every_n_epochs")} <= set(ranged)
    doc = (REPO / "docs" / "reliability.md").read_text(encoding="utf-8")
    import re

    m = re.search(r"(\d+) options have a checked range", doc)
    assert m and int(m.group(1)) == len(ranged), f"docs/reliability.md should say {len(ranged)} options"
    missing = [f"{o}.{n}" for o, n in ranged if f"`{n}`" not in doc and f"`{o}.{n}`" not in doc]
    assert not missing, f"not listed in docs/reliability.md: {missing}"
    from zoo.ranges import UNRANGED_OPTIONS

    for (cls, name), why in UNRANGED_OPTIONS.items():
        assert f"`{name}`" in doc, f"docs/reliability.md should say why {cls}.{name} has no range ({why})"


def _cases(module) -> int:
    """The test cases pytest collects from ``module``: each test function, times its parametrizations."""
    n = 0
    for name, f in vars(module).items():
        if name.startswith("test_") and callable(f):
            k = 1
            for mark in getattr(f, "pytestmark", []):
                if mark.name == "parametrize":
                    k *= len(mark.args[1])
            n += k
    return n


def _params(module, test: str) -> int:
    (mark,) = [m for m in getattr(getattr(module, test), "pytestmark", []) if m.name == "parametrize"]
    return len(mark.args[1])


def test_the_suite_in_numbers_is_counted_from_the_tests():
    """docs/reliability.md's "suite in numbers" table holds what the tests hold."""
    import importlib
    import re
    import sys

    this = sys.modules[__name__]
    hostile, check = importlib.import_module("test_hostile_inputs"), importlib.import_module("test_check")
    want = [_cases(hostile), _params(this, "test_a_config_that_is_not_text_or_not_yaml_names_the_file"),
            len(BAD_VALUES), _params(check, "test_check_refuses_values_outside_their_range_before_reading_the_corpus"),
            len(ranged_options()[0])]
    doc = (REPO / "docs" / "reliability.md").read_text(encoding="utf-8")
    table = doc.split("**The suite in numbers**", 1)[1].split("\n\n", 2)[1]
    got = [int(m) for m in re.findall(r"\| (\d+) \|$", table, re.M)]
    assert got == want, f"docs/reliability.md's suite in numbers should read {want}"
    assert sum(want[:2]) >= 40  # the goal: 40+ hostile inputs


def test_zoo_check_checks_the_corpus_ranges_before_reading_it(run, tmp_path):
    """check builds the corpus without jsonargparse: the corpus's signature ranges are checked there."""
    r = run("check", "--config", str(REPO / "configs" / "data" / "synthetic.yaml"), "--no-progress",
            "--data.corpus.size", "0", "--data.corpus.corpus_seed", "-1", cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    assert ("data.corpus.size must be an integer > 0, got 0; data.corpus.corpus_seed must be an integer in "
            "[0, 4294967295], got -1") in r.stderr and "Traceback" not in r.stderr
    cfg = tmp_path / "iemocap.yaml"
    cfg.write_text(f"data:\n  corpus:\n    class_path: zoo.data.corpora.IEMOCAP\n    init_args:\n"
                   f"      root: {tmp_path}\n      sessions: [1, 6]\n")
    r = run("check", "--config", str(cfg), "--no-progress", cwd=tmp_path)
    assert r.returncode == 2 and "data.corpus.sessions must be null or a list of integers in [1, 5], got [1, 6]" in r.stderr


def test_zoo_check_reads_the_datamodule_ranges():
    """check does not import Lightning, so zoo.ranges repeats the DataModule's ranges for it."""
    import inspect
    import typing

    from zoo import ranges

    hints = typing.get_type_hints(EmotionDataModule.__init__)
    ranged = {n for n, t in hints.items() if ranges.is_ranged(t)}
    assert ranged == set(ranges.DATA_OPTIONS)
    assert all(hints[n] == ranges.DATA_OPTIONS[n] for n in ranged)
    assert inspect.signature(EmotionDataModule).parameters["batch_size"].default == 16


def test_typed_values_are_stored_as_plain_numbers():
    """jsonargparse hands int / float subclasses; what a checkpoint stores must load with weights_only."""
    from zoo.data.splits import SplitOptions
    from zoo.ranges import Fraction, PositiveInt

    so = SplitOptions(val_fraction=Fraction(0.2), num_folds=PositiveInt(5))
    assert type(so.val_fraction) is float and type(so.num_folds) is int
    with pytest.raises(Exception, match="split.val_fraction must be a number in \\[0, 1\\), got 1.0"):
        SplitOptions(val_fraction=1.0)


def test_a_fusion_branch_built_from_the_cli_records_plain_numbers():
    """The CLI's range types never reach a checkpoint: a branch's options and the linked sample
    rate are stored as builtin numbers, so the hyper-parameters load with weights_only."""
    import io

    from zoo.cli import build_cli

    cli = build_cli(["--config", str(REPO / "configs/data/synthetic.yaml"), "--config",
                     str(REPO / "configs/model/late_fusion.yaml"), "--config",
                     str(REPO / "configs/model/tiny/late_fusion.yaml"), "--data.corpus.size", "48",
                     "--model.init_args.audio_branch.init_args.hidden", "24"], run=False)
    branch = cli.model.hparams["audio_branch"]["init_args"]
    assert branch["hidden"] == 24 and type(branch["hidden"]) is int and type(branch["dropout"]) is float
    assert type(cli.model.hparams["sample_rate"]) is int
    buf = io.BytesIO()
    torch.save({"model": dict(cli.model.hparams), "data": dict(cli.datamodule.hparams)}, buf)
    buf.seek(0)
    assert torch.load(buf, weights_only=True)["model"]["audio_branch"]["init_args"]["hidden"] == 24


# -- a disk that fills up ---------------------------------------------------------------------------

def test_a_full_disk_is_one_paragraph_leaves_no_tmp_and_the_run_resumes(tmp_path):
    import yaml

    m = tiny_corpus(tmp_path)
    cfg = yaml.safe_load(fit_config(tmp_path, m).read_text())
    cfg["trainer"]["callbacks"] = [{"class_path": "killer.FullDiskAt", "init_args": {"epoch": 2}}]
    (tmp_path / "full.yaml").write_text(yaml.safe_dump(cfg))
    p = zoo_fit(tmp_path, tmp_path / "full.yaml")
    out = p.communicate(timeout=300)[0]
    run = tmp_path / "runs" / "zoo" / "version_0"
    assert p.returncode == 2, out[-3000:]
    assert "Traceback" not in out
    [line] = [l for l in out.splitlines() if l.startswith("zoo: error:")]
    assert f"the disk holding {run / 'checkpoints'} is full (No space left on device; " in line
    assert " MB free, and it needs " in line and "resume with --ckpt_path last" in line
    assert not list(tmp_path.rglob("*.tmp"))  # no torn temporary file left on the full disk
    assert _ckpt_step(run / "checkpoints" / "last.ckpt") == 8  # the end of epoch 1, whole
    # the run records which utterances it tests (the split's fingerprint), as zoo check prints it
    from zoo.data.splits import split_fingerprint

    hp = yaml.safe_load((run / "hparams.yaml").read_text())
    assert hp["split_fingerprint"] == split_fingerprint(["u18", "u19", "u20", "u21", "u22", "u23"])
    # space freed: the run goes on from its last checkpoint, in its own folder
    p = zoo_fit(tmp_path, fit_config(tmp_path, m), "--ckpt_path", "last")
    out = p.communicate(timeout=300)[0]
    assert p.returncode == 0, out[-3000:]
    assert f"resuming {run} from {run / 'checkpoints' / 'last.ckpt'}" in out
    assert _ckpt_step(run / "checkpoints" / "last.ckpt") == 16


def _full_disk_save(calls):
    """np.save that writes half the array, then finds the disk full."""
    import errno

    def save(f, arr, *a, **k):
        calls.append(getattr(f, "name", f))
        f.write(b"\x93NUMPY" + bytes(16))
        raise OSError(errno.ENOSPC, "No space left on device")
    return save


def test_a_full_audio_cache_disk_skips_caching_with_one_warning(tmp_path, monkeypatch, caplog):
    import logging

    import zoo.data.audio as za
    from zoo.data.audio import AudioLoader

    m = tiny_corpus(tmp_path, n=4)
    wavs = sorted((tmp_path / "wav").glob("*.wav"))
    want = [AudioLoader(SR, None)(str(w)) for w in wavs]
    calls = []
    monkeypatch.setattr(np, "save", _full_disk_save(calls))
    monkeypatch.setattr(za, "_warned_cache", [False])
    cache = tmp_path / "cache"
    with caplog.at_level(logging.WARNING, "zoo"):
        for _ in range(2):
            loader = AudioLoader(SR, cache)
            got = [loader(str(w)) for w in wavs]
            assert all(np.allclose(g, w, atol=1 / 32767) for g, w in zip(got, want))  # the clips are used
    assert len(calls) == 2  # one failed write per loader, then no more tries
    warnings = [r.getMessage() for r in caplog.records if "audio cache" in r.getMessage()]
    assert len(warnings) == 1 and "No space left on device" in warnings[0] and "MB free" in warnings[0]
    assert not list(cache.iterdir())  # no entry, whole or torn, and no .tmp
    monkeypatch.undo()  # space again: entries are written and read back
    loader = AudioLoader(SR, cache)
    assert np.array_equal(loader(str(wavs[0])), loader(str(wavs[0]))) and len(list(cache.glob("*.npy"))) == 1
    assert m.exists()


def test_a_full_embedding_cache_disk_skips_caching_with_one_warning(tmp_path, monkeypatch, caplog):
    import logging

    import zoo.nn.cache as zc

    calls = []
    monkeypatch.setattr(zc, "_WARNED", [False])
    cache = zc.EmbeddingCache(tmp_path / "emb", "encoder")
    monkeypatch.setattr(np, "save", _full_disk_save(calls))
    with caplog.at_level(logging.WARNING, "zoo"):
        for i in range(3):
            v = torch.full((2, 4), float(i))
            cache.put(cache.sample_key(v), v)
    assert len(calls) == 1 and not cache.writes
    warnings = [r.getMessage() for r in caplog.records if "embedding cache" in r.getMessage()]
    assert len(warnings) == 1 and "No space left on device" in warnings[0]
    assert not [p for p in (tmp_path / "emb").rglob("*") if p.is_file()]  # nothing torn, no .tmp
    assert cache.get(cache.sample_key(torch.zeros(2, 4))) is None


def test_any_file_a_run_cannot_write_on_a_full_disk_is_named_with_its_folder(tmp_path):
    """metrics.csv, config.yaml, a plot: an ENOSPC from any writer becomes the same paragraph."""
    import errno

    from zoo.checkpointing import DiskFull, disk_full_error

    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "metrics.csv"))
        except OSError as inner:
            raise RuntimeError("logger failed") from inner
    except RuntimeError as e:
        found = disk_full_error(e)
    assert isinstance(found, DiskFull)
    assert f"cannot write the metrics.csv: the disk holding {tmp_path / 'run'} is full" in str(found)
    assert "MB free" in str(found)
    assert disk_full_error(OSError(errno.EACCES, "Permission denied")) is None


def test_a_model_loaded_from_a_checkpoint_holds_plain_numbers():
    """load_from_checkpoint parses a CLI-written checkpoint's hyper-parameters again with
    jsonargparse; what it hands the model (and a fusion model records of it) stays builtin."""
    import zoo

    import torch as _torch

    from zoo.inference.registry import DEFAULT_REGISTRY, Registry

    path = Registry.load(DEFAULT_REGISTRY).get("audio-cnn-synth").local_path
    ckpt = _torch.load(path, map_location="cpu", weights_only=True)
    ckpt["hyper_parameters"]["_instantiator"] = "lightning.pytorch.cli.instantiate_module"  # as a CLI fit writes
    _torch.save(ckpt, REPO_TMP := Path(__import__("tempfile").mkdtemp()) / "cli.ckpt")
    hp = zoo.load(str(REPO_TMP), device="cpu").module.hparams
    assert type(hp["hidden"]) is int and type(hp["dropout"]) is float and type(hp["label_smoothing"]) is float


# -- where the run folder goes ------------------------------------------------------------------------

def test_default_root_dir_on_the_command_line_wins_over_a_config_save_dir(tmp_path, run):
    """The rule (docs/reliability.md): --trainer.default_root_dir on the command line beats a
    logger save_dir from a config file; a save_dir on the command line beats both."""
    import yaml

    m = tiny_corpus(tmp_path, n=16, n_test=4)
    cfg = yaml.safe_load(fit_config(tmp_path, m).read_text())
    cfg["trainer"].pop("default_root_dir")
    cfg["trainer"]["logger"]["init_args"]["save_dir"] = str(tmp_path / "from_config")
    cfg["trainer"].update(max_epochs=1, limit_train_batches=1, limit_val_batches=1)
    cfg["test_after_fit"] = False
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = run("fit", "--config", str(tmp_path / "c.yaml"), "--trainer.default_root_dir", str(tmp_path / "cli"),
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "cli" / "zoo" / "version_0" / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "from_config").exists()
    # the config's save_dir holds when the command line names no folder ...
    r = run("fit", "--config", str(tmp_path / "c.yaml"), cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "from_config" / "zoo" / "version_0" / "config.yaml").is_file()
    # ... and a save_dir on the command line is the most specific of all
    r = run("fit", "--config", str(tmp_path / "c.yaml"), "--trainer.default_root_dir", str(tmp_path / "cli"),
            "--trainer.logger.init_args.save_dir", str(tmp_path / "explicit"), cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "explicit" / "zoo" / "version_0" / "config.yaml").is_file()
