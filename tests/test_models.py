"""Model invariances: a clip gets the same prediction alone or in a padded batch."""
import pytest
import torch

from zoo.data.batch import collate
from zoo.models import AudioCNN

CLASSES = ["Angry", "Happiness", "Neutral", "Sadness"]


def clips(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=g) * 0.1 for n in lengths]


def logits_single_and_batched(model, waves):
    model.eval()
    items = [{"id": str(i), "label": 0, "audio": w} for i, w in enumerate(waves)]
    with torch.no_grad():
        batched = model(collate(items))
        single = torch.cat([model(collate([it])) for it in items])
    return single, batched


@pytest.mark.parametrize("norm", ["batch", "layer"])
@pytest.mark.parametrize("normalize", ["utterance", "global"])
@pytest.mark.parametrize("lengths", [[16000, 9000, 4001, 23999], [300, 16000]])
def test_audio_cnn_batched_equals_single(lengths, normalize, norm):
    torch.manual_seed(0)
    model = AudioCNN(class_names=CLASSES, channels=[8, 16, 16], hidden=16, normalize=normalize, norm=norm)
    if normalize == "global":  # give the running statistics something to hold
        model.train()
        model(collate([{"id": "x", "label": 0, "audio": w} for w in clips([8000, 12000], seed=1)]))
    single, batched = logits_single_and_batched(model, clips(lengths))
    # a BatchNorm shift carried from padded frames into the clip's edge showed as ~2e-4 here
    assert torch.allclose(single, batched, atol=1e-4), (single - batched).abs().max()


def test_audio_cnn_padding_does_not_leak_into_logits():
    """Changing what sits in the padding must not change the output."""
    torch.manual_seed(0)
    model = AudioCNN(class_names=CLASSES, channels=[8, 16, 16], hidden=16).eval()
    b = collate([{"id": "a", "label": 0, "audio": w} for w in clips([8000, 16000])])
    with torch.no_grad():
        ref = model(b)
        b.waveforms[0, 8000:] = torch.randn(8000)
        assert torch.allclose(model(b), ref, atol=1e-5)


def test_predict_step_returns_probabilities():
    model = AudioCNN(class_names=CLASSES, channels=[8, 16, 16], hidden=16).eval()
    b = collate([{"id": str(i), "label": i, "audio": w} for i, w in enumerate(clips([4000, 6000]))])
    out = model.predict_step(b, 0)
    assert out["ids"] == ["0", "1"] and out["probs"].shape == (2, 4)
    assert torch.allclose(out["probs"].sum(-1), torch.ones(2))


def test_soft_targets_and_class_weights_change_the_loss():
    model = AudioCNN(class_names=CLASSES, channels=[8, 16, 16], hidden=16, class_weights=[1, 1, 1, 4])
    model.setup("fit")
    logits = torch.zeros(2, 4)
    b = collate([{"id": "a", "label": 3, "audio": torch.zeros(400)}, {"id": "b", "label": 0, "audio": torch.zeros(400)}])
    hard = model.loss(logits, b)
    b.soft = torch.tensor([[0.0, 0.0, 0.4, 0.6], [1.0, 0.0, 0.0, 0.0]])
    assert not torch.isclose(model.loss(logits, b), hard)
    with pytest.raises(ValueError, match="class_weights"):
        AudioCNN(class_names=CLASSES, class_weights=[1.0, 2.0])


def test_ecapa_encoder_runs():
    model = AudioCNN(class_names=CLASSES, encoder="ecapa", channels=[32], hidden=16).eval()
    b = collate([{"id": str(i), "label": 0, "audio": w} for i, w in enumerate(clips([8000, 12000]))])
    with torch.no_grad():
        assert model(b).shape == (2, 4)


def test_speaker_normalisation_uses_each_speakers_statistics():
    torch.manual_seed(0)
    model = AudioCNN(class_names=CLASSES, channels=[8, 16, 16], hidden=16, normalize="speaker").eval()
    loud, quiet = clips([8000, 8000], seed=3)
    loud = loud * 10
    model.features.set_speaker_stats({"a": [loud], "b": [quiet]})
    b = collate([{"id": "1", "label": 0, "audio": loud, "speaker": "a"},
                 {"id": "2", "label": 0, "audio": quiet, "speaker": "b"}])
    feats, n = model.features(b.waveforms, b.lengths, b.speakers)
    # each clip standardised by its own speaker: zero mean, unit std per band, whatever its level
    assert torch.allclose(feats.mean(1), torch.zeros(2, 64), atol=1e-4)
    assert torch.allclose(feats.std(1), torch.ones(2, 64), atol=0.05)
    # an unknown speaker falls back to the global statistics instead of failing
    b.speakers = ["a", "zz"]
    assert model(b).shape == (2, 4)
    single, batched = logits_single_and_batched(model, [loud, quiet])
    assert torch.allclose(single, batched, atol=1e-3)


def test_speaker_statistics_need_two_utterances_as_for_egemaps():
    """One clip's statistics would be utterance normalisation, not the speaker's: such a speaker
    keeps the global fallback, at adaptation as in training (the eGeMAPS rule)."""
    model = AudioCNN(class_names=CLASSES, channels=[8, 16, 16], hidden=16, normalize="speaker").eval()
    a1, a2, b1 = clips([8000, 9000, 8000], seed=4)
    model.adapt_speakers({"a": [a1.numpy(), a2.numpy()], "b": [b1.numpy()]})
    assert set(model.features.speaker_stats) == {"a"}
    model.adapt_speakers({"b": [b1.numpy(), b1.numpy() * 2]})  # adds b, keeps a
    assert set(model.features.speaker_stats) == {"a", "b"}


def test_configure_optimizers_with_a_scheduler():
    model = AudioCNN(class_names=CLASSES, channels=[8, 16, 16], hidden=16,
                     optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
                     lr_scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=5))
    cfg = model.configure_optimizers()
    assert isinstance(cfg["optimizer"], torch.optim.SGD)
    assert cfg["lr_scheduler"]["scheduler"].step_size == 5 and cfg["lr_scheduler"]["monitor"] == "val/UA"
    assert isinstance(AudioCNN(class_names=CLASSES).configure_optimizers(), torch.optim.AdamW)


def test_a_batch_with_no_loadable_clip_keeps_ddp_ranks_in_step():
    """Alone, a training batch whose clips all failed to load is skipped (None). Under DDP the
    other ranks would wait for its gradients forever: it becomes a zero loss whose backward gives
    every trainable parameter a zero gradient."""
    from types import SimpleNamespace

    model = AudioCNN(class_names=CLASSES, channels=[8, 16, 16], hidden=16)
    assert model.training_step(None, 0) is None
    model._trainer = SimpleNamespace(world_size=2)
    loss = model.training_step(None, 0)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and not g.any() for g in grads)
    assert model.validation_step(None, 0) is None  # no gradients to exchange there
