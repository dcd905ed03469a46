"""Crash-safe checkpoints: atomic writes, a checkpoint on SIGTERM, exact resume at epoch ends.

* :class:`AtomicCheckpointIO` writes ``x.ckpt.tmp`` beside the target, flushes it to disk and
  renames it over ``x.ckpt``. Lightning's own writer stages the file in the system temp folder
  (``tempfile.mkstemp``) and moves it; when that folder is on another file system than the run
  (``/tmp`` on a local disk, runs on NFS or Lustre: the usual cluster) the move is a copy into the
  target, and a kill during the copy leaves half a ``last.ckpt``.
* :class:`ResumeState` (a callback) saves the random number generators' states in every
  checkpoint and restores them when a run resumes from it, so a run resumed
  from an end-of-epoch checkpoint draws the same crops, dropout masks and mixup weights as the
  run that was not interrupted. On SIGTERM (a cluster pre-empting the job; Lightning stops after
  the current batch) it writes ``sigterm.ckpt`` beside ``last.ckpt`` before the process exits.
* :func:`find_resume_checkpoint` is what ``python -m zoo fit --ckpt_path last`` resumes: the
  newest ``last.ckpt`` / ``sigterm.ckpt`` of the newest run folder, continued in that folder.
"""
from __future__ import annotations

import errno
import io
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from .errors import ZooUserError

log = logging.getLogger("zoo")

SIGTERM_NAME = "sigterm.ckpt"
#: "No space left on device", "Disk quota exceeded"
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFull(ZooUserError):
    """A checkpoint (or another file of the run) could not be written: the disk is full."""


def _free_mb(folder: Path) -> str:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return f"{shutil.disk_usage(folder).free / 2 ** 20:.1f} MB free"
    except OSError:
        return "free space unknown"


def disk_full_message(path: str | Path, e: OSError, need: int | None = None) -> str:
    """One paragraph: which file, the folder, the free space, what is kept, how to go on."""
    path = Path(path)
    ckpt = path.suffix == ".ckpt"
    needs = f", and it needs {need / 2 ** 20:.1f} MB" if need else ""
    kept = " The checkpoints written before are whole (no .tmp file is left)." if ckpt else ""
    return (f"cannot write the {'checkpoint ' if ckpt else ''}{path.name}: the disk holding {path.parent} "
            f"is full ({e.strerror or e}; {_free_mb(path.parent)}{needs}).{kept} Free some space (or point "
            f"trainer.default_root_dir at another disk), then resume with --ckpt_path last.")


def disk_full_error(exc: BaseException | None) -> DiskFull | None:
    """The disk-full error behind ``exc`` (a checkpoint, metrics.csv or any file a run writes),
    as a :class:`DiskFull` naming the folder and the free space; None for anything else."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, DiskFull):
            return exc
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            return DiskFull(disk_full_message(exc.filename or Path.cwd() / "?", exc))
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _write_bytes(f, data: bytes) -> None:
    """Write in 16 MiB pieces (a test interrupts between two of them)."""
    view = memoryview(data)
    for start in range(0, len(view), 1 << 24):
        f.write(view[start : start + (1 << 24)])


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local writes are atomic on every file system: a temporary file
    in the target's own folder, fsync, ``os.replace``. Remote paths (``s3://``...) go through
    Lightning's writer unchanged."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                _write_bytes(f, buf.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # atomic within one folder: the old file or the new one, never half
        except OSError as e:
            tmp.unlink(missing_ok=True)  # no torn .tmp left on a full disk
            if e.errno in DISK_FULL:
                raise DiskFull(disk_full_message(path, e, need=buf.getbuffer().nbytes)) from e
            raise
        try:  # the rename itself durable too
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            pass


def _rng_state() -> dict:
    """Tensors, numbers and tuples only: a checkpoint must still load with ``weights_only``."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy": (name, torch.from_numpy(keys.astype(np.int64)),
                                                        int(pos), int(has_gauss), float(gauss)),
             "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumeState(L.Callback):
    """Random generator states in checkpoints (restored when a run resumes from one), and a
    checkpoint on SIGTERM.

    Args:
        sigterm_checkpoint: On SIGTERM write ``sigterm.ckpt`` into the checkpoint folder before the
            process exits (``--ckpt_path last`` resumes from it).
    """

    def __init__(self, sigterm_checkpoint: bool = True):
        self.sigterm_checkpoint = sigterm_checkpoint

    # the generators as they are when the checkpoint is written (at a validation end for
    # last.ckpt: nothing draws from them between there and the next epoch's first batch)
    def state_dict(self) -> dict:
        return {"rng": _rng_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        # restored at once: Lightning restores callbacks just before the fit loop, which draws
        # the training DataLoader's seed as the uninterrupted run does at its next epoch start
        # (the sanity check between runs under isolate_rng and draws nothing from these)
        if state_dict.get("rng") is not None:
            _set_rng_state(state_dict["rng"])

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if not (self.sigterm_checkpoint and isinstance(exception, SIGTERMException)):
            return
        folder = checkpoint_folder(trainer)
        if folder is None:
            return
        path = Path(folder) / SIGTERM_NAME
        trainer.save_checkpoint(str(path))
        if trainer.is_global_zero:
            log.warning("SIGTERM: checkpoint written to %s at step %d (epoch %d); resume with "
                        "--ckpt_path last", path, trainer.global_step, trainer.current_epoch)


def checkpoint_folder(trainer) -> str | None:
    for cb in trainer.checkpoint_callbacks:
        if getattr(cb, "dirpath", None):
            return cb.dirpath
    return None


def find_resume_checkpoint(run_root: str | Path) -> Path | None:
    """The checkpoint ``--ckpt_path last`` resumes: in the newest ``version_N`` folder under
    ``run_root`` (e.g. ``runs/zoo``) that holds one, the newer of ``last.ckpt`` and
    ``sigterm.ckpt``."""
    root = Path(run_root)
    if not root.is_dir():
        return None
    versions = sorted((p for p in root.iterdir() if p.is_dir() and p.name.startswith("version_")
                       and p.name[8:].isdigit()), key=lambda p: int(p.name[8:]), reverse=True)
    for v in versions:
        found = [p for p in (v / "checkpoints" / "last.ckpt", v / "checkpoints" / SIGTERM_NAME) if p.is_file()]
        if found:
            return max(found, key=lambda p: p.stat().st_mtime_ns)
    return None


def has_checkpoint_io(plugins) -> bool:
    from lightning.fabric.plugins import CheckpointIO

    items = plugins if isinstance(plugins, (list, tuple)) else [plugins] if plugins else []
    return any(isinstance(p, CheckpointIO) for p in items)
