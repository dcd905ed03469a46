"""A disk cache of a frozen encoder's outputs, so later epochs and later runs skip the encoder.

Content-addressed: an entry's key is a hash of

- the encoder: a digest of every weight (and buffer) it holds, its transformers config and the
  options that shape its output (waveform normalisation, Whisper context, which hidden states
  are kept, pooled or as frames), the compute dtype, autocast and device type; and
- the exact samples the encoder receives (after decoding, resampling and any cropping).

Hashing the samples rather than naming the file makes every preprocessing option part of the key
without listing them: a different file, an edited one (new size or mtime: the audio loader reads
it again), another sample rate or crop gives other samples and so another key. Two runs on the
same corpus with the same encoder share entries.

Entries are ``.npy`` files written to a temporary name and renamed (``os.replace``), so several
DataLoader workers, DDP processes or runs can fill one cache at once: a reader sees a whole entry
or none (and a torn file from a killed run is recomputed).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import uuid
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger("zoo")

FORMAT = 1  # bump when what is stored changes

# np.load parses the .npy header with ast.literal_eval, which CPython 3.11 cannot run in two
# threads at once ("SystemError: AST constructor recursion depth mismatch", python/cpython#106905);
# the demo page serves requests from threads, so reads take turns (a read is one small file)
_READ_LOCK = threading.Lock()


def default_embedding_cache_dir() -> Path:
    """``$ZOO_CACHE_DIR/embeddings`` (default ``~/.cache/zoo/embeddings``)."""
    from ..paths import cache_dir

    return cache_dir("embeddings")


def weights_digest(module: nn.Module) -> str:
    """SHA-1 over the names, shapes, dtypes and bytes of every tensor in the module's state dict."""
    h = hashlib.sha1()
    for name, t in module.state_dict().items():
        t = t.detach()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}".encode())
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16
            t = t.view(torch.int16)
        h.update(t.cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class EmbeddingCache:
    """Per-utterance arrays under ``root/<encoder digest>/<2 hex>/<key>.npy``.

    Args:
        root: Cache directory.
        encoder_key: What identifies the encoder and its options (see :func:`weights_digest`).
    """

    def __init__(self, root: str | Path, encoder_key: str):
        self.root = Path(root) / hashlib.sha1(f"{FORMAT}|{encoder_key}".encode()).hexdigest()[:20]
        self.root.mkdir(parents=True, exist_ok=True)
        self.hits = self.misses = 0

    @staticmethod
    def sample_key(samples: torch.Tensor) -> str:
        x = samples.detach().float().cpu().contiguous().numpy()
        return hashlib.sha1(f"{x.shape}".encode() + x.tobytes()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get(self, key: str) -> torch.Tensor | None:
        path = self._path(key)
        try:
            with _READ_LOCK:
                arr = np.load(path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError):  # a torn write from a killed run: recompute it
            log.debug("embedding cache: unreadable %s, recomputing", path)
            return None
        return torch.from_numpy(arr)

    def put(self, key: str, value: torch.Tensor) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(tmp, "wb") as f:
                np.save(f, value.detach().float().cpu().numpy())
            os.replace(tmp, path)  # atomic: concurrent readers see all of it or nothing
        except OSError as e:  # a full disk must not end a run: the value is still used
            log.warning("embedding cache: cannot write %s: %s", path, e)
            tmp.unlink(missing_ok=True)


def encoder_key(model: nn.Module, options: dict) -> str:
    """The encoder part of the key: weights digest, config and output-shaping options."""
    cfg = getattr(model, "config", None)
    cfg_json = cfg.to_json_string(use_diff=False) if cfg is not None and hasattr(cfg, "to_json_string") else ""
    return json.dumps({"weights": weights_digest(model), "config": cfg_json, **options}, sort_keys=True,
                      default=str)
