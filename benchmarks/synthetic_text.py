"""Text-only references on the synthetic corpus (docs/results.md): a character n-gram TF-IDF +
linear SVM, the classic baseline, on exactly the split the zoo's DataModule makes, to compare
with the from-scratch TextBERT (configs/model/text_kobert.yaml with pretrained: null).

    pip install -e '.[bench]'
    python benchmarks/synthetic_text.py --size 2000
    python -m zoo fit --config configs/data/synthetic.yaml --config configs/model/text_kobert.yaml \\
        --data.corpus.size 2000 --model.init_args.pretrained null --model.init_args.encoder_lr null \\
        --trainer.max_epochs 20 --test_after_fit true

    python -m zoo fit --config configs/data/synthetic.yaml --config configs/model/text_tfidf.yaml \\
        --data.corpus.size 2000 --trainer.max_epochs 20 --test_after_fit true
    python benchmarks/synthetic_text.py --size 2000 --checkpoint runs/zoo/version_0/checkpoints/best-*.ckpt

Scores are reported on all test utterances and on those whose emotion the words carry
(``words`` and ``both`` cues): the rest have neutral sentences, which no text model can read.
``--checkpoint`` scores zoo text checkpoints on the same test split, with the expected
calibration error (ECE, 15 confidence bins) and the negative log-likelihood of their
probabilities; for a temperature-calibrated TextTfidf also without the temperature (T = 1).
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def main(argv=None) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import accuracy_score, f1_score, recall_score
    from sklearn.svm import LinearSVC

    from zoo.data import EmotionDataModule
    from zoo.data.corpora import Synthetic

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0, help="split seed (the DataModule's `seed`)")
    ap.add_argument("--checkpoint", nargs="*", default=[], help="zoo text checkpoints to score on the same split")
    a = ap.parse_args(argv)
    # the same options as configs/data/synthetic.yaml, so the split is the one `fit` uses
    dm = EmotionDataModule(corpus=Synthetic(size=a.size),
                           split={"mode": "group", "val_fraction": 0.15, "test_fraction": 0.2},
                           seed=a.seed, modalities=["text"])
    dm.prepare_data()
    dm.setup("fit")
    train, test = dm.split("train") + dm.split("val"), dm.split("test")
    with open(Path(dm.corpus.root) / "synthetic_meta.csv", encoding="utf-8") as f:
        cue = {r["wav_id"]: r["cue"] for r in csv.DictReader(f)}
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
    clf = LinearSVC(C=1.0, class_weight="balanced").fit(vec.fit_transform([u.text for u in train]),
                                                         [u.label for u in train])
    pred = clf.predict(vec.transform([u.text for u in test]))
    y = np.array([u.label for u in test])
    words = np.array([cue[u.id] in ("words", "both") for u in test])
    for name, m in (("all test", np.ones_like(words)), ("word-cued test", words)):
        print(f"char 1-3-gram TF-IDF + linear SVM, {name} ({m.sum()} utts): WA {accuracy_score(y[m], pred[m]):.3f}  "
              f"UA {recall_score(y[m], pred[m], average='macro'):.3f}  "
              f"macro-F1 {f1_score(y[m], pred[m], average='macro'):.3f}")
    for path in a.checkpoint:
        score_checkpoint(path, test, y, words)


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    conf, hit = probs.max(1), probs.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    return float(sum(abs(hit[idx == b].mean() - conf[idx == b].mean()) * (idx == b).mean()
                     for b in range(bins) if (idx == b).any()))


def score_checkpoint(path: str, test, y: np.ndarray, words: np.ndarray) -> None:
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    import zoo

    model = zoo.load(path)
    names = model.class_names
    yi = np.array([names.index(c) for c in y])
    head = getattr(model.module, "head", None)
    calibrated = hasattr(head, "log_t")  # TextTfidf: also scored without its temperature
    kind = type(model.module).__name__
    params = sum(p.numel() for p in model.module.parameters())
    for raw in (False, True) if calibrated else (False,):
        saved = head.log_t.clone() if calibrated else None
        if raw:
            head.log_t.zero_()
        probs = np.array([[r["probs"][c] for c in names]
                          for r in model.predict_batch([None] * len(test), [u.text for u in test])])
        t = f", T {float(head.log_t.exp()):.2f}" if calibrated else ""
        if calibrated:
            head.log_t.copy_(saved)
        pred = probs.argmax(1)
        nll = float(-np.log(np.clip(probs[np.arange(len(yi)), yi], 1e-12, None)).mean())
        print(f"{kind} ({params / 1e6:.3f} M params{t}) {path}")
        for name, m in (("all test", np.ones_like(words)), ("word-cued test", words)):
            print(f"  {name} ({m.sum()} utts): WA {accuracy_score(yi[m], pred[m]):.3f}  "
                  f"UA {recall_score(yi[m], pred[m], average='macro'):.3f}  "
                  f"macro-F1 {f1_score(yi[m], pred[m], average='macro'):.3f}")
        print(f"  all test: ECE {expected_calibration_error(probs, yi):.3f}  NLL {nll:.3f}")


if __name__ == "__main__":
    main()
