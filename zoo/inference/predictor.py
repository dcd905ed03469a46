"""``zoo.load(name_or_path).predict(...)``: a trained zoo model applied to audio files or arrays.

The Predictor builds its items with the DataModule's item builder (``zoo.data.batch.make_item``:
mono waveform at the model's rate, eGeMAPS functionals, token ids from the checkpoint's own
tokenizer) and collates them with the same ``collate``, so a prediction here equals the one ``python -m zoo predict`` makes, and a
batched prediction equals single ones (the models mask padding; tests check both).

Long audio is cut into windows (``window`` seconds every ``hop`` seconds) and run a batch of
windows at a time, and a long file is read a block at a time (``zoo.data.audio.audio_blocks``; in
VAD mode too), so memory is bounded by ``batch_size * window`` whatever the file's length;
the result then carries a timestamped track and the duration-weighted mean over windows.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from ..errors import ZooUserError

log = logging.getLogger("zoo")

AudioInput = str | os.PathLike | np.ndarray | torch.Tensor

#: below this RMS level (dBFS) a clip or window holds no speech energy: digital silence, a muted
#: microphone (16-bit dither is about -100 dBFS, room tone -60 to -45, quiet speech above -50)
SILENCE_DB = -60.0
NO_SPEECH_ENERGY = "no speech energy"


def rms_db(wav: np.ndarray) -> float:
    """The RMS level of a signal in dBFS (-inf for digital silence)."""
    if wav.size == 0:
        return float("-inf")
    ms = float(np.mean(np.square(wav, dtype=np.float64)))
    return 10.0 * np.log10(ms) if ms > 0 else float("-inf")


def to_mono(wav: np.ndarray | torch.Tensor) -> np.ndarray:
    """float32 mono from a 1-D signal, (channels, samples) or (samples, channels)."""
    a = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
    a = a.astype(np.float32, copy=False)
    if a.ndim == 2:
        # torchaudio gives (channels, samples), soundfile (samples, channels): the short side is channels
        a = a.mean(axis=0 if a.shape[0] <= a.shape[1] else 1)
    if a.ndim != 1:
        raise ZooUserError(f"audio must be 1-D or (channels, samples), got shape {tuple(np.shape(wav))}")
    return a


class Predictor:
    """A zoo model ready for inference.

    Args:
        module: A trained ``EmotionModule`` (from ``zoo.models.loading.load_module``).
        entry: Its registry entry, when it came from the registry (metrics, card, corpus).
        device: ``cpu``, ``cuda``, ... (default: cuda when available).
        batch_size: Clips (or windows) per forward pass.
        max_seconds: Clips longer than this are windowed (see ``predict_long``).
        window: Window length in seconds for long audio.
        hop: Hop between window starts in seconds.
        min_rms_db: An audio file, or a window of ``predict_long``, whose RMS level lies below
            this many dBFS holds no speech energy: it gets ``label`` None, empty ``probs`` and
            ``note: "no speech energy"`` instead of a label (a model labels digital silence as
            confidently as speech). Arrays handed to ``predict`` / ``predict_batch`` are labelled
            as given (the live stream hands over the speech its VAD found). None: label everything.
    """

    def __init__(self, module, entry=None, *, source: str | None = None, device: str | None = None,
                 batch_size: int = 16, max_seconds: float = 10.0, window: float = 4.0, hop: float = 2.0,
                 min_rms_db: float | None = SILENCE_DB):
        self.module = module.eval()
        self.entry = entry
        self.source = source
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.module.to(self.device)
        self.batch_size = batch_size
        self.max_seconds = max_seconds
        self.window, self.hop = window, hop
        self.min_rms_db = min_rms_db
        if hop <= 0 or window <= 0:
            raise ZooUserError(f"window and hop must be positive, got window={window}, hop={hop}")
        self._egemaps = None
        #: the speaker name items carry after :meth:`adapt` (None: no adaptation)
        self.speaker: str | None = None
        self._warned_unadapted = False

    # -- what the model is -------------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        """The classes the model predicts ([] for a dimension-only model)."""
        return list(self.module.class_names) if getattr(self.module, "predicts_categories", True) else []

    @property
    def dims(self) -> list[str]:
        """The dimensions the model predicts (arousal, valence, dominance; [0, 1] scale), or []."""
        return list(getattr(self.module, "dim_names", []))

    @property
    def sample_rate(self) -> int:
        return int(self.module.sample_rate)

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(self.module.inputs)

    @property
    def uses_audio(self) -> bool:
        from ..data.features import FEATURE_MODALITIES

        return bool({"audio", *FEATURE_MODALITIES} & set(self.inputs))

    @property
    def uses_text(self) -> bool:
        return "text" in self.inputs

    @property
    def needs_text(self) -> bool:
        return self.uses_text and not getattr(self.module, "text_optional", False)

    def __repr__(self) -> str:
        name = self.entry.name if self.entry else self.source
        dims = f", dims={self.dims}" if self.dims else ""
        return f"Predictor({name!r}, {type(self.module).__name__}, classes={self.class_names}{dims})"

    # -- inputs -------------------------------------------------------------------------------------
    def load_audio(self, audio: AudioInput, sample_rate: int | None = None) -> np.ndarray:
        """Mono float32 at the model's rate from a file (any rate, any channels) or an array."""
        from ..data.audio import read_audio, resample

        from ..data.audio import MIN_SECONDS, audio_details

        if isinstance(audio, (str, os.PathLike)):
            try:
                # the header checks training and `zoo check` apply: one rule for a file cut short of
                # what its header declares, an empty one, one that is not audio
                audio_details(str(audio), check_samples=False)
                wav, sr = read_audio(str(audio))
            except Exception as e:
                raise ZooUserError(f"cannot read audio {audio}: {e}") from e
        else:
            wav, sr = to_mono(audio), sample_rate or self.sample_rate
        where = audio if isinstance(audio, (str, os.PathLike)) else "array"
        if wav.size == 0:
            raise ZooUserError(f"zero-length audio: {where}")
        if wav.shape[0] < MIN_SECONDS * sr:  # a click or a stub: no model input says anything about it
            raise ZooUserError(f"{where}: too short to label: {wav.shape[0]} sample(s) ({wav.shape[0] / sr:.4f} s; "
                               f"clips under {MIN_SECONDS} s are refused, as in training: min_seconds)")
        return resample(wav, sr, self.sample_rate).astype(np.float32, copy=False)

    @staticmethod
    def _file_seconds(path: AudioInput) -> float:
        """A file's duration from its header, which must pass the rule training applies."""
        from ..data.audio import audio_details

        try:
            info = audio_details(str(path), check_samples=False)
        except Exception as e:
            raise ZooUserError(f"cannot read audio {path}: {e}") from e
        return info.frames / info.samplerate

    def _no_energy(self, wav: np.ndarray) -> bool:
        return self.min_rms_db is not None and rms_db(wav) < self.min_rms_db

    def _silent_result(self, wav: np.ndarray) -> dict:
        level = rms_db(wav)
        return {"label": None, "probs": {}, "note": NO_SPEECH_ENERGY,
                "level_db": None if not np.isfinite(level) else round(level, 1)}

    def _item(self, key: str, wav: np.ndarray | None, text: str | None) -> dict:
        """The item EmotionDataset builds for the same clip (one builder: ``make_item``)."""
        from ..data.batch import make_item

        from ..data.features import FEATURE_MODALITIES, functionals_for

        features = None
        wanted = [m for m in self.inputs if m in FEATURE_MODALITIES]
        if wanted:
            if self._egemaps is None:
                self._egemaps = functionals_for(wanted[0], cache_dir=None)
            features = torch.tensor(self._egemaps.compute_signal(wav, self.sample_rate))
        audio = torch.from_numpy(np.ascontiguousarray(wav)) if "audio" in self.inputs else None
        if self.speaker is None and self.module.normalizes_per_speaker and not self._warned_unadapted:
            self._warned_unadapted = True
            log.warning("%s standardises each speaker by that speaker's own clips; without adapt() "
                        "(infer --adapt) it falls back to its training speakers' statistics, which "
                        "costs accuracy on a new voice (see its model card)", type(self.module).__name__)
        return make_item(key, speaker=self.speaker, audio=audio, features=features, text=text,
                         with_text=self.uses_text,
                         tokenizer=getattr(self.module, "tokenizer", None))

    def _check_text(self, texts: Sequence[str | None], names: Sequence[str]) -> None:
        if not self.needs_text:
            return
        missing = [n for n, t in zip(names, texts) if not (t or "").strip()]
        if missing:
            raise ZooUserError(
                f"{type(self.module).__name__} reads the transcript, and none was given for "
                f"{len(missing)} input(s), e.g. {missing[0]}: pass text=... (CLI: --text, "
                "--transcripts FILE.csv or --asr MODEL)")

    @torch.inference_mode()
    def _forward(self, items: list[dict]) -> np.ndarray:
        """One row per item: the class probabilities, then the predicted dimensions."""
        from ..data.batch import collate

        tok = getattr(self.module, "tokenizer", None)
        batch = collate(items, pad_id=tok.pad_id if tok is not None else 0)
        batch = self.module.transfer_batch_to_device(batch, self.device, 0)
        out = self.module(batch).float()
        if not hasattr(self.module, "split_outputs"):
            return out.softmax(-1).cpu().numpy()
        logits, dims = self.module.split_outputs(out)
        parts = ([logits.softmax(-1)] if logits is not None else []) + ([dims] if dims is not None else [])
        return torch.cat(parts, -1).cpu().numpy()

    def _result(self, row: np.ndarray) -> dict:
        """``label`` and ``probs`` (None and {} without categories) and ``dims`` when the model has
        dimensions. ``row`` may be a duration-weighted mean of rows (windows): still valid."""
        c = len(self.class_names)
        probs = row[:c]
        out: dict[str, Any] = {"label": self.class_names[int(np.argmax(probs))] if c else None,
                               "probs": {n: float(p) for n, p in zip(self.class_names, probs)}}
        if self.dims:
            out["dims"] = {d: float(v) for d, v in zip(self.dims, row[c:])}
        return out

    # -- speaker adaptation -------------------------------------------------------------------------
    def adapt(self, audios: Sequence[AudioInput] | None, *, sample_rate: int | None = None,
              speaker: str = "adapted") -> "Predictor":
        """Unsupervised speaker adaptation for models trained with ``normalize: speaker``: the
        clips (unlabelled, at least two, all of ONE speaker) give that speaker's feature
        statistics, and every later prediction is standardised by them. ``adapt(None)`` goes back
        to the training speakers' statistics. Returns self."""
        if audios is None:
            self.speaker = None
            return self
        if not self.module.normalizes_per_speaker:
            raise ZooUserError(f"{type(self.module).__name__} was not trained with normalize: speaker; "
                               "speaker adaptation does not apply to it")
        from ..models.base import MIN_SPEAKER_UTTERANCES

        wavs = [self.load_audio(a, sample_rate) for a in audios]
        if len(wavs) < MIN_SPEAKER_UTTERANCES:
            raise ZooUserError(f"speaker adaptation needs at least {MIN_SPEAKER_UTTERANCES} clips of the "
                               f"speaker, got {len(wavs)}")
        self.module.adapt_speakers({speaker: wavs})
        self.speaker = speaker
        return self

    # -- prediction ---------------------------------------------------------------------------------
    def predict(self, audio: AudioInput | None = None, text: str | None = None, *,
                sample_rate: int | None = None) -> dict:
        """``{"label": ..., "probs": {class: p}}`` for one clip (and ``track`` when it was windowed);
        a model with dimensional targets adds ``"dims": {"arousal": ..., "valence": ...}`` ([0, 1]
        scale; a dimension-only model has ``label`` None and empty ``probs``).

        ``audio`` is a file path or an array (1-D, or (channels, samples)) at ``sample_rate``
        (default: the model's rate); ``text`` is its transcript, for text and fusion models.
        """
        return self.predict_batch([audio], [text], sample_rate=sample_rate)[0]

    def predict_batch(self, audios: Sequence[AudioInput | None], texts: Sequence[str | None] | None = None,
                      *, sample_rate: int | None = None, progress: bool = False,
                      names: Sequence[str] | None = None, skip_errors: bool = False) -> list[dict]:
        """Predictions for many clips, batched by length; results come back in input order.

        Clips longer than ``max_seconds`` are windowed and carry a ``track``. With
        ``skip_errors``, a clip that cannot be read or analysed gets ``{"error": why}`` in its
        place and the others go on (one bad file in a large folder loses nothing else).
        """
        n = len(audios)
        texts = list(texts) if texts is not None else [None] * n
        if len(texts) != n:
            raise ZooUserError(f"got {n} audio inputs but {len(texts)} transcripts")
        names = list(names) if names is not None else [
            str(a) if isinstance(a, (str, os.PathLike)) else f"input {i}" for i, a in enumerate(audios)]
        self._check_text(texts, names)
        results: list[dict | None] = [None] * n
        bar = _progress(n, progress)
        if not self.uses_audio:  # text-only model: audio is neither needed nor read
            for s in range(0, n, self.batch_size):
                items = [self._item(names[i], None, texts[i]) for i in range(s, min(n, s + self.batch_size))]
                for k, p in enumerate(self._forward(items)):
                    results[s + k] = self._result(p)
                bar.update(len(items))
            bar.close()
            return results  # type: ignore[return-value]
        for i, a in enumerate(audios):
            if a is None:
                raise ZooUserError(f"{type(self.module).__name__} needs audio; {names[i]} has none")

        def failed(i: int, e: Exception) -> None:
            if not skip_errors:
                raise e if isinstance(e, ZooUserError) else ZooUserError(f"{names[i]}: {e}") from e
            log.warning("skipping %s: %s", names[i], e)
            results[i] = {"error": str(e)}
            bar.update(1)

        # files are decoded a block at a time (memory stays bounded on a 44K-file folder) and
        # sorted by length inside the block, so similar lengths share a batch: little padding
        block = self.batch_size * 16
        for b in range(0, n, block):
            short: list[tuple[int, np.ndarray, dict]] = []
            for i in range(b, min(n, b + block)):
                try:
                    # files are checked for speech energy; an array is labelled as given (the
                    # live stream hands over the speech segments its VAD found)
                    is_file = isinstance(audios[i], (str, os.PathLike))
                    if is_file and self._file_seconds(audios[i]) > self.max_seconds:
                        # a long file is read a block at a time: memory is bounded by the window
                        results[i] = self._predict_windows_file(str(audios[i]), texts[i], names[i])
                        bar.update(1)
                        continue
                    wav = self.load_audio(audios[i], sample_rate)
                    if wav.shape[0] > self.max_seconds * self.sample_rate:
                        results[i] = self._predict_windows(wav, texts[i], names[i], check_energy=is_file)
                        bar.update(1)
                    elif is_file and self._no_energy(wav):  # not labelled: the model would label silence confidently
                        results[i] = {**self._silent_result(wav),
                                      "duration": round(wav.shape[0] / self.sample_rate, 3)}
                        bar.update(1)
                    else:  # items are built here so a clip openSMILE cannot analyse fails alone
                        short.append((i, wav, self._item(names[i], wav, texts[i])))
                except (ZooUserError, ValueError, RuntimeError, OSError) as e:
                    failed(i, e)
            short.sort(key=lambda t: t[1].shape[0])
            for s in range(0, len(short), self.batch_size):
                chunk = short[s : s + self.batch_size]
                for (i, wav, _), p in zip(chunk, self._forward([it for _, _, it in chunk])):
                    results[i] = {**self._result(p), "duration": round(wav.shape[0] / self.sample_rate, 3)}
                bar.update(len(chunk))
        bar.close()
        return results  # type: ignore[return-value]

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
            from ..data.audio import audio_details

            try:
                sr = audio_details(str(audio), check_samples=False).samplerate  # the header rule of training and windows
            except Exception as e:
                raise ZooUserError(f"cannot read audio {audio}: {e}") from e
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
        from ..data.audio import MIN_SECONDS

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
            if n < MIN_SECONDS * self.sample_rate:
                raise ZooUserError(f"{name}: too short to label: {n / self.sample_rate:.4f} s (clips under "
                                   f"{MIN_SECONDS} s are refused, as in training: min_seconds)")
            if start == 0:  # shorter than a window: one window of the whole clip
                yield 0, n, buf[-n:]
            elif start - step + win < n:  # the last window ends at the end, as window_spans says
                yield n - win, n, buf[-win:]

        labelled = self._label_windows(spans(), text, name, True)
        n = seen["n"]
        level = 10 * np.log10(seen["energy"] / n) if n and seen["energy"] > 0 else float("-inf")
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


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, show: bool):
    if not show or total < 2:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="file", desc="infer", dynamic_ncols=True)


def load(name_or_path: str | os.PathLike, *, registry: str | os.PathLike | None = None,
         trust: bool = False, device: str | None = None, **predictor_args) -> Predictor:
    """A pretrained zoo model by registry name (``zoo.list_checkpoints()``) or checkpoint path.

    Registry files are verified against their sha256 before loading; every checkpoint is
    unpickled with ``weights_only`` (no code runs on load) unless ``trust=True``.
    """
    from ..models.loading import load_module
    from .registry import resolve

    path, entry = resolve(name_or_path, registry)
    module = load_module(str(path), trust=trust)
    return Predictor(module, entry, source=str(path), device=device, **predictor_args)


def expand_inputs(patterns: Iterable[str], exts: Sequence[str] = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")) -> list[Path]:
    """Files from paths, folders (searched recursively for audio) and glob patterns, in order,
    without duplicates; a pattern that matches nothing is an error that names it."""
    import glob

    out: list[Path] = []
    for pat in patterns:
        p = Path(pat).expanduser()
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in exts)
            if not found:
                raise ZooUserError(f"no audio files ({', '.join(exts)}) under {p}")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        elif any(ch in pat for ch in "*?["):
            found = sorted(Path(q) for q in glob.glob(os.path.expanduser(pat), recursive=True) if Path(q).is_file())
            if not found:
                raise ZooUserError(f"the pattern {pat!r} matches no files")
            out.extend(found)
        else:
            raise ZooUserError(f"no such file or folder: {pat}")
    seen: set[Path] = set()
    return [p for p in out if not (p.resolve() in seen or seen.add(p.resolve()))]


__all__ = ["Predictor", "load", "expand_inputs", "window_spans", "to_mono"]
