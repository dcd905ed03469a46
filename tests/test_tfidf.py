"""The classic text family (character n-gram TF-IDF + linear classifier, temperature-calibrated):
features identical to scikit-learn's, trained through the CLI, round trip through a checkpoint
and zoo.load, and as the text branch of late fusion."""
import csv
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zoo.data.batch import collate
from zoo.errors import ZooUserError
from zoo.models.tfidf import Temperature, TextTfidf
from zoo.nn.tfidf import TfidfLinear

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = ["나 어제 헤어졌어", "오늘 정말 기분이 좋아 진짜 너무 좋아서 날아갈 것 같아",
             "왜 이렇게 화가 나는지 모르겠어", "무서워", "그냥 평범한 하루였어 별일 없었고 밥 먹고 잤어",
             "Hello  WORLD hello"]
UNSEEN = ["완전히 다른 문장이야 좋아", "", "무서워 무서워 무서워", "☃☃"]


def _batch(tokenizer, texts):
    return collate([{"id": str(i), "label": 0, "speaker": None, "text": t, "input_ids": tokenizer.encode(t)}
                    for i, t in enumerate(texts)], pad_id=tokenizer.pad_id)


@pytest.mark.parametrize("analyzer,sublinear", [("char_wb", True), ("char", False)])
def test_features_are_scikit_learns_tfidf_rows(analyzer, sublinear):
    from sklearn.feature_extraction.text import TfidfVectorizer

    m = TfidfLinear(3, analyzer=analyzer, ngram_range=(1, 3), sublinear_tf=sublinear)
    m.fit(SENTENCES)
    vec = TfidfVectorizer(analyzer=analyzer, ngram_range=(1, 3), sublinear_tf=sublinear).fit(SENTENCES)
    texts = SENTENCES + UNSEEN
    b = _batch(m.tokenizer, texts)
    w = m.weights(b.input_ids, b.attention_mask)
    dense = torch.zeros(len(texts), m.vocab_size + 1, dtype=torch.float64)
    dense.scatter_add_(1, b.input_ids * b.attention_mask, w.double())
    expected = np.zeros((len(texts), m.vocab_size))
    cols = [vec.vocabulary_[g] for g in m.tokenizer.vocabulary]
    expected[:, :] = vec.transform(texts).toarray()[:, cols]
    assert m.vocab_size == len(vec.vocabulary_)
    np.testing.assert_allclose(dense[:, 1:].numpy(), expected, atol=1e-6)


def test_a_text_with_no_known_ngram_gets_the_bias():
    m = TfidfLinear(2, analyzer="char")  # (char_wb would know the space that pads every word)
    m.fit(["가나다"])
    m.bias.data = torch.tensor([0.3, -0.2])
    b = _batch(m.tokenizer, ["", "☃"])
    assert b.input_ids.shape[1] == 0
    assert torch.equal(m(b.input_ids, b.attention_mask), m.bias.expand(2, -1))
    m.scores.weight.data.normal_()
    b = _batch(m.tokenizer, ["☃", "가", ""])
    out = m(b.input_ids, b.attention_mask)
    assert torch.equal(out[[0, 2]], m.bias.expand(2, -1)) and not torch.equal(out[1], m.bias)


def test_the_model_keeps_its_own_vocabulary():
    m = TextTfidf(class_names=["a", "b"])
    m.prepare_tokenizer(SENTENCES)
    vocab = m.tokenizer.vocabulary
    copy = pickle.loads(pickle.dumps(m.tokenizer))  # as DataLoader workers get it
    assert [copy.encode(t) for t in SENTENCES + UNSEEN] == [m.tokenizer.encode(t) for t in SENTENCES + UNSEEN]
    m.prepare_tokenizer(["다른 말"])  # later stages (test, predict) do not refit
    assert m.tokenizer.vocabulary == vocab
    with pytest.raises(ZooUserError, match="own n-gram vocabulary"):
        m.set_tokenizer(object())
    with pytest.raises(ZooUserError, match="no transcripts"):
        TextTfidf(class_names=["a", "b"]).prepare_tokenizer(["", " "])


def test_temperature_scaling_lowers_the_nll_of_overconfident_scores():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (400,), generator=g)
    right = torch.rand(400, generator=g) < 0.6  # 60% correct, but with huge margins
    pred = torch.where(right, labels, (labels + 1) % 4)
    scores = 12.0 * F.one_hot(pred, 4).float() + torch.randn(400, 4, generator=g)
    temp = Temperature().eval()
    before = F.cross_entropy(temp(scores), labels).item()
    t = temp.fit(scores, torch.where(torch.arange(400) % 10 == 0, -1, labels))  # -1: ignored
    after = F.cross_entropy(temp(scores), labels).item()
    assert t > 2.0 and after < 0.7 * before
    assert torch.equal(temp(scores).argmax(1), scores.argmax(1))  # the decisions do not change
    assert torch.equal(temp.train()(scores), scores)  # training sees the raw scores


# -- through the CLI --------------------------------------------------------------------------
DATA = ["--config", str(ROOT / "configs/data/synthetic.yaml"), "--data.corpus.size", "400",
        "--data.init_args.batch_size", "16"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """TextTfidf fitted through `python -m zoo fit` on the word-cued synthetic corpus."""
    from zoo.cli import main

    d = tmp_path_factory.mktemp("tfidf")
    try:
        main(["fit", *DATA, "--config", str(ROOT / "configs/model/text_tfidf.yaml"),
              "--trainer.max_epochs", "6", "--trainer.enable_progress_bar", "false",
              "--trainer.default_root_dir", str(d), "--trainer.logger.init_args.save_dir", str(d)])
    except SystemExit as e:
        assert not e.code, f"fit failed with exit code {e.code}"
    return d / "zoo/version_0/checkpoints/last.ckpt"


def _word_cued_test(root_texts=None):
    from zoo.data import EmotionDataModule
    from zoo.data.corpora import Synthetic
    from zoo.data.splits import SplitOptions

    dm = EmotionDataModule(corpus=Synthetic(size=400),
                           split=SplitOptions(mode="group", val_fraction=0.15, test_fraction=0.2),
                           seed=0, modalities=["text"])
    dm.prepare_data()
    dm.setup("fit")
    with open(Path(dm.corpus.root) / "synthetic_meta.csv", encoding="utf-8") as f:
        cue = {r["wav_id"]: r["cue"] for r in csv.DictReader(f)}
    return dm, [u for u in dm.split("test") if cue[u.id] in ("words", "both")]


def test_fit_through_the_cli_learns_the_word_cues(trained):
    import zoo
    from sklearn.metrics import recall_score

    model = zoo.load(str(trained))
    _, test = _word_cued_test()
    preds = [model.predict(text=u.text)["label"] for u in test]
    ua = recall_score([u.label for u in test], preds, average="macro")
    print(f"word-cued test UA {ua:.3f} on {len(test)} utterances")
    assert len(test) >= 15 and ua >= 0.6, f"word-cued test UA {ua:.3f} (chance 0.14)"


def test_checkpoint_round_trip_matches_an_independent_tfidf(trained):
    """What zoo.load predicts from the checkpoint (weights_only) equals softmax(TF-IDF @ W + b) / T
    with scikit-learn's vectorizer refitted on the same training transcripts."""
    import zoo
    from sklearn.feature_extraction.text import TfidfVectorizer

    saved = torch.load(trained, map_location="cpu", weights_only=True)
    sd = saved["state_dict"]
    t = sd["head.log_t"].exp().item()
    assert abs(t - 1.0) > 1e-3  # the temperature was fitted on the validation split and saved
    dm, _ = _word_cued_test()
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
    vec.fit([u.text for u in dm.split("train")])
    model = zoo.load(str(trained))
    assert model.module.tokenizer.vocabulary == sorted(vec.vocabulary_, key=vec.vocabulary_.get)
    texts = [u.text for u in dm.split("test")[:10]] + UNSEEN[:1]
    x = torch.tensor(vec.transform(texts).toarray(), dtype=torch.float)
    expected = ((x @ sd["features.scores.weight"][1:] + sd["features.bias"]) / t).softmax(-1)
    got = torch.tensor([list(model.predict(text=s)["probs"].values()) for s in texts])
    assert torch.allclose(got, expected, atol=1e-5)


def test_late_fusion_with_the_tfidf_branch(trained, tmp_path, run):
    """Stage 2 of the two-stage recipe with a TF-IDF text checkpoint: the branch's vocabulary,
    weights and temperature travel inside the fusion checkpoint, and zoo.load predicts from it."""
    import zoo

    r = run("fit", *DATA, "--data.corpus.size", "48", "--config", str(ROOT / "configs/model/late_fusion.yaml"),
            "--config", str(ROOT / "configs/model/tiny/late_fusion.yaml"),
            "--model.init_args.text_checkpoint", str(trained), "--model.init_args.freeze_encoders", "true",
            "--model.init_args.fusion", "probs", "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
            "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path),
            "--trainer.logger.init_args.save_dir", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = tmp_path / "zoo/version_0/checkpoints/last.ckpt"
    text = torch.load(trained, map_location="cpu", weights_only=True)["state_dict"]
    fused = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    for k, v in text.items():
        assert torch.equal(fused["text." + k], v), k  # frozen: identical, vocabulary included
    fusion = zoo.load(str(ckpt))
    branch = zoo.load(str(trained))
    assert fusion.module.tokenizer.vocabulary == branch.module.tokenizer.vocabulary
    wav = 0.1 * np.sin(2 * np.pi * 180 * np.arange(16000) / 16000).astype(np.float32)
    out = fusion.predict(wav, text="왜 이렇게 화가 나는지 모르겠어")
    assert abs(sum(out["probs"].values()) - 1) < 1e-5
    assert fusion.predict(wav)["label"] in fusion.class_names  # without a transcript: audio alone
