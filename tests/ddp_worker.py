"""One rank of a two-process DDP run started the way torchrun starts it (RANK, LOCAL_RANK,
WORLD_SIZE, MASTER_ADDR, MASTER_PORT in the environment; Lightning then launches nothing itself),
running several ``python -m zoo`` commands one after another in the same two processes, so the
imports and the process group are paid for once (tests/test_ddp.py).

    python tests/ddp_worker.py PLAN.json OUT_DIR

PLAN.json: ``[{"name": ..., "argv": ["fit", "--config", ...], "dump": ["encoder.model."]}, ...]``.
For each command this rank writes ``OUT_DIR/<name>.rank<R>.pt``: the parameters whose names start
with a ``dump`` prefix after the command, every training step's (epoch, loss, batch size) and
the seconds the command took."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch


def main(plan_path: str, out: str) -> None:
    from zoo import cli
    from zoo.models.base import EmotionModule

    steps: list[tuple[int, float, int]] = []
    training_step = EmotionModule.training_step

    def recorded(self, batch, batch_idx):
        loss = training_step(self, batch, batch_idx)
        steps.append((int(self.current_epoch), float(loss.detach()), len(batch)))
        return loss

    EmotionModule.training_step = recorded
    cli._setup_logging()
    rank = int(os.environ["RANK"])
    for job in json.loads(Path(plan_path).read_text()):
        steps.clear()
        start = time.perf_counter()
        run = cli.build_cli(job["argv"])
        prefixes = tuple(job.get("dump") or ())
        params = {k: v.detach().clone() for k, v in run.model.state_dict().items()
                  if prefixes and k.startswith(prefixes)}
        torch.save({"params": params, "steps": list(steps), "seconds": time.perf_counter() - start},
                   Path(out) / f"{job['name']}.rank{rank}.pt")
        torch.distributed.barrier()
        print(f"[ddp_worker] rank {rank}: {job['name']} done", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
