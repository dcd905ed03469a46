"""The infer suite's measurement: real-time factor of ``zoo.load(name).predict_batch`` over random
clips of 2-5 s, after a warm-up call.

    python -m benchmarks.children.infer CHECKPOINT THREADS N_CLIPS
"""
from __future__ import annotations

import json
import sys
import time
import warnings


def main() -> None:
    warnings.filterwarnings("ignore")
    import numpy as np
    import torch

    # the thread count is set before the zoo is imported
    torch.set_num_threads(int(sys.argv[2]))
    import zoo

    m = zoo.load(sys.argv[1], device="cpu")
    rng = np.random.default_rng(0)
    sr = m.sample_rate
    clips = [rng.standard_normal(int(sr * rng.uniform(2, 5))).astype(np.float32) * 0.1
             for _ in range(int(sys.argv[3]))]
    texts = ["오늘 정말 기분이 좋아"] * len(clips)
    kw = {"texts": texts} if "text" in getattr(m, "inputs", ()) else {}
    try:
        m.predict_batch(clips[:2], **({"texts": texts[:2]} if kw else {}))
    except TypeError:
        kw = {}
        m.predict_batch(clips[:2])
    t = time.perf_counter()
    m.predict_batch(clips, **kw)
    dt = time.perf_counter() - t
    print(json.dumps({"rtf": dt / (sum(len(c) for c in clips) / sr)}))


if __name__ == "__main__":
    main()
