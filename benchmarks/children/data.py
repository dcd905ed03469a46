"""The data suite's DataModule pass: setup time, then a cold and a warm epoch in utterances/s.

    python -m benchmarks.children.data AIHUB_ROOT CACHE_DIR NUM_WORKERS
"""
from __future__ import annotations

import json
import sys
import time

from zoo.data import EmotionDataModule
from zoo.data.corpora import AIHub


def main() -> None:
    root, cache, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    dm = EmotionDataModule(corpus=AIHub(root=root), modalities=["audio"], batch_size=32,
                           num_workers=workers, cache_dir=cache, max_seconds=None,
                           split={"mode": "random", "val_fraction": 0.0, "test_fraction": 0.0})
    t = time.perf_counter()
    dm.setup("fit")
    setup_s = time.perf_counter() - t
    out = {"setup_s": setup_s}
    loader = dm.train_dataloader()  # one loader for both epochs, as in a fit (workers persist)
    for epoch in ("cold", "warm"):
        n = 0
        t = time.perf_counter()
        for b in loader:
            n += len(b)
        out[epoch] = n / (time.perf_counter() - t)
        out["n"] = n
    print(json.dumps(out))


if __name__ == "__main__":
    main()
