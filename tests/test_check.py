"""python -m zoo check: the corpus scanned as configured, without training (and without Lightning)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from zoo.check import check

SR = 16000
ROOT = Path(__file__).resolve().parents[1]


def tone(seconds, freq, amp=0.3, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def hostile_corpus(root):
    """12 good clips (two labels, four speakers, 16 and 8 kHz, one stereo) plus a NaN file, a
    text file renamed .wav, a missing file, a silent and a clipped file, and a byte copy."""
    (root / "wav").mkdir(parents=True)
    rows = ["path,label,speaker"]
    for i in range(12):
        sr = 8000 if i == 5 else SR
        x = tone(1.0 + 0.25 * i, 200 + 40 * i, sr=sr)
        sf.write(root / "wav" / f"g{i}.wav", np.stack([x, x], 1) if i == 7 else x, sr, subtype="PCM_16")
        rows.append(f"wav/g{i}.wav,{'ab'[i % 2]},s{i % 4}")
    x = tone(1.0, 300)
    x[10] = np.nan
    sf.write(root / "wav" / "nan.wav", x, SR, subtype="FLOAT")
    (root / "wav" / "text.wav").write_text("not audio\n" * 50)
    sf.write(root / "wav" / "silent.wav", np.zeros(SR, np.float32), SR, subtype="PCM_16")
    sf.write(root / "wav" / "clipped.wav", np.clip(tone(1.0, 300, amp=4.0), -1, 1), SR, subtype="PCM_16")
    shutil.copy(root / "wav" / "g0.wav", root / "wav" / "copy.wav")
    rows += ["wav/nan.wav,a,s0", "wav/text.wav,b,s1", "wav/gone.wav,a,s2", "wav/silent.wav,b,s3",
             "wav/clipped.wav,a,s0", "wav/copy.wav,b,s1"]
    (root / "m.csv").write_text("\n".join(rows) + "\n")
    return root / "m.csv"


def data_config(path, manifest, **extra):
    cfg = {"data": {"class_path": "zoo.data.EmotionDataModule", "init_args": {
        "corpus": {"class_path": "zoo.data.corpora.Manifest", "init_args": {"path": str(manifest)}},
        "split": {"mode": "group", "group_by": "speaker", "val_fraction": 0.25, "test_fraction": 0.25},
        "max_seconds": 3.0, **extra}}}
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_check_names_every_bad_file_and_writes_an_exclude_list(tmp_path, capsys):
    m = hostile_corpus(tmp_path)
    cfg = data_config(tmp_path / "data.yaml", m)
    bad = tmp_path / "bad.txt"
    assert check([str(cfg)], workers=2, exclude_list=str(bad), progress=False) == 1
    out = capsys.readouterr().out
    assert "rows: 18 (18 read, 0 refused by the reader)" in out
    assert "audio: 18 files: 15 readable, 2 unreadable, 1 missing" in out
    assert f"{tmp_path / 'wav' / 'nan.wav'} ({m}, row 14): non-finite" in out or \
        f"{tmp_path / 'wav' / 'nan.wav'} ({m}, row 14): 1 non-finite" in out
    assert f"{tmp_path / 'wav' / 'text.wav'} ({m}, row 15): not a readable audio file" in out
    assert f"{tmp_path / 'wav' / 'gone.wav'} ({m}, row 16): audio file not found" in out
    assert "sample rates: 8000 Hz x 1, 16000 Hz x 14" in out and "channels: 1 x 14, 2 x 1" in out
    assert "silent files (peak < 0.0001): 1" in out and "clipped files" in out and "clipped.wav" in out
    assert "byte-identical audio: 1 group(s)" in out and "copy.wav" in out
    assert "  >= 60 s" in out and "clip(s) longer than max_seconds (3 s)" in out
    assert "leakage: " in out and "speakers" in out
    assert "cannot be trained on as configured" in out and "3 problem row(s) and on_error is raise" in out
    listed = [l.split("\t")[0] for l in bad.read_text().splitlines() if not l.startswith("#")]
    assert sorted(listed) == ["gone", "nan", "text"]
    # the data option exclude: reads the list: check passes, and so does the DataModule's setup
    cfg2 = data_config(tmp_path / "data2.yaml", m, exclude=str(bad))
    assert check([str(cfg2)], workers=1, progress=False) == 0
    assert "ok: 15 usable rows" in capsys.readouterr().out
    from zoo.data import EmotionDataModule
    from zoo.data.corpora import Manifest

    dm = EmotionDataModule(corpus=Manifest(path=str(m)), exclude=str(bad), cache_dir=None,
                           modalities=["audio"], split={"mode": "random", "val_fraction": 0.2, "test_fraction": 0.2})
    dm.setup("fit")
    assert len(dm.split("all")) == 15 and dm.report["dropped"] == {"excluded (exclude list)": 3}


def test_check_reports_annotator_agreement_and_reader_problems(tmp_path, capsys):
    from fixtures.aihub import write_aihub_fixture

    write_aihub_fixture(tmp_path / "aihub", missing=["5ed97a22c90a530ee56b5f6c"])
    cfg = tmp_path / "d.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"init_args": {
        "corpus": {"class_path": "zoo.data.corpora.AIHub", "init_args": {"root": str(tmp_path / "aihub")}},
        "on_error": "skip", "split": {"mode": "random", "val_fraction": 0.2, "test_fraction": 0.2}}}}))
    assert check([str(cfg)], workers=1, progress=False) == 0  # on_error: skip: trainable
    out = capsys.readouterr().out
    assert "annotators: " in out and "mean agreement" in out and "Fleiss' kappa" in out
    assert "5ed97a22c90a530ee56b5f6c (" in out and ".csv, row 9): no audio file for 5ed97a22c90a530ee56b5f6c" in out
    assert "problems: 1" in out and "ok: 12 usable rows" in out


def test_check_is_a_cli_command_without_lightning_or_tracebacks(tmp_path, run):
    r = run("check", "--config", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2 and "zoo: error: config" in r.stderr and "does not exist" in r.stderr
    assert "Traceback" not in r.stderr
    (tmp_path / "bad.yaml").write_text("data:\n  init_args:\n    corpus: {class_path: os.system, init_args: {}}\n")
    r = run("check", "--config", str(tmp_path / "bad.yaml"))
    assert r.returncode == 2 and "unknown corpus 'os.system'" in r.stderr  # looked up, never imported
    m = hostile_corpus(tmp_path / "c")
    cfg = data_config(tmp_path / "d.yaml", m, on_error="skip")
    code = ("import sys; from zoo.check import main\n"
            "try:\n    main(['--config', sys.argv[1], '--workers', '1', '--no-progress'])\n"
            "except SystemExit as e:\n    print('exit', e.code, 'lightning' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code, str(cfg)], capture_output=True, text=True, cwd=ROOT)
    assert p.stdout.strip().endswith("exit 0 False"), p.stdout[-2000:] + p.stderr[-2000:]


def test_check_takes_data_options_as_fit_does(tmp_path, run):
    m = hostile_corpus(tmp_path / "c")
    other = tmp_path / "c" / "other.csv"
    other.write_text("path,label,speaker\n" + "".join(f"wav/g{i}.wav,{'ab'[i % 2]},s{i % 4}\n" for i in range(12)))
    cfg = data_config(tmp_path / "d.yaml", m)
    r = run("check", "--config", str(cfg), "--workers", "1", "--no-progress", "--data.corpus.path", str(other),
            "--data.init_args.on_error=raise")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"corpus: manifest {other}" in r.stdout and "ok: 12 usable rows" in r.stdout
    # the whole corpus from options alone
    r = run("check", "--no-progress", "--workers", "1", "--data.corpus", "zoo.data.corpora.Manifest",
            "--data.corpus.path", str(other), "--data.split.mode", "random")
    assert r.returncode == 0 and "splits (random)" in r.stdout, r.stderr[-2000:]
    r = run("check", "--config", str(cfg), "--trainer.max_epochs", "3")
    assert r.returncode == 2 and "not --trainer.max_epochs" in r.stderr


@pytest.mark.parametrize("options,said", [
    (["--data.batch_size", "0"], "data.batch_size must be an integer > 0, got 0"),
    (["--data.max_seconds", "-1"], "data.max_seconds must be null or a number > 0, got -1"),
    (["--data.max_seconds", "0"], "data.max_seconds must be null or a number > 0, got 0"),
    (["--data.num_workers=-2"], "data.num_workers must be an integer >= 0, got -2"),
    (["--data.split.val_fraction", "1.2"], "split.val_fraction must be a number in [0, 1), got 1.2"),
    (["--data.split.num_folds", "1"], "split.num_folds must be an integer >= 2, got 1"),
])
def test_check_refuses_values_outside_their_range_before_reading_the_corpus(options, said, tmp_path, run,
                                                                             monkeypatch):
    m = hostile_corpus(tmp_path)
    cfg = data_config(tmp_path / "d.yaml", m)
    import zoo.check

    monkeypatch.setattr(zoo.check, "build_corpus", lambda spec: pytest.fail("the corpus was read"))
    r = run("check", "--config", str(cfg), "--no-progress", *options)
    assert r.returncode == 2 and said in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    # the same values in the config file
    key, value = options[0].split("=", 1) if "=" in options[0] else (options[0], options[1])
    keys = key[len("--data."):].split(".")
    extra = {keys[0]: yaml.safe_load(value)} if len(keys) == 1 else {keys[0]: {keys[1]: yaml.safe_load(value)}}
    if "split" in extra:
        extra["split"] = {"mode": "group", **extra["split"]}
    cfg2 = data_config(tmp_path / "d2.yaml", m, **extra)
    r = run("check", "--config", str(cfg2), "--no-progress")
    assert r.returncode == 2 and said in r.stderr, r.stderr[-2000:]


def test_check_names_a_config_that_is_not_text(tmp_path, run):
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(bytes(range(256)))
    r = run("check", "--config", str(bad))
    assert r.returncode == 2 and f"config {bad} is not a text file" in r.stderr and "Traceback" not in r.stderr


def test_a_path_outside_the_root_is_reported_once_not_nested(tmp_path, capsys):
    m = hostile_corpus(tmp_path / "c")
    (tmp_path / "outside.wav").write_bytes((tmp_path / "c" / "wav" / "g0.wav").read_bytes())
    m.write_text(m.read_text() + "../outside.wav,a,s1\n")
    cfg = data_config(tmp_path / "d.yaml", m, on_error="skip")
    assert check([str(cfg)], workers=1, progress=False) == 0
    out = capsys.readouterr().out
    [line] = [l for l in out.splitlines() if "outside the corpus root" in l]
    assert line.startswith(f"  {m}, row 20, column 'path': audio path '../outside.wav' lies outside")
    assert line.count("lies outside the corpus root") == 1 and line.endswith("to allow it)")


def test_a_manifest_naming_a_column_twice_is_refused(tmp_path, run):
    m = hostile_corpus(tmp_path)
    m.write_text(m.read_text().replace("path,label,speaker", "path,label,label,speaker", 1)
                 .replace(",s", ",x,s"))
    r = run("check", "--config", str(data_config(tmp_path / "d.yaml", m)), "--no-progress")
    assert r.returncode == 2
    assert f"{m}: the header names the column 'label' twice (columns 2 and 3" in r.stderr


def test_check_prints_the_split_fingerprint_the_datamodule_records(tmp_path, capsys):
    import re

    from zoo.data import EmotionDataModule
    from zoo.data.corpora import Manifest

    m = hostile_corpus(tmp_path)
    cfg = data_config(tmp_path / "d.yaml", m, on_error="skip")
    assert check([str(cfg)], workers=1, progress=False) == 0
    fp = re.search(r"splits \(group\), fingerprint ([0-9a-f]{12})", capsys.readouterr().out).group(1)
    dm = EmotionDataModule(corpus=Manifest(path=str(m)), cache_dir=None, modalities=["audio"], on_error="skip",
                           split={"mode": "group", "group_by": "speaker", "val_fraction": 0.25, "test_fraction": 0.25})
    dm.setup("fit")
    assert dm.report["split_fingerprint"] == dm.hparams["split_fingerprint"] == fp
