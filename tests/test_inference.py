"""Pretrained checkpoints and inference: the registry, zoo.load, predict / predict_batch / windows,
`python -m zoo infer` and `checkpoints`, safe loading (sha256, weights_only), transcripts and ASR."""
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

import zoo
from zoo.data.audio import read_audio, resample
from zoo.errors import ZooUserError
from zoo.inference.predictor import window_spans
from zoo.inference.registry import DEFAULT_REGISTRY, Registry, sha256_of

ROOT = Path(__file__).resolve().parents[1]
REG = Registry.load(DEFAULT_REGISTRY)
FAMILIES = {"AudioCNN", "TextBERT", "LateFusion", "EarlyFusion", "Wav2Vec2Classifier", "SSLClassifier", "EGeMAPSMLP"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Six synthetic utterances (48 kHz mono) with their transcripts."""
    from zoo.data.synth import generate

    root = generate(tmp_path_factory.mktemp("synth") / "c", size=14, seed=3, workers=1)
    rows = list(csv.DictReader(open(root / "synthetic.csv", encoding="cp949")))[:6]
    return [(next(root.rglob(r["wav_id"] + ".wav")), r["발화문"]) for r in rows]


@pytest.fixture(scope="module")
def audio_model():
    return zoo.load("audio-cnn-synth")


# -- the registry ---------------------------------------------------------------------------------
def test_registry_ships_one_verified_checkpoint_per_family():
    assert set(zoo.list_checkpoints()) == set(REG.names())
    families = set()
    for e in REG.entries.values():
        assert e.local_path.is_file(), e.name
        assert sha256_of(e.local_path) == e.sha256, f"{e.name}: file does not match the registry"
        assert e.local_path.stat().st_size == e.size
        assert e.size < 8e6, f"{e.name} is {e.size / 1e6:.1f} MB: shipped checkpoints stay small"
        want = {"test/WA", "test/UA", "test/macro_F1"} if e.class_names else set()
        if e.dims:  # a model with dimensional targets: CCC per dimension and their mean
            want |= {f"test/CCC_{d}" for d in e.dims} | {"test/CCC_mean"}
        assert want and set(e.metrics) == want
        assert all(-1 <= v <= 1 for v in e.metrics.values())
        assert e.corpus and e.split and e.license and e.intended_use and e.command
        card = e.card_path.read_text(encoding="utf-8")
        for c in [*e.class_names, *e.dims]:
            assert f"| {c} |" in card
        key = "test/UA" if e.class_names else "test/CCC_mean"
        assert f"{e.metrics[key]:.3f}" in card
        families.add(e.model.rsplit(".", 1)[-1])
    assert families == FAMILIES


@pytest.mark.parametrize("name", REG.names())
def test_every_checkpoint_loads_and_predicts(name, clips):
    e = REG.get(name)
    m = zoo.load(name)
    assert type(m.module).__name__ == e.model.rsplit(".", 1)[-1]
    assert m.class_names == e.class_names and list(m.inputs) == e.inputs and m.dims == e.dims
    assert sum(p.numel() for p in m.module.parameters()) == e.params
    if e.class_names:
        assert e.metrics["test/UA"] > 1 / len(e.class_names)  # each family learned something
    if e.dims:
        assert e.metrics["test/CCC_mean"] > 0.2
    files = [c[0] for c in clips] if m.uses_audio else [None] * len(clips)
    texts = [c[1] for c in clips] if m.uses_text else None
    batch = m.predict_batch(files, texts)
    for i in (0, 3):
        one = m.predict(files[i], text=texts[i] if texts else None)
        assert one["label"] == batch[i]["label"] and one["probs"] == pytest.approx(batch[i]["probs"], abs=1e-5)
        assert one.get("dims", {}) == pytest.approx(batch[i].get("dims", {}), abs=1e-5)


def test_load_by_name_and_by_path_agree(clips, audio_model):
    by_path = zoo.load(str(REG.get("audio-cnn-synth").local_path))
    a, b = audio_model.predict(clips[0][0]), by_path.predict(clips[0][0])
    assert a["label"] == b["label"] and a["probs"] == pytest.approx(b["probs"], abs=1e-6)
    assert by_path.entry is not None and by_path.entry.name == "audio-cnn-synth"  # known by its sha256
    assert set(a["probs"]) == set(audio_model.class_names)
    assert sum(a["probs"].values()) == pytest.approx(1, abs=1e-5)
    assert a["label"] == max(a["probs"], key=a["probs"].get)


def test_unknown_name_suggests_close_ones():
    with pytest.raises(ZooUserError, match="audio-cnn-synth"):
        zoo.load("audio-cnn-synt")


def _copy_registry(tmp_path, name):
    e = REG.get(name)
    shutil.copy(e.local_path, tmp_path / e.file)
    raw = yaml.safe_load(DEFAULT_REGISTRY.read_text(encoding="utf-8"))
    raw["checkpoints"] = [r for r in raw["checkpoints"] if r["name"] == name]
    (tmp_path / "registry.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return tmp_path / "registry.yaml", tmp_path / e.file, raw


def test_tampered_checkpoint_is_refused(tmp_path):
    reg, ckpt, _ = _copy_registry(tmp_path, "audio-cnn-synth")
    assert zoo.load("audio-cnn-synth", registry=reg).class_names  # intact: loads
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the weights
    ckpt.write_bytes(bytes(data))
    with pytest.raises(ZooUserError, match="sha256"):
        zoo.load("audio-cnn-synth", registry=reg)


def test_url_entry_is_downloaded_verified_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    reg, ckpt, raw = _copy_registry(tmp_path, "audio-cnn-synth")
    entry = raw["checkpoints"][0]
    entry.pop("file")
    entry["url"] = ckpt.as_uri()  # file:// goes through the same urllib download as https://
    reg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    m = zoo.load("audio-cnn-synth", registry=reg)
    cached = tmp_path / "cache" / "checkpoints" / f"{entry['sha256']}.ckpt"
    assert cached.is_file() and Path(m.source) == cached
    # a download that does not match is refused and leaves nothing behind
    cached.unlink()
    entry["sha256"] = "0" * 64
    reg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ZooUserError, match="sha256"):
        zoo.load("audio-cnn-synth", registry=reg)
    assert not list((tmp_path / "cache" / "checkpoints").iterdir())


def test_registry_errors_name_the_entry(tmp_path):
    (tmp_path / "r.yaml").write_text("checkpoints:\n  - name: x\n    model: zoo.models.AudioCNN\n", encoding="utf-8")
    with pytest.raises(ZooUserError, match=r"entry 1 \(x\): missing class_names, sha256, size"):
        Registry.load(tmp_path / "r.yaml")


def test_checkpoint_with_pickled_objects_needs_trust(tmp_path):
    import argparse

    ckpt = torch.load(REG.get("audio-cnn-synth").local_path, weights_only=True)
    ckpt["hyper_parameters"]["extra"] = argparse.Namespace(a=1)  # arbitrary Python object
    torch.save(ckpt, tmp_path / "odd.ckpt")
    with pytest.raises(ZooUserError, match="trust"):
        zoo.load(tmp_path / "odd.ckpt")
    ckpt["hyper_parameters"].pop("extra")
    ckpt["zoo_unused"] = argparse.Namespace(a=1)
    torch.save(ckpt, tmp_path / "odd.ckpt")
    assert zoo.load(tmp_path / "odd.ckpt", trust=True).class_names == REG.get("audio-cnn-synth").class_names


# -- predictions ----------------------------------------------------------------------------------------
def test_batch_equals_single_and_any_rate_or_channels(tmp_path, clips, audio_model):
    m = audio_model
    files = [c[0] for c in clips]
    batch = m.predict_batch(files)
    for f, b in zip(files, batch):
        s = m.predict(f)
        assert s["label"] == b["label"] and s["probs"] == pytest.approx(b["probs"], abs=1e-5)
    # the same clip as stereo at 44.1 kHz and as an array at 8 kHz: read, mixed down, resampled
    wav, sr = read_audio(str(files[0]))
    sf.write(tmp_path / "stereo.wav", np.stack([wav, wav], 1), sr)
    assert m.predict(tmp_path / "stereo.wav")["probs"] == pytest.approx(batch[0]["probs"], abs=1e-4)
    wav8 = resample(wav, sr, 8000)
    via_array = m.predict(wav8, sample_rate=8000)
    sf.write(tmp_path / "r8.wav", wav8, 8000, subtype="FLOAT")  # the same samples as the array
    assert m.predict(tmp_path / "r8.wav")["probs"] == pytest.approx(via_array["probs"], abs=1e-4)
    assert m.predict(np.stack([wav8, wav8]), sample_rate=8000)["probs"] == pytest.approx(via_array["probs"], abs=1e-5)


def test_window_spans_cover_the_clip():
    assert window_spans(10, 20, 5) == [(0, 10)]
    spans = window_spans(103, 20, 10)
    assert spans[0] == (0, 20) and spans[-1] == (83, 103)
    assert all(e - s == 20 for s, e in spans)
    assert all(b[0] - a[0] <= 10 for a, b in zip(spans, spans[1:]))


def test_long_audio_is_windowed_into_a_track(clips, audio_model):
    m = audio_model
    sr = m.sample_rate
    # five minutes: the clips repeated (the forward pass sees one batch of windows at a time)
    parts = [m.load_audio(c[0]) for c in clips]
    long = np.concatenate(parts * int(np.ceil(300 * sr / sum(p.shape[0] for p in parts))))[: 300 * sr]
    r = m.predict(long)
    assert r["duration"] == pytest.approx(300, abs=1e-3)
    track = r["track"]
    assert len(track) == len(window_spans(long.shape[0], int(m.window * sr), int(m.hop * sr)))
    assert track[0]["start"] == 0 and track[-1]["end"] == pytest.approx(300, abs=1e-3)
    # each window's prediction is the prediction of that stretch of audio on its own
    w = track[len(track) // 2]
    alone = m.predict(long[int(round(w["start"] * sr)) : int(round(w["end"] * sr))])
    assert alone["probs"] == pytest.approx(w["probs"], abs=1e-5)
    # the aggregate is the duration-weighted mean of the windows
    weights = np.array([t["end"] - t["start"] for t in track])
    for c in m.class_names:
        mean = np.dot(weights, [t["probs"][c] for t in track]) / weights.sum()
        assert r["probs"][c] == pytest.approx(mean, abs=1e-5)
    short = m.predict_long(parts[0], window=1.0, hop=0.5)
    assert len(short["track"]) == len(window_spans(parts[0].shape[0], sr, sr // 2))


def test_text_models_need_a_transcript_fusion_does_not(clips):
    text = zoo.load("text-bert-synth")
    with pytest.raises(ZooUserError, match="transcript"):
        text.predict(clips[0][0])
    r = text.predict(text=clips[0][1])
    assert r["label"] in text.class_names
    fusion = zoo.load("late-fusion-synth")
    no_text, empty = fusion.predict(clips[0][0]), fusion.predict(clips[0][0], text="")
    assert no_text["probs"] == pytest.approx(empty["probs"], abs=1e-6)
    with_text = fusion.predict(clips[0][0], text=clips[0][1])
    assert with_text["probs"] != pytest.approx(no_text["probs"], abs=1e-4)  # the transcript is used
    both = fusion.predict_batch([c[0] for c in clips], [c[1] for c in clips])
    assert both[0]["probs"] == pytest.approx(with_text["probs"], abs=1e-5)


# -- the commands -----------------------------------------------------------------------------------
def test_infer_folder_glob_and_outputs(run, tmp_path, clips, audio_model):
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    wav, sr = read_audio(str(clips[0][0]))
    sf.write(d / "a48k.wav", wav, sr)
    sf.write(d / "sub" / "b22k_stereo.wav", np.stack([resample(wav, sr, 22050)] * 2, 1), 22050)
    sf.write(d / "c8k.flac", resample(wav, sr, 8000), 8000)
    (d / "notes.txt").write_text("not audio")
    (d / "broken.wav").write_bytes(b"RIFF\x00\x00not a wav at all")
    with pytest.raises(ZooUserError, match="broken.wav"):
        audio_model.predict(d / "broken.wav")
    r = run("infer", "--model", "audio-cnn-synth", str(d), "--out", str(tmp_path / "p.jsonl"))
    # the broken file is reported by name, the others are written, and the exit status says it
    assert r.returncode == 1, r.stderr
    assert "1 of 4 file(s) could not be labelled" in r.stderr and "broken.wav" in r.stderr
    assert (tmp_path / "p.jsonl").read_text().count("\n") == 3
    (tmp_path / "p.jsonl").unlink()
    r = run("infer", "--model", "audio-cnn-synth", str(d), "--out", str(tmp_path / "p.jsonl"), "--skip-errors")
    assert r.returncode == 0, r.stderr
    assert "1 of 4 file(s) could not be labelled" in r.stderr
    rows = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert sorted(Path(x["file"]).name for x in rows) == ["a48k.wav", "b22k_stereo.wav", "c8k.flac"]
    for x in rows:
        assert x["probs"] == pytest.approx(audio_model.predict(x["file"])["probs"], abs=1e-6)
    # the same clip at 48 kHz mono and 22.05 kHz stereo: both keep the model's band (<= 8 kHz)
    by = {Path(x["file"]).name: x for x in rows}
    assert by["a48k.wav"]["probs"] == pytest.approx(by["b22k_stereo.wav"]["probs"], abs=0.02)
    r = run("infer", "--model", "audio-cnn-synth", str(d / "**" / "*.wav"), "--out", str(tmp_path / "p.csv"),
            "--skip-errors")
    assert r.returncode == 0, r.stderr
    table = list(csv.DictReader(open(tmp_path / "p.csv", encoding="utf-8")))
    assert len(table) == 2 and {f"prob_{c}" for c in audio_model.class_names} <= set(table[0])
    r = run("infer", "--model", "audio-cnn-synth", str(tmp_path / "nothing*.wav"))
    assert r.returncode == 2 and "matches no files" in r.stderr


def test_infer_long_file_writes_track_and_plot(run, tmp_path, clips):
    wav = np.concatenate([read_audio(str(c[0]))[0] for c in clips] * 2)
    sf.write(tmp_path / "long.wav", wav, 48000)
    r = run("infer", "--model", "audio-cnn-synth", str(tmp_path / "long.wav"), "--window", "3", "--hop", "1.5",
            "--plot", str(tmp_path / "track.png"))
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout.strip().splitlines()[-1])
    assert row["duration"] > 10 and len(row["track"]) >= row["duration"] / 1.5 - 2
    assert all(w["end"] - w["start"] == pytest.approx(3) for w in row["track"])
    assert (tmp_path / "track.png").stat().st_size > 10_000


def test_infer_with_transcripts(run, tmp_path, clips):
    files = [str(c[0]) for c in clips[:3]]
    with open(tmp_path / "t.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "text"])
        for c in clips[:2]:  # the third file has no transcript
            w.writerow([c[0].name, c[1]])
    r = run("infer", "--model", "late-fusion-synth", *files, "--transcripts", str(tmp_path / "t.csv"))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.strip().splitlines()]
    assert [x["text"] for x in rows] == [clips[0][1], clips[1][1], ""]
    assert "1 of 3 file(s) have no transcript" in r.stderr
    fusion = zoo.load("late-fusion-synth")
    assert rows[0]["probs"] == pytest.approx(fusion.predict(files[0], text=clips[0][1])["probs"], abs=1e-5)
    r = run("infer", "--model", "late-fusion-synth", *files, "--text", "하나")
    assert r.returncode == 2 and "--text gives 1 transcripts for 3 files" in r.stderr
    r = run("infer", "--model", "text-bert-synth", files[2])
    assert r.returncode == 2 and "transcript" in r.stderr


def _tiny_asr(path: Path, char: str) -> Path:
    """A random 2-layer wav2vec2 CTC model whose output bias always says ``char``."""
    from transformers import (Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor,
                              Wav2Vec2ForCTC, Wav2Vec2Processor)

    path.mkdir(parents=True)
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, char: 3, "나": 4}
    (path / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tok = Wav2Vec2CTCTokenizer(str(path / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|")
    fe = Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=False)
    torch.manual_seed(0)
    cfg = Wav2Vec2Config(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, conv_dim=(16,) * 7, num_conv_pos_embeddings=8,
                         num_conv_pos_embedding_groups=2, pad_token_id=0)
    model = Wav2Vec2ForCTC(cfg)
    with torch.no_grad():
        model.lm_head.bias.zero_()
        model.lm_head.bias[3] = 100.0  # every frame says `char`; CTC collapses the repeats
    model.save_pretrained(path)
    Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(path)
    return path


def test_infer_transcribes_with_a_local_asr_model(run, tmp_path, clips):
    asr = _tiny_asr(tmp_path / "asr", "슬")
    f = str(clips[0][0])
    r = run("infer", "--model", "late-fusion-synth", f, "--asr", str(asr))
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout.strip())
    assert row["text"] == "슬"
    assert row["probs"] == pytest.approx(zoo.load("late-fusion-synth").predict(f, text="슬")["probs"], abs=1e-5)
    # a given transcript wins over ASR
    r = run("infer", "--model", "late-fusion-synth", f, "--asr", str(asr), "--text", clips[0][1])
    assert json.loads(r.stdout.strip())["text"] == clips[0][1]
    # a file that cannot be read is reported, and the others are still transcribed and labelled
    (tmp_path / "broken.wav").write_bytes(b"not audio")
    r = run("infer", "--model", "late-fusion-synth", f, str(tmp_path / "broken.wav"), "--asr", str(asr),
            "--skip-errors")
    assert r.returncode == 0, r.stderr
    assert [json.loads(x)["text"] for x in r.stdout.strip().splitlines()] == ["슬"]
    assert "1 of 2 file(s) could not be labelled" in r.stderr


def test_checkpoints_command_lists_the_registry(run):
    r = run("checkpoints", "--verify")
    assert r.returncode == 0, r.stderr
    for name in REG.names():
        assert name in r.stdout
    assert f"all {len(REG.names())} local files match their sha256" in r.stdout
    r = run("checkpoints", "--json")
    assert {e["name"] for e in json.loads(r.stdout)} == set(REG.names())


def test_export_command_writes_model_and_card(run, tmp_path, clips):
    from transformers import pipeline

    r = run("export", "--model", "wav2vec2-synth", "--format", "hf", "--out", str(tmp_path / "hf"))
    assert r.returncode == 0, r.stderr
    card = (tmp_path / "hf" / "README.md").read_text(encoding="utf-8")
    e = REG.get("wav2vec2-synth")
    assert f"{e.metrics['test/UA']:.3f}" in card and e.corpus.split(" (")[0] in card
    wav = zoo.load("wav2vec2-synth").load_audio(clips[0][0])
    got = {d["label"]: d["score"] for d in pipeline("audio-classification", model=str(tmp_path / "hf"))(
        {"raw": wav, "sampling_rate": 16000}, top_k=None)}
    assert got == pytest.approx(zoo.load("wav2vec2-synth").predict(wav)["probs"], abs=1e-4)
    r = run("export", "--model", "audio-cnn-synth", "--format", "onnx", "--out", str(tmp_path / "m.onnx"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m.onnx").stat().st_size > 10_000 and "| 0 | Angry |" in (tmp_path / "m.md").read_text()
    r = run("export", "--model", "text-bert-synth", "--format", "hf", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "Wav2Vec2Classifier" in r.stderr


def test_audio_cnn_speaker_adaptation_matches_training_path(clips):
    """``adapt`` gives a normalize: speaker AudioCNN the statistics training would compute for
    that speaker from the same clips; predictions then equal the training-time path."""
    from zoo.data.batch import collate
    from zoo.inference.predictor import Predictor
    from zoo.models import AudioCNN

    torch.manual_seed(0)
    model = AudioCNN(class_names=["a", "b", "c"], channels=[4, 8, 8], hidden=8, normalize="speaker").eval()
    p = Predictor(model, None, source="test", device="cpu")
    files = [c[0] for c in clips[:4]]
    plain = np.array([list(r["probs"].values()) for r in p.predict_batch(files)])
    adapted = np.array([list(r["probs"].values()) for r in p.adapt(files).predict_batch(files)])
    wavs = [torch.from_numpy(p.load_audio(f)) for f in files]
    model.features.set_speaker_stats({"spk": wavs})
    with torch.no_grad():
        want = torch.cat([model(collate([{"id": "x", "label": 0, "speaker": "spk", "audio": w}])).softmax(-1)
                          for w in wavs]).numpy()
    assert np.allclose(adapted, want, atol=1e-5) and not np.allclose(plain, adapted, atol=1e-4)
    with pytest.raises(ZooUserError, match="normalize: speaker"):
        zoo.load("audio-cnn-synth").adapt(files)


def test_infer_adapt_with_the_real_speech_checkpoint(run, tmp_path, clips):
    """`infer --adapt` standardises by the inputs' own statistics (one speaker), as
    ``zoo.load(...).adapt(files)`` does; without it the model says it falls back."""
    files = [str(c[0]) for c in clips[:4]]
    r = run("infer", "--model", "emodb-compare", *files, "--out", str(tmp_path / "plain.jsonl"))
    assert r.returncode == 0, r.stderr
    assert "falls back to its training speakers' statistics" in r.stderr
    r = run("infer", "--model", "emodb-compare", "--adapt", *files, "--out", str(tmp_path / "a.jsonl"))
    assert r.returncode == 0, r.stderr
    assert "adapted to the speaker of the 4 input file(s)" in r.stderr and "falls back" not in r.stderr
    plain, adapted = ([json.loads(x)["probs"] for x in (tmp_path / f).read_text().splitlines()]
                      for f in ("plain.jsonl", "a.jsonl"))
    want = zoo.load("emodb-compare").adapt(files).predict_batch(files)
    for a, w in zip(adapted, want):
        assert a == pytest.approx(w["probs"], abs=1e-6)
    assert any(a != pytest.approx(p, abs=1e-3) for a, p in zip(adapted, plain))
    r = run("infer", "--model", "audio-cnn-synth", "--adapt", *files)
    assert r.returncode == 2 and "normalize: speaker" in r.stderr
