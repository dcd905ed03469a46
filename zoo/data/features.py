"""Hand-crafted utterance features: openSMILE functionals (eGeMAPS v02, ComParE 2016), cached on disk.

eGeMAPS (Eyben et al., 2016, "The Geneva Minimalistic Acoustic Parameter Set") is the classic
SER baseline: 88 statistics per utterance of pitch, loudness, jitter/shimmer, HNR, formants,
spectral slope/balance and rhythm. Computing them takes ~26 ms per clip, so each clip's vector
is cached (one ``.npy`` of 88 float32 under ``<cache_dir>/egemaps/``), keyed like the audio
cache: path, size, mtime, plus the analysis rate and the feature-set/openSMILE version.

ComParE 2016 (Schuller et al., the INTERSPEECH Computational Paralinguistics Challenge set) is
the large brute-force set: 6,373 statistics of 65 low-level descriptors (~60 ms per clip). On
EmoDB with per-speaker standardisation a linear classifier on it beats eGeMAPS (docs/results.md).

Needs the optional extra: ``pip install 'zoo[egemaps]'`` (the ``opensmile`` package).
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .audio import _zip_member, read_audio, resample

#: openSMILE's eGeMAPS v02 functionals: 88 values per utterance
FEATURE_SET = "eGeMAPSv02"
NUM_FEATURES = 88
#: the functionals sets a model can ask for, by the modality name it declares in ``inputs``:
#: modality -> (openSMILE feature set, values per utterance)
FEATURE_SETS: dict[str, tuple[str, int]] = {"egemaps": ("eGeMAPSv02", 88),
                                            "compare": ("ComParE_2016", 6373)}
#: modalities computed from the audio file by openSMILE (no waveform reaches the model)
FEATURE_MODALITIES = frozenset(FEATURE_SETS)
#: bump when the way features are computed here changes (invalidates the cache)
FEATURES_VERSION = 1
#: rate the signal is analysed at (see EGeMAPS)
ANALYSIS_RATE = 16000

INSTALL_HINT = ("eGeMAPS features need the openSMILE Python package: pip install 'zoo[egemaps]' "
                "(or pip install opensmile)")


def _require_opensmile():
    try:
        import opensmile
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return opensmile


def _opensmile_version() -> str:
    try:
        from importlib.metadata import version

        return version("opensmile")
    except Exception:  # pragma: no cover - not installed as a distribution
        return "unknown"


def _new_smile(feature_set: str = FEATURE_SET):
    opensmile = _require_opensmile()
    return opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, feature_set),
                           feature_level=opensmile.FeatureLevel.Functionals)


def feature_names(feature_set: str = FEATURE_SET) -> list[str]:
    """The functional names of a set (88 for eGeMAPS v02), in the order of the vectors returned."""
    return list(_new_smile(feature_set).feature_names)


def set_dim(feature_set: str) -> int:
    """Values per utterance of an openSMILE functionals set named in FEATURE_SETS."""
    for name, dim in FEATURE_SETS.values():
        if name == feature_set:
            return dim
    raise ValueError(f"unknown feature set {feature_set!r}; known: "
                     f"{', '.join(n for n, _ in FEATURE_SETS.values())}")


def functionals_for(modality: str, cache_dir: str | Path | None = None) -> "Functionals":
    """The feature extractor for a modality a model declares (``egemaps``, ``compare``)."""
    return Functionals(cache_dir, FEATURE_SETS[modality][0])


class Functionals:
    """``Functionals(cache_dir, feature_set)(path) -> torch.float32 tensor (dim,)``: openSMILE
    functionals of one clip (``EGeMAPS``: the 88 eGeMAPS v02 values).

    ``path`` is an audio file or ``"archive.zip::member.wav"``; it is decoded with the zoo's
    ``read_audio`` (mono mixdown) and resampled to ``sample_rate`` (16 kHz) before openSMILE
    runs. A fixed analysis rate keeps the features comparable across corpora and files of mixed
    rates: eGeMAPS' spectral parameters (alpha ratio, Hammarberg index, spectral slopes, formants)
    only look below 5 kHz, which 16 kHz covers, while openSMILE's FFT frames and bands shift with
    the input rate, so the same voice at 16 and 44.1 kHz would otherwise give different vectors.
    It also makes 44.1/48 kHz files ~3x cheaper to analyse.

    The functionals always cover the whole clip (the DataModule's ``max_seconds`` crop applies to
    waveforms only). Clips shorter than ~60 ms have no eGeMAPS frames and raise ``ValueError``
    (the dataset logs and skips them).

    Picklable: the openSMILE object is created lazily, once per process (DataLoader workers
    build their own).

    Args:
        cache_dir: Folder of the feature cache (``<cache_dir>/egemaps/`` for eGeMAPS,
            ``<cache_dir>/compare_2016/`` for ComParE); None: no disk cache (vectors are still
            memoised in memory for the life of this object).
        feature_set: openSMILE functionals set (``eGeMAPSv02`` or ``ComParE_2016``).
        sample_rate: Analysis rate (Hz).
    """

    def __init__(self, cache_dir: str | Path | None = None, feature_set: str = FEATURE_SET,
                 sample_rate: int = ANALYSIS_RATE):
        self.dim = set_dim(feature_set)
        _require_opensmile()  # fail here with the install hint, not once per clip in a worker
        self.feature_set = feature_set
        sub = "egemaps" if feature_set == FEATURE_SET else feature_set.lower()  # eGeMAPS: old caches stay valid
        self.cache_dir = Path(cache_dir) / sub if cache_dir else None
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.sample_rate = sample_rate
        self.version = f"{feature_set}|v{FEATURES_VERSION}|opensmile-{_opensmile_version()}"
        self._smile = None
        self._pid = None
        self._memo: dict[str, np.ndarray] = {}
        self.computed = 0  # clips analysed by this object (in this process), not read from a cache

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_smile"] = None  # each process builds its own openSMILE instance
        state["_pid"] = None
        state["_memo"] = {}
        return state

    def smile(self):
        if self._smile is None or self._pid != os.getpid():
            self._smile = _new_smile(self.feature_set)
            self._pid = os.getpid()
        return self._smile

    def key(self, path: str) -> str:
        zm = _zip_member(path)
        st = os.stat(zm[0] if zm else path)
        raw = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{self.sample_rate}|{self.version}"
        return hashlib.sha1(raw.encode()).hexdigest()

    def compute(self, path: str) -> np.ndarray:
        """The functionals of one clip, without any cache."""
        wav, sr = read_audio(path)
        return self.compute_signal(wav, sr)

    def compute_signal(self, wav: np.ndarray, sr: int) -> np.ndarray:
        """The functionals of a mono float32 signal at rate ``sr`` (inference on arrays)."""
        wav = resample(np.asarray(wav, dtype=np.float32), sr, self.sample_rate)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Segment too short")
            values = self.smile().process_signal(np.ascontiguousarray(wav, dtype=np.float32),
                                                 self.sample_rate).to_numpy(dtype=np.float32)[0]
        self.computed += 1
        finite = np.isfinite(values)
        if not finite.any():
            raise ValueError(f"too short for {self.feature_set} ({wav.shape[0] / self.sample_rate * 1000:.0f} ms): "
                             "openSMILE found no analysis frames")
        if not finite.all():  # a functional undefined for this clip: neutral value, not NaN
            values = np.where(finite, values, 0.0).astype(np.float32)
        return values

    def __call__(self, path: str) -> torch.Tensor:
        key = self.key(path)
        values = self._memo.get(key)
        if values is None and self.cache_dir is not None:
            cached = self.cache_dir / (key + ".npy")
            if cached.exists():
                try:
                    values = np.load(cached)
                    if values.shape != (self.dim,):
                        values = None
                except (OSError, ValueError):
                    values = None  # a torn write from a killed run: compute again
            if values is None:
                values = self.compute(path)
                tmp = cached.with_suffix(f".{os.getpid()}.tmp")
                with open(tmp, "wb") as f:
                    np.save(f, values)
                os.replace(tmp, cached)  # atomic: concurrent workers never read half a file
        elif values is None:
            values = self.compute(path)
        self._memo[key] = values
        return torch.from_numpy(values.copy())


class EGeMAPS(Functionals):
    """``EGeMAPS(cache_dir)(path) -> torch.float32 tensor (88,)``: eGeMAPS v02 functionals."""

    def __init__(self, cache_dir: str | Path | None = None, sample_rate: int = ANALYSIS_RATE):
        super().__init__(cache_dir, FEATURE_SET, sample_rate)
