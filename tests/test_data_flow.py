"""Data flows one way: the model pulls what it needs (tokenizer training, statistics) from a
read-only view of the DataModule's splits; the DataModule never calls the model. One item builder
serves training (EmotionDataset) and inference (Predictor)."""
import dataclasses

import numpy as np
import pytest
import soundfile as sf
import torch

from test_model_family import SENTENCES, TEXT
from zoo.data.audio import AudioLoader
from zoo.data.datamodule import DataView, EmotionDataset
from zoo.data.text import train_tokenizer
from zoo.data.utterance import Utterance

CLASSES = ["Angry", "Happiness", "Neutral", "Sadness"]


def _view():
    utts = {s: tuple(Utterance(id=f"{s}{i}", audio=None, text=f"{s} 문장 {i}", label=CLASSES[i % 4],
                               speaker=f"spk{i % 2}") for i in range(n))
            for s, n in (("train", 6), ("val", 2), ("test", 3))}
    return DataView(utts, tuple(CLASSES), 16000, None)


def test_the_view_is_read_only_and_splits_like_the_datamodule():
    view = _view()
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.sample_rate = 8000
    assert isinstance(view.split("train"), tuple)
    assert [u.id for u in view.split("all")] == [u.id for s in ("train", "val", "test") for u in view.split(s)]
    assert view.texts("train")[0] == "train 문장 0"
    assert view.train_class_counts == [2, 2, 1, 1]


def test_the_model_trains_its_tokenizer_from_the_training_split_in_its_own_setup(monkeypatch):
    """Before: EmotionDataModule.setup called model.prepare_tokenizer. Now the model's setup does,
    with the training transcripts only (val/test words never reach the vocabulary)."""
    from zoo.models import TextTfidf

    model = TextTfidf(class_names=CLASSES, class_weights="balanced")
    view = _view()
    monkeypatch.setattr(type(model), "data_view", lambda self: view)
    model.setup("fit")
    assert model.tokenizer is not None
    vocab = model.features.tokenizer.vocabulary
    assert any("tra" in g for g in vocab) and not any("val" in g or "tes" in g for g in vocab)
    # class weights come from the same view (inverse training-set frequency)
    assert model.loss_weight.tolist() == pytest.approx([0.75, 0.75, 1.5, 1.5])


def test_the_datamodule_does_not_call_the_model():
    import inspect

    from zoo.data import datamodule

    src = inspect.getsource(datamodule.EmotionDataModule)
    assert "prepare_tokenizer" not in src and "prepare_stats" not in src


def test_inference_builds_the_item_training_builds(tmp_path):
    """Predictor._item and EmotionDataset.__getitem__ give the same model inputs for one clip."""
    from zoo.inference.predictor import Predictor
    from zoo.models import LateFusion

    tok = train_tokenizer(SENTENCES * 4, vocab_size=150, cache_dir=tmp_path / "tok")
    model = LateFusion(class_names=CLASSES, text_branch=TEXT,
                       audio_branch={"class_path": "zoo.models.AudioCNN",
                                     "init_args": {"channels": [8, 16, 16], "hidden": 16}})
    model.set_tokenizer(tok)
    wav = (0.1 * np.sin(np.arange(12000) / 9.0)).astype(np.float32)
    sf.write(tmp_path / "a.wav", wav, 16000)
    u = Utterance(id="a", audio=str(tmp_path / "a.wav"), text=SENTENCES[1], label="Angry", speaker=None)
    ds = EmotionDataset([u], CLASSES, audio=AudioLoader(16000, None), text=True, soft=False, max_samples=None,
                        random_crop=False, tokenizer=model.tokenizer)
    train_item = ds[0]
    p = Predictor(model, device="cpu")
    infer_item = p._item("a", p.load_audio(str(tmp_path / "a.wav")), SENTENCES[1])
    assert set(train_item) == set(infer_item)
    assert torch.equal(train_item["audio"], infer_item["audio"])
    assert list(train_item["input_ids"]) == list(infer_item["input_ids"]) and train_item["text"] == infer_item["text"]
    assert train_item["label"] == 0 and infer_item["label"] == -1  # the only difference: inference has no label
