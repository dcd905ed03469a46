"""Speech segments from a stream of samples: Silero VAD, one 512-sample window at a time.

``Segmenter`` is the one segmenter of the zoo (``zoo.stream``, ``infer --segment vad``,
``listen``, the evaluation). It feeds the Silero VAD model (shipped inside the ``silero-vad``
wheel, run on CPU, offline) 32 ms windows of 16 kHz audio in order and keeps the model's
recurrent state, so how the samples were chunked cannot change any decision: pushing a file
whole or 337 samples at a time gives the same segments, to the sample.

The decisions follow ``silero_vad.get_speech_timestamps`` (same threshold / negative threshold
hysteresis, same cut of an over-long turn at its longest inner pause), made causal so they can
be taken live:

* speech starts at the first window whose probability is >= ``threshold``; it ends when the
  probability stays below ``threshold - 0.15`` for ``min_silence`` seconds (the end is where that
  silence began); a segment shorter than ``min_speech`` is dropped;
* a turn longer than ``max_segment`` seconds is cut at its longest pause of >= 98 ms, or right
  there when it has none (a hard cut: no padding on either side of it);
* each segment is widened by ``pad`` seconds on both sides, never into the previous segment
  (``get_speech_timestamps`` splits a short gap between two segments in half, which needs the
  future; here the earlier segment keeps its full pad).

Only numpy is imported with this module; onnxruntime (or torch, for the TorchScript model) loads
when the first segmenter is built. Importing the ``silero_vad`` package itself is avoided: it
calls ``torch.set_num_threads(1)`` for the whole process.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from ..errors import ZooUserError

#: the VAD's sample rate and window (Silero VAD v5/v6 at 16 kHz)
RATE = 16000
WINDOW = 512
_CONTEXT = 64  # samples of the previous window the model sees before each window
_MIN_PAUSE_AT_MAX = 0.098  # seconds: shortest pause a too-long turn may be cut at (silero's default)

#: the defaults, documented in docs/live.md ("The segmenter")
DEFAULTS = dict(threshold=0.5, min_speech=0.25, min_silence=0.3, pad=0.1, max_segment=10.0)


class Cut(NamedTuple):
    """A decision of the segmenter, in samples at 16 kHz since the stream began.

    ``kind`` is ``"segment"`` (a finished speech segment, padding included) or ``"partial"``
    (the speech so far of a segment still open, every ``partial_every`` seconds)."""

    kind: str
    start: int
    end: int


def _model_file(name: str) -> Path:
    # find_spec locates the package without running its __init__ (see the module docstring)
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ZooUserError("voice activity detection needs the silero-vad package: pip install 'silero-vad>=6'")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / name
    if not path.is_file():
        raise ZooUserError(f"silero-vad is installed but its model file is missing: {path}")
    return path


_ONNX_SESSION = None


class _OnnxVAD:
    """Silero VAD through onnxruntime: the session is shared (it holds no state), the recurrent
    state and the 64-sample context are ours."""

    def __init__(self):
        global _ONNX_SESSION
        if _ONNX_SESSION is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            # one window at a time: threads only add overhead (and other helpers share the CPU)
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            _ONNX_SESSION = ort.InferenceSession(str(_model_file("silero_vad.onnx")),
                                                 providers=["CPUExecutionProvider"], sess_options=opts)
        self.session = _ONNX_SESSION
        self._sr = np.array(RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        self.state = np.zeros((2, 1, 128), dtype=np.float32)
        self.x = np.zeros((1, _CONTEXT + WINDOW), dtype=np.float32)

    def __call__(self, window: np.ndarray) -> float:
        self.x[0, :_CONTEXT] = self.x[0, -_CONTEXT:]
        self.x[0, _CONTEXT:] = window
        out, self.state = self.session.run(None, {"input": self.x, "state": self.state, "sr": self._sr})
        return float(out[0, 0])


class _JitVAD:
    """Silero VAD as TorchScript (when onnxruntime is not installed; about 4x slower)."""

    def __init__(self):
        import warnings

        import torch

        self.torch = torch
        with warnings.catch_warnings():  # torch >= 2.10 deprecates jit.load; silero ships TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            self.model = torch.jit.load(str(_model_file("silero_vad.jit")), map_location="cpu").eval()
        self.reset()

    def reset(self) -> None:
        self.model.reset_states()

    def __call__(self, window: np.ndarray) -> float:
        with self.torch.inference_mode():
            return float(self.model(self.torch.from_numpy(np.ascontiguousarray(window))[None], RATE).item())


def _vad_model(backend: str):
    if backend == "auto":
        backend = "onnx" if importlib.util.find_spec("onnxruntime") is not None else "jit"
    if backend == "onnx":
        try:
            return _OnnxVAD()
        except ImportError as e:
            raise ZooUserError("vad backend onnx needs onnxruntime (pip install onnxruntime), "
                               "or use backend='jit'") from e
    if backend == "jit":
        return _JitVAD()
    raise ZooUserError(f"unknown VAD backend {backend!r}: use auto, onnx or jit")


class Segmenter:
    """Streaming speech segmentation with Silero VAD (see the module docstring for the rules).

    Args:
        threshold: Speech probability at or above which a window is speech (0.5). Lower finds
            quieter speech and more noise; ``threshold - 0.15`` is the level below which it is
            silence again.
        min_speech: Segments shorter than this many seconds are dropped (0.25).
        min_silence: Seconds of silence that end a segment (0.3). Shorter pauses stay inside it,
            so a sentence with breaths is one segment.
        pad: Seconds of audio kept on each side of the speech (0.1).
        max_segment: Longest segment in seconds, padding included (10); a longer turn is cut at
            its longest pause, or hard when it has none.
        partial_every: Also report the speech so far of an open segment every this many seconds
            (``Cut("partial", ...)``); None: never.
        backend: ``onnx`` (onnxruntime, the faster), ``jit`` (TorchScript) or ``auto`` (onnx when
            onnxruntime is installed).

    Feed 16 kHz float32 audio with :meth:`push` in chunks of any size, end with :meth:`flush`;
    both return the :class:`Cut` decisions taken, in order.
    """

    def __init__(self, threshold: float = DEFAULTS["threshold"], min_speech: float = DEFAULTS["min_speech"],
                 min_silence: float = DEFAULTS["min_silence"], pad: float = DEFAULTS["pad"],
                 max_segment: float | None = DEFAULTS["max_segment"], partial_every: float | None = None,
                 backend: Literal["auto", "onnx", "jit"] = "auto"):
        if not 0.0 < threshold < 1.0:
            raise ZooUserError(f"VAD threshold must be in (0, 1), got {threshold}")
        for name, v in (("min_speech", min_speech), ("min_silence", min_silence), ("pad", pad)):
            if v < 0:
                raise ZooUserError(f"VAD {name} must be >= 0 seconds, got {v}")
        if max_segment is not None and max_segment <= 2 * pad + 2 * WINDOW / RATE:
            raise ZooUserError(f"VAD max_segment ({max_segment} s) must exceed twice the padding plus 64 ms")
        if partial_every is not None and partial_every <= 0:
            raise ZooUserError(f"partial hop must be > 0 seconds, got {partial_every}")
        self.threshold = threshold
        self.neg_threshold = max(threshold - 0.15, 0.01)
        self.min_speech, self.min_silence, self.pad, self.max_segment = min_speech, min_silence, pad, max_segment
        self.partial_every = partial_every
        self._min_speech = RATE * min_speech
        self._min_silence = RATE * min_silence
        self._pad = int(RATE * pad)
        # as get_speech_timestamps: the raw speech may use what the padding and one window leave
        self._max = math.inf if max_segment is None else RATE * max_segment - WINDOW - 2 * self._pad
        self._min_pause_at_max = RATE * _MIN_PAUSE_AT_MAX
        self._partial = None if partial_every is None else int(round(RATE * partial_every))
        self.model = _vad_model(backend)
        self.reset()

    @classmethod
    def options(cls) -> tuple[str, ...]:
        return (*DEFAULTS, "partial_every", "backend")

    def reset(self) -> None:
        """Forget everything: the next push starts a new stream at time 0."""
        self.model.reset()
        self._rest = np.zeros(0, dtype=np.float32)  # samples short of a full window
        self.n = 0  # samples consumed (whole windows)
        self.total = None  # set by flush
        self._cap = math.inf  # samples that exist (the last window is zero-padded past them)
        self.probs: list[float] = []  # one speech probability per window, for plots and tuning
        self._triggered = False
        self._start = 0  # raw start of the open speech
        self._temp_end = 0  # where the current silence inside the open speech began (0: none)
        self._possible_ends: list[tuple[int, int]] = []  # (pause start, pause length) inside it
        self._hard_start = False  # the open segment began at a hard cut: no padding before it
        self._prev_end = 0  # padded end of the last segment: the next one's start stays after it
        self._pending: list[tuple[int, int]] = []  # decided segments waiting for their end padding
        self._next_partial = 0

    # -- where the open segment would start, padding included -----------------------------------
    def _padded_start(self, raw: int, hard: bool) -> int:
        return raw if hard else max(raw - self._pad, self._prev_end, 0)

    @property
    def keep_from(self) -> int:
        """The earliest sample (16 kHz, since the stream began) a future cut may still include:
        a caller buffering the audio may drop what lies before it."""
        cands = [s for s, _ in self._pending]
        if self._triggered:
            cands.append(self._padded_start(self._start, self._hard_start))
        cands.append(max(self.n - self._pad - WINDOW, self._prev_end, 0))
        return min(cands)

    @property
    def open_start(self) -> int | None:
        """Padded start of the speech segment in progress (None: in silence)."""
        return self._padded_start(self._start, self._hard_start) if self._triggered else None

    # -- feeding ----------------------------------------------------------------------------------
    def push(self, wav16: np.ndarray) -> list[Cut]:
        """Feed float32 samples at 16 kHz; the cuts decided with them."""
        if self.total is not None:
            raise ZooUserError("this segmenter was flushed: reset() it to start a new stream")
        x = np.asarray(wav16, dtype=np.float32).reshape(-1)
        if self._rest.size:
            x = np.concatenate([self._rest, x])
        full = x.size - x.size % WINDOW
        cuts: list[Cut] = []
        for i in range(0, full, WINDOW):
            self._window(x[i : i + WINDOW], cuts)
        self._rest = x[full:].copy()
        return cuts

    def flush(self) -> list[Cut]:
        """End of the stream: the last window (zero-padded, as silero does) is decided, a segment
        still open ends at the last sample, pending ones get whatever padding the audio allows."""
        if self.total is not None:
            return []
        total = self.n + self._rest.size
        self._cap = total
        cuts: list[Cut] = []
        if self._rest.size:
            w = np.zeros(WINDOW, dtype=np.float32)
            w[: self._rest.size] = self._rest
            self._window(w, cuts)
            self._rest = np.zeros(0, dtype=np.float32)
        self.total = total
        if self._triggered and total - self._start > self._min_speech:
            self._decide(self._start, total, pad_end=False, cuts=cuts)
        self._triggered = False
        self._release(cuts, final=True)
        return cuts

    def segments(self, wav16: np.ndarray) -> list[tuple[int, int]]:
        """The speech segments of a whole signal (16 kHz): ``[(start, end), ...]`` in samples.
        Equal, by construction, to pushing it in any chunks and flushing."""
        self.reset()
        cuts = self.push(wav16) + self.flush()
        return [(c.start, c.end) for c in cuts if c.kind == "segment"]

    # -- the decisions ----------------------------------------------------------------------------
    def _decide(self, start: int, end: int, *, pad_end: bool, cuts: list[Cut]) -> None:
        s = self._padded_start(start, self._hard_start)
        e = end + self._pad if pad_end else end
        self._pending.append((s, e))
        self._prev_end = e
        self._hard_start = False

    def _release(self, cuts: list[Cut], final: bool = False) -> None:
        """Segments whose end padding the audio now covers (all of them at the end, clipped)."""
        avail = min(self.n, self._cap)
        while self._pending and (final or self._pending[0][1] <= avail):
            s, e = self._pending.pop(0)
            cuts.append(Cut("segment", s, min(e, avail)))
        if final and self.total is not None:
            self._prev_end = min(self._prev_end, self.total)

    def _window(self, w: np.ndarray, cuts: list[Cut]) -> None:
        p = self.model(w)
        self.probs.append(p)
        cur = self.n  # as get_speech_timestamps: a window's decisions happen at its first sample
        self.n += WINDOW
        speech = p >= self.threshold
        if speech and self._temp_end:
            pause = cur - self._temp_end
            if pause > self._min_pause_at_max:
                self._possible_ends.append((self._temp_end, pause))
            self._temp_end = 0
        if speech and not self._triggered:
            self._triggered = True
            self._start = cur
            self._next_partial = self._padded_start(cur, self._hard_start) + (self._partial or 0)
        elif self._triggered and cur - self._start > self._max:
            if self._possible_ends:  # cut at the longest pause, the speech after it goes on
                end, pause = max(self._possible_ends, key=lambda t: t[1])
                self._decide(self._start, end, pad_end=True, cuts=cuts)
                self._start = end + pause
            else:  # no pause: cut here, hard, and go on with the rest of the turn
                self._decide(self._start, cur, pad_end=False, cuts=cuts)
                self._start, self._hard_start = cur, True
            self._temp_end = 0
            self._possible_ends = []
            self._next_partial = self._padded_start(self._start, self._hard_start) + (self._partial or 0)
        elif self._triggered and p < self.neg_threshold:
            if not self._temp_end:
                self._temp_end = cur
            if cur - self._temp_end >= self._min_silence:
                if self._temp_end - self._start > self._min_speech:
                    self._decide(self._start, self._temp_end, pad_end=True, cuts=cuts)
                else:
                    self._hard_start = False
                self._triggered = False
                self._temp_end = 0
                self._possible_ends = []
        self._release(cuts)
        if self._partial and self._triggered and self.n >= self._next_partial:
            cuts.append(Cut("partial", self._padded_start(self._start, self._hard_start), min(self.n, self._cap)))
            self._next_partial += self._partial


def add_vad_arguments(ap) -> None:
    """The segmenter's options on an argparse parser (``infer``, ``listen``, ``segeval``)."""
    g = ap.add_argument_group("voice activity detection (Silero VAD; docs/live.md)")
    g.add_argument("--vad-threshold", type=float, default=DEFAULTS["threshold"],
                   help="speech probability from which a 32 ms window is speech (default %(default)s)")
    g.add_argument("--vad-min-speech", type=float, default=DEFAULTS["min_speech"],
                   help="drop segments shorter than this, in seconds (default %(default)s)")
    g.add_argument("--vad-min-silence", type=float, default=DEFAULTS["min_silence"],
                   help="seconds of silence that end a segment (default %(default)s)")
    g.add_argument("--vad-pad", type=float, default=DEFAULTS["pad"],
                   help="seconds of audio kept on each side of a segment (default %(default)s)")
    g.add_argument("--vad-max-segment", type=float, default=DEFAULTS["max_segment"],
                   help="longer turns are cut, at their longest pause, in seconds (default %(default)s)")


def vad_options(args) -> dict:
    """``Segmenter`` keyword arguments from the parsed ``add_vad_arguments`` options."""
    return dict(threshold=args.vad_threshold, min_speech=args.vad_min_speech, min_silence=args.vad_min_silence,
                pad=args.vad_pad, max_segment=args.vad_max_segment)


__all__ = ["Segmenter", "add_vad_arguments", "vad_options", "Cut", "RATE", "WINDOW", "DEFAULTS"]


def add_threads_argument(ap) -> None:
    """``--threads`` of the live commands (listen, serve): torch's intra-op threads."""
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for the model (default 1: on a shared 2-core machine two threads "
                         "wait on each other and p95 latency rose from 0.11 s to 0.6-1.1 s; docs/live.md)")


def set_threads(n: int) -> None:
    if n < 1:
        raise ZooUserError(f"--threads must be >= 1, got {n}")
    import torch

    torch.set_num_threads(n)
