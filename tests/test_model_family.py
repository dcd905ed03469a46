"""Invariances every model family must keep. Padding is the most common silent bug in SER code
(group-norm wav2vec2 feature extractors, attention masks, pooling over padded frames): for every
model, an utterance's logits alone and inside a padded batch of longer ones must match."""
import pytest
import torch

from zoo.data.batch import collate
from zoo.data.text import train_tokenizer
from zoo.nn.ssl import MODEL_TYPES, family_for

CLASSES = ["Angry", "Happiness", "Neutral", "Sadness"]
SENTENCES = ["나 어제 헤어졌어", "오늘 정말 기분이 좋아 진짜 너무 좋아서 날아갈 것 같아",
             "왜 이렇게 화가 나는지 모르겠어", "무서워", "그냥 평범한 하루였어 별일 없었고 밥 먹고 잤어"]
TEXT = {"class_path": "zoo.models.TextBERT",
        "init_args": {"pretrained": None, "vocab_size": 200, "hidden_size": 32, "num_layers": 2,
                      "num_heads": 2, "intermediate_size": 64}}
TFIDF = {"class_path": "zoo.models.TextTfidf", "init_args": {}}
AUDIO = {"class_path": "zoo.models.AudioCNN", "init_args": {"channels": [8, 16, 16], "hidden": 16}}
W2V = dict(pretrained=None, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
           conv_dim=[16] * 7)
# a tiny random model of every SSL type in the family table (zoo.nn.ssl), built from size options
SSL = {t: family_for(t).tiny_init_args(t) for t in MODEL_TYPES}

# name -> (class name, init args); one entry per family and per padding-relevant variant
MODELS = {
    "audio_cnn": ("AudioCNN", AUDIO["init_args"]),
    "audio_cnn_ecapa": ("AudioCNN", {"encoder": "ecapa", "channels": [16], "hidden": 16}),
    "text_cls": ("TextBERT", {**TEXT["init_args"], "pooling": "cls"}),
    "text_mean": ("TextBERT", {**TEXT["init_args"], "pooling": "mean"}),
    "text_tfidf": ("TextTfidf", {}),
    "text_tfidf_char_sublinear_off": ("TextTfidf", {"analyzer": "char", "sublinear_tf": False}),
    "wav2vec2_group_norm": ("Wav2Vec2Classifier", {**W2V, "feat_extract_norm": "group"}),
    "wav2vec2_layer_norm_weighted": ("Wav2Vec2Classifier", {**W2V, "feat_extract_norm": "layer",
                                                            "weighted_layers": True, "pooling": "attentive"}),
    **{f"ssl_{t}": ("SSLClassifier", {**args, "weighted_layers": True}) for t, args in SSL.items()},
    "egemaps_mlp": ("EGeMAPSMLP", {"hidden": [16]}),
    **{f"late_fusion_{f}": ("LateFusion", {"audio_branch": AUDIO, "text_branch": TEXT, "fusion": f,
                                           "fusion_hidden": 16})
       for f in ("concat", "gated", "attention", "logits", "probs")},
    "late_fusion_wav2vec2": ("LateFusion", {"audio_branch": {"class_path": "zoo.models.Wav2Vec2Classifier",
                                                             "init_args": W2V}, "text_branch": TEXT}),
    "late_fusion_ssl_hubert": ("LateFusion", {"audio_branch": {"class_path": "zoo.models.SSLClassifier",
                                                               "init_args": {**W2V, "model_type": "hubert"}},
                                              "text_branch": TEXT, "fusion": "gated"}),
    "late_fusion_egemaps": ("LateFusion", {"audio_branch": {"class_path": "zoo.models.EGeMAPSMLP",
                                                            "init_args": {"hidden": [16]}},
                                           "text_branch": TEXT, "fusion": "gated"}),
    **{f"late_fusion_tfidf_{f}": ("LateFusion", {"audio_branch": AUDIO, "text_branch": TFIDF, "fusion": f,
                                                 "fusion_hidden": 16}) for f in ("concat", "probs")},
    **{f"early_fusion_{j}": ("EarlyFusion", {"text_branch": TEXT, "d_model": 32, "num_heads": 2, "joint": j})
       for j in ("concat", "cross_attention")},
    "early_fusion_ssl_wavlm": ("EarlyFusion", {"text_branch": TEXT, "d_model": 32, "num_heads": 2,
                                               "audio_branch": {"class_path": "zoo.models.SSLClassifier",
                                                                "init_args": {**W2V, "model_type": "wavlm",
                                                                              "weighted_layers": True}}}),
}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_tokenizer(SENTENCES * 4, vocab_size=150, cache_dir=tmp_path_factory.mktemp("tok"))


def build(name, tokenizer):
    import zoo.models

    cls, args = MODELS[name]
    torch.manual_seed(0)
    model = getattr(zoo.models, cls)(class_names=CLASSES, **args)
    if "TextTfidf" in {type(m).__name__ for m in model.modules()}:
        model.prepare_tokenizer(SENTENCES[:3] * 2)  # fits its own n-gram vocabulary (some unseen)
        for m in model.modules():  # weights of a trained linear layer, not the zero start
            if type(m).__name__ == "TfidfLinear":
                m.scores.weight.data.normal_()
    elif hasattr(model, "set_tokenizer"):
        model.set_tokenizer(tokenizer)
    return model


def items(model, tokenizer, lengths, seed=0):
    tokenizer = getattr(model, "tokenizer", None) or tokenizer  # the model's own (TF-IDF n-grams)
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, n in enumerate(lengths):
        it = {"id": str(i), "label": 0, "speaker": None}
        if "audio" in model.inputs:
            t = torch.arange(n) / 16000
            it["audio"] = 0.1 * torch.sin(2 * torch.pi * (150 + 40 * i) * t) + 0.02 * torch.randn(n, generator=g)
        if "text" in model.inputs:
            it["text"] = SENTENCES[i % len(SENTENCES)]
            it["input_ids"] = tokenizer.encode(it["text"])
        if "egemaps" in model.inputs:
            it["features"] = torch.randn(88, generator=g)
        out.append(it)
    return out


def test_every_family_is_covered():
    import zoo.models

    covered = {cls for cls, _ in MODELS.values()}
    assert set(zoo.models.__all__) - {"EmotionModule"} <= covered


@pytest.mark.parametrize("name", list(MODELS))
def test_batched_equals_single(name, tokenizer):
    model = build(name, tokenizer)
    for m in model.modules():  # statistics for the eGeMAPS standardisation
        if hasattr(m, "set_feature_stats"):
            m.set_feature_stats(torch.randn(20, 88, generator=torch.Generator().manual_seed(5)) * 3 + 1)
    if any(hasattr(m, "initialised")
                                for m in model.modules()):  # running log-mel statistics
        model.train()
        model(collate(items(model, tokenizer, [8000, 12000], seed=1)))
    model.eval()
    # the shortest utterance comes first, the longer ones pad it in the batch
    its = items(model, tokenizer, [4001, 16000, 9000, 23999, 800])
    tokenizer = getattr(model, "tokenizer", None) or tokenizer
    with torch.no_grad():
        batched = model(collate(its, pad_id=tokenizer.pad_id))
        single = torch.cat([model(collate([it], pad_id=tokenizer.pad_id)) for it in its])
    diff = (batched - single).abs().max().item()
    assert diff <= 1e-4, f"{name}: batched and single logits differ by {diff:.2e}"
    # and what sits in the padding does not matter
    b = collate(its, pad_id=tokenizer.pad_id)
    if b.waveforms is not None:
        pad = torch.arange(b.waveforms.shape[1])[None] >= b.lengths[:, None]
        b.waveforms[pad] = 0.5 * torch.randn(int(pad.sum()))
    if b.input_ids is not None:
        b.input_ids[b.attention_mask == 0] = 7
    with torch.no_grad():
        noisy = model(b)
    assert (noisy - batched).abs().max().item() <= 1e-4, f"{name}: padding content leaks into the logits"


@pytest.mark.parametrize("name", ["audio_cnn", "text_cls", "text_tfidf", "late_fusion_concat", "late_fusion_gated",
                                  "late_fusion_attention", "late_fusion_probs", "late_fusion_tfidf_concat",
                                  "early_fusion_concat", "early_fusion_ssl_wavlm"])
def test_gradients_reach_every_trainable_parameter(name, tokenizer):
    """Nothing trainable is left dangling (DDP fails on unused parameters)."""
    model = build(name, tokenizer).train()
    if hasattr(model, "modality_dropout"):
        model.modality_dropout = 0.0
    b = collate(items(model, tokenizer, [4000, 6000]), pad_id=tokenizer.pad_id)
    model.loss(model(b), b).backward()  # the training loss (decision fusion: its calibration term too)
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing


def test_ua_is_balanced_accuracy_over_the_classes_present():
    """UA = mean recall over the classes in the references (scikit-learn's balanced accuracy): a
    class missing from a split (one EmoDB actor has no Disgust) is left out even when it is
    predicted, not counted as recall 0; WA and macro-F1 as scikit-learn computes them."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    from zoo.models.metrics import emotion_metrics

    g = torch.Generator().manual_seed(0)
    for absent in (None, 2):
        target = torch.randint(0, 4, (60,), generator=g)
        if absent is not None:
            target[target == absent] = 0
        preds = torch.randint(0, 4, (60,), generator=g)  # predicts the absent class too
        m = emotion_metrics(4)
        for k in range(0, 60, 16):  # accumulated over batches, with an ignored label
            t = target[k:k + 16].clone()
            t[0] = -1
            target[k] = -1
            m.update(preds[k:k + 16], t)
        out = m.compute()
        keep = target >= 0
        t, p = target[keep].numpy(), preds[keep].numpy()
        assert float(out["UA"]) == pytest.approx(balanced_accuracy_score(t, p), abs=1e-6)
        assert float(out["WA"]) == pytest.approx(accuracy_score(t, p), abs=1e-6)
        assert float(out["macro_F1"]) == pytest.approx(f1_score(t, p, average="macro", labels=[0, 1, 2, 3]), abs=1e-6)
