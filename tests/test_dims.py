"""Dimensional targets (arousal, valence, dominance): the shared head, the CCC loss and metrics,
every family predicting categories, dimensions or both, and a short training run on the
synthetic corpus whose test CCC on arousal must rise well above 0."""
import csv
import math
from pathlib import Path

import pytest
import torch
import yaml
from torchmetrics.functional.regression import concordance_corrcoef

from test_model_family import SENTENCES, TEXT, items
from zoo.data.batch import collate
from zoo.data.text import train_tokenizer
from zoo.errors import ZooUserError
from zoo.nn.heads import Head
from zoo.nn.losses import ccc, ccc_loss

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["Angry", "Happiness", "Neutral", "Sadness"]
AUDIO = {"class_path": "zoo.models.AudioCNN", "init_args": {"channels": [8, 16, 16], "hidden": 16}}


def tiny_families() -> dict[str, dict]:
    """Family class name -> the init args of its CPU overlay in configs/model/tiny/ (the first file
    of each class): every family with a config, which tests/test_model_configs.py requires, is
    tested here without a list to keep."""
    out = {}
    for p in sorted((ROOT / "configs/model/tiny").glob("*.yaml")):
        model = yaml.safe_load(p.read_text(encoding="utf-8"))["model"]
        cls = model.get("class_path") or yaml.safe_load(
            (ROOT / "configs/model" / p.name).read_text(encoding="utf-8"))["model"]["class_path"]
        out.setdefault(cls.rsplit(".", 1)[1], model.get("init_args") or {})
    return out


FAMILIES = tiny_families()


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_tokenizer(SENTENCES * 4, vocab_size=150, cache_dir=tmp_path_factory.mktemp("tok"))


def build(cls_name, targets, tokenizer, **extra):
    import zoo.models

    torch.manual_seed(0)
    model = getattr(zoo.models, cls_name)(class_names=CLASSES, targets=targets, **FAMILIES[cls_name], **extra)
    if cls_name == "TextTfidf":
        model.prepare_tokenizer(SENTENCES * 2)
    elif hasattr(model, "set_tokenizer"):
        model.set_tokenizer(tokenizer)
    return model


def rated_batch(model, tokenizer, dims):
    """A batch of len(dims) utterances whose ratings are ``dims`` rows (NaN: not rated)."""
    its = items(model, tokenizer, [4000 + 1000 * i for i in range(len(dims))])
    for i, (it, d) in enumerate(zip(its, dims)):
        it["label"] = i % len(CLASSES)
        it["dims"] = torch.tensor(d, dtype=torch.float32)
    return collate(its)


# -- head, loss ----------------------------------------------------------------------------------
def test_head_keeps_the_category_only_keys_and_loads_a_bare_linear():
    head = Head(16, 4, dropout=0.1)
    assert list(head.state_dict()) == ["1.weight", "1.bias"]  # what shipped checkpoints hold
    both = Head(16, 4, 2, hidden=8)
    logits, dims = both.split(torch.randn(3, 6))
    assert logits.shape == (3, 4) and dims.shape == (3, 2)
    assert Head(16, 0, 2).split(torch.randn(3, 2))[0] is None
    old = torch.nn.Linear(16, 4)  # the eGeMAPS MLP's head before the shared one
    head.load_state_dict(old.state_dict())
    assert torch.equal(head[1].weight, old.weight)
    with pytest.raises(ValueError):
        Head(16, 0, 0)


def test_ccc_matches_torchmetrics_and_the_loss_masks_unrated_rows():
    g = torch.Generator().manual_seed(0)
    p, t = torch.rand(20, generator=g), torch.rand(20, generator=g)
    assert float(ccc(p, t)) == pytest.approx(float(concordance_corrcoef(p, t)), abs=1e-5)
    assert float(ccc(t, t)) == pytest.approx(1.0)
    pred, target = torch.rand(6, 2, generator=g), torch.rand(6, 2, generator=g)
    mask = torch.tensor([[1, 1], [1, 0], [1, 1], [0, 0], [1, 1], [1, 0]], dtype=torch.bool)
    loss = ccc_loss(pred, target, mask)
    assert float(loss[0]) == pytest.approx(1 - float(ccc(pred[mask[:, 0], 0], target[mask[:, 0], 0])), abs=1e-6)
    changed = target.clone()
    changed[~mask] = 99.0  # an unrated utterance's (absent) rating cannot matter
    assert torch.allclose(ccc_loss(pred, changed, mask), loss)
    one = torch.zeros_like(mask)
    one[0] = True
    assert torch.equal(ccc_loss(pred, target, one), torch.zeros(2))  # < 2 rated rows: no CCC


# -- every family --------------------------------------------------------------------------------
@pytest.mark.parametrize("targets", [["category", "arousal", "valence"], ["arousal", "valence", "dominance"]])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_predicts_its_targets_and_learns_from_rated_rows_only(family, targets, tokenizer):
    model = build(family, targets, tokenizer)
    n_cls = len(CLASSES) if "category" in targets else 0
    n_dims = len(targets) - ("category" in targets)
    b = rated_batch(model, tokenizer, [[0.2, 0.7, math.nan], [0.9, 0.1, 0.5], [0.5, math.nan, 0.3],
                                       [0.4, 0.6, 0.8], [0.7, 0.2, math.nan]])
    model.train()
    out = model(b)
    assert out.shape == (5, n_cls + n_dims)
    logits, dims = model.split_outputs(out)
    assert (logits is None) == (n_cls == 0) and dims.shape == (5, n_dims)
    loss = model.loss(out, b)
    assert torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    with torch.no_grad():
        pred = model.predict_step(b, 0)
    assert pred["dims"].shape == (5, n_dims) and pred["probs"].shape == (5, n_cls)


def test_targets_and_weights_are_checked():
    from zoo.models import AudioCNN, LateFusion

    for bad in ([], ["category", "category"], ["arousal", "pleasure"]):
        with pytest.raises(ZooUserError, match="targets"):
            AudioCNN(class_names=CLASSES, targets=bad)
    with pytest.raises(ZooUserError, match="target_weights"):
        AudioCNN(class_names=CLASSES, targets=["arousal"], target_weights={"valence": 1.0})
    with pytest.raises(ZooUserError, match="feature-level fusion"):
        LateFusion(class_names=CLASSES, audio_branch=AUDIO, text_branch=TEXT, fusion="probs", targets=["arousal"])
    # a dimension-only model needs no classes; it monitors mean CCC
    m = AudioCNN(class_names=[], targets=["arousal"], **AUDIO["init_args"])
    assert m.monitor == "val/CCC_mean" and m.num_logits == 0


def test_multi_task_weights_weigh_each_loss(tokenizer):
    b_dims = [[0.2, 0.7, math.nan], [0.9, 0.1, 0.5], [0.5, 0.3, 0.3], [0.4, 0.6, 0.8]]
    both = build("AudioCNN", ["category", "arousal"], tokenizer).eval()
    b = rated_batch(both, tokenizer, b_dims)
    with torch.no_grad():
        out = both(b)
        logits, dims = both.split_outputs(out)
        ce = both.category_loss(logits, b)
        cc = both.dims_loss(dims, b)[0]
        assert float(both.loss(out, b)) == pytest.approx(float(ce + cc), abs=1e-5)
        both.target_weights = {"category": 0.5, "arousal": 2.0}
        assert float(both.loss(out, b)) == pytest.approx(float(0.5 * ce + 2.0 * cc), abs=1e-5)


def test_a_batch_without_ratings_is_a_clear_error(tokenizer):
    model = build("AudioCNN", ["arousal"], tokenizer)
    b = collate(items(model, tokenizer, [4000, 5000]))
    with pytest.raises(ZooUserError, match="no dimensional ratings"):
        model.loss(model(b), b)


# -- a short training run ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny AudioCNN fitted on arousal and valence of the synthetic corpus (5 epochs)."""
    from zoo.cli import main

    d = tmp_path_factory.mktemp("dims")
    try:
        main(["fit", "--config", str(ROOT / "configs/data/synthetic.yaml"), "--data.corpus.size", "160",
              "--data.max_seconds", "4", "--data.batch_size", "8",
              "--config", str(ROOT / "configs/model/audio_cnn.yaml"),
              "--config", str(ROOT / "configs/model/tiny/audio_cnn.yaml"),
              "--model.init_args.targets", "[arousal, valence]",
              "--model.init_args.optimizer.init_args.lr", "0.005",
              "--model.init_args.lr_schedule", "constant", "--model.init_args.warmup_steps", "0",
              "--trainer.max_epochs", "5", "--trainer.enable_progress_bar", "false", "--test_after_fit", "true",
              "--trainer.default_root_dir", str(d), "--trainer.logger.init_args.save_dir", str(d)])
    except SystemExit as e:
        assert not e.code, f"fit failed with exit code {e.code}"
    return d / "zoo/version_0"


def test_a_dimension_only_model_learns_arousal_and_is_chosen_by_mean_ccc(trained):
    rows = list(csv.DictReader(open(trained / "metrics.csv", encoding="utf-8")))
    test = next(r for r in rows if r.get("test/CCC_arousal"))
    print(f"test CCC arousal {float(test['test/CCC_arousal']):.3f}, valence {float(test['test/CCC_valence']):.3f}")
    assert float(test["test/CCC_arousal"]) > 0.3
    assert float(test["test/MAE_arousal"]) < 0.25
    assert not any(k.endswith("/UA") for k in rows[0])  # no category metrics for a category-less model
    for r in rows:
        if r.get("val/CCC_mean"):
            assert float(r["val/CCC_mean"]) == pytest.approx(
                (float(r["val/CCC_arousal"]) + float(r["val/CCC_valence"])) / 2, abs=1e-5)
    best = list((trained / "checkpoints").glob("best-*.ckpt"))
    assert len(best) == 1 and "-CCC" in best[0].name


# -- inference: predict, infer, cards, demo, export -----------------------------------------------
def _wav(path, seconds=2.0, f0=180.0, sr=16000):
    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * f0 * (1 + 0.1 * np.sin(3 * t)) * t)).astype(np.float32), sr)
    return path


def test_predict_infer_and_card_report_the_dimensions(trained, tmp_path, run):
    import zoo
    from zoo.inference.commands import _card_meta
    from zoo.inference.cards import card_markdown

    best = next((trained / "checkpoints").glob("best-*.ckpt"))
    m = zoo.load(str(best), device="cpu", max_seconds=3.0, window=1.5, hop=1.0)
    assert m.dims == ["arousal", "valence"] and m.class_names == []
    files = [_wav(tmp_path / f"{i}.wav", seconds=1.0 + i, f0=150 + 60 * i) for i in range(3)]
    batch = m.predict_batch(files)
    for i, f in enumerate(files):
        one = m.predict(f)
        assert one["label"] is None and one["probs"] == {}
        assert one["dims"] == pytest.approx(batch[i]["dims"], abs=1e-5)
    long = m.predict(_wav(tmp_path / "long.wav", seconds=5.0))  # windowed: dims per window and overall
    assert "dims" in long and all("dims" in w for w in long["track"])
    out = tmp_path / "out.csv"
    r = run("infer", "--model", str(best), *map(str, files), "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    assert [k for k in rows[0] if k in ("arousal", "valence")] == ["arousal", "valence"]
    assert float(rows[1]["arousal"]) == pytest.approx(batch[1]["dims"]["arousal"], abs=1e-5)
    card = card_markdown({**_card_meta(m.module, None, str(best)),
                          "metrics": {"test/CCC_arousal": 0.8, "test/CCC_mean": 0.5, "test/MAE_arousal": 0.1}})
    assert "## Dimensions" in card and "| 0 | arousal |" in card and "## Labels" not in card
    assert "| CCC arousal | 0.800 |" in card and "| MAE arousal | 0.100 |" in card and "concordance" in card


def test_category_and_dimensions_together_in_the_predictor_and_the_plane(tokenizer, tmp_path):
    from zoo.inference.demo import av_plane
    from zoo.inference.predictor import Predictor

    module = build("AudioCNN", ["category", "arousal", "valence"], tokenizer)
    p = Predictor(module, device="cpu")
    r = p.predict(str(_wav(tmp_path / "a.wav")))
    assert r["label"] in CLASSES and sum(r["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    assert set(r["dims"]) == {"arousal", "valence"}
    fig = av_plane(r["dims"])
    (x, y), = fig.axes[0].collections[0].get_offsets()
    assert (x, y) == pytest.approx((r["dims"]["valence"], r["dims"]["arousal"]))
    assert av_plane(None) is None and av_plane({"dominance": 0.3}) is None


@pytest.mark.parametrize("targets", [["category", "arousal"], ["arousal", "valence"]])
def test_onnx_export_outputs_the_dimensions(tokenizer, tmp_path, targets):
    import json

    import numpy as np
    import onnx
    import onnxruntime as ort

    from zoo.inference.export import export_onnx

    module = build("AudioCNN", targets, tokenizer).eval()
    path = export_onnx(module, tmp_path / "m.onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    dims = [t for t in targets if t != "category"]
    assert json.loads(meta["dims"]) == dims
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    assert names == (["logits", "probs"] if "category" in targets else []) + ["dims"]
    wav = np.asarray(0.1 * np.sin(np.arange(8000) / 7.0), dtype=np.float32)[None]
    got = dict(zip(names, sess.run(names, {"waveform": wav, "lengths": np.array([8000])})))
    b = collate([{"id": "a", "label": -1, "audio": torch.from_numpy(wav[0])}])
    with torch.no_grad():
        want_logits, want_dims = module.split_outputs(module(b))
    assert np.abs(got["dims"] - want_dims.numpy()).max() < 1e-4
    if want_logits is not None:
        assert np.abs(got["logits"] - want_logits.numpy()).max() < 1e-4


def test_hf_export_refuses_dimensions(tmp_path):
    from zoo.inference.export import export_hf
    from zoo.models import Wav2Vec2Classifier

    module = Wav2Vec2Classifier(class_names=CLASSES, targets=["category", "arousal"], pretrained=None,
                                hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                                conv_dim=[16] * 7)
    with pytest.raises(ZooUserError, match="dimensions"):
        export_hf(module, tmp_path / "hf")


def test_predict_command_writes_the_dimensions(trained, tmp_path, run):
    best = next((trained / "checkpoints").glob("best-*.ckpt"))
    out = tmp_path / "pred.csv"
    r = run("predict", "--config", str(trained / "config.yaml"), "--ckpt_path", str(best),
            "--predictions.path", str(out), "--trainer.enable_progress_bar", "false")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    assert rows and set(rows[0]) == {"id", "label", "true_label", "arousal", "valence"}
    # a regression output (unbounded: it may overshoot the [0, 1] rating range a little)
    bad = [r for r in rows if not (r["label"] == "" and -0.5 <= float(r["arousal"]) <= 1.5)]
    assert not bad, bad[:3]
