"""The folder suite's zoo run: ``python -m zoo infer`` (its ``main_infer``, in this process so its
time and peak memory are this process's) over a folder, batched by length as ``infer`` does.

    python -m benchmarks.children.folder_zoo CKPT FOLDER THREADS OUT_JSONL [DEVICE [BATCH_SIZE]]

Timed: from the command's start (checkpoint load included) to the results written; the imports of
torch and the zoo's command module come before. Prints files/s, the wall time and peak RSS.
"""
from __future__ import annotations

import json
import sys
import time
import warnings

from benchmarks.children import peak_mb


def main() -> None:
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(int(sys.argv[3]))  # before the zoo is imported
    from zoo.inference.commands import main_infer

    ckpt, folder, out = sys.argv[1], sys.argv[2], sys.argv[4]
    device, batch = (sys.argv[5:] + ["cpu", "16"][len(sys.argv[5:]):])[:2]
    t = time.perf_counter()
    main_infer(["--model", ckpt, "--out", out, "--no-progress", "--device", device, "--batch-size", batch, folder])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    with open(out, encoding="utf-8") as f:
        n = sum(1 for line in f if line.strip())
    print(json.dumps({"files": n, "seconds": dt, "files_s": n / dt, "peak_mb": peak_mb()}))


if __name__ == "__main__":
    main()
