"""Text side: tokenizers (KoBERT's layout, trained from transcripts, saved and reloaded), the
text model loaded through `pretrained:` from a local directory, tokenizers inside checkpoints."""
import pickle

import pytest
import torch

from zoo.data.batch import collate
from zoo.data.text import (SPECIALS, TextTokenizer, ZooKoBertTokenizer, load_tokenizer,
                           train_tokenizer)
from zoo.errors import ZooUserError
from zoo.models import TextBERT
from zoo.models.loading import load_module

CLASSES = ["Angry", "Happiness", "Neutral", "Sadness"]
SENTENCES = ["나 어제 헤어졌어", "오늘 정말 기분이 좋아", "왜 이렇게 화가 나는지 모르겠어",
             "무서워서 잠을 못 잤어", "그냥 평범한 하루였어", "친구가 선물을 줬어", "시험에 떨어졌어",
             "내일 회의는 열 시에 시작해"]
TINY = dict(vocab_size=200, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)


@pytest.fixture
def tokenizer(tmp_path):
    return train_tokenizer(SENTENCES * 3, vocab_size=120, cache_dir=tmp_path / "tok")


def test_trained_tokenizer_is_cached_deterministic_and_kobert_shaped(tokenizer, tmp_path):
    ids = tokenizer.encode("나 어제 헤어졌어")
    toks = tokenizer.hf.convert_ids_to_tokens(ids)
    assert toks[0] == "[CLS]" and toks[-1] == "[SEP]"
    assert "[UNK]" not in toks  # every syllable of a training sentence is in the vocabulary
    assert tokenizer.pad_id == SPECIALS.index("[PAD]") == 0
    assert tokenizer.vocab_size <= 120 + len(SPECIALS)
    again = train_tokenizer(SENTENCES * 3, vocab_size=120, cache_dir=tmp_path / "tok")
    assert again.hf.vocab_file == tokenizer.hf.vocab_file  # the cache, not a retrain
    other = train_tokenizer(SENTENCES[:4] * 3, vocab_size=120, cache_dir=tmp_path / "tok")
    assert other.hf.vocab_file != tokenizer.hf.vocab_file  # other transcripts, other key
    # truncation keeps [SEP]
    short = TextTokenizer(tokenizer.hf, max_length=4).encode("왜 이렇게 화가 나는지 모르겠어")
    assert len(short) == 4 and short[-1] == tokenizer.hf.sep_token_id


def test_kobert_tokenizer_save_pretrained_round_trip(tokenizer, tmp_path):
    # KoBertTokenizer.save_pretrained fails on transformers >= 4.x; the zoo's subclass works
    assert isinstance(tokenizer.hf, ZooKoBertTokenizer)
    tokenizer.save(tmp_path / "saved")
    assert (tmp_path / "saved/tokenizer_78b3253a26.model").exists()
    assert (tmp_path / "saved/vocab.txt").exists()
    back = load_tokenizer(str(tmp_path / "saved"))
    for s in SENTENCES:
        assert back.encode(s) == tokenizer.encode(s)
    # picklable for DataLoader workers
    assert pickle.loads(pickle.dumps(tokenizer)).encode(SENTENCES[1]) == tokenizer.encode(SENTENCES[1])


def test_unreachable_hub_id_is_a_clear_error(tmp_path):
    with pytest.raises(ZooUserError, match="local directory"):
        load_tokenizer(str(tmp_path / "no-such-model"))


def test_text_model_loads_a_local_pretrained_directory(tokenizer, tmp_path):
    """The `pretrained:` path users use with monologg/kobert, on a tiny random BERT saved here."""
    from transformers import BertConfig, BertModel

    d = tmp_path / "tiny-kobert"
    bert = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=64))
    bert.save_pretrained(d)
    tokenizer.save(d)
    model = TextBERT(class_names=CLASSES, pretrained=str(d))
    for k, v in bert.state_dict().items():
        assert torch.equal(model.encoder.bert.state_dict()[k], v), k
    assert model.tokenizer.encode(SENTENCES[0]) == tokenizer.encode(SENTENCES[0])
    frozen = TextBERT(class_names=CLASSES, pretrained=str(d), freeze_encoder=True)
    trainable = {n for n, p in frozen.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("head.") for n in trainable)
    assert not frozen.train().encoder.training  # frozen encoder: no dropout noise


def test_from_scratch_model_trains_its_tokenizer_and_checkpoint_carries_it(tmp_path):
    model = TextBERT(class_names=CLASSES, pretrained=None, **TINY)
    assert model.tokenizer is None
    model.prepare_tokenizer(SENTENCES)
    assert model.tokenizer is not None and model.tokenizer.vocab_size <= model.encoder.vocab_size
    ckpt = {"hyper_parameters": {}}
    model.on_save_checkpoint(ckpt)
    fresh = TextBERT(class_names=CLASSES, pretrained=None, **TINY)
    fresh.on_load_checkpoint(ckpt)
    for s in SENTENCES:
        assert fresh.tokenizer.encode(s) == model.tokenizer.encode(s)
    fresh.prepare_tokenizer(["완전히 다른 문장"])  # a restored tokenizer is not retrained
    assert fresh.tokenizer.encode(SENTENCES[2]) == model.tokenizer.encode(SENTENCES[2])


def test_text_model_without_transcript_is_a_clear_error(tokenizer):
    model = TextBERT(class_names=CLASSES, pretrained=None, **TINY)
    model.set_tokenizer(tokenizer)
    batch = collate([{"id": "a", "label": 0, "audio": torch.zeros(1600)}])
    with pytest.raises(ZooUserError, match="transcript"):
        model(batch)


def test_encoder_lr_gets_its_own_parameter_group():
    model = TextBERT(class_names=CLASSES, pretrained=None, encoder_lr=1e-5, **TINY,
                     optimizer=lambda p: torch.optim.AdamW(p, lr=1e-3))
    opt = model.configure_optimizers()
    lrs = sorted(g["lr"] for g in opt.param_groups)
    assert lrs == [1e-5, 1e-3]
    n_enc = sum(p.numel() for p in model.encoder.parameters())
    assert sum(p.numel() for g in opt.param_groups if g["lr"] == 1e-5 for p in g["params"]) == n_enc


def test_small_vocabulary_on_many_characters(tmp_path):
    """Korean has thousands of syllables: a vocabulary smaller than the character set still
    trains (rare characters become [UNK]) and never exceeds the encoder's embedding table."""
    import random

    rng = random.Random(0)
    texts = ["".join(chr(0xAC00 + rng.randrange(2000)) for _ in range(12)) for _ in range(300)]
    tok = train_tokenizer(texts, vocab_size=300, cache_dir=tmp_path)
    assert tok.vocab_size <= 300 + len(SPECIALS)
    ids = tok.encode(texts[0])
    assert max(ids) < tok.vocab_size and tok.hf.unk_token_id in ids


def test_a_text_only_run_never_opens_audio(tmp_path, monkeypatch):
    import lightning as L

    from zoo.data import EmotionDataModule
    from zoo.data.corpora import AIHub
    from zoo.data.synth import generate

    corpus = generate(tmp_path / "synth", size=40, seed=0)

    def no_audio(*args, **kwargs):
        raise AssertionError("a text-only run opened an audio file")
    for name in ("zoo.data.audio.AudioLoader.__call__", "zoo.data.probe.audio_info",
                 "zoo.data.probe.audio_exists", "zoo.data.datamodule.file_digest"):
        monkeypatch.setattr(name, no_audio)
    dm = EmotionDataModule(corpus=AIHub(root=str(corpus)), batch_size=8, cache_dir=None)
    model = TextBERT(class_names=dm.class_names, pretrained=None, **TINY)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(model, dm)
    assert trainer.global_step == 2
    batch = next(iter(dm.train_dataloader()))
    assert batch.waveforms is None and batch.input_ids is not None
    assert batch.input_ids.shape == batch.attention_mask.shape
    # the tokenizer was trained on the training transcripts only
    train_chars = {c for u in dm.split("train") for c in u.text}
    vocab = model.tokenizer.hf.idx2token
    assert all(c in train_chars for piece in vocab[5:] for c in piece.replace("▁", ""))


def test_checkpoints_of_pretrained_models_load_without_the_pretrained_files(tokenizer, tmp_path):
    """A model fine-tuned from a hub id / directory records the architecture and the tokenizer,
    so its checkpoint (and a late fusion that uses it) loads when those files are gone."""
    import shutil

    import lightning as L
    from transformers import BertConfig, BertModel

    from zoo.models import LateFusion
    from zoo.models.loading import load_module

    d = tmp_path / "tiny-kobert"
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=64)).save_pretrained(d)
    tokenizer.save(d)
    text = {"class_path": "zoo.models.TextBERT", "init_args": {"pretrained": str(d)}}
    audio = {"class_path": "zoo.models.AudioCNN", "init_args": {"channels": [8, 8, 8], "hidden": 8}}
    models = {"text": TextBERT(class_names=CLASSES, pretrained=str(d)),
              "fusion": LateFusion(class_names=CLASSES, audio_branch=audio, text_branch=text)}
    items = [{"id": str(i), "label": i % 4, "audio": torch.randn(4000) * 0.1, "text": s,
              "input_ids": tokenizer.encode(s)} for i, s in enumerate(SENTENCES)]
    batch = collate(items)
    for name, model in models.items():
        trainer = L.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_checkpointing=False)
        trainer.fit(model, torch.utils.data.DataLoader(items, batch_size=8, collate_fn=collate))
        trainer.save_checkpoint(tmp_path / f"{name}.ckpt")
    expected = {name: m.eval()(batch).detach() for name, m in models.items()}
    shutil.rmtree(d)
    for name in models:
        back = load_module(str(tmp_path / f"{name}.ckpt")).eval()
        assert torch.allclose(back(batch), expected[name], atol=1e-5), name
        assert back.tokenizer.encode(SENTENCES[0]) == tokenizer.encode(SENTENCES[0])


# -- masked-language-model pretraining of the from-scratch encoder ---------------------------
def test_mlm_pretraining_lowers_the_masked_lm_loss_and_is_cached(tokenizer, tmp_path):
    from zoo.nn.text import TextEncoder, pretrain_mlm

    def encoder():
        torch.manual_seed(0)
        return TextEncoder(None, vocab_size=tokenizer.vocab_size, hidden_size=32, num_layers=1, num_heads=2,
                           intermediate_size=64)

    enc, start = encoder(), encoder().state_dict()
    opts = dict(epochs=8, batch_size=8, lr=2e-3, cache_dir=tmp_path / "mlm")
    losses = pretrain_mlm(enc, tokenizer.hf, SENTENCES * 5, **opts)
    assert len(losses) == 8 and losses[-1] < 0.85 * losses[0], losses
    assert not torch.equal(enc.state_dict()["bert.embeddings.word_embeddings.weight"],
                           start["bert.embeddings.word_embeddings.weight"])
    assert len(list((tmp_path / "mlm").iterdir())) == 1
    again = encoder()
    assert pretrain_mlm(again, tokenizer.hf, SENTENCES * 5, **opts) == losses  # loaded, not retrained
    for k, v in enc.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k
    other = encoder()  # other text: another cache entry
    pretrain_mlm(other, tokenizer.hf, SENTENCES[:4] * 5, **{**opts, "epochs": 1})
    assert len(list((tmp_path / "mlm").iterdir())) == 2


def test_mlm_option_through_the_cli(run, tmp_path, monkeypatch):
    """mlm_epochs pretrains the tiny from-scratch encoder on the training transcripts plus an
    unlabelled text file (whose characters the tokenizer then knows) before fine-tuning."""
    from pathlib import Path

    import zoo.nn.text

    real, calls = zoo.nn.text.pretrain_mlm, []

    def spy(*a, **kw):  # a fresh cache, so it really trains here; and the losses it reports
        calls.append(real(*a, **{**kw, "cache_dir": tmp_path / "mlm"}))
        return calls[-1]

    monkeypatch.setattr(zoo.nn.text, "pretrain_mlm", spy)
    extra = tmp_path / "unlabelled.txt"
    extra.write_text("\n".join(["뷁 소리가 났어 뷁뷁", "", "그 뷁은 이상했어"] * 20) + "\n", encoding="utf-8")
    root = Path(__file__).resolve().parents[1]
    args = ["--config", str(root / "configs/data/synthetic.yaml"), "--config", str(root / "configs/model/text_kobert.yaml"),
            "--config", str(root / "configs/model/tiny/text_kobert.yaml"), "--data.corpus.size", "48",
            "--data.init_args.batch_size", "8", "--model.init_args.mlm_epochs", "6",
            "--model.init_args.mlm_lr", "0.003", "--model.init_args.mlm_batch_size", "8",
            "--model.init_args.mlm_text", str(extra), "--trainer.enable_progress_bar", "false",
            "--trainer.default_root_dir", str(tmp_path), "--trainer.logger.init_args.save_dir", str(tmp_path)]
    r = run("fit", *args, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
            "--trainer.limit_val_batches", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(calls) == 1 and len(calls[0]) == 6 and calls[0][-1] < calls[0][0], calls
    ckpt = tmp_path / "zoo/version_0/checkpoints/last.ckpt"
    extra.unlink()  # the checkpoint does not need the unlabelled text again
    model = load_module(str(ckpt))
    assert bool(model.mlm_done) and model.hparams.mlm_text is None
    unk = model.tokenizer.hf.unk_token_id
    assert unk not in model.tokenizer.encode("뷁")  # the vocabulary saw the unlabelled text
    # fitting a fine-tuned checkpoint again never pretrains over it
    model.prepare_tokenizer(["다른 문장"])
    model.setup("fit")
    assert len(calls) == 1


def test_mlm_text_errors_are_clear(tmp_path):
    with pytest.raises(ZooUserError, match="no such file"):
        TextBERT(class_names=CLASSES, pretrained=None, mlm_epochs=1, mlm_text=str(tmp_path / "none.txt"), **TINY)
    bad = tmp_path / "cp949.txt"
    bad.write_bytes("안녕하세요".encode("cp949"))
    with pytest.raises(ZooUserError, match="not UTF-8"):
        TextBERT(class_names=CLASSES, pretrained=None, mlm_epochs=1, mlm_text=str(bad), **TINY)
