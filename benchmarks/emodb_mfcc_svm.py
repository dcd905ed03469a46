"""Classic reference for docs/results.md: MFCC statistics + RBF-SVM on EmoDB, speakers 15 and 16
held out (the same split as configs/emodb.yaml's test set).

    pip install -e '.[bench]'
    python -m zoo manifest emodb --root ../shared/data/emodb --out data/emodb.csv
    python benchmarks/emodb_mfcc_svm.py data/emodb.csv

Features: 40 MFCCs (torchaudio, 25 ms / 10 ms) and their deltas, mean and standard deviation
over the utterance (160 values), standardised on the training speakers. SVM hyper-parameters are
fixed (C=10, gamma='scale'), not tuned on the test speakers.
"""
from __future__ import annotations

import csv
import sys

import numpy as np
import torch
import torchaudio

from zoo.data.audio import AudioLoader

TEST_SPEAKERS = {"15", "16"}


def features(wav: np.ndarray, mfcc) -> np.ndarray:
    m = mfcc(torch.from_numpy(wav)[None])[0]  # (40, T)
    d = torchaudio.functional.compute_deltas(m)
    x = torch.cat([m, d])
    return torch.cat([x.mean(1), x.std(1)]).numpy()


def main(manifest: str) -> None:
    from sklearn.metrics import accuracy_score, f1_score, recall_score
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    rows = list(csv.DictReader(open(manifest, encoding="utf-8")))
    load = AudioLoader(16000, cache_dir=None)
    mfcc = torchaudio.transforms.MFCC(16000, n_mfcc=40, melkwargs=dict(n_fft=400, hop_length=160, n_mels=64))
    X = np.stack([features(load(r["path"]), mfcc) for r in rows])
    y = np.array([r["label"] for r in rows])
    test = np.array([r["speaker"] in TEST_SPEAKERS for r in rows])
    scaler = StandardScaler().fit(X[~test])
    clf = SVC(C=10, gamma="scale", class_weight="balanced").fit(scaler.transform(X[~test]), y[~test])
    pred = clf.predict(scaler.transform(X[test]))
    print(f"MFCC-stats + RBF-SVM, EmoDB test speakers 15+16 ({test.sum()} utterances): "
          f"WA {accuracy_score(y[test], pred):.3f}  UA {recall_score(y[test], pred, average='macro'):.3f}  "
          f"macro-F1 {f1_score(y[test], pred, average='macro'):.3f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/emodb.csv")
