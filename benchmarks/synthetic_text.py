"""Text-only references on the synthetic corpus (docs/results.md): a character n-gram TF-IDF +
linear SVM, the classic baseline, on exactly the split the zoo's DataModule makes, to compare
with the from-scratch TextBERT (configs/model/text_kobert.yaml with pretrained: null).

    pip install -e '.[bench]'
    python benchmarks/synthetic_text.py --size 2000
    python -m zoo fit --config configs/data/synthetic.yaml --config configs/model/text_kobert.yaml \\
        --data.corpus.size 2000 --model.init_args.pretrained null --model.init_args.encoder_lr null \\
        --trainer.max_epochs 20 --test_after_fit true

Scores are reported on all test utterances and on those whose emotion the words carry
(``words`` and ``both`` cues): the rest have neutral sentences, which no text model can read.
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


if __name__ == "__main__":
    main()
