"""Exports: a wav2vec2 model as a Hugging Face audio-classification model, audio models as ONNX.

Every round trip runs the exported artefact with its own runtime (the transformers pipeline,
``Wav2Vec2ForSequenceClassification``, onnxruntime) and compares it with the zoo model on the
same audio. Models are tiny and random; their heads are scaled so the probabilities are far from
uniform and a wrong mapping shows."""
import json
import os
import shutil

import numpy as np
import pytest
import torch

from zoo.data.batch import collate
from zoo.errors import ZooUserError
from zoo.inference.export import export, export_hf, export_onnx, onnx_graph
from zoo.inference.predictor import Predictor
from zoo.models.loading import build_module

CLASSES = ["Angry", "Happiness", "Neutral", "Sadness"]
SR = 16000
TOL = 1e-4
TINY_W2V = dict(pretrained=None, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                conv_dim=[32] * 7, freeze_feature_encoder=False)
TINY_CNN = dict(channels=[8, 16, 16], hidden=16)


def wav2vec2(norm="group", weighted=False, **kw):
    overrides = {"num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4}
    if norm == "layer":  # XLS-R / large-lv60 style: LayerNorm CNN and pre-LN transformer
        overrides["do_stable_layer_norm"] = True
    torch.manual_seed(0)
    m = build_module({"class_path": "zoo.models.Wav2Vec2Classifier",
                      "init_args": {**TINY_W2V, "feat_extract_norm": norm, "config_overrides": overrides,
                                    "weighted_layers": weighted, **kw}},
                     class_names=CLASSES, sample_rate=SR)
    with torch.no_grad():
        m.head[-1].weight.mul_(4)  # away from uniform probabilities
        if weighted:  # unequal layer weights, so a dropped or reordered hidden state shows
            m.encoder.layer_weights.normal_(generator=torch.Generator().manual_seed(3))
    return m.eval()


def audio_cnn(**kw):
    torch.manual_seed(0)
    m = build_module({"class_path": "zoo.models.AudioCNN", "init_args": {**TINY_CNN, **kw}},
                     class_names=CLASSES, sample_rate=SR)
    with torch.no_grad():
        m.head[-1].weight.mul_(20)  # its pooled BiLSTM outputs are small
        if m.features.global_norm is not None:  # corpus statistics as after training
            g = torch.Generator().manual_seed(4)
            m.features.global_norm.mean.normal_(-8.0, 1.0, generator=g)
            m.features.global_norm.var.uniform_(1.0, 4.0, generator=g)
        for mod in m.modules():  # BatchNorm running statistics as after training
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0.0, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    return m.eval()


def clip(n, f0=220.0, seed=0):
    """A voiced-ish clip: a tone with harmonics plus noise, float32 at SR."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    x = sum(0.2 / k * np.sin(2 * np.pi * f0 * k * t) for k in (1, 2, 3)) + 0.03 * rng.standard_normal(n)
    return x.astype(np.float32)


CLIPS = [clip(16000, 220.0, 0), clip(9137, 310.0, 1)]  # two lengths, neither a multiple of a hop


def zoo_logits(module, waves):
    batch = collate([{"id": str(i), "label": -1, "audio": torch.from_numpy(w)} for i, w in enumerate(waves)])
    with torch.no_grad():
        return module(batch).numpy()


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# -- Hugging Face ----------------------------------------------------------------------------------
HF_CASES = {"group": ("group", False), "layer": ("layer", False),
            "group-weighted": ("group", True), "layer-weighted": ("layer", True)}


@pytest.fixture(scope="module", params=list(HF_CASES))
def hf_export(request, tmp_path_factory):
    norm, weighted = HF_CASES[request.param]
    module = wav2vec2(norm, weighted)
    out = export_hf(module, tmp_path_factory.mktemp(f"hf-{request.param}") / "exported")
    return module, out


def test_hf_directory_is_a_standard_checkpoint(hf_export):
    module, out = hf_export
    from transformers import AutoConfig, AutoFeatureExtractor

    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= {
        p.name for p in out.iterdir()}
    cfg = AutoConfig.from_pretrained(out)
    assert cfg.architectures == ["Wav2Vec2ForSequenceClassification"]
    assert [cfg.id2label[i] for i in range(len(CLASSES))] == CLASSES
    assert cfg.label2id == {c: i for i, c in enumerate(CLASSES)}
    assert cfg.use_weighted_layer_sum == (module.encoder.layer_weights is not None)
    fe = AutoFeatureExtractor.from_pretrained(out)
    assert fe.sampling_rate == module.sample_rate
    assert fe.do_normalize == module.encoder.normalize_waveform
    # HF convention: LayerNorm-CNN checkpoints take an attention mask, GroupNorm ones do not
    assert fe.return_attention_mask == (cfg.feat_extract_norm == "layer")
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("---\n") and "pipeline_tag: audio-classification" in readme
    assert all(c in readme for c in CLASSES)


def test_hf_model_logits_match_the_zoo_model(hf_export):
    module, out = hf_export
    from transformers import AutoFeatureExtractor, Wav2Vec2ForSequenceClassification

    hf = Wav2Vec2ForSequenceClassification.from_pretrained(out).eval()
    fe = AutoFeatureExtractor.from_pretrained(out)
    for w in CLIPS:
        inputs = fe(w, sampling_rate=SR, return_tensors="pt")
        with torch.no_grad():
            got = hf(**inputs).logits.numpy()
        want = zoo_logits(module, [w])
        assert np.abs(got - want).max() < TOL
        assert np.ptp(softmax(want)) > 0.05  # the comparison is not between two uniform outputs
    if fe.return_attention_mask:  # with a mask, HF's padded batch is exact like the zoo's
        inputs = fe(CLIPS, sampling_rate=SR, padding=True, return_tensors="pt")
        with torch.no_grad():
            got = hf(**inputs).logits.numpy()
        assert np.abs(got - zoo_logits(module, CLIPS)).max() < TOL


def test_hf_pipeline_gives_the_zoo_probabilities(hf_export):
    module, out = hf_export
    from transformers import pipeline

    clf = pipeline("audio-classification", model=str(out), device="cpu")
    predictor = Predictor(module, device="cpu")
    for w in CLIPS:
        # top_k=None: every class (the pipeline's default is the top 5)
        got = {r["label"]: r["score"] for r in clf({"raw": w, "sampling_rate": SR}, top_k=None)}
        want = predictor.predict(w, sample_rate=SR)["probs"]
        assert set(got) == set(CLASSES)
        assert max(abs(got[c] - want[c]) for c in CLASSES) < TOL


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the pipeline decodes files with ffmpeg")
def test_hf_pipeline_reads_a_wav_file(tmp_path):
    import soundfile as sf
    from transformers import pipeline

    module = wav2vec2("group")
    out = export_hf(module, tmp_path / "exported")
    path = tmp_path / "a.wav"
    sf.write(path, CLIPS[0], SR, subtype="FLOAT")
    got = {r["label"]: r["score"] for r in pipeline("audio-classification", model=str(out))(str(path), top_k=None)}
    want = Predictor(module, device="cpu").predict(str(path))["probs"]
    assert max(abs(got[c] - want[c]) for c in CLASSES) < TOL


def test_hf_export_writes_the_given_card(tmp_path):
    card = "# my model\n\nTrained on the synthetic corpus, test split.\n"
    out = export(wav2vec2("group"), tmp_path / "x", "hf", card=card)
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "Trained on the synthetic corpus, test split." in readme
    assert "pipeline(\"audio-classification\"" in readme  # how to use it outside the zoo


@pytest.mark.parametrize("kwargs, option", [
    ({"pooling": "attentive"}, "pooling: attentive"),
    ({"head_hidden": 8}, "head_hidden"),
])
def test_hf_export_refuses_what_hf_cannot_represent(tmp_path, kwargs, option):
    with pytest.raises(ZooUserError, match=option):
        export_hf(wav2vec2("group", **kwargs), tmp_path / "x")
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_hf_export_refuses_other_families(tmp_path):
    with pytest.raises(ZooUserError, match="Wav2Vec2Classifier.*--format onnx"):
        export(audio_cnn(), tmp_path / "x", "hf")


# -- ONNX -------------------------------------------------------------------------------------------
def run_onnx(path, waves):
    """onnxruntime on zero-padded waveforms + lengths: (logits, probs)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    lengths = np.array([len(w) for w in waves], dtype=np.int64)
    batch = np.zeros((len(waves), lengths.max()), dtype=np.float32)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    return sess.run(["logits", "probs"], {"waveform": batch, "lengths": lengths})


def check_onnx_round_trip(module, path):
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["class_names"]) == CLASSES
    assert int(meta["sample_rate"]) == module.sample_rate
    # the shortest clip is below one analysis window / the CNN's receptive field (padded by the zoo)
    waves = CLIPS + [clip(300, 180.0, 2)]
    want = softmax(zoo_logits(module, waves))  # the zoo's own padded batch (equal to single clips)
    for i, w in enumerate(waves):  # one clip at a time, each with its own length
        logits, probs = run_onnx(path, [w])
        assert np.abs(probs - want[i]).max() < TOL
        assert np.abs(softmax(logits) - probs).max() < 1e-5
    _, probs = run_onnx(path, waves)  # a padded batch
    assert np.abs(probs - want).max() < TOL
    assert np.ptp(want, axis=1).min() > 0.05  # not uniform: a wrong graph would show


@pytest.mark.parametrize("normalize", ["utterance", "global", "speaker"])
def test_onnx_audio_cnn_matches_pytorch(tmp_path, normalize):
    module = audio_cnn(normalize=normalize)
    path = export(module, tmp_path / "cnn.onnx", "onnx")
    check_onnx_round_trip(module, path)
    # the export worked on copies: the model keeps its own front end and options
    assert module.features.normalize == normalize
    assert type(module.features.mel).__name__ == "MelSpectrogram"


@pytest.mark.parametrize("norm, weighted", [("group", False), ("layer", True)])
def test_onnx_wav2vec2_matches_pytorch(tmp_path, norm, weighted):
    module = wav2vec2(norm, weighted, pooling="attentive", head_hidden=8)  # ONNX takes any head
    path = export_onnx(module, tmp_path / "w2v.onnx")
    check_onnx_round_trip(module, path)


def test_onnx_graph_front_end_and_bilstm_match_the_zoo_modules():
    """The export-only parts (DFT-conv log-mel, unpacked BiLSTM) against torchaudio and packing,
    in PyTorch, on a padded batch."""
    module = audio_cnn(normalize="utterance")
    waves = CLIPS + [clip(4000, 400.0, 5)]
    with torch.no_grad():
        got = onnx_graph(module)(*_padded(waves))[0].numpy()
    assert np.abs(got - zoo_logits(module, waves)).max() < 1e-5


def _padded(waves):
    batch = collate([{"id": str(i), "label": -1, "audio": torch.from_numpy(w)} for i, w in enumerate(waves)])
    return batch.waveforms, batch.lengths


@pytest.mark.skipif(not os.environ.get("ZOO_SLOW_TESTS"), reason="the dynamo exporter takes ~30 s; ZOO_SLOW_TESTS=1")
def test_onnx_dynamo_exporter(tmp_path):
    module = audio_cnn(normalize="utterance")
    check_onnx_round_trip(module, export_onnx(module, tmp_path / "cnn.onnx", exporter="dynamo"))


def test_onnx_refuses_models_it_cannot_export(tmp_path):
    text = build_module({"class_path": "zoo.models.TextBERT", "init_args": {
        "pretrained": None, "vocab_size": 300, "hidden_size": 32, "num_layers": 1, "num_heads": 2,
        "intermediate_size": 64}}, class_names=CLASSES, sample_rate=SR)
    with pytest.raises(ZooUserError, match="audio-only.*TextBERT.*text"):
        export_onnx(text, tmp_path / "t.onnx")
    egemaps = build_module({"class_path": "zoo.models.EGeMAPSMLP", "init_args": {"hidden": [16]}},
                           class_names=CLASSES, sample_rate=SR)
    with pytest.raises(ZooUserError, match="openSMILE"):
        export_onnx(egemaps, tmp_path / "e.onnx")
    with pytest.raises(ZooUserError, match="encoder: cnn_lstm"):
        export_onnx(audio_cnn(encoder="ecapa", channels=[16, 16, 16]), tmp_path / "c.onnx")
    assert not list(tmp_path.iterdir())


def test_export_errors_name_the_option(tmp_path, monkeypatch):
    with pytest.raises(ZooUserError, match="unknown export format 'tflite'.*hf, onnx"):
        export(audio_cnn(), tmp_path / "x", "tflite")
    with pytest.raises(ZooUserError, match="opset"):
        export_onnx(audio_cnn(), tmp_path / "x.onnx", opset=13)
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)  # the extra is not installed
    with pytest.raises(ZooUserError, match=r"zoo\[export\]"):
        export_onnx(audio_cnn(), tmp_path / "x.onnx")
