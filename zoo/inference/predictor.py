"""``zoo.load(name_or_path).predict(...)``: a trained zoo model applied to audio files or arrays.

The Predictor builds its items with the DataModule's item builder (``zoo.data.batch.make_item``:
mono waveform at the model's rate, eGeMAPS functionals, token ids from the checkpoint's own
tokenizer) and collates them with the same ``collate``, so a prediction here equals the one ``python -m zoo predict`` makes, and a
batched prediction equals single ones (the models mask padding; tests check both).

Long audio is cut into windows (``window`` seconds every ``hop`` seconds) or VAD segments and run
a batch at a time, the file read a block at a time (:mod:`zoo.inference.long_audio`, which the
Predictor inherits); the result then carries a timestamped track and the duration-weighted mean.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from ..errors import ZooUserError
from .long_audio import LongAudio, window_spans  # noqa: F401  (window_spans: its old home)
from .signal import NO_SPEECH_ENERGY, SILENCE_DB, AudioInput, refuse_short, rms_db, to_mono  # noqa: F401

log = logging.getLogger("zoo")


class Predictor(LongAudio):
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

        if isinstance(audio, (str, os.PathLike)):
            self._file_header(audio)
            try:
                wav, sr = read_audio(str(audio))
            except Exception as e:
                raise ZooUserError(f"cannot read audio {audio}: {e}") from e
        else:
            wav, sr = to_mono(audio), sample_rate or self.sample_rate
        where = audio if isinstance(audio, (str, os.PathLike)) else "array"
        if wav.size == 0:
            raise ZooUserError(f"zero-length audio: {where}")
        refuse_short(where, wav.shape[0], sr)
        return resample(wav, sr, self.sample_rate).astype(np.float32, copy=False)

    @staticmethod
    def _file_header(path: AudioInput):
        """A file's header (frames, samplerate), which must pass the checks training and `zoo check`
        apply: one rule for a file cut short of what its header declares, an empty one, one that
        is not audio."""
        from ..data.audio import audio_details

        try:
            return audio_details(str(path), check_samples=False)
        except Exception as e:
            raise ZooUserError(f"cannot read audio {path}: {e}") from e

    def _file_seconds(self, path: AudioInput) -> float:
        """A file's duration from its header (:meth:`_file_header`)."""
        info = self._file_header(path)
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
