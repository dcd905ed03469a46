"""EmotionDataModule on an AI Hub layout and on manifests: labels, validation, bad input."""
import json
import zipfile

import numpy as np
import pytest
import soundfile as sf
import torch

from fixtures.aihub import EXPECTED_MAJORITY, write_aihub_fixture
from zoo.data import EmotionDataModule
from zoo.data.corpora import AIHub, Manifest
from zoo.data.audio import AudioLoader, read_audio, resample
from zoo.errors import CorpusError, ZooUserError


def dm_aihub(root, cache_dir, split=None, **kw):
    split = {"mode": "random", "val_fraction": 0.2, "test_fraction": 0.2, **(split or {})}
    return EmotionDataModule(corpus=AIHub(root=str(root)), cache_dir=str(cache_dir) if cache_dir else None,
                             modalities=["audio", "text"], batch_size=4, split=split, **kw)


def test_aihub_seed_rows_through_the_datamodule(tmp_path, cache_dir):
    write_aihub_fixture(tmp_path, duration=0.3)
    dm = dm_aihub(tmp_path, cache_dir)
    assert dm.class_names == ["Angry", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]
    dm.setup("fit")
    got = {u.id: u.label for s in ("train", "val", "test") for u in dm.split(s)}
    assert got == EXPECTED_MAJORITY
    batch = next(iter(dm.train_dataloader()))
    assert batch.waveforms.dim() == 2 and batch.texts and len(batch) <= 4 + 1  # batch_size 4; 5 where a lone last clip joined it
    # 0.3 s at 48 kHz resampled to 16 kHz
    assert batch.lengths.max().item() == 4800
    assert batch.labels.min() >= 0


def test_soft_label_mode_yields_distributions(tmp_path, cache_dir):
    write_aihub_fixture(tmp_path)
    dm = dm_aihub(tmp_path, cache_dir, label_mode="soft")
    dm.setup("fit")
    b = next(iter(dm.train_dataloader()))
    assert b.soft.shape == (len(b), 7) and torch.allclose(b.soft.sum(1), torch.ones(len(b)))


def test_min_agreement_filters_and_empty_corpus_is_an_error(tmp_path, cache_dir):
    write_aihub_fixture(tmp_path)
    dm = dm_aihub(tmp_path, cache_dir, min_agreement=1.0, split={"val_fraction": 0.0, "test_fraction": 0.5})
    # unanimous rows only: seed rows 1, 7 (Sadness x5) and 8-10 (Fear x5)
    assert {u.id for u in dm.utterances()} == {"5ee1e7939aa8ea0eec53fac7", "5ed979dc7e21a10eee253e90",
                                            "5ed97a22c90a530ee56b5f6c", "5ed97a381dcf350eeded50bc",
                                            "5ed97a5cc90a530ee56b5f6d"}
    with pytest.raises(CorpusError, match="no utterances left"):
        dm_aihub(tmp_path, cache_dir, class_names=["Happiness", "Surprise"], on_error="skip").utterances()


def test_missing_wav_is_reported_with_row_or_skipped(tmp_path, cache_dir):
    fx = write_aihub_fixture(tmp_path, missing=["5ed97a22c90a530ee56b5f6c"])
    with pytest.raises(CorpusError) as e:
        dm_aihub(tmp_path, cache_dir).setup("fit")
    assert "5ed97a22c90a530ee56b5f6c" in str(e.value) and "row 9" in str(e.value)
    dm = dm_aihub(tmp_path, cache_dir, on_error="skip")
    dm.setup("fit")
    assert len(dm.split("all")) == 12


def test_unreadable_and_empty_audio_found_at_setup(tmp_path, cache_dir):
    fx = write_aihub_fixture(tmp_path)
    bad, empty = fx.audio[fx.wav_ids[2]], fx.audio[fx.wav_ids[3]]
    open(bad, "wb").write(b"RIFF not really a wav")
    sf.write(empty, np.zeros(0, dtype=np.int16), 48000, subtype="PCM_16")
    with pytest.raises(CorpusError) as e:
        dm_aihub(tmp_path, cache_dir).setup("fit")
    msg = str(e.value)
    assert "2 problem(s)" in msg and bad in msg and empty in msg and "zero-length" in msg
    dm = dm_aihub(tmp_path, cache_dir, on_error="skip")
    dm.setup("fit")
    assert len(dm.split("all")) == 11 and dm.report["dropped"]


def test_file_broken_after_setup_does_not_stop_the_epoch(tmp_path, cache_dir, caplog):
    fx = write_aihub_fixture(tmp_path)
    dm = dm_aihub(tmp_path, cache_dir=None, split={"val_fraction": 0.0, "test_fraction": 0.3}, bucketing=False)
    dm.setup("fit")
    victim = dm.split("train")[0]
    open(victim.audio, "wb").write(b"garbage")
    n = sum(len(b) for b in dm.train_dataloader() if b is not None)
    assert n == len(dm.split("train")) - 1
    assert victim.id in caplog.text


def test_text_only_model_never_opens_audio(tmp_path, cache_dir):
    fx = write_aihub_fixture(tmp_path)
    for p in fx.audio.values():
        open(p, "wb").write(b"not audio")  # would fail validation if opened
    dm = EmotionDataModule(corpus=AIHub(root=str(tmp_path)), modalities=["text"], split={"mode": "random"},
                           cache_dir=None)
    dm.setup("fit")
    b = next(iter(dm.train_dataloader()))
    assert b.waveforms is None and all(b.texts)


def test_missing_root_is_a_user_error(tmp_path):
    with pytest.raises(ZooUserError, match="synth"):
        EmotionDataModule(corpus=AIHub(root=str(tmp_path / "nope"))).class_names


def write_manifest(tmp_path, rows, name="m.csv"):
    for r in rows:
        if r.get("path") and not r["path"].startswith("missing"):
            sf.write(tmp_path / r["path"], np.random.default_rng(0).normal(size=1600) * 0.1, 16000)
    if name.endswith(".jsonl"):
        (tmp_path / name).write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    else:
        cols = list(rows[0])
        (tmp_path / name).write_text(",".join(cols) + "\n" + "\n".join(",".join(r[c] for c in cols) for r in rows) + "\n")
    return tmp_path / name


def test_manifest_split_column_used_as_is(tmp_path, cache_dir):
    rows = [{"path": f"{i}.wav", "label": "ab"[i % 2], "split": ["train", "val", "test"][i % 3]} for i in range(12)]
    m = write_manifest(tmp_path, rows)
    dm = EmotionDataModule(corpus=Manifest(path=str(m)), cache_dir=str(cache_dir), modalities=["audio"])
    dm.setup("fit")
    assert dm.report["split_source"] == "column"
    assert [u.id for u in dm.split("val")] == [f"{i}" for i in range(1, 12, 3)]
    assert dm.class_names == ["a", "b"]


def test_manifest_label_outside_class_names(tmp_path, cache_dir):
    rows = [{"path": f"{i}.wav", "label": "abc"[i % 3], "speaker": f"s{i % 4}"} for i in range(12)]
    m = write_manifest(tmp_path, rows, name="m.jsonl")
    with pytest.raises(CorpusError, match="'c' is not one of class_names"):
        EmotionDataModule(corpus=Manifest(path=str(m)), class_names=["a", "b"]).utterances()
    dm = EmotionDataModule(corpus=Manifest(path=str(m)), class_names=["a", "b"], on_error="skip")
    assert len(dm.utterances()) == 8


def test_resample_paths_agree(tmp_path):
    t = np.arange(48000) / 48000
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = resample(x, 48000, 16000)  # torchaudio path
    assert y.shape == (16000,)
    z = resample(x[:24414], 24414, 16000)  # odd rate: soxr path
    assert abs(z.shape[0] - 16000) <= 1
    # both preserve the tone's amplitude
    assert abs(np.abs(y[1000:-1000]).max() - 0.5) < 0.02 and abs(np.abs(z[1000:-1000]).max() - 0.5) < 0.02


def test_audio_loader_stereo_zip_and_cache(tmp_path, cache_dir):
    stereo = np.stack([np.full(4800, 0.5), np.full(4800, -0.1)], axis=1)
    sf.write(tmp_path / "s.wav", stereo, 48000, subtype="PCM_16")
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.write(tmp_path / "s.wav", "inner/s.wav")
    load = AudioLoader(16000, cache_dir)
    a = load(str(tmp_path / "s.wav"))
    b = load(f"{tmp_path / 'a.zip'}::inner/s.wav")
    assert a.shape == (1600,) and np.allclose(a[200:-200], 0.2, atol=1e-3)
    assert np.allclose(a, b)
    assert len(list(cache_dir.glob("*.npy"))) == 2
    assert np.array_equal(load(str(tmp_path / "s.wav")), a)  # served from the cache
    raw, sr = read_audio(str(tmp_path / "s.wav"))
    assert sr == 48000 and raw.ndim == 1


def test_zipped_corpus_with_worker_processes(tmp_path, cache_dir):
    write_aihub_fixture(tmp_path, zipped=True, duration=0.2)
    dm = dm_aihub(tmp_path, cache_dir=None, num_workers=2, split={"val_fraction": 0.0, "test_fraction": 0.3})
    dm.setup("fit")
    assert all("::" in u.audio for u in dm.split("train"))
    n = sum(len(b) for b in dm.train_dataloader())
    assert n == len(dm.split("train"))


def test_second_stage_validates_only_new_modalities(tmp_path, cache_dir):
    fx = write_aihub_fixture(tmp_path, missing=["5ed97a22c90a530ee56b5f6c"])
    dm = EmotionDataModule(corpus=AIHub(root=str(tmp_path)), cache_dir=None, split={"mode": "random"},
                           on_error="skip", modalities=["text"])
    dm.setup("fit")
    assert len(dm.split("all")) == 13 and not dm.report["dropped"]  # text-only: the wav is not needed
    dm.modalities = ["audio", "text"]
    dm.setup("test")
    assert len(dm.split("all")) == 12 and sum(dm.report["dropped"].values()) == 1
    dm.setup("test")  # validating again neither re-reports nor re-counts
    assert sum(dm._dropped.values()) == 1


def test_min_agreement_on_training_rows_only_keeps_the_test_set(tmp_path, cache_dir):
    """Label ablations compare min_agreement values on one test set: scope `train` filters
    train and val only, scope `all` (the default) filters before the split."""
    from zoo.data.synth import generate

    root = generate(tmp_path / "synth", size=120, seed=2, workers=1)

    def splits(**kw):
        dm = EmotionDataModule(corpus=AIHub(root=str(root)), cache_dir=str(cache_dir), split={"mode": "group"},
                               seed=0, validate_audio=False, **kw)
        dm.setup("fit")
        return {s: dm.split(s) for s in ("train", "val", "test")}

    base = splits()
    low = [u for u in base["train"] + base["val"] if u.meta["agreement"] < 0.8]
    assert low, "the corpus needs rows with annotator disagreement for this test"
    scoped = splits(min_agreement=0.8, min_agreement_scope="train")
    assert [u.id for u in scoped["test"]] == [u.id for u in base["test"]]
    assert all(u.meta["agreement"] >= 0.8 for u in scoped["train"] + scoped["val"])
    assert len(scoped["train"]) + len(scoped["val"]) == len(base["train"]) + len(base["val"]) - len(low)
    whole = splits(min_agreement=0.8)
    assert all(u.meta["agreement"] >= 0.8 for u in whole["test"])
    assert {u.id for u in whole["test"]} != {u.id for u in base["test"]}
