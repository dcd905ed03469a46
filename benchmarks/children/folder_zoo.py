"""The folder suite's zoo run: the Predictor exactly as ``python -m zoo infer FOLDER --out F`` uses
it (``zoo.inference.commands.main_infer``: ``load`` with the command's defaults, ``expand_inputs``,
``predict_batch(..., skip_errors=True)``, ``write_results``), in this process so that its time and
peak memory are this process's; ``predict_batch`` sorts the files by length and batches them.

    python -m benchmarks.children.folder_zoo CKPT FOLDER THREADS OUT_JSONL [DEVICE [BATCH_SIZE]]

Prints the files, the seconds to load the model and to label the files (decoding, the forward
passes and writing the results), files/s over both, and peak RSS. The imports of torch and the
zoo's command module come before the clock.
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
    from zoo.inference.commands import infer_parser, write_results
    from zoo.inference.predictor import expand_inputs, load

    ckpt, folder, out = sys.argv[1], sys.argv[2], sys.argv[4]
    device, batch = (sys.argv[5:] + ["cpu", "16"][len(sys.argv[5:]):])[:2]
    # the command's own defaults (max_seconds, window, hop), so this is what `infer` runs
    a = infer_parser().parse_args(["--model", ckpt, "--out", out, "--no-progress", "--device", device,
                                   "--batch-size", batch, folder])
    t0 = time.perf_counter()
    model = load(a.model, device=a.device, batch_size=a.batch_size, max_seconds=a.max_seconds,
                 window=a.window, hop=a.hop)
    t1 = time.perf_counter()
    files = expand_inputs(a.inputs)
    names = [str(f) for f in files]
    results = model.predict_batch(files, [None] * len(files), names=names, skip_errors=True)
    rows = [{"file": n, **r} for n, r in zip(names, results) if "error" not in r]
    write_results(rows, a.out, model.class_names, model.dims)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t2 = time.perf_counter()
    print(json.dumps({"files": len(rows), "load_s": t1 - t0, "label_s": t2 - t1,
                      "files_s": len(rows) / (t2 - t0), "peak_mb": peak_mb()}))


if __name__ == "__main__":
    main()
