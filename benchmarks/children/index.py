"""The index suite's measurement: time and memory of the corpus index (a text-only run).

    python -m benchmarks.children.index AIHUB_ROOT
"""
from __future__ import annotations

import json
import sys
import time

from zoo.data import EmotionDataModule
from zoo.data.corpora import AIHub

from benchmarks.children import peak_mb


def main() -> None:
    base = peak_mb()  # the imported libraries, before the index
    t = time.perf_counter()
    dm = EmotionDataModule(corpus=AIHub(root=sys.argv[1]), modalities=["text"], cache_dir=None)
    dm.setup("fit")
    dt = time.perf_counter() - t
    peak = peak_mb()
    n = sum(len(dm.split(k)) for k in ("train", "val", "test"))
    print(json.dumps({"s": dt, "peak_mb": peak, "growth_mb": peak - base, "base_mb": base, "rows": n}))


if __name__ == "__main__":
    main()
