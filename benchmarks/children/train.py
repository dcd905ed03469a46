"""The train suite's measurement: training samples/s and peak RSS of one zoo model on the
synthetic corpus, timed after the first steps.

    python -m benchmarks.children.train CONFIGS_JSON STEPS OVERRIDES_JSON THREADS CORPUS_SIZE \
        [DEVICE [PRECISION]]

STEPS: optimizer steps, or ``epoch``: 3 warm-up steps plus one epoch's batches, so the timed
steps (from the 4th) cover every batch of an epoch once whatever order the sampler gives them.
DEVICE: ``cpu`` (default) or ``cuda``; PRECISION: ``fp32`` (default) or ``bf16`` (Lightning's
``bf16-mixed``, as configs/trainer/gpu.yaml).
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

    # the thread count is set before Lightning and the zoo are imported
    torch.set_num_threads(int(sys.argv[4]))
    import lightning as L

    from zoo.cli import build_cli

    configs, overrides = json.loads(sys.argv[1]), json.loads(sys.argv[3])
    device, precision = (sys.argv[6:] + ["cpu", "fp32"][len(sys.argv[6:]):])[:2]
    if device not in ("cpu", "cuda") or precision not in ("fp32", "bf16"):
        sys.exit(f"train: DEVICE cpu|cuda, PRECISION fp32|bf16; got {device} {precision}")

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    args = ["--config", "configs/data/synthetic.yaml"]
    for c in configs:
        args += ["--config", c]
    args += ["--data.corpus.size", sys.argv[5], "--data.batch_size", "8", "--data.num_workers", "0"] + overrides
    cli = build_cli(args, run=False)
    if sys.argv[2] == "epoch":
        cli.datamodule.prepare_data()
        cli.datamodule.setup("fit")
        steps = 3 + len(cli.datamodule.train_dataloader())
    else:
        steps = int(sys.argv[2])

    class Clock(L.Callback):
        t0 = None
        n = 0
        skip = 3

        def on_train_batch_start(self, trainer, pl, batch, i):
            # counted in optimizer steps: a batch index starts again at each epoch
            if trainer.global_step == self.skip and self.t0 is None:
                sync()
                self.t0 = time.perf_counter()
                self.n = 0

        def on_train_batch_end(self, trainer, pl, out, batch, i):
            if self.t0 is not None:
                self.n += len(batch)

    clock = Clock()
    trainer = L.Trainer(max_steps=steps, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[clock],
                        num_sanity_val_steps=0, accelerator=device,
                        precision="bf16-mixed" if precision == "bf16" else "32-true")
    trainer.fit(cli.model, cli.datamodule)
    sync()
    dt = time.perf_counter() - clock.t0
    params = sum(p.numel() for p in cli.model.parameters())
    out = {"samples_s": clock.n / dt, "steps": steps, "peak_mb": peak_mb(), "params": params}
    if device == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out))


if __name__ == "__main__":
    main()
