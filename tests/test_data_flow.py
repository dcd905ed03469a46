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
from zoo.data.contract import DataView
from zoo.data.dataset import EmotionDataset
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


# -- one direction: the model hands the DataModule a DataRequest ----------------------------------
def test_the_datamodule_reads_no_model_attribute():
    """Before: the DataModule read trainer.lightning_module's inputs, tokenizer, text_optional and
    fit_split. Now the model hands them over (EmotionDataModule.request) from its own setup."""
    import inspect

    from zoo.data import datamodule

    src = inspect.getsource(datamodule)
    assert "lightning_module" not in src and "_model(" not in src


def _aihub(tmp_path, **kw):
    from fixtures.aihub import seed_cells, write_aihub_fixture
    from zoo.data import EmotionDataModule
    from zoo.data.corpora import AIHub

    rows = seed_cells()
    rows[0][1] = ""  # one row without a transcript
    write_aihub_fixture(tmp_path, rows=rows, missing=[rows[1][0]])  # and one without its wav
    return EmotionDataModule(corpus=AIHub(root=str(tmp_path)), cache_dir=None, batch_size=4,
                             split={"mode": "random", "val_fraction": 0.2, "test_fraction": 0.2}, **kw)


def test_under_a_trainer_the_splits_follow_the_models_request(tmp_path):
    """Lightning runs the DataModule's setup before the model's: under a trainer the validation and
    split wait for the request; each request is validated for its own modalities."""
    from zoo.data import DataRequest

    dm = _aihub(tmp_path, on_error="skip")
    dm.trainer = object()  # attached (Lightning sets it before setup)
    dm.setup("fit")  # nothing validated yet: the model has not said what it reads
    assert dm._splits is None
    dm.request(DataRequest(modalities=("text",), text_optional=True))  # may lack a transcript
    assert len(dm.split("all")) == 13 and not dm.report["dropped"]  # the missing wav is not looked for
    dm.request(DataRequest(modalities=("audio",)))  # an audio model: the wav must be there
    assert len(dm.split("all")) == 12 and sum(dm.report["dropped"].values()) == 1
    dm.request(DataRequest(modalities=("audio", "text")))  # early fusion: every transcript too
    assert len(dm.split("all")) == 11 and sum(dm.report["dropped"].values()) == 2
    dm.request(DataRequest(modalities=("audio", "text"), tokenizer="a new tokenizer"))
    assert len(dm.split("all")) == 11 and sum(dm.report["dropped"].values()) == 2  # not re-validated


def test_the_training_loader_serves_the_requested_split_and_tokenizer(tmp_path):
    from zoo.data import DataRequest

    tok = train_tokenizer(SENTENCES * 4, vocab_size=150, cache_dir=tmp_path / "tok")
    dm = _aihub(tmp_path / "c", modalities=["text"], on_error="skip")
    dm.setup("fit")
    dm.request(DataRequest(modalities=("text",), fit_split="val", tokenizer=tok))
    ids = [i for b in dm.train_dataloader() for i in b.ids]
    assert sorted(ids) == sorted(u.id for u in dm.split("val"))
    b = next(iter(dm.train_dataloader()))
    assert b.waveforms is None and b.input_ids[0].tolist()[: 3] == tok.encode(b.texts[0])[: 3]


def test_a_text_model_fits_on_a_corpus_with_a_missing_wav(tmp_path):
    """End to end through Lightning: TextTfidf's request (text only) reaches the DataModule in its
    setup, so the missing wav is never looked for; its own tokenizer encodes the items."""
    import lightning as L

    from zoo.models import TextTfidf

    dm = _aihub(tmp_path, on_error="skip")  # skip: the row without a transcript is dropped, counted
    model = TextTfidf(class_names=dm.class_names)
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, datamodule=dm)
    assert dm._request == model.data_request() and dm._request.tokenizer is model.tokenizer
    assert dm._request.modalities == ("text",)
    assert len(dm.split("all")) == 12 and "audio file not found" not in " ".join(dm.report["dropped"])


def test_a_late_fusion_second_stage_is_fitted_on_the_split_it_requests(tmp_path):
    """LateFusion(fit_on=val) hands fit_split=val and text_optional in its request: the training
    loop iterates the validation utterances, and a row without a transcript is kept."""
    import lightning as L

    from test_model_family import AUDIO, TEXT
    from zoo.models import LateFusion

    dm = _aihub(tmp_path, on_error="skip")
    model = LateFusion(class_names=dm.class_names, audio_branch=AUDIO, text_branch=TEXT, fit_on="val",
                       fusion_hidden=16)
    seen = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.extend(batch.ids)

    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        callbacks=[Record()], default_root_dir=tmp_path)
    trainer.fit(model, datamodule=dm)
    assert dm._request.fit_split == "val" and dm._request.text_optional
    assert sorted(seen) == sorted(u.id for u in dm.split("val"))
    assert len(dm.split("all")) == 12  # only the row without its wav is dropped; the one without text stays
