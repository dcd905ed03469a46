"""Late fusion's second stage: per-branch temperature scaling, and the split it is fitted on."""
from pathlib import Path

import torch

from zoo.data.batch import collate
from zoo.models import LateFusion
from zoo.nn.fusion import DecisionFusion

CLASSES = ["Angry", "Happiness", "Neutral", "Sadness"]
TINY_AUDIO = {"class_path": "zoo.models.AudioCNN", "init_args": {"channels": [4, 8, 8], "hidden": 8}}
TINY_TEXT = {"class_path": "zoo.models.TextBERT",
             "init_args": {"pretrained": None, "vocab_size": 60, "hidden_size": 16, "num_layers": 1,
                           "num_heads": 2, "intermediate_size": 32}}


def test_temperature_scaling_softens_an_overconfident_branch_and_sharpens_a_timid_one():
    torch.manual_seed(0)
    n, k = 400, 4
    labels = torch.randint(0, k, (n,))
    clean = torch.randn(n, k)
    clean[torch.arange(n), labels] += 1.5  # right about 70% of the time
    la, lt = clean * 8.0, clean * 0.2  # the same evidence, over- and under-confident
    fusion = DecisionFusion("probs")
    opt = torch.optim.Adam([fusion.log_temperature], lr=0.05)
    for _ in range(400):
        opt.zero_grad()
        fusion.calibration_loss(la, lt, labels, torch.ones(n, dtype=torch.bool)).backward()
        opt.step()
    t_audio, t_text = fusion.temperatures.tolist()
    assert t_audio > 3.0 and t_text < 0.5, (t_audio, t_text)
    # calibrated, both branches speak on one scale: the ratio undoes the 40x difference
    assert 20 < t_audio / t_text < 80, (t_audio, t_text)
    # the temperatures never take gradient from the fused output (they stay calibrations)
    fusion.zero_grad()
    fusion(la, lt).logsumexp(-1).sum().backward()
    assert fusion.log_temperature.grad is None or not fusion.log_temperature.grad.any()


def test_a_checkpoint_from_before_temperatures_loads_with_temperature_one():
    fusion = DecisionFusion("probs")
    old = {"weights": torch.tensor([0.3, -0.3])}  # what such a checkpoint held
    fusion.load_state_dict(old)
    assert torch.equal(fusion.temperatures, torch.ones(2))
    assert torch.equal(fusion.weights.data, old["weights"])


def test_fit_on_auto_is_the_validation_split_only_for_a_frozen_decision_level_second_stage(tmp_path):
    torch.manual_seed(0)
    end_to_end = LateFusion(class_names=CLASSES, audio_branch=TINY_AUDIO, text_branch=TINY_TEXT, fusion="probs")
    assert end_to_end.fit_split == "train"
    assert LateFusion(class_names=CLASSES, audio_branch=TINY_AUDIO, text_branch=TINY_TEXT,
                      fit_on="val").fit_split == "val"
    # the two-stage recipe: two frozen checkpoints (the shipped synthetic ones)
    ckpts = Path(__file__).resolve().parents[1] / "checkpoints"
    seven = ["Angry", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]
    stage2 = dict(class_names=seven, audio_checkpoint=str(ckpts / "audio-cnn-synth.ckpt"),
                  text_checkpoint=str(ckpts / "text-bert-synth.ckpt"), freeze_encoders=True)
    assert LateFusion(fusion="probs", **stage2).fit_split == "val"
    assert LateFusion(fusion="logits", **stage2).fit_split == "val"
    assert LateFusion(fusion="concat", **stage2).fit_split == "train"  # too many parameters for val
    assert LateFusion(fusion="probs", fit_on="train", **stage2).fit_split == "train"
    # without calibration the temperatures stay at 1 and take no gradient
    plain = LateFusion(class_names=CLASSES, audio_branch=TINY_AUDIO, text_branch=TINY_TEXT, fusion="probs",
                       calibrate=False)
    assert not plain.fusion.log_temperature.requires_grad


def test_training_a_decision_fusion_fits_the_temperatures():
    torch.manual_seed(0)
    model = LateFusion(class_names=CLASSES, audio_branch=TINY_AUDIO, text_branch=TINY_TEXT, fusion="probs")
    model.text.prepare_tokenizer(["오늘 기분이 좋아", "너무 슬퍼", "화가 나"] * 5)
    g = torch.Generator().manual_seed(0)
    items = [{"id": str(i), "label": i % 4, "audio": torch.randn(8000, generator=g) * 0.1, "text": "너무 슬퍼",
              "input_ids": model.tokenizer.encode("너무 슬퍼")} for i in range(8)]
    batch = collate(items)
    model.train()
    loss = model.loss(model(batch), batch)
    loss.backward()
    assert model.fusion.log_temperature.grad is not None and model.fusion.log_temperature.grad.abs().sum() > 0
    assert model.fusion.weights.grad is not None
