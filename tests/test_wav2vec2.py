"""wav2vec2: checkpoint loading, padding exactness, freezing schedules, parameter groups, learning.

Tiny random wav2vec2 checkpoints are written with save_pretrained and loaded back through the
same ``pretrained:`` path users give (no hub access)."""
import copy
import inspect
import re
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from transformers import Wav2Vec2Config, Wav2Vec2Model

from zoo.data.batch import collate
from zoo.errors import ZooUserError
from zoo.models import EmotionModule, SSLClassifier, Wav2Vec2Classifier

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["Angry", "Happiness", "Neutral", "Sadness"]
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            conv_dim=[16] * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """{"group": dir, "layer": dir}: wav2vec2-base style (GroupNorm CNN, post-LN transformer)
    and XLS-R style (LayerNorm CNN, pre-LN transformer) tiny random models."""
    out = {}
    for norm in ("group", "layer"):
        torch.manual_seed(1)
        cfg = Wav2Vec2Config(feat_extract_norm=norm, do_stable_layer_norm=norm == "layer", **TINY)
        d = tmp_path_factory.mktemp(f"w2v-{norm}")
        Wav2Vec2Model(cfg).save_pretrained(d)
        out[norm] = str(d)
    return out


def make(path, **kw):
    torch.manual_seed(0)
    return Wav2Vec2Classifier(pretrained=path, class_names=CLASSES, **kw)


def clips(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=g) * 0.1 for n in lengths]


def batch_of(waves, labels=None):
    labels = labels if labels is not None else [0] * len(waves)
    return collate([{"id": str(i), "label": int(y), "audio": w} for i, (w, y) in enumerate(zip(waves, labels))])


def single_and_batched(model, waves):
    model.eval()
    with torch.no_grad():
        batched = model(batch_of(waves))
        single = torch.cat([model(batch_of([w])) for w in waves])
    return single, batched


def standardised(w):
    return (w - w.mean()) / torch.sqrt(w.var(unbiased=False) + 1e-7)


# -- loading ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm", ["group", "layer"])
def test_pretrained_weights_load_from_a_local_dir(checkpoints, norm):
    model = make(checkpoints[norm])
    saved = Wav2Vec2Model.from_pretrained(checkpoints[norm]).state_dict()
    loaded = model.encoder.model.state_dict()
    assert loaded.keys() == saved.keys()
    for k, v in saved.items():
        assert torch.equal(loaded[k], v), k
    assert model.encoder.model.config.feat_extract_norm == norm
    assert model.embed_dim == 32


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_an_unpadded_clip_gives_hugging_faces_own_features(checkpoints, norm):
    """The re-run CNN (masked GroupNorm) + encoder equal Wav2Vec2Model.forward on one clip."""
    model = make(checkpoints[norm]).eval()
    w = clips([12345])[0]
    with torch.no_grad():
        ref = model.encoder.model(standardised(w)[None]).last_hidden_state
        hidden, n = model.encoder.frames(w[None], torch.tensor([len(w)]))
    assert hidden.shape == ref.shape and n.tolist() == [ref.shape[1]]
    assert torch.allclose(hidden, ref, atol=1e-5), (hidden - ref).abs().max()


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_layer_states_are_hugging_faces_hidden_states(checkpoints, norm):
    """The states the SUPERB weighted sum mixes = HF's output_hidden_states (input + every layer)."""
    model = make(checkpoints[norm], weighted_layers=True).eval()
    w = clips([9000])[0]
    with torch.no_grad():
        ref = model.encoder.model(standardised(w)[None], output_hidden_states=True).hidden_states
        _, _, states = model.encoder.frames(w[None], torch.tensor([len(w)]), output_hidden_states=True)
    assert len(states) == len(ref) == 3
    for a, b in zip(states, ref):
        assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


def test_missing_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(ZooUserError, match="the speech encoder checkpoint .* is not available.*pretrained: null"):
        make(str(tmp_path / "nope"))


def test_bad_option_combinations_are_user_errors(checkpoints):
    with pytest.raises(ZooUserError, match="16 kHz"):
        make(checkpoints["group"], sample_rate=8000)
    with pytest.raises(ZooUserError, match="trainable_layers"):
        make(checkpoints["group"], trainable_layers=3)
    with pytest.raises(ZooUserError, match="unfreeze_after_steps"):
        make(checkpoints["group"], freeze_encoder=True, unfreeze_after_steps=5)


# -- padding ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", [{}, {"pooling": "attentive", "weighted_layers": True}])
@pytest.mark.parametrize("norm", ["group", "layer"])
def test_batched_equals_single(checkpoints, norm, variant):
    model = make(checkpoints[norm], **variant)
    if variant.get("weighted_layers"):  # non-uniform weights, so every layer matters
        with torch.no_grad():
            model.encoder.layer_weights.copy_(torch.tensor([0.5, -1.0, 2.0]))
    # 300 samples is shorter than the CNN's 400-sample receptive field
    single, batched = single_and_batched(model, clips([16000, 9000, 4001, 300]))
    assert torch.allclose(single, batched, atol=1e-4), (single - batched).abs().max()


def test_hugging_faces_own_batching_is_not_padding_exact_for_group_norm(checkpoints):
    """Why the encoder re-runs the CNN: the same clip, padded, changes under HF's forward."""
    hf = Wav2Vec2Model.from_pretrained(checkpoints["group"]).eval()
    w = standardised(clips([4000])[0])
    padded = torch.nn.functional.pad(w, (0, 12000))
    with torch.no_grad():
        alone = hf(w[None]).last_hidden_state
        in_batch = hf(padded[None]).last_hidden_state[:, : alone.shape[1]]
    assert (alone - in_batch).abs().max() > 1e-2


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_padding_content_does_not_change_outputs(checkpoints, norm):
    model = make(checkpoints[norm], weighted_layers=True).eval()
    b = batch_of(clips([6000, 16000]))
    with torch.no_grad():
        ref = model(b)
        b.waveforms[0, 6000:] = torch.randn(10000) * 5
        assert torch.allclose(model(b), ref, atol=1e-5)


def test_masked_group_norm_is_each_clips_own_group_norm():
    """The first conv layer's GroupNorm over valid frames: values and gradients (input, weight,
    bias) of each clip's own nn.GroupNorm, eagerly and in a trace run on other lengths (ONNX)."""
    from zoo.nn.ssl import _masked_group_norm

    torch.manual_seed(0)
    norm = torch.nn.GroupNorm(6, 6)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = torch.randn(3, 6, 50) * 3 + 1
    lengths = torch.tensor([50, 17, 33])
    # each clip alone: its own GroupNorm and its gradients, for a loss weighting every output
    g = torch.randn(3, 6, 50)
    want, want_dx = [], []
    for i, n in enumerate(lengths.tolist()):
        xi = x[i:i + 1, :, :n].clone().requires_grad_()
        yi = norm(xi)
        (yi * g[i:i + 1, :, :n]).sum().backward()
        want.append(yi.detach())
        want_dx.append(xi.grad)
    want_dw, want_db = norm.weight.grad.clone(), norm.bias.grad.clone()
    norm.zero_grad()
    xb = x.clone().requires_grad_()
    y = _masked_group_norm(xb, lengths, norm)
    valid = (torch.arange(50)[None] < lengths[:, None])[:, None, :]
    (y * g * valid).sum().backward()
    for i, n in enumerate(lengths.tolist()):
        assert torch.allclose(y[i:i + 1, :, :n], want[i], atol=1e-5)
        assert torch.allclose(xb.grad[i:i + 1, :, :n], want_dx[i], atol=1e-5)
        assert (xb.grad[i, :, n:] == 0).all()  # padding never reaches a valid frame
    assert torch.allclose(norm.weight.grad, want_dw, atol=1e-4)
    assert torch.allclose(norm.bias.grad, want_db, atol=1e-4)
    # traced on these lengths, run on others: the trace keeps the lengths as inputs
    class Norm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = norm

        def forward(self, a, n):
            return _masked_group_norm(a, n, self.norm)

    with torch.no_grad():
        traced = torch.jit.trace(Norm(), (x, lengths))
        other = torch.tensor([20, 50, 5])
        got = traced(x, other)
        for i, n in enumerate(other.tolist()):
            assert torch.allclose(got[i:i + 1, :, :n], norm(x[i:i + 1, :, :n]), atol=1e-5)


# -- freezing and parameter groups ------------------------------------------------------------------
def _grad_names(model):
    return {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


def test_superb_weighted_layers_train_only_the_weights_and_head(checkpoints):
    model = make(checkpoints["group"], weighted_layers=True, freeze_encoder=True).train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"encoder.layer_weights", "head.1.weight", "head.1.bias"}
    assert model.encoder.layer_weights.shape == (3,)  # transformer input + 2 layers
    # frozen backbone: eval mode, so two training-mode passes give the same embedding
    assert not model.encoder.model.training and model.head.training
    b = batch_of(clips([8000, 5000]), labels=[0, 1])
    assert torch.equal(model.embed(b), model.embed(b))
    model.loss(model(b), b).backward()
    assert _grad_names(model) == trainable
    assert [g["name"] for g in model.parameter_groups()] == ["head"]


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_trainable_layers_fine_tunes_only_the_top_k(checkpoints, norm):
    model = make(checkpoints[norm], trainable_layers=1, encoder_lr=1e-5).train()
    top = {f"encoder.model.encoder.layers.1.{n}" for n, _ in model.encoder.model.encoder.layers[1].named_parameters()}
    if norm == "layer":  # pre-LN: the final LayerNorm sits on top of the last layer
        top |= {"encoder.model.encoder.layer_norm.weight", "encoder.model.encoder.layer_norm.bias"}
    expected = top | {"head.1.weight", "head.1.bias"}
    assert {n for n, p in model.named_parameters() if p.requires_grad} == expected
    layers = model.encoder.model.encoder.layers
    assert layers[1].training and not layers[0].training and not model.encoder.model.feature_projection.training
    b = batch_of(clips([8000, 5000]), labels=[0, 1])
    model.loss(model(b), b).backward()
    assert _grad_names(model) == expected
    groups = model.parameter_groups()
    assert {id(p) for p in groups[1]["params"]} == {id(p) for n, p in model.named_parameters() if n in top}


def test_encoder_lr_puts_the_backbone_in_its_own_group(checkpoints):
    model = make(checkpoints["group"], encoder_lr=1e-5, optimizer=lambda p: torch.optim.AdamW(p, lr=1e-3))
    opt = model.configure_optimizers()
    head, enc = opt.param_groups
    assert head["lr"] == 1e-3 and enc["lr"] == 1e-5
    backbone = {id(p) for p in model.encoder.model.parameters()}
    cnn = {id(p) for p in model.encoder.model.feature_extractor.parameters()}
    assert {id(p) for p in enc["params"]} == backbone - cnn  # freeze_feature_encoder: CNN stays out
    assert not any(id(p) in backbone for p in head["params"])
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == \
        sum(p.numel() for p in model.parameters() if p.requires_grad)
    # without encoder_lr the backbone group takes the optimizer's lr
    opt = make(checkpoints["group"], optimizer=lambda p: torch.optim.AdamW(p, lr=1e-3)).configure_optimizers()
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-3]


class _Recorder(L.Callback):
    def __init__(self):
        self.rows = []

    def on_train_start(self, trainer, model):
        self.in_optimizer = {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]}

    def on_train_batch_end(self, trainer, model, outputs, batch, batch_idx):
        attn = model.encoder.model.encoder.layers[0].attention.q_proj.weight
        self.rows.append((trainer.global_step, not model.encoder.backbone_frozen, attn.detach().clone(),
                          model.encoder.model.training, model.encoder.model.feature_extractor.training,
                          attn.requires_grad))


def _loader(n=8, seed=0, batch_size=2):
    waves = clips([4000 + 500 * i for i in range(n)], seed=seed)
    items = [{"id": str(i), "label": i % 2, "audio": w} for i, w in enumerate(waves)]
    return torch.utils.data.DataLoader(items, batch_size=batch_size, collate_fn=collate)


def _trainer(tmp_path, **kw):
    return L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, default_root_dir=tmp_path, num_sanity_val_steps=0, **kw)


def test_unfreeze_after_steps_flips_the_backbone_during_a_real_fit(checkpoints, tmp_path):
    model = make(checkpoints["group"], unfreeze_after_steps=2,
                 optimizer=lambda p: torch.optim.AdamW(p, lr=1e-2))
    q0 = model.encoder.model.encoder.layers[0].attention.q_proj.weight.detach().clone()
    cnn0 = copy.deepcopy(model.encoder.model.feature_extractor.state_dict())
    rec = _Recorder()
    _trainer(tmp_path, max_steps=4, callbacks=[rec]).fit(model, _loader())
    # every backbone parameter that will train is in the optimizer from the start
    assert {id(p) for p in model.encoder.trainable_backbone_parameters()} <= rec.in_optimizer
    steps = [r[0] for r in rec.rows]
    assert steps == [1, 2, 3, 4]
    frozen = [not r[1] for r in rec.rows]
    unchanged = [torch.equal(r[2], q0) for r in rec.rows]
    eval_mode = [not r[3] for r in rec.rows]
    assert frozen == unchanged == eval_mode == [True, True, False, False]
    # frozen by running without autograd, not by requires_grad: DDP registers the parameters it
    # syncs when it wraps the model, so those that train later must require grad from the start
    assert all(r[5] for r in rec.rows)
    assert not any(r[4] for r in rec.rows)  # the CNN stays in eval mode ...
    cnn = model.encoder.model.feature_extractor.state_dict()
    assert all(torch.equal(cnn[k], v) for k, v in cnn0.items())  # ... and frozen
    assert not any(p.requires_grad for p in model.encoder.model.feature_extractor.parameters())


def test_checkpoint_loads_without_the_pretrained_dir(checkpoints, tmp_path):
    src = tmp_path / "w2v"
    shutil.copytree(checkpoints["layer"], src)
    model = make(str(src), weighted_layers=True)
    trainer = _trainer(tmp_path, max_steps=1)
    trainer.fit(model, _loader(n=2))
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    shutil.rmtree(src)  # the checkpoint must not need it (nor the hub)
    loaded = Wav2Vec2Classifier.load_from_checkpoint(tmp_path / "m.ckpt").eval()
    assert loaded.hparams.pretrained is None and loaded.hparams.weighted_layers
    b = batch_of(clips([7000, 3000]))
    model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(b), model(b), atol=1e-6)


# -- learning -----------------------------------------------------------------------------------------
def _tones(n, seed):
    """Class 0: a ~220 Hz tone, class 1: ~880 Hz; random level, phase, length (1/8-1/4 s) and noise."""
    g = torch.Generator().manual_seed(seed)
    waves, labels = [], []
    for i in range(n):
        y = i % 2
        length = int(torch.randint(2000, 4000, (1,), generator=g))
        t = torch.arange(length) / 16000
        f = (220.0 if y == 0 else 880.0) * (1 + 0.05 * torch.rand(1, generator=g))
        amp = 0.05 + 0.5 * torch.rand(1, generator=g)
        w = amp * torch.sin(2 * torch.pi * f * t + 6.28 * torch.rand(1, generator=g))
        waves.append(w + 0.02 * torch.randn(length, generator=g))
        labels.append(y)
    return waves, labels


def test_a_tiny_model_learns_pitch():
    torch.manual_seed(0)
    model = Wav2Vec2Classifier(pretrained=None, class_names=["low", "high"], hidden_size=32, num_layers=2,
                               num_heads=2, intermediate_size=64, conv_dim=[16] * 7, freeze_feature_encoder=False,
                               config_overrides={"num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4,
                                                 "layerdrop": 0.0},
                               spec_augment=False, optimizer=lambda p: torch.optim.AdamW(p, lr=3e-3))
    opt = model.configure_optimizers()
    waves, labels = _tones(48, seed=0)
    test_waves, test_labels = _tones(32, seed=1)

    def accuracy():
        model.eval()
        with torch.no_grad():
            pred = model(batch_of(test_waves)).argmax(-1)
        model.train()
        return (pred == torch.tensor(test_labels)).float().mean().item()

    before = accuracy()
    for step in range(12):
        idx = [(step * 8 + j) % len(waves) for j in range(8)]
        b = batch_of([waves[i] for i in idx], [labels[i] for i in idx])
        opt.zero_grad()
        model.loss(model(b), b).backward()
        opt.step()
    after = accuracy()
    assert before <= 0.75 and after >= 0.9, (before, after)


# -- configs and docs ---------------------------------------------------------------------------------
def test_every_option_is_documented():
    documented = set(re.findall(r"^\s{8}(\w+):", SSLClassifier.__doc__, flags=re.M))
    params = [p.name for p in inspect.signature(SSLClassifier.__init__).parameters.values()
              if p.name != "self" and p.kind is not p.VAR_KEYWORD]
    assert [p for p in params if p not in documented] == []


def test_tiny_overlay_gives_a_small_fast_model():
    def init_args(name):
        model = yaml.safe_load((ROOT / "configs" / "model" / name).read_text())["model"]
        assert model["class_path"] == "zoo.models.Wav2Vec2Classifier"
        return model["init_args"]

    base = init_args("wav2vec2.yaml")
    assert base["pretrained"] == "facebook/wav2vec2-base" and base["freeze_feature_encoder"] is True
    args = {**base, **init_args("tiny/wav2vec2.yaml")}
    args.pop("optimizer")
    # outside a Trainer the run length (and so the per-step schedule) is unknown: test_recipes
    # covers the schedule; this test is about size and what trains
    args.update(lr_schedule="constant", warmup_steps=0)
    known = set(inspect.signature(Wav2Vec2Classifier.__init__).parameters)
    known |= set(inspect.signature(EmotionModule.__init__).parameters)
    assert set(args) <= known, set(args) - known
    torch.manual_seed(0)
    model = Wav2Vec2Classifier(class_names=CLASSES, **args)
    assert sum(p.numel() for p in model.parameters()) < 100_000
    opt = model.configure_optimizers()
    b = batch_of(clips([48000] * 4), labels=[0, 1, 2, 3])
    model.train()
    model.loss(model(b), b).backward()
    opt.step()
    w2v = model.encoder.model  # the whole tiny backbone trains, CNN included (LayerDrop may skip a layer)
    assert w2v.feature_extractor.conv_layers[0].conv.weight.grad is not None
    assert w2v.feature_projection.projection.weight.grad is not None
