"""Training recipes: waveform augmentation, mixup, focal loss, per-step LR schedules and the
class-balanced sampler. Each is tested for what it must do, on tiny tensors (no corpus)."""
import math
from collections import Counter

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from zoo.data.batch import BucketBatchSampler, collate
from zoo.errors import ZooUserError
from zoo.models import EmotionModule
from zoo.nn.augment import WaveAugment, WaveAugmentation, mixup
from zoo.nn.losses import focal_loss
from zoo.nn.pooling import length_mask

SR = 16000
CLASSES = ["Angry", "Happiness", "Neutral", "Sadness"]


def sines(lengths, freq=440.0):
    wav = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        wav[i, :n] = 0.3 * torch.sin(2 * math.pi * freq * torch.arange(n) / SR)
    return wav, torch.tensor(lengths)


def augmenter(**kw):
    return WaveAugment(WaveAugmentation(**kw), SR).train()


def peak_hz(x):
    spec = torch.fft.rfft(x).abs()
    return float(spec.argmax()) * SR / len(x)


def padding_is_zero(wav, lengths):
    return bool((wav * ~length_mask(lengths, wav.shape[1])).abs().sum() == 0)


# -- waveform augmentation ------------------------------------------------------------------------
def test_speed_perturbation_changes_length_pitch_and_the_lengths():
    wav, n = sines([16000, 8000, 3001])
    out, m = augmenter(speeds=[0.9])(wav, n)
    # slower by 0.9: each clip 1/0.9 as long (torchaudio rounds up), its pitch 0.9 as high
    assert m.tolist() == [math.ceil(k / 0.9) for k in n.tolist()]
    assert out.shape == (3, int(m.max())) and padding_is_zero(out, m)
    assert abs(peak_hz(out[0, : m[0]]) - 396) < 3
    assert (out[2, : m[2]].abs() > 0).float().mean() > 0.9  # the clip's samples are there, not zeros

    torch.manual_seed(0)
    seen = set()
    for _ in range(10):  # one factor per clip: both factors occur inside a batch
        out, m = augmenter(speeds=[0.9, 1.1])(*sines([16000] * 6))
        assert set(m.tolist()) <= {math.ceil(16000 / 0.9), math.ceil(16000 / 1.1)}
        assert padding_is_zero(out, m)
        seen |= set(m.tolist())
    assert len(seen) == 2


def test_noise_is_added_at_the_drawn_snr_over_the_valid_samples():
    wav, n = sines([16000, 6000])
    for colour in ("white", "pink"):
        out = augmenter(noise_prob=1.0, snr_db=(10.0, 10.0), noise=colour)(wav, n)[0]
        assert padding_is_zero(out, n)
        for i, k in enumerate(n.tolist()):
            noise = out[i, :k] - wav[i, :k]
            snr = 10 * torch.log10(wav[i, :k].pow(2).sum() / noise.pow(2).sum())
            assert abs(float(snr) - 10.0) < 0.05
        if colour == "pink":  # 1/f: most of the noise energy below 1 kHz
            spec = torch.fft.rfft(out[0] - wav[0]).abs().pow(2)
            assert spec[: len(spec) // 8].sum() > 0.8 * spec.sum()
    # noise_prob 0.5: some clips stay clean
    torch.manual_seed(0)
    out = augmenter(noise_prob=0.5)(*sines([4000] * 20))[0]
    clean = (out == sines([4000] * 20)[0]).all(1)
    assert 0 < int(clean.sum()) < 20


def test_noise_from_a_folder(tmp_path):
    noise_dir = tmp_path / "noise" / "sub"
    noise_dir.mkdir(parents=True)
    t = np.arange(5000) / SR
    sf.write(noise_dir / "hum.wav", 0.1 * np.sin(2 * np.pi * 1000 * t), SR)  # shorter than a clip: looped
    aug = augmenter(noise_prob=1.0, snr_db=(0.0, 0.0), noise_dir=str(tmp_path / "noise"))
    aug.check()
    wav, n = sines([16000])
    out = aug(wav, n)[0]
    assert abs(peak_hz(out[0] - wav[0]) - 1000) < 3
    (tmp_path / "empty").mkdir()
    with pytest.raises(ZooUserError, match="no audio files"):
        augmenter(noise_prob=1.0, noise_dir=str(tmp_path / "empty")).check()
    with pytest.raises(ZooUserError, match="not a folder"):
        augmenter(noise_prob=1.0, noise_dir=str(tmp_path / "nope")).check()


def test_gain_and_reverb():
    wav, n = sines([16000, 8000])
    out = augmenter(gain_prob=1.0, gain_db=(6.0, 6.0))(wav, n)[0]
    assert torch.allclose(out, wav * 10 ** (6 / 20), atol=1e-6)

    torch.manual_seed(0)
    out, m = augmenter(reverb_prob=1.0, rt60=(0.5, 0.5))(wav, n)
    assert out.shape == wav.shape and torch.equal(m, n) and padding_is_zero(out, n)
    for i, k in enumerate(n.tolist()):  # same level, different signal
        assert torch.isclose(out[i, :k].pow(2).mean(), wav[i, :k].pow(2).mean(), rtol=1e-3)
        assert not torch.allclose(out[i, :k], wav[i, :k], atol=1e-2)
    rir = WaveAugment(WaveAugmentation(), SR).impulse_response(0.5)
    assert len(rir) == 8000 and rir[0] == 1.0
    assert rir[-800:].pow(2).sum() < 1e-4 * rir[1:801].pow(2).sum()  # -60 dB over rt60


def test_augmentation_is_seeded_and_off_in_eval():
    opts = dict(speeds=[0.9, 1.0, 1.1], noise_prob=0.5, gain_prob=0.5, reverb_prob=0.5)
    wav, n = sines([16000, 9000, 4000, 12000])
    runs = []
    for seed in (0, 0, 1):
        L.seed_everything(seed, verbose=False)
        runs.append(augmenter(**opts)(wav, n))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert runs[0][0].shape != runs[2][0].shape or not torch.equal(runs[0][0], runs[2][0])
    aug = augmenter(**opts).eval()
    out, m = aug(wav, n)
    assert out is wav and m is n
    assert not WaveAugmentation().active  # the defaults change nothing


def test_bad_augmentation_options_are_user_errors():
    for kw in ({"speeds": [3.0]}, {"noise_prob": 1.5}, {"snr_db": (20, 5)}, {"noise": "brown"}):
        with pytest.raises(ZooUserError, match="wave_augment"):
            WaveAugmentation(**kw)
    with pytest.raises(ZooUserError, match="unknown wave_augment"):
        WaveAugmentation.of({"sped": [0.9]})


W2V = dict(pretrained=None, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, conv_dim=[16] * 7)


@pytest.mark.parametrize("family", ["AudioCNN", "Wav2Vec2Classifier"])
def test_models_augment_in_training_only(family):
    import zoo.models

    cls = getattr(zoo.models, family)
    args = dict(channels=[8, 16, 16], hidden=16, dropout=0.0) if family == "AudioCNN" else dict(W2V, dropout=0.0)
    opts = {"speeds": [0.9, 1.1], "noise_prob": 1.0, "gain_prob": 1.0, "reverb_prob": 1.0}
    plain = cls(class_names=CLASSES, **args)
    aug = cls(class_names=CLASSES, wave_augment=opts, **args)
    assert plain.state_dict().keys() == aug.state_dict().keys()  # augmentation holds no state
    aug.load_state_dict(plain.state_dict())
    assert aug.hparams["wave_augment"]["speeds"] == [0.9, 1.1]  # plain types: weights_only loads it
    b = collate([{"id": str(i), "label": 0, "audio": w[:k]} for i, (w, k) in
                 enumerate(zip(*sines([16000, 7000, 11000])))])
    with torch.no_grad():
        plain.eval(), aug.eval()
        assert torch.equal(plain(b), aug(b))
        plain.train(), aug.train()
        torch.manual_seed(0)
        a = aug.embed(b)
        torch.manual_seed(0)
        assert not torch.allclose(plain.embed(b), a, atol=1e-4)


# -- mixup ------------------------------------------------------------------------------------------
def test_mixup_is_a_convex_combination_with_a_permutation():
    torch.manual_seed(0)
    x = torch.randn(8, 5)
    mixed, perm, lam = mixup(x, 0.4)
    assert 0.0 <= lam <= 1.0 and sorted(perm.tolist()) == list(range(8))
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[perm])


class Toy(EmotionModule):
    """A linear model on ``batch.features``: embed + head, enough to train the base class."""

    inputs = ("egemaps",)

    def __init__(self, dim: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.proj = torch.nn.Linear(dim, 16)
        self.head = torch.nn.Linear(16, self.num_classes)

    def embed(self, batch):
        return torch.relu(self.proj(batch.features))

    def forward(self, batch):
        return self.head(self.embed(batch))


def toy_loader(n=64, batch_size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % len(CLASSES)
    feats = torch.randn(n, 8, generator=g) * 0.3
    feats[torch.arange(n), labels] += 2.0  # learnable: the label's feature is high
    items = [{"id": str(i), "label": int(labels[i]), "features": feats[i]} for i in range(n)]
    return torch.utils.data.DataLoader(items, batch_size=batch_size, shuffle=False, collate_fn=collate)


def trainer(**kw):
    return L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, num_sanity_val_steps=0, **kw)


def test_mixup_trains_through_the_shared_step():
    torch.manual_seed(0)
    model = Toy(class_names=CLASSES, mixup_alpha=0.4,
                optimizer=lambda p: torch.optim.AdamW(p, lr=0.05))
    trainer(max_epochs=6).fit(model, toy_loader())
    model.eval()
    b = next(iter(toy_loader(n=64, batch_size=64, seed=1)))
    acc = (model(b).argmax(-1) == b.labels).float().mean()
    assert acc > 0.9, acc


def test_mixup_needs_embed_and_head():
    class HeadOnly(EmotionModule):  # a family without embed(): nothing to mix between
        def __init__(self, **kw):
            super().__init__(**kw)
            self.head = torch.nn.Linear(8, self.num_classes)

    with pytest.raises(ZooUserError, match="embed/head"):
        HeadOnly(class_names=CLASSES, mixup_alpha=0.2).setup("fit")
    Toy(class_names=CLASSES, mixup_alpha=0.2).setup("fit")


# -- focal loss -------------------------------------------------------------------------------------
def test_focal_loss_is_cross_entropy_at_gamma_0():
    torch.manual_seed(0)
    logits = torch.randn(10, 4)
    y = torch.tensor([0, 1, 2, 3, 0, 1, -1, 3, 2, 2])
    w = torch.tensor([1.0, 2.0, 0.5, 3.0])
    soft = torch.softmax(torch.randn(10, 4), -1)
    for kw in ({}, {"weight": w}, {"label_smoothing": 0.1}, {"weight": w, "label_smoothing": 0.2}):
        assert torch.allclose(focal_loss(logits, y, gamma=0.0, ignore_index=-1, **kw),
                              F.cross_entropy(logits, y, ignore_index=-1, **kw), atol=1e-6), kw
        assert torch.allclose(focal_loss(logits, soft, gamma=0.0, **kw), F.cross_entropy(logits, soft, **kw),
                              atol=1e-6), kw


def test_focal_loss_down_weights_easy_examples():
    logits = torch.tensor([[4.6, 0.0, 0.0, 0.0], [0.0, 0.7, 0.0, 0.0]])  # p(true) ~ 0.97 and ~ 0.40
    y = torch.tensor([0, 1])
    p = torch.softmax(logits, -1)[torch.arange(2), y]
    ce = F.cross_entropy(logits, y, reduction="none")
    fl = torch.stack([focal_loss(logits[i : i + 1], y[i : i + 1], gamma=2.0) for i in range(2)])
    assert torch.allclose(fl, (1 - p) ** 2 * ce, atol=1e-6)
    assert fl[0] / ce[0] < 0.01 and fl[1] / ce[1] > 0.3  # the easy clip counts ~400x less


def test_model_loss_option():
    from zoo.models import AudioCNN

    b = collate([{"id": "a", "label": 3, "audio": torch.zeros(400)}, {"id": "b", "label": 0, "audio": torch.zeros(400)}])
    logits = torch.tensor([[0.1, 0.2, 0.3, 2.0], [1.0, 0.0, 0.0, 0.5]])
    ce = AudioCNN(class_names=CLASSES, channels=[8], hidden=8, label_smoothing=0.1)
    f0 = AudioCNN(class_names=CLASSES, channels=[8], hidden=8, label_smoothing=0.1, loss="focal", focal_gamma=0.0)
    f2 = AudioCNN(class_names=CLASSES, channels=[8], hidden=8, label_smoothing=0.1, loss="focal")
    assert torch.isclose(ce.loss(logits, b), f0.loss(logits, b)) and f2.loss(logits, b) < ce.loss(logits, b)
    with pytest.raises(ZooUserError, match="loss"):
        AudioCNN(class_names=CLASSES, loss="hinge")


# -- LR schedules -----------------------------------------------------------------------------------
class LRLog(L.Callback):
    def __init__(self):
        self.lrs = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_schedule_steps_per_optimiser_step(schedule):
    torch.manual_seed(0)
    model = Toy(class_names=CLASSES, lr_schedule=schedule, warmup_steps=2,
                optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    log = LRLog()
    # 2 epochs x 8 batches, 2 batches per optimiser step: 8 steps, 2 of them warm-up
    trainer(max_epochs=2, accumulate_grad_batches=2, callbacks=[log]).fit(model, toy_loader())
    total, warm = 8, 2
    def expected(k):
        if k < warm:
            return 0.1 * k / warm
        frac = (k - warm) / (total - warm)
        return 0.1 * (0.5 * (1 + math.cos(math.pi * frac)) if schedule == "cosine" else 1 - frac)
    assert len(log.lrs) == 16
    assert log.lrs == pytest.approx([expected(i // 2) for i in range(16)])  # changes every 2 batches
    assert model.trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0)


def test_warmup_share_and_option_errors():
    model = Toy(class_names=CLASSES, warmup_steps=0.25, optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    log = LRLog()
    trainer(max_epochs=1, callbacks=[log]).fit(model, toy_loader())  # 8 steps, the first 2 warm up
    assert log.lrs == pytest.approx([0.0, 0.05] + [0.1] * 6)
    with pytest.raises(ZooUserError, match="not both"):
        Toy(class_names=CLASSES, lr_schedule="cosine",
            lr_scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=5))
    with pytest.raises(ZooUserError, match="run length"):  # an endless run has no last step to decay to
        trainer(max_epochs=-1).fit(Toy(class_names=CLASSES, lr_schedule="cosine"), toy_loader())


# -- class-balanced sampling ------------------------------------------------------------------------
def test_balanced_bucket_sampler_evens_the_classes_and_keeps_bucketing_and_sharding():
    rng = np.random.default_rng(0)
    labels = np.array([0] * 900 + [1] * 80 + [2] * 20)
    durations = rng.uniform(1, 10, size=len(labels))
    counts = Counter(labels.tolist())
    weights = [1.0 / counts[c] for c in labels]
    s = BucketBatchSampler(durations, batch_size=16, seed=0, weights=weights)
    batches = list(s)
    drawn = Counter(labels[i] for b in batches for i in b)
    assert sum(drawn.values()) == len(labels)  # an epoch keeps its size
    assert all(abs(drawn[c] / len(labels) - 1 / 3) < 0.05 for c in range(3)), drawn
    pad = sum(max(durations[b]) * len(b) - durations[b].sum() for b in batches)
    perm = rng.permutation(len(labels))
    rand_pad = sum(max(durations[b]) * len(b) - durations[b].sum() for b in (perm[i:i + 16] for i in range(0, 1000, 16)))
    assert pad < 0.2 * rand_pad  # still bucketed by length
    s.set_epoch(1)
    assert list(s) != batches  # a new draw each epoch, reproducible from the seed
    assert list(BucketBatchSampler(durations, 16, seed=0, weights=weights)) == batches
    ranks = [list(BucketBatchSampler(durations, 16, seed=0, weights=weights, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) and ranks[0] + ranks[1] != [] and ranks[0] != ranks[1]
    # the ranks share out the same draw (the last rank short of a batch repeats the first one)
    assert sorted(map(tuple, ranks[0] + ranks[1])) == sorted(map(tuple, (batches * 2)[: 2 * len(ranks[0])]))
    with pytest.raises(ValueError, match="weights"):
        BucketBatchSampler(durations, 16, weights=[1.0] * 3)


def test_datamodule_balanced_sampling(tmp_path, cache_dir):
    from zoo.data import EmotionDataModule
    from zoo.data.corpora import Manifest

    rows = ["path,label,split"]
    for i in range(40):
        label = "a" if i < 32 else "b"
        sf.write(tmp_path / f"{i}.wav", np.random.default_rng(i).normal(size=800) * 0.1, SR)
        rows.append(f"{i}.wav,{label},{'train' if i % 4 else 'val'}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    for bucketing in (True, False):
        seen = Counter()
        for seed in range(20):
            dm = EmotionDataModule(corpus=Manifest(path=str(tmp_path / "m.csv")), cache_dir=str(cache_dir),
                                   modalities=["audio"], batch_size=5, balanced_sampling=True,
                                   bucketing=bucketing, seed=seed)
            dm.setup("fit")
            for b in dm.train_dataloader():
                seen.update(b.labels.tolist())
            assert sum(len(b) for b in dm.val_dataloader()) == 10  # evaluation untouched
        assert abs(seen[0] / sum(seen.values()) - 0.5) < 0.07, (bucketing, seen)  # 24 a vs 6 b in train


def test_augmentation_runs_in_float32_under_bf16_autocast():
    """trainer.precision: bf16-mixed: the waveform chain stays float32 (speed perturbation's
    resampling convolution once came back bfloat16 and could not be written into the batch)."""
    wav, n = sines([16000, 8000, 3001])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, m = augmenter(speeds=[0.9], noise_prob=1.0, snr_db=(20.0, 20.0), gain_prob=1.0)(wav, n)
    assert out.dtype == torch.float32 and m.tolist() == [math.ceil(k / 0.9) for k in n.tolist()]
    assert padding_is_zero(out, m)


def test_training_batches_never_hold_a_lone_clip():
    """BatchNorm cannot train on one clip (SpeechBrain's ECAPA raised on a 1-clip last batch of a
    leave-one-speaker-out fold): a lone remainder joins the batch before it, nothing is lost."""
    for n in (17, 33, 49, 801):
        s = BucketBatchSampler(np.linspace(1, 5, n), batch_size=16, shuffle=True, seed=0, pool_batches=2)
        batches = list(s)
        assert min(len(b) for b in batches) > 1
        assert sorted(i for b in batches for i in b) == list(range(n))
        assert max(len(b) for b in batches) == 17  # the merged one
        assert len(s) == len(batches)  # what Lightning counts steps (and schedules) by
