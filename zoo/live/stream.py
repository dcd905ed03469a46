"""``zoo.stream(model)``: live emotion recognition over a stream of audio chunks.

    s = zoo.stream("audio-cnn-synth")
    for chunk in chunks:                      # any size, any sample rate (fixed per stream)
        for ev in s.push(chunk, sample_rate=44100):
            print(ev["type"], ev["start"], ev["end"], ev.get("label"))
    events = s.flush()                        # the end of the stream: the last segment

A :class:`Stream` resamples each chunk as it comes (``soxr.ResampleStream``: its output does not
depend on how the input was chunked, and equals a one-shot ``soxr.resample`` of the whole), asks
the :class:`~zoo.live.segment.Segmenter` for speech segments, and hands finished segments to the
model's :class:`~zoo.inference.predictor.Predictor`, several at once as one batch. Every step is
chunk-invariant, so a file streamed 20 ms at a time gives the same segments and probabilities as
the file pushed whole, which is what ``python -m zoo infer --segment vad`` and
``Predictor.predict_long(segment="vad")`` do.

Events (dicts; times are seconds of stream time since the first sample):

* ``{"type": "segment", "index", "start", "end", "label", "probs", ...}``: a finished speech
  segment. Dimensional models add ``arousal`` / ``valence`` / ``dominance`` (the ones they predict,
  0-1); models that read text add ``text`` (the transcript used).
* ``{"type": "partial", ...}``: same fields, for the speech so far of the segment still open
  (every ``hop`` seconds of it): provisional, the segment event that follows replaces it.
* ``{"type": "state", ...}``: after each segment, the probabilities (and dimensions) smoothed
  over segments: each segment moves the state toward its own values by ``1 - exp(-d / smoothing)``
  (``d`` its duration in seconds), so a segment as long as ``smoothing`` weighs 63%. ``start`` /
  ``end`` are those of the segment that moved it.
"""
from __future__ import annotations

import math
import os
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ZooUserError
from .segment import DEFAULTS, RATE, Cut, Segmenter

AsrFn = Callable[[np.ndarray, int], str]


class _Buffer:
    """The audio a future segment may still need, addressed by absolute sample index."""

    def __init__(self):
        self.data = np.zeros(1 << 16, dtype=np.float32)
        self.start = 0  # absolute index of data[0]
        self.end = 0  # absolute index one past the last sample

    def append(self, x: np.ndarray) -> None:
        n, used = x.size, self.end - self.start
        if used + n > self.data.size:
            grown = np.zeros(max(self.data.size * 2, used + n), dtype=np.float32)
            grown[:used] = self.data[:used]
            self.data = grown
        self.data[used : used + n] = x
        self.end += n

    def get(self, a: int, b: int) -> np.ndarray:
        if a < self.start or b > self.end:
            raise RuntimeError(f"stream buffer holds samples {self.start}-{self.end}, asked for {a}-{b}")
        return self.data[a - self.start : b - self.start].copy()

    def drop_before(self, a: int) -> None:
        a = min(max(a, self.start), self.end)
        k = a - self.start
        if k < self.data.size // 2:  # move data only when it frees at least half the array
            return
        used = self.end - a
        self.data[:used] = self.data[k : k + used]
        self.start = a


def _as_float(chunk: Any) -> np.ndarray:
    """float32 1-D samples from a float or integer PCM chunk (int16 / int32 scaled to [-1, 1))."""
    try:
        import torch

        if isinstance(chunk, torch.Tensor):
            chunk = chunk.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    a = np.asarray(chunk)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ZooUserError(f"push() takes a 1-D array of mono samples, got shape {a.shape} "
                           "(mix the channels first, e.g. chunk.mean(axis=1))")
    if a.dtype == np.int16:
        return a.astype(np.float32) / 32768.0
    if a.dtype == np.int32:
        return (a / 2147483648.0).astype(np.float32)
    if a.dtype.kind != "f":
        raise ZooUserError(f"push() takes float or int16/int32 samples, got dtype {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        raise ZooUserError("push(): the chunk has NaN or infinite samples")
    return a


class _Resampler:
    """Streaming soxr resampler (identity when the rates match)."""

    def __init__(self, src: int, dst: int):
        self.same = src == dst
        if not self.same:
            import soxr

            self.rs = soxr.ResampleStream(src, dst, 1, dtype="float32")

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        if self.same:
            return x
        return self.rs.resample_chunk(x, last=last)


class Stream:
    """Live segmentation and emotion recognition: see the module docstring.

    Args:
        predictor: The model (``zoo.load(...)``).
        sample_rate: Rate of the pushed chunks (default: the first push's ``sample_rate``, else
            the model's). Fixed for the stream's life.
        threshold, min_speech, min_silence, pad, max_segment, backend: The
            :class:`~zoo.live.segment.Segmenter` options.
        hop: Seconds between ``partial`` events while a segment is open (None: no partials).
        smoothing: Time constant in seconds of the ``state`` events (None: no state events).
        asr: For models that read text: a transformers ASR model (hub id or local dir) or a
            function ``(wav, sample_rate) -> text``; each segment is transcribed with it. Without
            it, a model whose text is optional (late fusion) predicts from audio alone and one
            that needs text is refused.
        text: One transcript given to every segment (offline use, when the transcript of the
            whole recording is known and no ASR runs).
    """

    def __init__(self, predictor, *, sample_rate: int | None = None,
                 threshold: float = DEFAULTS["threshold"], min_speech: float = DEFAULTS["min_speech"],
                 min_silence: float = DEFAULTS["min_silence"], pad: float = DEFAULTS["pad"],
                 max_segment: float | None = DEFAULTS["max_segment"], backend: str = "auto",
                 hop: float | None = 1.0, smoothing: float | None = 5.0,
                 asr: str | AsrFn | None = None, text: str | None = None, device: str | None = None):
        self.predictor = predictor
        if predictor.uses_text and asr is None and text is None and predictor.needs_text:
            raise ZooUserError(
                f"{type(predictor.module).__name__} needs a transcript for every segment: give asr= "
                "(CLI: --asr MODEL, a transformers speech recognition model) or use a model that "
                "predicts from audio (late fusion runs without text)")
        if smoothing is not None and smoothing <= 0:
            raise ZooUserError(f"smoothing must be a positive time constant in seconds, got {smoothing}")
        if not predictor.uses_text:
            asr = None  # an audio model: no transcript is ever read, so no recogniser is loaded
        elif isinstance(asr, (str, os.PathLike)):
            from ..inference.commands import load_asr

            asr = load_asr(str(asr), device)
        self.asr: AsrFn | None = asr
        self.text = text if predictor.uses_text else None
        self.segmenter = Segmenter(threshold=threshold, min_speech=min_speech, min_silence=min_silence,
                                   pad=pad, max_segment=max_segment, partial_every=hop, backend=backend)
        self.hop, self.smoothing = hop, smoothing
        self.model_rate = int(predictor.sample_rate)
        self._rate0 = sample_rate
        self.reset()

    def reset(self) -> None:
        """Start a new stream (time 0; the sample rate may change)."""
        self.segmenter.reset()
        self.sample_rate: int | None = self._rate0
        self._to_vad = self._to_model = None
        self._buf = _Buffer()  # audio at the model's rate
        self._queue: list[Cut] = []  # cuts whose audio has not fully arrived (resampler delay)
        self._index = 0  # segments so far
        self._state: np.ndarray | None = None
        self.ended = False
        self.samples_in = 0

    @property
    def time(self) -> float:
        """Seconds of audio pushed so far."""
        return self.samples_in / self.sample_rate if self.sample_rate else 0.0

    # -- feeding ----------------------------------------------------------------------------------
    def _start(self, sample_rate: int | None) -> None:
        sr = int(sample_rate or self.sample_rate or self.model_rate)
        if sr <= 0:
            raise ZooUserError(f"sample_rate must be positive, got {sample_rate}")
        self.sample_rate = sr
        self._to_vad = _Resampler(sr, RATE)
        # the model's audio comes from the VAD's 16 kHz signal when the model runs at 16 kHz
        self._to_model = None if self.model_rate == RATE else _Resampler(sr, self.model_rate)

    def push(self, chunk: Any, sample_rate: int | None = None) -> list[dict]:
        """Feed samples (1-D float, int16 or int32 array, any length); the events they complete."""
        if self.ended:
            raise ZooUserError("this stream was flushed: call reset() to start a new one")
        if self._to_vad is None:
            self._start(sample_rate)
        elif sample_rate is not None and int(sample_rate) != self.sample_rate:
            raise ZooUserError(f"this stream runs at {self.sample_rate} Hz and got a chunk at {sample_rate} Hz: "
                               "one stream has one sample rate (start a new stream, or resample first)")
        x = _as_float(chunk)
        self.samples_in += x.size
        return self._feed(x, last=False)

    def flush(self) -> list[dict]:
        """End the stream: the segment still open is finished and labelled."""
        if self.ended:
            return []
        if self._to_vad is None:  # nothing was pushed
            self.ended = True
            self.segmenter.flush()
            return []
        events = self._feed(np.zeros(0, dtype=np.float32), last=True)
        self.ended = True
        return events

    def run(self, wav: np.ndarray, sample_rate: int | None = None) -> list[dict]:
        """All events of one recording (a new stream: push it whole, then flush)."""
        self.reset()
        return self.push(wav, sample_rate) + self.flush()

    def _feed(self, x: np.ndarray, last: bool) -> list[dict]:
        x16 = self._to_vad(x, last=last)
        if self._to_model is None:
            self._buf.append(x16)
        else:
            self._buf.append(self._to_model(x, last=last))
        cuts = self.segmenter.push(x16)
        if last:
            cuts += self.segmenter.flush()
        self._queue += cuts
        events = self._predict(last)
        keep = min([c.start for c in self._queue] + [self.segmenter.keep_from])
        self._buf.drop_before(self._m(keep))
        return events

    # -- prediction -------------------------------------------------------------------------------
    def _m(self, pos16: int) -> int:
        """A 16 kHz sample index at the model's rate."""
        return pos16 if self.model_rate == RATE else int(round(pos16 * self.model_rate / RATE))

    def _predict(self, last: bool) -> list[dict]:
        ready: list[Cut] = []
        while self._queue and (last or self._m(self._queue[0].end) <= self._buf.end):
            ready.append(self._queue.pop(0))
        if not ready:
            return []
        p = self.predictor
        wavs = [self._buf.get(self._m(c.start), min(self._m(c.end), self._buf.end)) for c in ready]
        texts: list[str | None] | None = None
        if p.uses_text:
            texts = [self.asr(w, self.model_rate) if self.asr else self.text for w in wavs]
        results = p.predict_batch(wavs, texts, sample_rate=self.model_rate,
                                  names=[f"{c.kind} {c.start / RATE:.2f}-{c.end / RATE:.2f} s" for c in ready])
        events: list[dict] = []
        for i, (c, r) in enumerate(zip(ready, results)):
            ev = {"type": c.kind, "index": self._index, "start": round(c.start / RATE, 3),
                  "end": round(c.end / RATE, 3), "label": r["label"], "probs": r["probs"], **r.get("dims", {})}
            if texts is not None:
                ev["text"] = texts[i] or ""
            events.append(ev)
            if c.kind == "segment":
                self._index += 1
                if self.smoothing is not None:
                    events.append(self._update_state(ev, r, (c.end - c.start) / RATE))
        return events

    def _update_state(self, ev: dict, r: dict, duration: float) -> dict:
        p = self.predictor
        v = np.array([*r["probs"].values(), *r.get("dims", {}).values()], dtype=np.float64)
        if self._state is None:
            self._state = v
        else:
            w = 1.0 - math.exp(-duration / self.smoothing)
            self._state = (1 - w) * self._state + w * v
        c = len(p.class_names)
        probs = {n: float(x) for n, x in zip(p.class_names, self._state[:c])}
        return {"type": "state", "index": ev["index"], "start": ev["start"], "end": ev["end"],
                "label": max(probs, key=probs.get) if probs else None, "probs": probs,
                **{d: float(x) for d, x in zip(p.dims, self._state[c:])}}


def stream(model, *, registry: str | None = None, trust: bool = False, device: str | None = None,
           **options) -> Stream:
    """A :class:`Stream` over ``model``: a registry name, a checkpoint path or a ``Predictor``.
    ``options`` are those of :class:`Stream` (segmenter, ``hop``, ``smoothing``, ``asr``, ...)."""
    from ..inference.predictor import Predictor, load

    predictor = model if isinstance(model, Predictor) else load(model, registry=registry, trust=trust,
                                                                 device=device)
    return Stream(predictor, device=device, **options)


def segment_events(events: Sequence[dict]) -> list[dict]:
    """The finished segments among ``events``."""
    return [e for e in events if e["type"] == "segment"]


__all__ = ["Stream", "stream", "segment_events"]
