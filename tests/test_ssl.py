"""SSLClassifier over every transformers speech encoder type: loading by local dir, padding
exactness, Whisper's log-mel front end, freezing modes, LoRA, exports, the embedding cache,
self-contained checkpoints.

The types come from the SSL family table (zoo.nn.ssl): a type registered there is tested here
with no edit. Tiny random models of each (the family's ``tiny_config``) are written with
save_pretrained to a temp dir and loaded back through the same ``pretrained:`` path users give
(no hub access)."""
import re

import pytest
import torch
from transformers import WhisperFeatureExtractor

from zoo.data.batch import collate
from zoo.errors import ZooUserError
from zoo.models import SSLClassifier
from zoo.models.loading import build_module, module_spec
from zoo.nn.ssl import (
    MODEL_TYPES,
    SSLFamily,
    SSLType,
    Wav2Vec2Like,
    families,
    family_for,
    register_family,
    ssl_type,
    whisper_log_mel,
    whisper_mel_filters,
)

CLASSES = ["Angry", "Happiness", "Neutral", "Sadness"]
# every tiny test model: each type in its default layout ("wavlm") and in each of the layouts its
# SSLType lists ("wavlm-large": LayerNorm CNN, pre-LN transformer)
CASES = {t.name + (f"-{v}" if v else ""): (t.name, v)
         for f in families().values() for t in f.types for v in ("", *t.variants)}
TYPES = list(MODEL_TYPES)  # the case of each type in its default layout is named by the type
LAYOUTS = [c for c in CASES if c not in TYPES]
W2V_CASES = [c for c, (t, _) in CASES.items() if isinstance(family_for(t), Wav2Vec2Like)]
HF_EXPORTABLE = [t for t in TYPES if ssl_type(t).hf_classifier]
ONNX_EXPORTABLE = [t for t in TYPES if family_for(t).onnx_exportable]


def cycle(options: list[dict], types: list[str]) -> list[tuple[str, dict]]:
    """(type, options) pairs giving each type the next of ``options`` in turn: every type and every
    option combination is run, without running every pair."""
    return [(t, options[i % len(options)]) for i, t in enumerate(types)]


def save_tiny(tmp_path_factory, names=None) -> dict[str, str]:
    """case name -> a folder holding that tiny random model, saved as users' local models are."""
    from transformers import AutoModel

    out = {}
    for name in names or CASES:
        model_type, variant = CASES[name]
        torch.manual_seed(1)
        d = tmp_path_factory.mktemp(name)
        AutoModel.from_config(family_for(model_type).tiny_config(model_type, variant)).save_pretrained(d)
        out[name] = str(d)
    return out


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return save_tiny(tmp_path_factory)


def make(path, **kw):
    torch.manual_seed(0)
    return SSLClassifier(pretrained=path, class_names=CLASSES, **kw)


def clips(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, n in enumerate(lengths):
        t = torch.arange(n) / 16000
        out.append(0.1 * torch.sin(2 * torch.pi * (150 + 60 * i) * t) + 0.05 * torch.randn(n, generator=g))
    return out


def batch_of(waves, labels=None):
    labels = labels if labels is not None else [0] * len(waves)
    return collate([{"id": str(i), "label": int(y), "audio": w} for i, (w, y) in enumerate(zip(waves, labels))])


# -- the table ------------------------------------------------------------------------------------
def test_the_docs_table_is_generated_from_the_family_table():
    from zoo.nn.ssl.table import DOC, configs_by_type, render

    doc = DOC.read_text(encoding="utf-8")
    assert render(doc) == doc, "docs/models.md is stale: run python -m zoo.nn.ssl.table"
    assert all(f"| `{t}` |" in doc for t in MODEL_TYPES)
    assert set(configs_by_type()) <= set(MODEL_TYPES)  # every SSL config names a type of the table


def test_an_unknown_model_type_is_a_user_error_listing_the_choices():
    with pytest.raises(ZooUserError, match=re.escape(f"model_type must be one of {', '.join(MODEL_TYPES)}, got 'wav2vec3'")):
        SSLClassifier(pretrained=None, model_type="wav2vec3", class_names=CLASSES)


def test_the_cli_lists_the_types_of_the_table(run):
    r = run("fit", "--model.help", "SSLClassifier")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "--model.model_type {" + ",".join(MODEL_TYPES) + "}" in r.stdout


def test_a_family_or_type_is_registered_once(monkeypatch):
    import zoo.nn.ssl.base as base

    monkeypatch.setattr(base, "_FAMILIES", dict(base._FAMILIES))
    monkeypatch.setattr(base, "_TYPES", dict(base._TYPES))

    class Another(SSLFamily):
        types = (SSLType("wavlm", "WavLM again", "WavLMConfig", "WavLMModel"),)

    with pytest.raises(ValueError, match="'wavlm'.* registered twice"):
        register_family(Another)
    with pytest.raises(ValueError, match="Wav2Vec2Like is already registered"):
        register_family(type("Wav2Vec2Like", (SSLFamily,), {"types": ()}))

    class New(SSLFamily):
        types = (SSLType("new-type", "New", "Wav2Vec2Config", "Wav2Vec2Model"),)

    register_family(New)
    assert isinstance(family_for("new-type"), New) and "new-type" in base.model_types()


# -- loading ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CASES))
def test_each_architecture_loads_from_a_local_dir(checkpoints, name):
    from transformers import AutoModel

    model_type, variant = CASES[name]
    model = make(checkpoints[name])
    saved = family_for(model_type).backbone(AutoModel.from_pretrained(checkpoints[name]))  # Whisper: its encoder
    loaded = model.encoder.model.state_dict()
    assert loaded.keys() == saved.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in saved.state_dict().items())
    assert model.encoder.model_type == model_type
    assert type(model.encoder.model).__name__.startswith(type(saved).__name__)
    for k, v in ssl_type(model_type).variants.get(variant, {}).items():  # the layout asked for
        assert getattr(model.encoder.model.config, k) == v
    assert model.embed_dim == 32


def test_an_unsupported_architecture_is_a_user_error(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
              ).save_pretrained(tmp_path)
    with pytest.raises(ZooUserError, match="'bert' model; SSLClassifier runs wav2vec2, hubert"):
        make(str(tmp_path))


@pytest.mark.parametrize("name", W2V_CASES)
def test_an_unpadded_clip_gives_hugging_faces_own_features(checkpoints, name):
    """The re-run CNN + encoder equal the model's own forward on one clip (no padding involved)."""
    model = make(checkpoints[name]).eval()
    w = clips([12345])[0]
    x = (w - w.mean()) / torch.sqrt(w.var(unbiased=False) + 1e-7)
    with torch.no_grad():
        ref = model.encoder.model(x[None]).last_hidden_state
        hidden, n = model.encoder.frames(w[None], torch.tensor([len(w)]))
    assert hidden.shape == ref.shape and n.tolist() == [ref.shape[1]]
    assert torch.allclose(hidden, ref, atol=1e-5), (hidden - ref).abs().max()


# -- padding: every architecture --------------------------------------------------------------------
VARIANTS = {"last": {}, "weighted_attentive": {"weighted_layers": True, "pooling": "attentive"}, "layer1": {"layer": 1}}


# every type with and without the hidden states; one chosen layer once per family; every other
# layout with all its hidden states
@pytest.mark.parametrize("name,variant", [(t, v) for t in TYPES for v in ("last", "weighted_attentive")] +
                         [(f.types[0].name, "layer1") for f in families().values()] +
                         [(c, "weighted_attentive") for c in LAYOUTS])
def test_batched_equals_single_and_padding_is_irrelevant(checkpoints, name, variant):
    model = make(checkpoints[name], **VARIANTS[variant])
    if model.encoder.layer_weights is not None:  # non-uniform weights, so every layer matters
        with torch.no_grad():
            model.encoder.layer_weights.copy_(torch.tensor([0.5, -1.0, 2.0]))
    model.eval()
    # 300 samples: shorter than the CNN's receptive field and than one Whisper window
    waves = clips([16000, 9000, 4001, 300, 23999])
    b = batch_of(waves)
    with torch.no_grad():
        batched = model(b)
        single = torch.cat([model(batch_of([w])) for w in waves])
        assert (batched - single).abs().max() <= 1e-4, (batched - single).abs().max()
        pad = torch.arange(b.waveforms.shape[1])[None] >= b.lengths[:, None]
        b.waveforms[pad] = 0.5 * torch.randn(int(pad.sum()))
        assert (model(b) - batched).abs().max() <= 1e-4


# -- Whisper ----------------------------------------------------------------------------------------
def test_whisper_log_mel_is_the_feature_extractors_on_the_30s_window():
    fe = WhisperFeatureExtractor(feature_size=80)
    waves = clips([16000, 4321, 700])
    b = batch_of(waves)
    mel, frames = whisper_log_mel(b.waveforms, b.lengths, whisper_mel_filters(80))
    for i, w in enumerate(waves):
        ref = torch.from_numpy(fe(w.numpy(), sampling_rate=16000, return_tensors="np").input_features[0])
        n = len(w) // 160
        assert frames[i] == n
        assert torch.allclose(mel[i, :, :n], ref[:, :n], atol=1e-4), (mel[i, :, :n] - ref[:, :n]).abs().max()


def test_whisper_30s_context_is_the_whisper_encoders_own_forward(checkpoints):
    from transformers import WhisperModel

    model = make(checkpoints["whisper"], whisper_context="30s").eval()
    hf = WhisperModel.from_pretrained(checkpoints["whisper"]).encoder.eval()
    fe = WhisperFeatureExtractor(feature_size=80)
    w = clips([8000])[0]
    feats = torch.from_numpy(fe(w.numpy(), sampling_rate=16000, return_tensors="np").input_features)
    with torch.no_grad():
        ref = hf(feats).last_hidden_state
        hidden, n = model.encoder.frames(w[None], torch.tensor([len(w)]))
    assert hidden.shape == ref.shape == (1, 1500, 32) and n.tolist() == [25]  # 0.5 s = 25 frames of 20 ms
    assert torch.allclose(hidden, ref, atol=1e-4), (hidden - ref).abs().max()
    # the clip context sees only the clip's frames: same positions, no attention to the silence
    clip = make(checkpoints["whisper"]).eval()
    with torch.no_grad():
        short, m = clip.encoder.frames(w[None], torch.tensor([len(w)]))
    assert short.shape == (1, 25, 32) and m.tolist() == [25]


# -- freezing ---------------------------------------------------------------------------------------
def _trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("name", TYPES)
def test_freezing_modes(checkpoints, name):
    from transformers import AutoModel

    head = {"head.1.weight", "head.1.bias"}
    family = family_for(name)
    frozen = make(checkpoints[name], freeze_encoder=True, layer=1).train()
    assert _trainable(frozen) == head and not frozen.encoder.model.training
    top = make(checkpoints[name], trainable_layers=1).train()
    layers = top.encoder.layers
    assert layers[1].training and not layers[0].training
    assert _trainable(top) - head and all(".layers.1." in n or "layer_norm" in n for n in _trainable(top) - head)
    # no LayerDrop (wav2vec2-layout default 0.1), so the gradient check below is about freezing only
    full = make(checkpoints[name], encoder_lr=1e-5, optimizer=lambda p: torch.optim.AdamW(p, lr=1e-3),
                config_overrides={"layerdrop": 0.0})
    backbone = {n.removeprefix("encoder.model.") for n in _trainable(full) - head}
    assert backbone and not any(n.startswith(family.front_end_prefixes) for n in backbone)  # freeze_feature_encoder
    assert any(n.startswith(family.front_end_prefixes) for n, _ in full.encoder.model.named_parameters())
    # parameters transformers keeps fixed (Whisper's sinusoidal positions) never train
    fixed = {n for n, p in family.backbone(AutoModel.from_pretrained(checkpoints[name])).named_parameters()
             if not p.requires_grad}
    assert not fixed & backbone
    if name == "whisper":
        assert fixed == {"embed_positions.weight"}
    assert [g["lr"] for g in full.configure_optimizers().param_groups] == [1e-3, 1e-5]
    b = batch_of(clips([8000, 5000]), labels=[0, 1])
    full.train()
    full.loss(full(b), b).backward()
    assert all(p.grad is not None for n, p in full.named_parameters() if p.requires_grad and "layers.0." in n)


def test_layer_and_weighted_layers_exclude_each_other(checkpoints):
    with pytest.raises(ZooUserError, match="either one layer"):
        make(checkpoints["hubert"], layer=1, weighted_layers=True)
    with pytest.raises(ZooUserError, match="layer=5"):
        make(checkpoints["hubert"], layer=5)


# -- LoRA -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TYPES)
def test_lora_trains_only_the_adapters_and_the_head(checkpoints, name):
    model = make(checkpoints[name], lora_rank=4, lora_alpha=8, encoder_lr=1e-2,
                 optimizer=lambda p: torch.optim.AdamW(p, lr=1e-2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lora = {n for n in before if "lora_" in n}
    assert lora and all(n.endswith("weight") for n in lora)
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in lora}
    assert adapted == set(ssl_type(name).lora_targets)  # the type's default targets
    opt = model.configure_optimizers()
    model.train()
    waves, labels = clips([6000, 9000, 4000, 7000], seed=2), [0, 1, 2, 3]
    for _ in range(3):
        b = batch_of(waves, labels)
        opt.zero_grad()
        model.loss(model(b), b).backward()
        opt.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == lora | {"head.1.weight", "head.1.bias"}, changed ^ (lora | {"head.1.weight", "head.1.bias"})


@pytest.mark.parametrize("name", [t for t in TYPES if ssl_type(t).lora_bypassed])
def test_lora_on_modules_the_forward_bypasses_is_refused(checkpoints, name):
    """WavLM's attention reads its q/k/v weights directly: adapters there would never run."""
    with pytest.raises(ZooUserError, match=f"{re.escape(ssl_type(name).title)}'s attention reads q_proj"):
        make(checkpoints[name], lora_rank=4, lora_target_modules=["q_proj", "v_proj"])


# -- checkpoints ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,kw", cycle([{"lora_rank": 2}, {"weighted_layers": True}, {},
                                           {"normalize_waveform": None}], TYPES))
def test_a_checkpoint_rebuilds_without_the_pretrained_dir(checkpoints, name, kw, tmp_path):
    import shutil

    src = tmp_path / name
    shutil.copytree(checkpoints[name], src)
    model = make(str(src), **kw).eval()
    with torch.no_grad():
        for p in model.parameters():  # adapters start at zero: make them matter
            p.add_(0.01 * torch.randn_like(p))
    ckpt = {"hyper_parameters": dict(model.hparams), "state_dict": model.state_dict()}
    model.on_save_checkpoint(ckpt)
    shutil.rmtree(src)  # the checkpoint must not need it (nor the hub)
    hp = ckpt["hyper_parameters"]
    assert hp["pretrained"] is None and hp["model_type"] == model.encoder.model_type
    assert isinstance(hp["normalize_waveform"], bool)
    rebuilt = SSLClassifier(**{k: v for k, v in hp.items() if not k.startswith("_")}).eval()
    rebuilt.load_state_dict(ckpt["state_dict"])
    b = batch_of(clips([7000, 3000]))
    with torch.no_grad():
        assert torch.allclose(rebuilt(b), model(b), atol=1e-6)
    # the spec a fusion model records rebuilds it too
    spec = module_spec(model)
    assert spec["init_args"]["pretrained"] is None
    assert isinstance(build_module(spec, class_names=CLASSES), SSLClassifier)


# -- exports ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,kw", cycle([{"layer": 1}, {"lora_rank": 2, "weighted_layers": True}, {}],
                                          HF_EXPORTABLE))
def test_hf_export_of_each_type(checkpoints, name, kw, tmp_path):
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    from zoo.inference.export import export_hf

    model = make(checkpoints[name], **kw).eval()
    with torch.no_grad():
        model.head[-1].weight.mul_(20)
        for n, p in model.named_parameters():
            if "lora_B" in n:  # zero at the start: make the adapters count
                p.normal_(0, 0.5)
            if "layer_weights" in n:
                p.normal_()
    out = export_hf(model, tmp_path / "hf")
    hf = AutoModelForAudioClassification.from_pretrained(out).eval()
    assert type(hf).__name__ == ssl_type(name).hf_classifier
    fe = AutoFeatureExtractor.from_pretrained(out)
    w = clips([9137])[0]
    with torch.no_grad():
        got = hf(**fe(w.numpy(), sampling_rate=16000, return_tensors="pt")).logits
        want = model(batch_of([w]))
    assert want.softmax(-1).max() - want.softmax(-1).min() > 0.05
    assert (got - want).abs().max() < 1e-4, (got - want).abs().max()


def test_whisper_exports_are_refused(checkpoints, tmp_path):
    from zoo.inference.export import export_hf, onnx_graph

    model = make(checkpoints["whisper"])
    with pytest.raises(ZooUserError, match="WhisperForAudioClassification"):
        export_hf(model, tmp_path / "hf")
    with pytest.raises(ZooUserError, match="Whisper-encoder"):
        onnx_graph(model)


@pytest.mark.parametrize("name,kw", cycle([{"lora_rank": 2}, {"freeze_encoder": True, "weighted_layers": True}],
                                          ONNX_EXPORTABLE))
def test_onnx_export_of_each_type(checkpoints, name, kw, tmp_path):
    import numpy as np
    import onnxruntime as ort

    from zoo.inference.export import export_onnx

    # a frozen encoder keeps its embedding cache: the graph must trace the encoder, not the cache
    model = make(checkpoints[name], embedding_cache=str(tmp_path / "cache"), **kw).eval()
    with torch.no_grad():
        model.head[-1].weight.mul_(20)
        for n, p in model.named_parameters():
            if "lora_B" in n or "layer_weights" in n:  # zero at the start: make them count
                p.normal_(0, 0.5)
    path = export_onnx(model, tmp_path / "m.onnx")
    waves = clips([9000, 4000])
    b = batch_of(waves)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits, _ = sess.run(["logits", "probs"], {"waveform": b.waveforms.numpy().astype(np.float32),
                                               "lengths": b.lengths.numpy().astype(np.int64)})
    with torch.no_grad():
        want = model(b).numpy()
    assert np.abs(logits - want).max() < 1e-4
    assert np.ptp(want, axis=1).min() > 0.05  # not uniform: a wrong graph would show
    assert not list((tmp_path / "cache").rglob("*.npy"))  # the export ran the encoder, not the cache


def test_a_lora_model_trained_by_lightning_loads_offline(checkpoints, tmp_path):
    import shutil

    import lightning as L

    from zoo.models.loading import load_module

    src = tmp_path / "hubert"
    shutil.copytree(checkpoints["hubert"], src)
    model = make(str(src), lora_rank=4, encoder_lr=1e-2, optimizer=lambda p: torch.optim.AdamW(p, lr=1e-2))
    items = [{"id": str(i), "label": i % 2, "audio": w} for i, w in enumerate(clips([5000, 6000, 7000, 8000]))]
    loader = torch.utils.data.DataLoader(items, batch_size=2, collate_fn=collate)
    trainer = L.Trainer(accelerator="cpu", max_steps=3, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, loader)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    shutil.rmtree(src)
    loaded = load_module(str(tmp_path / "m.ckpt")).eval()  # weights_only, no hub, no pretrained dir
    assert loaded.encoder.lora and loaded.hparams.lora_rank == 4
    assert any(p.abs().sum() > 0 for n, p in loaded.named_parameters() if "lora_B" in n)  # trained adapters
    b = batch_of(clips([7000, 3000], seed=4))
    model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(b), model(b), atol=1e-6)


# -- embedding cache --------------------------------------------------------------------------------
@pytest.mark.parametrize("name,kw", cycle([{"weighted_layers": True}, {"layer": 1, "pooling": "attentive"}, {},
                                           {"weighted_layers": True, "pooling": "attentive"}], TYPES))
def test_cached_logits_equal_uncached_ones(checkpoints, name, kw, tmp_path):
    model = make(checkpoints[name], freeze_encoder=True, embedding_cache=str(tmp_path / "c"), **kw).eval()
    if model.encoder.layer_weights is not None:
        with torch.no_grad():
            model.encoder.layer_weights.copy_(torch.tensor([0.5, -1.0, 2.0]))
    b = batch_of(clips([16000, 7000, 300, 9000]))
    enc = model.encoder
    with torch.no_grad():
        ref = model.head(enc(b.waveforms, b.lengths, cache=False))
        first = model.head(enc(b.waveforms, b.lengths))  # computes and writes
        second = model.head(enc(b.waveforms, b.lengths))  # reads
    cache = enc._cache_obj[1]
    assert (cache.misses, cache.hits) == (4, 4)
    assert len(list(cache.root.rglob("*.npy"))) == 4
    assert (first - ref).abs().max() <= 1e-5 and (second - ref).abs().max() <= 1e-5
    # gradients still reach the trainable part behind the cache (layer weights, attentive pooling)
    model.train()
    model.loss(model.head(enc(b.waveforms, b.lengths)), b).backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for p in trainable)


def test_the_cache_key_follows_weights_and_samples(checkpoints, tmp_path):
    root = tmp_path / "c"
    a = make(checkpoints["hubert"], freeze_encoder=True, embedding_cache=str(root)).eval()
    w = clips([8000])
    b = batch_of(w)
    with torch.no_grad():
        a.encoder(b.waveforms, b.lengths)
        other = make(checkpoints["hubert"], freeze_encoder=True, embedding_cache=str(root)).eval()
        other.encoder.model.encoder.layers[0].attention.q_proj.weight.add_(0.1)  # other weights
        other.encoder(b.waveforms, b.lengths)
        assert other.encoder._cache_obj[1].root != a.encoder._cache_obj[1].root
        a.encoder(b.waveforms * 0.5, b.lengths)  # other samples: a miss under the same encoder
        assert a.encoder._cache_obj[1].misses == 2
        # options that change the output change the key too
        c = make(checkpoints["hubert"], freeze_encoder=True, normalize_waveform=False, embedding_cache=str(root))
        c.eval().encoder(b.waveforms, b.lengths)
        assert c.encoder._cache_obj[1].root != a.encoder._cache_obj[1].root


def test_no_cache_while_the_encoder_trains(checkpoints, tmp_path):
    model = make(checkpoints["wavlm"], trainable_layers=1, embedding_cache=str(tmp_path / "c")).eval()
    b = batch_of(clips([8000]))
    with torch.no_grad():
        model.encoder(b.waveforms, b.lengths)
    assert not model.encoder.deterministic
    assert not list((tmp_path / "c").rglob("*.npy"))
    # the frozen warm-up of unfreeze_after_steps is cached; once unfrozen it is not
    warm = make(checkpoints["wavlm"], unfreeze_after_steps=5, embedding_cache=str(tmp_path / "w")).eval()
    assert warm.encoder.deterministic
    warm.encoder.set_backbone_frozen(False)
    assert not warm.encoder.deterministic


def _cache_worker(args):
    from zoo.nn.cache import EmbeddingCache

    root, seed = args
    value = torch.arange(200_000, dtype=torch.float32).reshape(2, -1)
    c = EmbeddingCache(root, "enc")
    bad = 0
    for i in range(30):
        key = f"{(i * 7 + seed) % 10:02d}" * 20
        c.put(key, value)
        got = c.get(key)
        bad += got is None or not torch.equal(got, value)
    return bad


def test_concurrent_writers_never_expose_a_partial_entry(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    # three writers of the same ten entries at once (threads: a forked child of a process that
    # has run torch can hang in its thread pool; the rename that makes a write atomic is the same)
    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(_cache_worker, [(str(tmp_path), s) for s in range(3)])) == [0, 0, 0]
    assert not list(tmp_path.rglob("*.tmp"))  # every temporary file was renamed into place


def test_a_frozen_fit_reads_the_cache_from_the_second_epoch(checkpoints, tmp_path):
    import lightning as L

    model = make(checkpoints["wavlm"], freeze_encoder=True, weighted_layers=True,
                 embedding_cache=str(tmp_path / "c"), optimizer=lambda p: torch.optim.AdamW(p, lr=1e-2))
    items = [{"id": str(i), "label": i % 2, "audio": w} for i, w in enumerate(clips([5000, 6000, 7000, 8000]))]
    loader = torch.utils.data.DataLoader(items, batch_size=2, collate_fn=collate)
    trainer = L.Trainer(accelerator="cpu", max_epochs=3, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, loader)
    cache = model.encoder._cache_obj[1]
    assert (cache.misses, cache.hits) == (4, 8)
    assert not torch.equal(model.encoder.layer_weights.detach(), torch.zeros(3))  # the mix trained
    b = batch_of(clips([5000, 6000]))
    model.eval()
    with torch.no_grad():
        assert (model(b) - model.head(model.encoder(b.waveforms, b.lengths, cache=False))).abs().max() <= 1e-5


def test_a_frozen_late_fusion_branch_is_cached(checkpoints, tmp_path):
    from zoo.models import LateFusion

    text = {"class_path": "zoo.models.TextBERT",
            "init_args": {"pretrained": None, "vocab_size": 200, "hidden_size": 32, "num_layers": 1,
                          "num_heads": 2, "intermediate_size": 64}}
    audio = {"class_path": "zoo.models.SSLClassifier",
             "init_args": {"pretrained": checkpoints["wavlm"], "embedding_cache": str(tmp_path / "c")}}
    fused = LateFusion(class_names=CLASSES, audio_branch=audio, text_branch=text, freeze_encoders=True).train()
    assert fused.audio.encoder.deterministic  # stage 2: the branch is frozen by the fusion model
    trainable = LateFusion(class_names=CLASSES, audio_branch=audio, text_branch=text).train()
    assert not trainable.audio.encoder.deterministic
