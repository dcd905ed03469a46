"""The GPU rows of docs/performance.md in one run: the train suite's wav2vec2 comparison (the zoo,
transformers.Trainer with random batches and with group_by_length=True) and the frozen-encoder
embedding cache (benchmarks/cache.py), both at base size in bf16 on one GPU; writes the machine,
the driver, the versions and the numbers (``gpu.json`` and ``gpu.md``) to OUT_DIR.

    python -m benchmarks.gpu OUT_DIR                        # on the GPU (benchmarks/gpu.sh runs it)
    python -m benchmarks.gpu OUT_DIR --device cpu --quick   # the same steps, tiny, on a CPU

Sizes (GPU): the 2,000-utterance synthetic corpus (generated once) for both: the train comparison
times one epoch's batches per configuration, the cache 3 epochs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import Suite
from benchmarks.suites.cache import run_cache_script


def gpu_info() -> dict:
    """nvidia-smi's name, driver and memory of each GPU, torch's CUDA and cuDNN versions."""
    import torch

    info: dict = {"torch_cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["device_name"] = torch.cuda.get_device_name(0)
        info["cudnn"] = torch.backends.cudnn.version()
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                            "--format=csv,noheader"], capture_output=True, text=True, timeout=60)
        info["nvidia_smi"] = r.stdout.strip() or r.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        info["nvidia_smi"] = f"not available ({e})"
    return info


def cache_suite(a, work: Path) -> Suite:
    """benchmarks/cache.py at base size (tiny with --quick) on the device, in bf16."""
    s = Suite("cache", ">= 20x per-epoch speed-up after the first epoch, logits within 1e-5")
    size = ["--hidden", "64", "--layers", "2"] if a.quick else []  # its defaults: base size, 768 x 12
    acc = "gpu" if a.device == "cuda" else "cpu"
    prec = "bf16-mixed" if a.precision == "bf16" else "32-true"
    if not run_cache_script(s, work, ["--size", str(60 if a.quick else 2000), "--epochs", "3", *size,
                                      "--accelerator", acc, "--precision", prec]):
        return s
    s.notes.append(f"{acc}, {prec}, batch 16; a bf16 logit difference is judged against the fp32 "
                   "goal of 1e-5, so read it as a check that the cache returns what the encoder gives")
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="folder for gpu.json, gpu.md and the logs")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--quick", action="store_true", help="tiny models and corpora (a check of the steps)")
    ap.add_argument("--suite", nargs="+", default=["train", "cache"], choices=["train", "cache"])
    a = ap.parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "disabled")
    if a.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            sys.exit("python -m benchmarks.gpu: no CUDA device (use --device cpu --quick to check the steps)")
    from benchmarks.run import machine, markdown, print_table
    from benchmarks.suites import train

    a.out.mkdir(parents=True, exist_ok=True)
    doc = {**machine(), "gpu": gpu_info(), "device": a.device, "precision": a.precision, "quick": a.quick,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "suites": []}
    print(json.dumps({"machine": doc["machine"], "versions": doc["versions"], "gpu": doc["gpu"]}, indent=1),
          flush=True)
    suites = []
    work = a.out / "work"
    for name in a.suite:
        t = time.perf_counter()
        print(f"[{name}] running ...", file=sys.stderr, flush=True)
        (work / name).mkdir(parents=True, exist_ok=True)
        if name == "train":
            # only the wav2vec2 comparison, at base size (tiny with --quick)
            args = argparse.Namespace(quick=a.quick, scale=1.0, device=a.device, precision=a.precision,
                                      families=False, base=not a.quick, w2v_corpus=60 if a.quick else 2000)
            try:
                s = train.run(args, work / name)
            except RuntimeError as e:
                s = Suite("train", "zoo >= 1.0x the faster Trainer configuration", met=False,
                          notes=[f"failed: {str(e)[-1500:]}"])
        else:
            s = cache_suite(a, work / name)
        s.notes.append(f"suite wall time {time.perf_counter() - t:.0f} s")
        suites.append(s)
        doc["suites"] = [x.__dict__ for x in suites]  # written after each suite: a timeout keeps the first
        (a.out / "gpu.json").write_text(json.dumps(doc, indent=1, default=float))
        (a.out / "gpu.md").write_text(markdown(suites), encoding="utf-8")
    print_table(suites)
    print(f"\nwrote {a.out / 'gpu.json'} and {a.out / 'gpu.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
