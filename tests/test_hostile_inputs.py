"""Hostile inputs: every one is named (file, CSV row and column) at setup or skipped and counted,
and none ends an epoch. One small manifest corpus per test (3 s clips of seeded noise)."""
from __future__ import annotations

import logging
import os
import re
import unicodedata

import numpy as np
import pytest
import soundfile as sf
import torch

from zoo.data import EmotionDataModule
from zoo.data.audio import AudioLoader, audio_info
from zoo.data.corpora import Manifest
from zoo.data.corpora.manifest import load_manifest
from zoo.errors import CorpusError, ProblemLog

SR = 16000


def tone(seconds=3.0, sr=SR, freq=440.0, amp=0.3):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def good_corpus(root, n=8, rows=()):
    """n good 1 s clips (two labels, two speakers) + extra rows (path, label[, text]); the manifest."""
    (root / "wav").mkdir(parents=True, exist_ok=True)
    lines = ["path,label,speaker,text"]
    for i in range(n):
        sf.write(root / "wav" / f"g{i}.wav", tone(1.0, freq=200 + 50 * i), SR, subtype="PCM_16")
        lines.append(f"wav/g{i}.wav,{'ab'[i % 2]},s{i % 2},문장 {i}")
    for r in rows:
        lines.append(",".join(r) + ("" if len(r) == 4 else "," * (4 - len(r))))
    m = root / "m.csv"
    m.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return m


def dm(m, cache_dir, **kw):
    kw.setdefault("modalities", ["audio"])
    kw.setdefault("split", {"mode": "random", "val_fraction": 0.25, "test_fraction": 0.25})
    return EmotionDataModule(corpus=Manifest(path=str(m)), cache_dir=str(cache_dir), batch_size=4, **kw)


def _zero_bytes(p):
    p.write_bytes(b"")


def _header_only(p):
    sf.write(p, np.zeros(0, np.float32), SR, subtype="PCM_16")


def _truncated(p):  # a 3 s file cut after 28 frames (a copy killed mid-transfer)
    sf.write(p, tone(3.0), SR, subtype="PCM_16")
    p.write_bytes(p.read_bytes()[: 44 + 56])


def _text(p):
    p.write_text("this is a text file, renamed\n" * 20)


def _nan(p):
    x = tone(1.0)
    x[100:200] = np.nan
    sf.write(p, x, SR, subtype="FLOAT")


def _inf(p):
    x = tone(1.0)
    x[5000] = np.inf
    sf.write(p, x, SR, subtype="FLOAT")


def _short(p):  # a complete file of 10 ms: under min_seconds (0.02 s by default)
    sf.write(p, tone(0.01), SR, subtype="PCM_16")


BAD = {"zero_bytes": (_zero_bytes, "empty file (0 bytes)"),
       "header_only": (_header_only, "zero-length audio"),
       "truncated": (_truncated, "truncated: the header declares 3.000 s"),
       "text_as_wav": (_text, "not a readable audio file"),
       "nan": (_nan, "100 non-finite sample(s)"),
       "inf": (_inf, "1 non-finite sample(s)"),
       "too_short": (_short, "shorter than min_seconds")}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_audio_is_named_with_its_row_or_skipped_and_counted(kind, tmp_path, cache_dir):
    make, reason = BAD[kind]
    make(tmp_path / "bad.wav")
    m = good_corpus(tmp_path, rows=[("bad.wav", "a", "s0", "x")])
    with pytest.raises(CorpusError) as e:
        dm(m, cache_dir).setup("fit")
    assert f"{tmp_path / 'bad.wav'}, row 10: " in str(e.value) and reason in str(e.value)
    d = dm(m, cache_dir, on_error="skip")
    d.setup("fit")
    assert len(d.split("all")) == 8 and sum(d.report["dropped"].values()) == 1
    assert all(b is not None and torch.isfinite(b.waveforms).all() for b in d.train_dataloader())


def test_nan_samples_never_reach_the_cache_or_a_batch(tmp_path, cache_dir, caplog):
    """A file that turns NaN after setup (rewritten by another process) is skipped, not cached
    as garbage int16."""
    m = good_corpus(tmp_path)
    d = dm(m, cache_dir, bucketing=False, split={"mode": "random", "val_fraction": 0.0, "test_fraction": 0.25})
    d.setup("fit")
    victim = d.split("train")[0]
    _nan(tmp_path / "tmp.wav")
    os.replace(tmp_path / "tmp.wav", victim.audio)
    with pytest.raises(ValueError, match="non-finite"):
        AudioLoader(SR, cache_dir)(victim.audio)
    assert not list(cache_dir.glob("*.npy"))
    with caplog.at_level(logging.WARNING, "zoo"):
        ids = [i for b in d.train_dataloader() for i in b.ids]
    assert victim.id not in ids and len(ids) == len(d.split("train")) - 1
    assert f"skipping {victim.id}" in caplog.text and "non-finite" in caplog.text


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_24", "PCM_32", "FLOAT"])
def test_sample_formats_load_to_the_same_signal(subtype, tmp_path):
    x = tone(0.5)
    sf.write(tmp_path / "x.wav", x, SR, subtype=subtype)
    y = AudioLoader(SR)(str(tmp_path / "x.wav"))
    tol = 0.02 if subtype == "PCM_U8" else 1e-4  # 8 bits: a step of 1/128
    assert y.shape == x.shape and np.abs(y - x).max() < tol


@pytest.mark.parametrize("channels", [2, 6])
def test_multichannel_is_downmixed(channels, tmp_path):
    x = tone(0.5)
    gains = np.linspace(1.0, 0.0, channels, dtype=np.float32)  # the channels differ
    sf.write(tmp_path / "x.wav", x[:, None] * gains[None, :], SR, subtype="FLOAT")
    assert audio_info(str(tmp_path / "x.wav"))[1] == channels
    y = AudioLoader(SR)(str(tmp_path / "x.wav"))
    np.testing.assert_allclose(y, x * gains.mean(), atol=1e-5)


@pytest.mark.parametrize("rate", [8000, 96000])
def test_other_rates_are_resampled(rate, tmp_path):
    sf.write(tmp_path / "x.wav", tone(0.5, sr=rate), rate, subtype="PCM_16")
    y = AudioLoader(SR)(str(tmp_path / "x.wav"))
    ref = tone(0.5)
    assert y.shape == ref.shape
    mid = slice(800, -800)  # the resampling filter's edges aside
    assert np.abs(y[mid] - ref[mid]).max() < 0.01


def test_a_ten_minute_file_is_cropped_never_batched_whole(tmp_path, cache_dir):
    long = tmp_path / "long.wav"
    sf.write(long, np.tile(tone(1.0), 600), SR, subtype="PCM_16")  # 10 minutes
    m = good_corpus(tmp_path, rows=[("long.wav", "a", "s0", "x")])
    d = dm(m, cache_dir, max_seconds=3.0, split={"mode": "random", "val_fraction": 0.0, "test_fraction": 0.1})
    d.setup("fit")
    assert d.report["cropped"] == 1
    assert "long" in {u.id for u in d.split("train")}
    longest = max(b.waveforms.shape[1] for b in d.train_dataloader())
    assert longest == 3 * SR  # the long clip was in some batch, cropped to max_seconds


def test_silence_and_clipping_train_to_finite_outputs(tmp_path, cache_dir):
    """Pure silence and a clipped file are kept (they are audio; `zoo check` counts them) and give
    finite features and logits."""
    from zoo.models import AudioCNN

    sf.write(tmp_path / "silent.wav", np.zeros(SR, np.float32), SR, subtype="PCM_16")
    sf.write(tmp_path / "clipped.wav", np.clip(tone(1.0, amp=5.0), -1, 1), SR, subtype="PCM_16")
    m = good_corpus(tmp_path, rows=[("silent.wav", "a", "s0", "x"), ("clipped.wav", "b", "s1", "y")])
    d = dm(m, cache_dir, split={"mode": "random", "val_fraction": 0.0, "test_fraction": 0.1})
    d.setup("fit")
    model = AudioCNN(class_names=d.class_names, channels=[4, 4, 4], hidden=8)
    seen = set()
    for b in d.train_dataloader():
        seen |= set(b.ids)
        assert torch.isfinite(model(b)).all()
    assert {"silent", "clipped"} <= seen


def test_cp949_csv_with_one_utf8_row(tmp_path, caplog):
    rows = ["path,label,text", "a.wav,화남,정말 화가 나", "b.wav,슬픔,너무 슬퍼", "c.wav,기쁨,아주 기뻐"]
    data = b"\n".join(r.encode("utf-8" if i == 2 else "cp949") for i, r in enumerate(rows)) + b"\n"
    (tmp_path / "m.csv").write_bytes(data)
    with caplog.at_level(logging.WARNING, "zoo"):
        utts = load_manifest(tmp_path / "m.csv", problems=ProblemLog())
    assert [(u.label, u.text) for u in utts] == [("화남", "정말 화가 나"), ("슬픔", "너무 슬퍼"), ("기쁨", "아주 기뻐")]
    assert "line(s) 3 are UTF-8" in caplog.text


def test_a_line_in_no_known_encoding_is_named(tmp_path):
    (tmp_path / "m.csv").write_bytes("path,label\na.wav,화남\n".encode("cp949") + b"b.wav,\xff\xff\n")
    with pytest.raises(CorpusError, match=r"m\.csv: line 3 is neither UTF-8 nor cp949"):
        load_manifest(tmp_path / "m.csv", problems=ProblemLog())


def test_csv_rows_with_an_extra_or_a_missing_cell(tmp_path):
    (tmp_path / "m.csv").write_text("path,label,text\na.wav,x,hello\nb.wav,x,hello, world\nc.wav,y\n"
                                    "d.wav,y,ok,\n")  # a trailing empty cell shifts nothing: kept
    p = ProblemLog("skip")
    assert [u.id for u in load_manifest(tmp_path / "m.csv", problems=p)] == ["a", "d"]
    assert [(x.row, x.reason) for x in p.items] == [
        (3, "4 cell(s) where the header has 3 (an unquoted delimiter inside a field?)"),
        (4, "2 cell(s) where the header has 3")]
    # a column the zoo does not know is kept; a required one missing is one error naming it
    (tmp_path / "e.csv").write_text("path,label,room\na.wav,x,A\n")
    [u] = load_manifest(tmp_path / "e.csv", problems=ProblemLog())
    assert u.meta["room"] == "A"
    (tmp_path / "n.csv").write_text("path,text\na.wav,hi\n")
    with pytest.raises(CorpusError, match=r"n\.csv lacks the column\(s\) 'label'"):
        load_manifest(tmp_path / "n.csv", problems=ProblemLog())


@pytest.mark.parametrize("header", ["path,label,label,speaker", "path,Label,speaker,label "])
def test_a_column_named_twice_is_an_error_naming_the_file_and_the_column(header, tmp_path):
    # before, the last `label` column silently won
    (tmp_path / "m.csv").write_text(f"{header}\na.wav,x,y,s1\n")
    with pytest.raises(CorpusError, match=r"m\.csv: the header names the column '(label|Label|label)' twice"):
        load_manifest(tmp_path / "m.csv", problems=ProblemLog())


def test_a_json_key_given_twice_is_a_problem_of_its_row(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"path": "a.wav", "label": "x"}\n{"path": "b.wav", "label": "x", "label": "y"}\n')
    p = ProblemLog("skip")
    assert [u.id for u in load_manifest(tmp_path / "m.jsonl", problems=p)] == ["a"]
    assert [(x.row, x.reason) for x in p.items] == [(2, "the key 'label' is given twice in this object")]
    (tmp_path / "m.json").write_text('[{"path": "a.wav", "label": "x", "Label": "y"}]')
    with pytest.raises(CorpusError, match=r"m\.json: an object gives the key 'Label' twice"):
        load_manifest(tmp_path / "m.json", problems=ProblemLog())


def test_duplicate_ids_and_paths_are_named(tmp_path):
    (tmp_path / "m.csv").write_text("id,path,label\nu1,a.wav,x\nu1,b.wav,x\nu2,a.wav,y\nu3,c.wav,y\n")
    p = ProblemLog("skip")
    assert [u.id for u in load_manifest(tmp_path / "m.csv", problems=p)] == ["u1", "u3"]
    assert sorted((x.row, x.column, x.reason) for x in p.items) == [
        (3, "id", "duplicate id 'u1' (also in row 2)"),
        (4, "path", "duplicate audio path 'a.wav' (also in row 2)")]
    # the same file name in two folders is two utterances, made unique
    (tmp_path / "n.csv").write_text("path,label\nx/a.wav,x\ny/a.wav,x\n")
    assert [u.id for u in load_manifest(tmp_path / "n.csv", problems=ProblemLog())] == ["a", "a-2"]


def test_labels_differing_in_case_or_spaces_are_one_class(tmp_path, cache_dir, caplog):
    m = good_corpus(tmp_path, n=0)
    (tmp_path / "wav").mkdir(exist_ok=True)
    labels = ["Angry", "angry", " ANGRY ", "Sad", "sad", "Sad  "]
    lines = ["path,label"]
    for i, lab in enumerate(labels):
        sf.write(tmp_path / "wav" / f"x{i}.wav", tone(0.2), SR, subtype="PCM_16")
        lines.append(f'wav/x{i}.wav,"{lab}"')
    m.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.INFO, "zoo"):
        d = dm(m, cache_dir)
        assert d.class_names == ["Angry", "Sad"]
    assert [u.label for u in d.utterances()] == ["Angry"] * 3 + ["Sad"] * 3
    assert "matched to a class name by case and spacing" in caplog.text
    d = dm(m, cache_dir, class_names=["sad", "angry"])
    assert [u.label for u in d.utterances()] == ["angry"] * 3 + ["sad"] * 3


def test_empty_and_very_long_transcripts(tmp_path, cache_dir):
    from zoo.data.text import train_tokenizer

    for name in ("e", "h"):
        sf.write(tmp_path / f"{name}.wav", tone(0.5), SR, subtype="PCM_16")
    long_text = "".join("가나다라마바사 "[i * 7 % 8] for i in range(2000))  # 2,000 characters
    m = good_corpus(tmp_path, rows=[("e.wav", "a", "s0", ""), ("h.wav", "b", "s1", long_text)])
    # a row without words is valid: a model that reads text leaves it out and counts it ...
    d = dm(m, cache_dir, modalities=["audio", "text"])
    d.setup("fit")
    assert "e" not in {u.id for u in d.split("all")} and d.report["dropped"] == {
        "no transcript: left out for a text model": 1}
    # ... unless the data config calls it a problem
    with pytest.raises(CorpusError, match=r"m\.csv, row 10, column 'text': empty transcript"):
        dm(m, cache_dir, modalities=["audio", "text"], without_words="problem").setup("fit")
    d = dm(m, cache_dir, modalities=["audio", "text"], on_error="skip", without_words="problem")
    d.setup("fit")
    tok = train_tokenizer([u.text for u in d.split("all")], vocab_size=40, max_length=32,
                          cache_dir=cache_dir)
    [long] = [u for u in d.split("all") if u.text == long_text]
    assert len(tok.encode(long_text[:40])) < 32
    assert len(tok.encode(long.text)) == 32  # truncated to max_length, never past the positions


def test_nfd_hangul_is_normalised_to_nfc(tmp_path, cache_dir):
    nfc, label = "나 어제 헤어졌어", "슬픔"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    m = good_corpus(tmp_path, n=2)
    m.write_text("path,label,text\n"
                 f"wav/g0.wav,{label},{nfc}\n"
                 f"wav/g1.wav,{unicodedata.normalize('NFD', label)},{nfd}\n", encoding="utf-8")
    d = dm(m, cache_dir)
    assert [u.text for u in d.utterances()] == [nfc, nfc] and d.class_names == [label]


def test_a_path_outside_the_corpus_root_is_refused_unless_allowed(tmp_path):
    outside = tmp_path / "secret.wav"
    (tmp_path / "corpus").mkdir()
    m = tmp_path / "corpus" / "m.csv"
    m.write_text(f"path,label\nin.wav,x\n../other.wav,x\n{outside},x\nsub/../in2.wav,y\n")
    p = ProblemLog("skip")
    assert [u.id for u in load_manifest(m, problems=p)] == ["in", "in2"]
    assert [(x.row, x.column) for x in p.items] == [(3, "path"), (4, "path")]
    assert "lies outside the corpus root" in p.items[0].reason and "allow_outside_root" in p.items[0].reason
    assert len(Manifest(path=str(m), allow_outside_root=True).load(ProblemLog())) == 4
    assert len(Manifest(path=str(m), root=str(tmp_path)).load(ProblemLog())) == 4
    # a symlink inside the root that points out of it is outside too
    os.symlink(tmp_path, tmp_path / "corpus" / "up")
    m.write_text("path,label\nup/secret.wav,x\n")
    p = ProblemLog("skip")
    assert load_manifest(m, problems=p) == [] and len(p.items) == 1


def test_a_symlink_loop_in_a_corpus_folder(tmp_path):
    from fixtures.aihub import write_aihub_fixture
    from zoo.data.corpora import AIHub

    write_aihub_fixture(tmp_path)
    before = AIHub(root=str(tmp_path)).load(ProblemLog())
    wav_dir = next(p.parent for p in tmp_path.rglob("*.wav"))
    os.symlink(tmp_path, wav_dir / "loop")  # a folder that contains its own ancestor
    os.symlink(wav_dir, tmp_path / "again")  # and a second way into the same folder
    after = AIHub(root=str(tmp_path)).load(ProblemLog())
    assert [(u.id, u.audio) for u in after] == [(u.id, u.audio) for u in before]
    # every file is listed once (os.walk with followlinks lists the loop's files ~40 times)
    from zoo.data.corpora.base import walk_files

    files = walk_files(tmp_path, (".wav",))
    assert len(files) == len({os.path.realpath(f) for f in files}) == len(before)


def test_an_epoch_over_every_hostile_file_runs_to_the_end(tmp_path, cache_dir):
    """All hostile files in one corpus, on_error: skip: one epoch of fit, validate and test."""
    import lightning as L

    from zoo.models import AudioCNN

    rows = []
    for kind, (make, _) in BAD.items():
        make(tmp_path / f"{kind}.wav")
        rows.append((f"{kind}.wav", "a", "s0", "x"))
    sf.write(tmp_path / "st.wav", np.stack([tone(1.0)] * 6, 1), 96000, subtype="PCM_24")
    sf.write(tmp_path / "long.wav", np.tile(tone(1.0), 60), 8000, subtype="PCM_U8")
    rows += [("st.wav", "b", "s1", "y"), ("long.wav", "a", "s0", "z")]
    m = good_corpus(tmp_path, rows=rows)
    d = dm(m, cache_dir, on_error="skip", max_seconds=2.0)
    model = AudioCNN(class_names=["a", "b"], channels=[4, 4, 4], hidden=8)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, d)
    assert sum(d.report["dropped"].values()) == len(BAD)
    assert torch.isfinite(trainer.callback_metrics["train/loss_epoch"])
    trainer.test(model, d, verbose=False)
    assert 0.0 <= float(trainer.callback_metrics["test/UA"]) <= 1.0


# -- inference: no label for what cannot be labelled -------------------------------------------------

@pytest.fixture(scope="module")
def audio_model():
    import zoo

    return zoo.load("audio-cnn-synth", device="cpu")


def _speechlike(seconds, sr=SR, seed=0):
    """A loud, varying tone (the model labels it; what it says does not matter here)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * (150 + 60 * np.sin(2 * np.pi * 3 * t)) * t)
            + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def test_a_one_sample_wav_is_refused_by_infer_as_by_training(tmp_path, audio_model, cache_dir):
    from zoo.errors import ZooUserError

    one = tmp_path / "one.wav"
    sf.write(one, np.array([0.5], np.float32), SR, subtype="PCM_16")
    with pytest.raises(ZooUserError, match=r"too short to label: 1 sample\(s\) \(0.0001 s; clips under 0.02 s"):
        audio_model.predict(str(one))
    [r] = audio_model.predict_batch([str(one)], skip_errors=True)
    assert "label" not in r and "too short to label" in r["error"]
    # the DataModule refuses the same file (min_seconds)
    m = good_corpus(tmp_path, rows=[("one.wav", "a", "s0", "x")])
    with pytest.raises(CorpusError, match="shorter than min_seconds"):
        dm(m, cache_dir).setup("fit")


def test_a_wav_shorter_than_its_header_declares_is_refused_by_infer_as_by_training(tmp_path, audio_model):
    from zoo.errors import ZooUserError

    cut = tmp_path / "cut.wav"
    sf.write(cut, _speechlike(3.0), SR, subtype="PCM_16")
    cut.write_bytes(cut.read_bytes()[: 44 + 2 * SR])  # 1 s of the 3 s its header declares
    with pytest.raises(ZooUserError, match=r"truncated: the header declares 3.000 s of audio, the file holds 1.000 s"):
        audio_model.predict(str(cut))
    with pytest.raises(ZooUserError, match="truncated"):
        audio_model.predict_long(str(cut))
    with pytest.raises(ValueError, match="truncated"):  # what training and `zoo check` say about it
        audio_info(str(cut))


def test_silence_is_not_labelled(tmp_path, audio_model):
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(3 * SR, np.float32), SR, subtype="PCM_16")
    r = audio_model.predict(str(quiet))
    assert r["label"] is None and r["probs"] == {} and r["note"] == "no speech energy" and r["duration"] == 3.0
    # 1-bit dither and a -67 dBFS hum: still no speech energy; speech-level audio is labelled
    dither = np.random.default_rng(0).choice([-1, 0, 1], 3 * SR).astype(np.float32) / 32768
    hum = 10 ** (-67 / 20) * np.sin(2 * np.pi * 50 * np.arange(3 * SR) / SR).astype(np.float32)
    for name, x in (("dither", dither), ("hum", hum)):
        sf.write(tmp_path / f"{name}.wav", x, SR, subtype="FLOAT")
        assert audio_model.predict(str(tmp_path / f"{name}.wav"))["note"] == "no speech energy"
    sf.write(tmp_path / "loud.wav", _speechlike(3.0), SR, subtype="PCM_16")
    loud = audio_model.predict(str(tmp_path / "loud.wav"))
    assert loud["label"] in audio_model.class_names and "note" not in loud
    # an array is labelled as given (the live stream hands over what its VAD found to be speech)
    assert audio_model.predict(np.zeros(3 * SR, np.float32))["label"] in audio_model.class_names
    # off: labelled as before
    audio_model.min_rms_db = None
    try:
        assert audio_model.predict(str(quiet))["label"] in audio_model.class_names
    finally:
        audio_model.min_rms_db = -60.0


def test_windows_without_speech_energy_are_not_labelled_and_not_averaged(audio_model):
    # 8 s of speech-level audio, 12 s of silence, 8 s of speech-level audio (windows of 4 s every 2 s)
    wav = np.concatenate([_speechlike(8.0), np.zeros(12 * SR, np.float32), _speechlike(8.0, seed=1)])
    r = audio_model.predict_long(wav, sample_rate=SR)
    silent = [w for w in r["track"] if w["label"] is None]
    assert [(w["start"], w["end"]) for w in silent] == [(8.0, 12.0), (10.0, 14.0), (12.0, 16.0), (14.0, 18.0),
                                                       (16.0, 20.0)]
    assert all(w["note"] == "no speech energy" and w["probs"] == {} for w in silent)
    assert r["label"] in audio_model.class_names and r["windows_without_speech"] == 5
    # the aggregate is the mean of the labelled windows only
    spoken = [w for w in r["track"] if w["label"] is not None]
    mean = np.mean([[w["probs"][c] for c in audio_model.class_names] for w in spoken], 0)
    assert [r["probs"][c] for c in audio_model.class_names] == pytest.approx(mean, abs=1e-6)
    # all silent: the file says so
    r = audio_model.predict_long(np.zeros(30 * SR, np.float32), sample_rate=SR)
    assert r["label"] is None and r["note"] == "no speech energy" and len(r["track"]) == 14


def test_infer_reports_silence_instead_of_a_label(tmp_path, run):
    import json

    sf.write(tmp_path / "silence.wav", np.zeros(30 * SR, np.float32), SR, subtype="PCM_16")
    sf.write(tmp_path / "tone.wav", _speechlike(2.0), SR, subtype="PCM_16")
    r = run("infer", "--model", "audio-cnn-synth", str(tmp_path / "silence.wav"), str(tmp_path / "tone.wav"),
            "--out", str(tmp_path / "o.csv"), "--plot", str(tmp_path / "plots"), "--device", "cpu")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no speech energy in 1 file(s), not labelled: " + str(tmp_path / "silence.wav") in r.stderr
    rows = list(__import__("csv").DictReader(open(tmp_path / "o.csv")))
    head = [x for x in rows if x["file"].endswith("silence.wav") and not x["start"]]
    assert head[0]["label"] == "" and head[0]["note"] == "no speech energy"
    r = run("infer", "--model", "audio-cnn-synth", str(tmp_path / "silence.wav"), "--device", "cpu")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["label"] is None and out["note"] == "no speech energy"


def test_a_random_bytes_checkpoint_is_called_not_a_checkpoint(tmp_path):
    import zoo
    from zoo.errors import ZooUserError

    bad = tmp_path / "model.ckpt"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ZooUserError) as e:
        zoo.load(str(bad))
    msg = str(e.value)
    assert f"{bad} is not a checkpoint" in msg and "4096 bytes" in msg
    assert "pickled" not in msg and "trust" not in msg
    bad.write_bytes(b"")
    with pytest.raises(ZooUserError, match="is not a checkpoint.*0 bytes"):
        zoo.load(str(bad))


def test_a_long_file_is_read_a_block_at_a_time_with_the_same_result(tmp_path, audio_model, monkeypatch):
    """Windows mode on a file never holds the file whole (a two-hour file: docs/performance.md),
    and labels the windows exactly as the whole-array path does."""
    import zoo.data.audio as za
    from zoo.errors import ZooUserError

    rate = 8000  # the model runs at 16 kHz: the blocks go through the streaming resampler
    x = np.concatenate([_speechlike(25.0, sr=rate), np.zeros(10 * rate, np.float32), _speechlike(9.3, sr=rate, seed=2)])
    path = tmp_path / "long.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    whole = audio_model.predict_long(x, sample_rate=rate)
    blocks, orig = [], za.audio_blocks

    def small_blocks(p, sr=None, block_seconds=20.0):
        for b in orig(p, sr, 3.0):  # 3 s blocks: windows of 4 s every 2 s straddle them
            blocks.append(b.size)
            yield b

    monkeypatch.setattr(za, "read_audio", lambda *a, **k: pytest.fail("the long file was read whole"))
    monkeypatch.setattr(za, "audio_blocks", small_blocks)
    for r in (audio_model.predict_long(str(path)), audio_model.predict_batch([str(path)])[0]):
        assert r["duration"] == whole["duration"] and r["label"] == whole["label"]
        assert [(w["start"], w["end"], w["label"]) for w in r["track"]] == \
            [(w["start"], w["end"], w["label"]) for w in whole["track"]]
        for a, b in zip(r["track"], whole["track"]):
            assert a["probs"] == pytest.approx(b["probs"], abs=1e-5)
        assert r["probs"] == pytest.approx(whole["probs"], abs=1e-5)
        assert r["windows_without_speech"] == whole["windows_without_speech"] >= 3
    assert len(blocks) >= 2 * 15 and max(blocks) <= 3.1 * 16000  # read in blocks, twice
    # a NaN in a later block: refused, naming the file and the file's frame (not the block's)
    x[30 * rate + 5] = np.nan
    sf.write(path, x, rate, subtype="FLOAT")
    with pytest.raises(ZooUserError, match=rf"cannot read audio {re.escape(str(path))}: 1 non-finite sample.*frame {30 * rate + 5}"):
        audio_model.predict_long(str(path))
