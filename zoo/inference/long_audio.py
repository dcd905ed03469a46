"""The Predictor's long-audio half: a clip of any length labelled along time, in windows or in
the segments a voice activity detector finds, with a long file read a block at a time
(``zoo.data.audio.audio_blocks``; in VAD mode too), so memory is bounded by ``batch_size * window``
whatever the file's length. :class:`~zoo.inference.predictor.Predictor` inherits it."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import ZooUserError
from .signal import NO_SPEECH_ENERGY, AudioInput, power_db, refuse_short, rms_db, to_mono


class LongAudio:
    """``predict_long`` and its helpers; the rest (``load_audio``, ``_forward``, ``_result``,
    ``_item``, ``_file_header``, ``sample_rate``, ``batch_size``, ``window``, ``hop``) comes from the Predictor."""

    def predict_long(self, audio: AudioInput, text: str | None = None, *, sample_rate: int | None = None,
                     window: float | None = None, hop: float | None = None,
                     segment: str = "windows", vad: dict | None = None, asr=None) -> dict:
        """Label a clip of any length along time: a timestamped ``track`` (start, end, label, probs
        per part) plus the aggregate ``label``/``probs`` (the parts' values averaged, each weighted
        by its duration).

        ``segment="windows"`` cuts fixed windows (``window`` seconds every ``hop``), silence
        included. ``segment="vad"`` labels each speech segment found by the voice activity
        detector instead (``zoo.live``: the same stream ``zoo.stream`` runs, pushed the whole clip
        at once); ``vad`` takes the segmenter's options (``threshold``, ``min_speech``,
        ``min_silence``, ``pad``, ``max_segment``, ``backend``) and ``asr`` a speech recogniser
        that transcribes each segment for models that read text. A clip with no speech gets
        ``label`` None, empty ``probs`` and ``note: "no speech detected"``. The transcript, when
        given, goes with every window or segment."""
        name = str(audio) if isinstance(audio, (str, os.PathLike)) else "input"
        if segment == "vad":
            if asr is None:
                self._check_text([text], [name])
            return self._predict_vad(audio, text, name, sample_rate=sample_rate, vad=vad or {}, asr=asr)
        if segment != "windows":
            raise ZooUserError(f"segment must be 'windows' or 'vad', got {segment!r}")
        self._check_text([text], [name])
        if isinstance(audio, (str, os.PathLike)):
            self._file_seconds(audio)  # the header rule (truncated, empty, not audio) first
            return self._predict_windows_file(str(audio), text, name, window=window, hop=hop)
        return self._predict_windows(self.load_audio(audio, sample_rate), text, name, window=window, hop=hop)

    def _predict_vad(self, audio: AudioInput, text: str | None, name: str, *, sample_rate: int | None,
                     vad: dict, asr) -> dict:
        from ..live.stream import Stream

        if isinstance(audio, (str, os.PathLike)):
            sr = self._file_header(audio).samplerate  # the header rule of training and windows
            # a block at a time at the file's own rate (the stream resamples, and its result does
            # not depend on the chunking): memory holds a block and the open segment, not the file
            blocks = _read_blocks(str(audio))
        else:
            wav, sr = to_mono(audio), int(sample_rate or self.sample_rate)
            if wav.size == 0:
                raise ZooUserError(f"zero-length audio: {name}")
            blocks = iter([wav])
        unknown = set(vad) - {"threshold", "min_speech", "min_silence", "pad", "max_segment", "backend"}
        if unknown:
            raise ZooUserError(f"unknown VAD option(s) {sorted(unknown)}")
        stream = Stream(self, sample_rate=sr, hop=None, smoothing=None, text=text, asr=asr, **vad)
        segs, n = [], 0
        for block in blocks:
            n += block.shape[0]
            segs += [e for e in stream.push(block, sr) if e["type"] == "segment"]
        segs += [e for e in stream.flush() if e["type"] == "segment"]
        out: dict[str, Any] = {"duration": round(n / sr, 3), "segment": "vad"}
        if not segs:
            return {"label": None, "probs": {}, **out, "track": [], "note": "no speech detected"}
        track = []
        for e in segs:
            row = {"start": e["start"], "end": e["end"], "label": e["label"], "probs": e["probs"]}
            if self.dims:
                row["dims"] = {d: e[d] for d in self.dims}
            if "text" in e:
                row["text"] = e["text"]
            track.append(row)
        rows = np.array([[*w["probs"].values(), *w.get("dims", {}).values()] for w in track])
        weights = np.array([w["end"] - w["start"] for w in track])
        mean = (rows * weights[:, None]).sum(0) / weights.sum()
        return {**self._result(mean), **out, "speech": round(float(weights.sum()), 3), "track": track}

    def _win_step(self, window: float | None, hop: float | None) -> tuple[int, int]:
        sr = self.sample_rate
        win = int(round((window or self.window) * sr))
        step = int(round((hop or self.hop) * sr))
        if win <= 0 or step <= 0:
            raise ZooUserError(f"window and hop must be positive, got window={window}, hop={hop}")
        return win, step

    def _predict_windows(self, wav: np.ndarray, text: str | None, name: str, *,
                         window: float | None = None, hop: float | None = None, check_energy: bool = True) -> dict:
        win, step = self._win_step(window, hop)
        spans = ((s, e, wav[s:e]) for s, e in window_spans(wav.shape[0], win, step))
        return self._windows_result(*self._label_windows(spans, text, name, check_energy), wav.shape[0],
                                    rms_db(wav))

    def _predict_windows_file(self, path: str, text: str | None, name: str, *,
                              window: float | None = None, hop: float | None = None) -> dict:
        """Windows mode on a file read a block at a time: memory holds a block and a batch of
        windows, not the file (the windows and the result are those of the whole-file path)."""
        win, step = self._win_step(window, hop)
        seen = {"n": 0, "energy": 0.0}

        def spans():
            buf, buf_start, start = np.zeros(0, np.float32), 0, 0
            for chunk in _read_blocks(path, self.sample_rate):
                buf = np.concatenate([buf, chunk])
                seen["n"] += chunk.shape[0]
                seen["energy"] += float(np.square(chunk, dtype=np.float64).sum())
                while start + win <= seen["n"]:  # the starts window_spans gives, as they become whole
                    yield start, start + win, buf[start - buf_start : start - buf_start + win]
                    start += step
                keep = max(min(start, seen["n"] - win), buf_start)  # the next window, or the last one
                buf, buf_start = buf[keep - buf_start :], keep
            n = seen["n"]
            refuse_short(name, n, self.sample_rate)
            if start == 0:  # shorter than a window: one window of the whole clip
                yield 0, n, buf[-n:]
            elif start - step + win < n:  # the last window ends at the end, as window_spans says
                yield n - win, n, buf[-win:]

        labelled = self._label_windows(spans(), text, name, True)
        n = seen["n"]
        level = power_db(seen["energy"] / n) if n else float("-inf")
        return self._windows_result(*labelled, n, level)

    def _label_windows(self, spans, text: str | None, name: str, check_energy: bool):
        """(track, probabilities, weights) of ``(start, end, samples)`` windows, a batch at a time;
        a window without speech energy is not labelled and does not count in the mean."""
        sr = self.sample_rate
        track: list[dict] = []
        weights, all_probs = [], []
        spans = iter(spans)
        while True:
            chunk = [w for _, w in zip(range(self.batch_size), spans)]
            if not chunk:
                break
            silent = [check_energy and self._no_energy(x) for _, _, x in chunk]
            items = [self._item(f"{name}@{s / sr:.2f}", x, text) for (s, _, x), q in zip(chunk, silent) if not q]
            probs = iter(self._forward(items)) if items else iter(())
            for (s, e, x), q in zip(chunk, silent):
                span = {"start": round(s / sr, 3), "end": round(e / sr, 3)}
                if q:
                    track.append({**span, **self._silent_result(x)})
                    continue
                p = next(probs)
                all_probs.append(p)
                weights.append(e - s)
                track.append({**span, **self._result(p)})
        return track, all_probs, weights

    def _windows_result(self, track: list[dict], all_probs: list, weights: list, n: int, level: float) -> dict:
        out = {"duration": round(n / self.sample_rate, 3), "track": track}
        if not all_probs:
            return {"label": None, "probs": {}, "note": NO_SPEECH_ENERGY,
                    "level_db": round(level, 1) if np.isfinite(level) else None, **out}
        w = np.array(weights, dtype=np.float64)
        mean = (np.stack(all_probs) * w[:, None]).sum(0) / w.sum()
        silent = len(track) - len(all_probs)
        return {**self._result(mean), **out, **({"windows_without_speech": silent} if silent else {})}


def _read_blocks(path: str, sample_rate: int | None = None):
    """:func:`zoo.data.audio.audio_blocks`, with a block that cannot be used (NaN or inf samples)
    named as a file that cannot be read, as :meth:`Predictor.load_audio` names it."""
    from ..data import audio as za

    blocks = za.audio_blocks(path, sample_rate)
    while True:
        try:
            block = next(blocks)
        except StopIteration:
            return
        except ValueError as e:
            raise ZooUserError(f"cannot read audio {path}: {e}") from e
        yield block


def window_spans(n: int, win: int, step: int) -> list[tuple[int, int]]:
    """Sample spans covering ``n`` samples: starts every ``step``, the last window ends at ``n``
    (so no audio is dropped), none shorter than a window unless the clip is."""
    if n <= win:
        return [(0, n)]
    starts = list(range(0, n - win + 1, step))
    if starts[-1] + win < n:
        starts.append(n - win)
    return [(s, s + win) for s in starts]
