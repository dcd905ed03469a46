"""Early fusion with a self-supervised speech encoder as its audio branch: the SSL encoder's frames
(with their frame mask) meet the text tokens in the joint encoder. Tiny random encoders are saved
to a temp dir and loaded through the same ``pretrained:`` path users give (no hub access)."""
import pytest
import torch

from test_model_family import SENTENCES
from test_ssl import save_tiny
from zoo.data.batch import collate
from zoo.data.text import train_tokenizer
from zoo.models import EarlyFusion
from zoo.models.loading import load_module

CLASSES = ["Angry", "Happiness", "Neutral", "Sadness"]
TEXT = {"class_path": "zoo.models.TextBERT",
        "init_args": {"pretrained": None, "vocab_size": 200, "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                      "intermediate_size": 64}}
SHIPPED = "checkpoints/early-fusion-synth.ckpt"


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    return save_tiny(tmp_path_factory, ("wav2vec2", "whisper"))  # test_ssl's tiny configs


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_tokenizer(SENTENCES * 4, vocab_size=150, cache_dir=tmp_path_factory.mktemp("tok"))


def make(path, tokenizer, joint="cross_attention", **ssl):
    torch.manual_seed(0)
    model = EarlyFusion(class_names=CLASSES, text_branch=TEXT, d_model=32, num_layers=2, num_heads=2, joint=joint,
                        audio_branch={"class_path": "zoo.models.SSLClassifier",
                                      "init_args": {"pretrained": path, **ssl}})
    model.set_tokenizer(tokenizer)
    return model


def batch(tokenizer, lengths, labels=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    its = []
    for i, n in enumerate(lengths):
        t = torch.arange(n) / 16000
        text = SENTENCES[i % len(SENTENCES)]
        its.append({"id": str(i), "label": (labels or [0] * len(lengths))[i], "text": text,
                    "input_ids": tokenizer.encode(text),
                    "audio": 0.1 * torch.sin(2 * torch.pi * (150 + 60 * i) * t) + 0.05 * torch.randn(n, generator=g)})
    return its


@pytest.mark.parametrize("name,joint,ssl", [
    ("wav2vec2", "cross_attention", {"weighted_layers": True, "freeze_encoder": True}),
    ("wav2vec2", "concat", {"layer": 1}),
    ("whisper", "cross_attention", {}),
])
def test_batched_equals_single_and_padding_is_irrelevant(encoders, tokenizer, name, joint, ssl):
    model = make(encoders[name], tokenizer, joint=joint, **ssl).eval()
    if model.audio.encoder.layer_weights is not None:  # non-uniform: every layer matters
        with torch.no_grad():
            model.audio.encoder.layer_weights.copy_(torch.tensor([0.5, -1.0, 2.0]))
    its = batch(tokenizer, [16000, 9000, 4001, 300, 23999])  # 300: below the CNN's receptive field
    b = collate(its, pad_id=tokenizer.pad_id)
    with torch.no_grad():
        batched = model(b)
        single = torch.cat([model(collate([it], pad_id=tokenizer.pad_id)) for it in its])
        assert (batched - single).abs().max() <= 1e-4, (batched - single).abs().max()
        # the frame mask: padded frames are zero and counted out, whatever the padding holds
        frames, n = model.audio.frames(b)
        assert frames.shape[1] == int(n.max()) and len(set(n.tolist())) == 5
        assert all(frames[i, int(k):].abs().sum() == 0 for i, k in enumerate(n))
        pad = torch.arange(b.waveforms.shape[1])[None] >= b.lengths[:, None]
        b.waveforms[pad] = 0.5 * torch.randn(int(pad.sum()))
        b.input_ids[b.attention_mask == 0] = 7
        assert (model(b) - batched).abs().max() <= 1e-4


def test_fits_a_few_steps_and_the_checkpoint_loads_without_the_encoder_dir(encoders, tokenizer, tmp_path):
    """Lightning fit with a frozen, layer-weighted wav2vec2 (its frames cached from the second
    epoch): the joint encoder and the layer weights train, the encoder does not; the checkpoint
    records the encoder's config, so it loads after the pretrained directory is gone."""
    import shutil

    import lightning as L

    path = str(tmp_path / "w2v")
    shutil.copytree(encoders["wav2vec2"], path)
    model = make(path, tokenizer, weighted_layers=True, freeze_encoder=True, embedding_cache=str(tmp_path / "c"))
    model.optimizer_factory = lambda p: torch.optim.AdamW(p, lr=1e-2)
    enc0 = {k: v.clone() for k, v in model.audio.encoder.model.state_dict().items()}
    joint0 = {k: v.clone() for k, v in model.joint.state_dict().items()}
    items = batch(tokenizer, [5000, 6000, 7000, 8000], labels=[0, 1, 2, 3])
    loader = torch.utils.data.DataLoader(items, batch_size=2, collate_fn=lambda x: collate(x, pad_id=tokenizer.pad_id))
    trainer = L.Trainer(accelerator="cpu", max_epochs=2, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, loader)
    assert trainer.global_step == 4
    assert all(torch.equal(v, enc0[k]) for k, v in model.audio.encoder.model.state_dict().items())
    assert not all(torch.equal(v, joint0[k]) for k, v in model.joint.state_dict().items())
    assert not torch.equal(model.audio.encoder.layer_weights.detach(), torch.zeros(3))
    cache = model.audio.encoder._cache_obj[1]
    assert (cache.misses, cache.hits) == (4, 4)  # epoch 2 read the frames from the cache
    ckpt = tmp_path / "m.ckpt"
    trainer.save_checkpoint(ckpt)
    shutil.rmtree(path)
    loaded = load_module(str(ckpt)).eval()
    assert loaded.hparams["audio_branch"]["init_args"]["pretrained"] is None
    b = collate(batch(tokenizer, [7000, 3000], seed=3), pad_id=tokenizer.pad_id)
    model.eval()
    with torch.no_grad():
        assert (loaded(b) - model(b)).abs().max() <= 1e-5


def fit_three_steps(model, tokenizer, tmp_path):
    """One epoch of three one-clip batches (steps 0, 1, 2); returns the trainer."""
    import lightning as L

    items = batch(tokenizer, [5000, 6000, 7000], labels=[0, 1, 2])
    loader = torch.utils.data.DataLoader(items, batch_size=1, collate_fn=lambda x: collate(x, pad_id=tokenizer.pad_id))
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, loader)
    return trainer


def test_the_encoder_lr_and_unfreezing_of_the_ssl_branch(encoders, tokenizer, tmp_path):
    model = make(encoders["wav2vec2"], tokenizer, unfreeze_after_steps=2, encoder_lr=1e-3)
    groups = model.parameter_groups()
    assert [g["name"] for g in groups] == ["head", "encoder"] and groups[1]["lr"] == 1e-3
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids))
    assert set(ids) >= {id(p) for p in model.parameters() if p.requires_grad}
    assert model.audio.encoder.backbone_frozen
    q0 = model.audio.encoder.model.encoder.layers[0].attention.q_proj.weight.detach().clone()
    fit_three_steps(model, tokenizer, tmp_path)  # steps 0, 1 frozen; step 2 unfrozen (the branch's hook, run by early fusion)
    assert not model.audio.encoder.backbone_frozen
    assert not torch.equal(model.audio.encoder.model.encoder.layers[0].attention.q_proj.weight.detach(), q0)


def test_late_fusion_trains_its_branches_at_their_own_lr_and_unfreezes_the_ssl_backbone(encoders, tokenizer, tmp_path):
    """Joint (not frozen) late fusion: the SSL branch's encoder_lr and unfreeze_after_steps and the
    text branch's encoder_lr hold inside the fusion model as they do alone."""
    from zoo.models import LateFusion

    torch.manual_seed(0)
    text = {**TEXT, "init_args": {**TEXT["init_args"], "encoder_lr": 5e-4}}
    model = LateFusion(class_names=CLASSES, text_branch=text, fusion="concat",
                       audio_branch={"class_path": "zoo.models.SSLClassifier",
                                     "init_args": {"pretrained": encoders["wav2vec2"], "unfreeze_after_steps": 2,
                                                   "encoder_lr": 1e-3}})
    model.set_tokenizer(tokenizer)
    groups = model.parameter_groups()
    by_name = {g["name"]: g for g in groups}
    # (concat fusion: the branches' own heads are unused, so their groups are empty and left out)
    assert list(by_name) == ["fusion", "audio_encoder", "text_encoder"]
    assert by_name["audio_encoder"]["lr"] == 1e-3 and by_name["text_encoder"]["lr"] == 5e-4
    assert "lr" not in by_name["fusion"]
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) and set(ids) >= {id(p) for p in model.parameters() if p.requires_grad}
    backbone = {id(p) for p in model.audio.encoder.trainable_backbone_parameters()}
    assert backbone and backbone <= set(ids)  # frozen for now, in the optimizer from the start
    assert model.audio.encoder.backbone_frozen
    q0 = model.audio.encoder.model.encoder.layers[0].attention.q_proj.weight.detach().clone()
    trainer = fit_three_steps(model, tokenizer, tmp_path)
    lrs = {g["name"]: g["lr"] for g in trainer.optimizers[0].param_groups}
    assert lrs["audio_encoder"] == 1e-3 and lrs["text_encoder"] == 5e-4
    assert not model.audio.encoder.backbone_frozen  # the branch's hook ran at step 2
    assert not torch.equal(model.audio.encoder.model.encoder.layers[0].attention.q_proj.weight.detach(), q0)


def test_a_non_frame_audio_branch_is_a_user_error(tokenizer):
    from zoo.errors import ZooUserError

    with pytest.raises(ZooUserError, match="frame sequences"):
        EarlyFusion(class_names=CLASSES, text_branch=TEXT, audio_branch={
            "class_path": "zoo.models.AudioCNN", "init_args": {"channels": [8, 16, 16], "hidden": 16}})


def test_the_shipped_log_mel_checkpoint_loads_and_predicts_as_before():
    """checkpoints/early-fusion-synth.ckpt (no audio_branch: the log-mel front end) gives the
    logits it gave before the audio encoder became choosable (recorded with the code of 1b3ad59)."""
    from pathlib import Path

    model = load_module(str(Path(__file__).resolve().parents[1] / SHIPPED)).eval()
    assert model.audio is None and model.hparams.get("audio_branch") is None
    its = []
    for i, (n, text) in enumerate(zip([16000, 9000], ["나 어제 헤어졌어", "오늘 정말 기분이 좋아"])):
        t = torch.arange(n) / 16000
        w = 0.1 * torch.sin(2 * torch.pi * (150 + 60 * i) * t) + 0.03 * torch.sin(2 * torch.pi * 1234 * t)
        its.append({"id": str(i), "label": 0, "audio": w, "text": text, "input_ids": model.tokenizer.encode(text)})
    with torch.no_grad():
        out = model(collate(its, pad_id=model.tokenizer.pad_id))
    before = torch.tensor([[-7.74281, 0.3146, -0.2796, -3.22814, -0.29308, 7.60246, -1.50396],
                           [-1.07343, -1.57373, 0.03989, 3.65267, 0.78223, 0.05649, -0.54717]])
    assert (out - before).abs().max() <= 1e-4, (out - before).abs().max()
