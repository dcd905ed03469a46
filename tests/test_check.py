"""python -m zoo check: the corpus scanned as configured, without training (and without Lightning)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
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
