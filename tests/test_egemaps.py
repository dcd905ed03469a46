"""eGeMAPS features (openSMILE, cached) and the EGeMAPSMLP baseline: standardisation, batching,
the DataModule path (features only, no waveforms) and a small training run that learns."""
import csv
import pickle
import sys
import zipfile

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch

# opensmile comes with the dev extra; without it these tests fail with the install hint
from zoo.data import EmotionDataModule
from zoo.data.corpora import Manifest
from zoo.data.batch import collate
from zoo.data.features import NUM_FEATURES, EGeMAPS, feature_names
from zoo.models import EGeMAPSMLP

CLASSES = ["high", "low"]


def tone(f0: float, amp: float, seconds: float = 0.5, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """A voiced-like signal: harmonics of f0 with a slow amplitude envelope and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)
    x = amp * env * x / np.abs(x).max() + rng.normal(scale=0.002, size=t.shape)
    return x.astype(np.float32)


def write(path, x, sr=16000):
    sf.write(path, x, sr, subtype="PCM_16")
    return str(path)


def semitones(f0: float) -> float:
    return 12 * np.log2(f0 / 27.5)  # eGeMAPS' F0 scale: semitones from 27.5 Hz


# -- features --------------------------------------------------------------------------------------
def test_features_shape_finite_and_pitch(tmp_path):
    path = write(tmp_path / "a.wav", tone(200, 0.3))
    f = EGeMAPS(None)(path)
    assert f.shape == (NUM_FEATURES,) and f.dtype == torch.float32 and torch.isfinite(f).all()
    names = feature_names()
    assert len(names) == NUM_FEATURES and names[0] == "F0semitoneFrom27.5Hz_sma3nz_amean"
    assert abs(float(f[0]) - semitones(200)) < 0.3  # the measured pitch is the tone's
    g = EGeMAPS(None)(write(tmp_path / "b.wav", tone(300, 0.3)))
    assert abs(float(g[0]) - semitones(300)) < 0.3


def test_cache_hit_returns_identical_values_without_recomputing(tmp_path, cache_dir, monkeypatch):
    path = write(tmp_path / "a.wav", tone(180, 0.2))
    first = EGeMAPS(str(cache_dir))
    a = first(path)
    assert first.computed == 1 and len(list((cache_dir / "egemaps").glob("*.npy"))) == 1

    calls = []
    real = EGeMAPS.compute
    monkeypatch.setattr(EGeMAPS, "compute", lambda self, p: calls.append(p) or real(self, p))
    b = EGeMAPS(str(cache_dir))(path)  # a new object (as in a new run): served from disk
    assert calls == [] and torch.equal(a, b)

    write(tmp_path / "a.wav", tone(260, 0.2, seconds=0.6))  # the file changes: computed again
    c = EGeMAPS(str(cache_dir))(path)
    assert calls == [path] and not torch.equal(a, c)
    assert len(list((cache_dir / "egemaps").glob("*.npy"))) == 2


def test_zip_member_and_other_rates_give_the_same_features(tmp_path):
    x = tone(220, 0.3, sr=16000)
    plain = write(tmp_path / "a.wav", x)
    with zipfile.ZipFile(tmp_path / "c.zip", "w") as z:
        z.write(plain, "inner/a.wav")
    feats = EGeMAPS(None)
    a = feats(plain)
    b = feats(f"{tmp_path / 'c.zip'}::inner/a.wav")
    assert torch.equal(a, b)
    # the same sound stored at 48 kHz stereo is analysed at 16 kHz too: same pitch and loudness
    x48 = tone(220, 0.3, sr=48000)
    c = feats(write(tmp_path / "s48.wav", np.stack([x48, x48], 1), sr=48000))
    names = feature_names()
    for name in ("F0semitoneFrom27.5Hz_sma3nz_amean", "loudness_sma3_amean"):
        i = names.index(name)
        assert abs(float(a[i]) - float(c[i])) < 0.05 * abs(float(a[i])), name


def test_too_short_clip_raises_and_object_pickles(tmp_path):
    feats = EGeMAPS(None)
    with pytest.raises(ValueError, match="too short for eGeMAPS"):
        feats(write(tmp_path / "short.wav", tone(200, 0.3, seconds=0.03)))
    path = write(tmp_path / "a.wav", tone(200, 0.3))
    ref = feats(path)  # builds the openSMILE object in this process
    clone = pickle.loads(pickle.dumps(feats))
    assert clone._smile is None and torch.equal(clone(path), ref)


def test_missing_opensmile_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "opensmile", None)  # `import opensmile` now fails
    with pytest.raises(ImportError, match=r"pip install 'zoo\[egemaps\]'"):
        EGeMAPS(None)


# -- the model -------------------------------------------------------------------------------------
def fake_features(n, offset, scale, seed):
    g = torch.Generator().manual_seed(seed)
    base = torch.linspace(-5, 500, NUM_FEATURES)  # eGeMAPS scales differ wildly
    return base + offset + scale * torch.randn(n, NUM_FEATURES, generator=g)


def items_of(feats, speakers):
    return [{"id": str(i), "label": 0, "features": f, "speaker": s}
            for i, (f, s) in enumerate(zip(feats, speakers))]


def test_global_standardisation_and_checkpointed_statistics():
    model = EGeMAPSMLP(class_names=CLASSES, hidden=[8]).eval()
    train = fake_features(50, 10.0, 3.0, seed=0)
    model.set_feature_stats(train)
    z = model.standardize(train)
    assert torch.allclose(z.mean(0), torch.zeros(NUM_FEATURES), atol=1e-3)
    assert torch.allclose(z.std(0, unbiased=False), torch.ones(NUM_FEATURES), atol=1e-3)
    # the statistics are buffers: a model restored from the state dict standardises alike
    fresh = EGeMAPSMLP(class_names=CLASSES, hidden=[8]).eval()
    assert not bool(fresh.stats_initialised)
    fresh.load_state_dict(model.state_dict())
    assert bool(fresh.stats_initialised) and torch.equal(fresh.standardize(train), z)
    b = collate(items_of(train[:4], ["a"] * 4))
    assert torch.equal(fresh(b), model(b))


def test_per_speaker_standardisation():
    model = EGeMAPSMLP(class_names=CLASSES, hidden=[8], normalize="speaker").eval()
    spk_a = fake_features(30, -40.0, 2.0, seed=1)  # two voices with different offsets and spreads
    spk_b = fake_features(20, 60.0, 8.0, seed=2)
    model.set_feature_stats(torch.cat([spk_a, spk_b]))
    model.set_speaker_stats({"a": spk_a, "b": spk_b, "c": spk_b[:1]})  # c: too few for statistics
    assert set(model.speaker_stats) == {"a", "b"}
    feats = torch.cat([spk_a, spk_b])
    speakers = ["a"] * 30 + ["b"] * 20
    z = model.standardize(feats, speakers)
    for s, rows in (("a", z[:30]), ("b", z[30:])):
        assert torch.allclose(rows.mean(0), torch.zeros(NUM_FEATURES), atol=1e-3), s
        assert torch.allclose(rows.std(0, unbiased=False), torch.ones(NUM_FEATURES), atol=1e-3), s
    # globally standardised, each speaker keeps its own offset (what per-speaker removes)
    g = EGeMAPSMLP(class_names=CLASSES, hidden=[8], normalize="global")
    g.set_feature_stats(feats)
    assert g.standardize(feats)[:30].mean() < -0.5 and g.standardize(feats)[30:].mean() > 0.5
    # unknown speakers (and no speaker) fall back to the global statistics
    assert torch.allclose(model.standardize(feats[:3], ["zz", None, "c"]), g.standardize(feats[:3]))


@pytest.mark.parametrize("normalize", ["global", "speaker", "none"])
def test_batched_equals_single(normalize):
    torch.manual_seed(0)
    model = EGeMAPSMLP(class_names=CLASSES, hidden=[16, 8], normalize=normalize).eval()
    a, b = fake_features(6, 0.0, 1.0, seed=3), fake_features(6, 5.0, 2.0, seed=4)
    model.set_feature_stats(torch.cat([a, b]))
    model.set_speaker_stats({"a": a, "b": b})
    items = items_of(torch.cat([a[:3], b[:3]]), ["a", "a", "b", "b", "zz", "a"])
    with torch.no_grad():
        batched = model(collate(items))
        single = torch.cat([model(collate([it])) for it in items])
        emb = model.embed(collate(items))
    assert batched.shape == (6, 2) and emb.shape == (6, model.embed_dim) == (6, 8)
    assert torch.allclose(single, batched, atol=1e-6)


def test_every_option_is_documented_and_defaults():
    import inspect
    import re

    documented = set(re.findall(r"^\s{8}(\w+):", EGeMAPSMLP.__doc__, flags=re.M))
    params = [p for p in inspect.signature(EGeMAPSMLP.__init__).parameters if p not in ("self", "kwargs")]
    assert params and set(params) <= documented
    model = EGeMAPSMLP(class_names=["a", "b", "c", "d", "e", "f", "g"])
    assert model.hparams.hidden == [128, 64] and model.normalize == "global" and model.embed_dim == 64
    n = sum(p.numel() for p in model.parameters())
    assert n == (88 * 128 + 128) + (128 * 64 + 64) + (64 * 7 + 7)
    with pytest.raises(ValueError, match="normalize"):
        EGeMAPSMLP(class_names=CLASSES, normalize="utterance")


# -- through the DataModule and a Trainer ----------------------------------------------------------
def write_corpus(root, n_per_class_speaker: int, speakers=("s1", "s2", "s3", "s4"), seed=0):
    """A manifest without transcripts: 'low' = low, quiet voices; 'high' = high, loud ones.
    Each speaker has a pitch offset of its own. Split column: s1, s2 train; s3 val; s4 test."""
    rng = np.random.default_rng(seed)
    (root / "wav").mkdir(parents=True)
    rows = []
    for si, spk in enumerate(speakers):
        shift = 1.0 + 0.08 * si
        for label, (f0, amp) in (("low", (120, 0.06)), ("high", (260, 0.4))):
            for k in range(n_per_class_speaker):
                name = f"{spk}_{label}_{k}.wav"
                x = tone(f0 * shift * rng.uniform(0.9, 1.1), amp * rng.uniform(0.7, 1.3),
                         seconds=rng.uniform(0.3, 0.6), seed=int(rng.integers(1 << 30)))
                write(root / "wav" / name, x)
                split = {0: "train", 1: "train", 2: "val"}.get(si, "test")
                rows.append({"path": f"wav/{name}", "label": label, "speaker": spk, "split": split})
    with open(root / "m.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root / "m.csv", rows


def trainer(tmp_path, **kw):
    return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False,
                     default_root_dir=str(tmp_path), **kw)


def test_datamodule_batches_features_not_waveforms(tmp_path, cache_dir, monkeypatch):
    manifest, rows = write_corpus(tmp_path / "corpus", 2)
    from zoo.data.audio import AudioLoader

    def no_waveforms(self, path):
        raise AssertionError(f"waveform decoded for the model: {path}")
    monkeypatch.setattr(AudioLoader, "__call__", no_waveforms)
    dm = EmotionDataModule(corpus=Manifest(path=str(manifest)), cache_dir=str(cache_dir), batch_size=4)
    model = EGeMAPSMLP(class_names=dm.class_names, hidden=[8], normalize="speaker")
    seen = []
    embed = model.embed
    model.embed = lambda b: seen.append(b) or embed(b)
    trainer(tmp_path, max_steps=3, limit_val_batches=1).fit(model, datamodule=dm)
    assert seen and all(b.waveforms is None and b.lengths is None and b.texts is None for b in seen)
    assert all(b.features.shape == (len(b), NUM_FEATURES) and b.speakers for b in seen)
    # every clip analysed once, cached beside (not inside) the audio cache; no audio cached
    assert len(list((cache_dir / "egemaps").glob("*.npy"))) == len(rows)
    assert not list(cache_dir.glob("*.npy"))
    # statistics from the corpus: global = training split, per speaker = every utterance
    feats = EGeMAPS(str(cache_dir))
    train = torch.stack([feats(u.audio) for u in dm.split("train")])
    assert bool(model.stats_initialised)
    assert torch.allclose(model.feat_mean, train.mean(0), rtol=1e-4, atol=1e-4)
    assert set(model.speaker_stats) == {"s1", "s2", "s3", "s4"}
    utts = dm.split("all")
    z = model.standardize(torch.stack([feats(u.audio) for u in utts]), [u.speaker for u in utts])
    for spk in ("s1", "s4"):  # a training and a test speaker
        mine = z[torch.tensor([u.speaker == spk for u in utts])]
        assert mine.mean(0).abs().max() < 1e-3, spk


def test_learns_two_voices(tmp_path, cache_dir):
    manifest, _ = write_corpus(tmp_path / "corpus", 8, seed=1)
    L.seed_everything(0)
    dm = EmotionDataModule(corpus=Manifest(path=str(manifest)), cache_dir=str(cache_dir), batch_size=8)
    model = EGeMAPSMLP(class_names=dm.class_names, hidden=[16], dropout=0.1,
                       optimizer=lambda p: torch.optim.AdamW(p, lr=0.01))
    t = trainer(tmp_path, max_epochs=25)
    t.fit(model, datamodule=dm)
    res = t.test(model, datamodule=dm, verbose=False)[0]
    assert res["test/WA"] >= 0.9 and res["test/UA"] >= 0.9, res  # chance: 0.5
    preds = torch.cat([p["preds"] for p in t.predict(model, datamodule=dm)])
    assert len(preds) == 16 and set(preds.tolist()) == {0, 1}


# -- ComParE 2016 and speaker adaptation at inference ------------------------------------------------
def test_compare_feature_set_through_the_datamodule(tmp_path, cache_dir):
    from zoo.data.features import Functionals

    manifest, rows = write_corpus(tmp_path / "corpus", 1)
    dm = EmotionDataModule(corpus=Manifest(path=str(manifest)), cache_dir=str(cache_dir), batch_size=4)
    model = EGeMAPSMLP(class_names=dm.class_names, feature_set="ComParE_2016", hidden=[], normalize="speaker")
    assert model.inputs == ("compare",) and model.in_dim == 6373 and model.embed_dim == 6373
    seen = []
    embed = model.embed
    model.embed = lambda b: seen.append(b) or embed(b)
    trainer(tmp_path, max_steps=2, limit_val_batches=1).fit(model, datamodule=dm)
    assert seen and all(b.features.shape == (len(b), 6373) and b.waveforms is None for b in seen)
    # its own cache folder: eGeMAPS vectors of the same files are not mistaken for ComParE ones
    assert len(list((cache_dir / "compare_2016").glob("*.npy"))) == len(rows)
    assert not (cache_dir / "egemaps").exists() or not list((cache_dir / "egemaps").glob("*.npy"))
    f = Functionals(None, "ComParE_2016")(str(manifest.parent / rows[0]["path"]))
    assert f.shape == (6373,) and torch.isfinite(f).all()
    with pytest.raises(ValueError, match="unknown feature set"):
        Functionals(None, "emobase")


def test_speaker_adaptation_at_inference(tmp_path, cache_dir):
    from zoo.errors import ZooUserError
    from zoo.inference.predictor import Predictor

    manifest, rows = write_corpus(tmp_path / "corpus", 3)
    torch.manual_seed(0)
    model = EGeMAPSMLP(class_names=CLASSES, hidden=[8], normalize="speaker").eval()
    files = [str(manifest.parent / r["path"]) for r in rows if r["speaker"] == "s4"]
    feats = torch.stack([EGeMAPS(None)(p) for p in files])
    model.set_feature_stats(torch.stack([EGeMAPS(None)(str(manifest.parent / r["path"])) for r in rows]))
    p = Predictor(model, None, source="test", device="cpu")
    plain = [r["probs"]["high"] for r in p.predict_batch(files)]
    assert p.adapt(files) is p and p.speaker == "adapted"
    adapted = [r["probs"]["high"] for r in p.predict_batch(files)]
    # the same numbers as training's per-speaker path: that speaker's own mean/std
    model.set_speaker_stats({"s4": feats})
    items = items_of(feats, ["s4"] * len(files))
    with torch.no_grad():
        want = model(collate(items)).softmax(-1)[:, CLASSES.index("high")]
    assert np.allclose(adapted, want.numpy(), atol=1e-5) and not np.allclose(plain, adapted, atol=1e-3)
    assert np.allclose([r["probs"]["high"] for r in p.adapt(None).predict_batch(files)], plain, atol=1e-6)
    with pytest.raises(ZooUserError, match="at least 2 clips"):
        p.adapt(files[:1])
    g = Predictor(EGeMAPSMLP(class_names=CLASSES, normalize="global").eval(), None, source="t", device="cpu")
    with pytest.raises(ZooUserError, match="normalize: speaker"):
        g.adapt(files)


def test_val_fraction_zero_trains_without_validation(tmp_path, cache_dir):
    """A final model on every speaker (the EmoDB checkpoints' recipe): split.val_fraction 0 and
    test_fraction 0 put every utterance in training and the fit runs with no validation loop."""
    from zoo.data.splits import SplitOptions

    manifest, rows = write_corpus(tmp_path / "corpus", 2)
    lines = manifest.read_text().splitlines()  # drop the split column
    manifest.write_text("\n".join(",".join(x.split(",")[:-1]) for x in lines) + "\n")
    dm = EmotionDataModule(corpus=Manifest(path=str(manifest)), cache_dir=str(cache_dir), batch_size=4,
                           split=SplitOptions(val_fraction=0, test_fraction=0))
    model = EGeMAPSMLP(class_names=dm.class_names, hidden=[8])
    t = trainer(tmp_path, max_epochs=2)
    t.fit(model, datamodule=dm)
    assert len(dm.split("train")) == len(rows) and not dm.split("val")
    assert t.global_step == 2 * 4 and "val/UA" not in t.callback_metrics and "train/loss" in t.callback_metrics
