"""The folder suite's reference: transformers' ``audio-classification`` pipeline over the files of
a folder (the model directory that ``python -m zoo export --format hf`` wrote).

    python -m benchmarks.children.folder_hf MODEL_DIR FOLDER THREADS BATCH_SIZE OUT_JSON [DEVICE]

Files are decoded with soundfile (the pipeline's own file reading needs ffmpeg) inside the timed
loop, in name order, and handed over as ``{"raw", "sampling_rate"}``; the pipeline batches them in
that order (``batch_size``), padding each batch to its longest clip. Timed: from the pipeline's
construction (model load, reported apart) to the last result. Writes every file's probabilities.
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

from benchmarks.children import peak_mb


def main() -> None:
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(int(sys.argv[3]))  # before transformers is imported
    import soundfile as sf
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # its advice to use a dataset for batching, once per call
    model_dir, folder, batch, out = sys.argv[1], Path(sys.argv[2]), int(sys.argv[4]), sys.argv[5]
    device = sys.argv[6] if len(sys.argv) > 6 else "cpu"
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".wav", ".flac"))

    def clips():
        for p in files:
            x, sr = sf.read(p, dtype="float32", always_2d=True)
            yield {"raw": x.mean(axis=1), "sampling_rate": sr}

    t = time.perf_counter()
    clf = pipeline("audio-classification", model=model_dir, device=device)
    t1 = time.perf_counter()
    probs = [{r["label"]: r["score"] for r in res} for res in clf(clips(), batch_size=batch, top_k=None)]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    Path(out).write_text(json.dumps({p.name: pr for p, pr in zip(files, probs)}))
    print(json.dumps({"files": len(probs), "load_s": t1 - t, "label_s": dt - (t1 - t), "files_s": len(probs) / dt, "peak_mb": peak_mb()}))


if __name__ == "__main__":
    main()
