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

from .pooling import MeanPooling

log = logging.getLogger("zoo")

FORMAT = 1  # bump when what is stored changes

# np.load parses the .npy header with ast.literal_eval, which CPython 3.11 cannot run in two
# threads at once ("SystemError: AST constructor recursion depth mismatch", python/cpython#106905);
# the demo page serves requests from threads, so reads take turns (a read is one small file)
_READ_LOCK = threading.Lock()
_WARNED = [False]  # the full-disk warning was given (once per process)


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
        self.hits = self.misses = 0
        self.writes = True  # off after the first failed write (a full disk): values are computed
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._write_failed(self.root, e)

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
        if not self.writes:
            return
        path = self._path(key)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                np.save(f, value.detach().float().cpu().numpy())
            os.replace(tmp, path)  # atomic: concurrent readers see all of it or nothing
        except OSError as e:  # a full disk must not end a run: the value is still used
            tmp.unlink(missing_ok=True)  # never a torn entry
            self._write_failed(path.parent, e)

    def _write_failed(self, folder: Path, e: OSError) -> None:
        """Writes stop (reads go on); one warning per process, not one per clip."""
        self.writes = False
        if _WARNED[0]:
            return
        _WARNED[0] = True
        import shutil

        probe = folder
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        try:
            free = f"{shutil.disk_usage(probe).free / 2 ** 20:.1f} MB free"
        except OSError:
            free = "free space unknown"
        log.warning("embedding cache: cannot write to %s (%s; %s): encoder outputs are not cached from now "
                    "on (training goes on)", folder, e.strerror or e, free)


def encoder_key(model: nn.Module, options: dict) -> str:
    """The encoder part of the key: weights digest, config and output-shaping options."""
    cfg = getattr(model, "config", None)
    cfg_json = cfg.to_json_string(use_diff=False) if cfg is not None and hasattr(cfg, "to_json_string") else ""
    return json.dumps({"weights": weights_digest(model), "config": cfg_json, **options}, sort_keys=True,
                      default=str)


class CachedEncoderMixin:
    """The embedding cache of an encoder module (mixed into :class:`zoo.nn.ssl.SSLEncoder`).

    The host module provides ``model`` (the backbone whose weights key the cache),
    ``backbone_frozen``, ``pool``, ``layer_weights``, ``_states(waveforms, lengths) -> (states,
    frame_lengths)`` (the S hidden states its trainable part reads), ``_mix(stacked)`` (S states ->
    one) and ``_cache_options()`` (the options that shape its output, part of the key). The cache
    stores each clip's states; the trainable mix and pooling run on them every time, so gradients
    still reach them.
    """

    cache_dir = None  # a directory: cache the frozen encoder's outputs there

    @property
    def deterministic(self) -> bool:
        """The backbone's output is a function of its input alone: nothing in it trains and it
        runs in eval mode (no dropout, LayerDrop, SpecAugment). Frozen backbones are (the warm-up
        of ``unfreeze_after_steps`` too: it runs without autograd); so is a branch a fusion model froze."""
        if self.model.training:
            return False
        return self.backbone_frozen or not any(p.requires_grad for p in self.model.parameters())

    def _use_cache(self, cache: bool) -> bool:
        return cache and self.cache_dir is not None and self.deterministic

    def _cache_pooled(self) -> bool:
        """Mean pooling commutes with the layer mix: store one pooled vector per state (S, D);
        attentive pooling needs the frames (S, T', D)."""
        return isinstance(self.pool, MeanPooling)

    def _invalidate_cache(self, *args) -> None:
        self._cache_obj = None

    def _embedding_cache(self, pooled: bool) -> EmbeddingCache:
        p = next(self.model.parameters())
        autocast = torch.is_autocast_enabled(p.device.type)
        stored = "pooled" if pooled else "frames"
        sig = (str(p.dtype), p.device.type, autocast,
               str(torch.get_autocast_dtype(p.device.type)) if autocast else None, str(self.cache_dir), stored)
        obj = getattr(self, "_cache_obj", None)
        if obj is None or obj[0] != sig:
            options = dict(zip(("dtype", "device", "autocast", "autocast_dtype", "dir"), sig))
            options.update(self._cache_options(), stored=stored)
            self._cache_obj = obj = (sig, EmbeddingCache(self.cache_dir, encoder_key(self.model, options)))
        return obj[1]

    def _forward_cached(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, D) pooled embeddings with the backbone's part from the cache."""
        got = self._cached_states(waveforms, lengths, pooled=self._cache_pooled())
        if self._cache_pooled():
            dtype = self.layer_weights.dtype if self.layer_weights is not None else torch.float32
            x = torch.stack(got).to(waveforms.device, dtype)  # (B, S, D)
            return self._mix(x.transpose(0, 1))
        x, frames = self._padded(got, waveforms.device)
        return self.pool(self._mix(x), frames)

    def _sequence_cached(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mixed frames (B, T', D), frame_lengths)`` from the cache (padded frames zero)."""
        hidden, frame_lengths = self._padded(self._cached_states(waveforms, lengths, pooled=False), waveforms.device)
        return self._mix(hidden), frame_lengths

    def _padded(self, got: list[torch.Tensor], dev) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached per-clip frames [(S, T'_i, D)] -> zero-padded (S, B, T', D) and frame counts."""
        dtype = self.layer_weights.dtype if self.layer_weights is not None else torch.float32
        frames = torch.tensor([g.shape[1] for g in got], device=dev)
        x = torch.zeros(got[0].shape[0], len(got), int(frames.max()), got[0].shape[-1], device=dev, dtype=dtype)
        for i, g in enumerate(got):
            x[:, i, : g.shape[1]] = g.to(dev, dtype)
        return x, frames

    def _cached_states(self, waveforms: torch.Tensor, lengths: torch.Tensor, pooled: bool) -> list[torch.Tensor]:
        """Each clip's states from the cache, computed and stored where missing: per clip (S, D)
        mean-pooled states (``pooled``) or (S, T'_i, D) frames, on the CPU."""
        cache = self._embedding_cache(pooled)
        n = lengths.tolist()
        on_cpu = waveforms.detach().float().cpu()  # one copy off the device, then hash each clip
        keys = [cache.sample_key(on_cpu[i, : n[i]]) for i in range(len(n))]
        got: list = [cache.get(k) for k in keys]
        todo = [i for i, g in enumerate(got) if g is None]
        cache.hits += len(n) - len(todo)
        cache.misses += len(todo)
        dev = waveforms.device
        if todo:
            idx = torch.tensor(todo, device=dev)
            sub_lengths = lengths.to(dev)[idx]
            with torch.no_grad():
                states, frame_lengths = self._states(waveforms[idx, : int(sub_lengths.max())], sub_lengths)
                if pooled:
                    pool = MeanPooling()
                    values = torch.stack([pool(h, frame_lengths) for h in states], 1)  # (b, S, D)
                else:
                    values = torch.stack(states, 1)  # (b, S, T', D)
            for j, i in enumerate(todo):
                v = values[j] if pooled else values[j, :, : int(frame_lengths[j])]
                cache.put(keys[i], v)
                got[i] = v.float().cpu()
        return got
