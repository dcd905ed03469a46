"""The train suite's measurement: training samples/s and peak RSS of one zoo model on the
synthetic corpus, timed after the first steps.

    python -m benchmarks.children.train CONFIGS_JSON STEPS OVERRIDES_JSON THREADS CORPUS_SIZE
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

    configs, steps, overrides = json.loads(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
    args = ["--config", "configs/data/synthetic.yaml"]
    for c in configs:
        args += ["--config", c]
    args += ["--data.corpus.size", sys.argv[5], "--data.batch_size", "8", "--data.num_workers", "0"] + overrides
    cli = build_cli(args, run=False)

    class Clock(L.Callback):
        t0 = None
        n = 0
        skip = 3

        def on_train_batch_start(self, trainer, pl, batch, i):
            if i == self.skip:
                self.t0 = time.perf_counter()
                self.n = 0

        def on_train_batch_end(self, trainer, pl, out, batch, i):
            if self.t0 is not None:
                self.n += len(batch)

    clock = Clock()
    trainer = L.Trainer(max_steps=steps, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[clock],
                        num_sanity_val_steps=0, accelerator="cpu")
    trainer.fit(cli.model, cli.datamodule)
    dt = time.perf_counter() - clock.t0
    params = sum(p.numel() for p in cli.model.parameters())
    print(json.dumps({"samples_s": clock.n / dt, "peak_mb": peak_mb(),
                      "params": params}))


if __name__ == "__main__":
    main()
