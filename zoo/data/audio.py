"""Audio I/O: soundfile decoding, mono mixdown, resampling, and a disk cache of resampled clips.

Audio paths are plain file paths, or ``"/path/archive.zip::member.wav"`` for a file read
straight from a zip (the AI Hub releases ship as zips).
"""
from __future__ import annotations

import hashlib
import io
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

from ..paths import cache_dir

ZIP_SEP = "::"

#: clips shorter than this (seconds) are refused: the DataModule's default ``min_seconds`` (under
#: one 25 ms analysis window), and ``infer``'s floor, so training and inference agree
MIN_SECONDS = 0.02

# Zip handles are kept open per process: keyed by pid, because a forked DataLoader worker
# must not share the parent's file offset.
_zip_handles: dict[tuple[int, str], zipfile.ZipFile] = {}
_zip_lock = threading.Lock()
_warned_cache = [False]  # the audio cache's full-disk warning was given (once per process)


def _zip_member(path: str) -> tuple[str, str] | None:
    if ZIP_SEP in path:
        archive, member = path.split(ZIP_SEP, 1)
        return archive, member
    return None


def _open(path: str):
    """A path or a file object soundfile can read."""
    zm = _zip_member(path)
    if zm is None:
        return path
    archive, member = zm
    key = (os.getpid(), archive)
    with _zip_lock:
        zf = _zip_handles.get(key)
        if zf is None:
            zf = _zip_handles[key] = zipfile.ZipFile(archive)
        data = zf.read(member)
    return io.BytesIO(data)


def audio_exists(path: str) -> bool:
    zm = _zip_member(path)
    if zm is None:
        return os.path.isfile(path)
    return os.path.isfile(zm[0])


#: soundfile subtypes that can hold NaN or inf samples (integer PCM cannot)
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")


def _wav_data_bytes(f) -> tuple[int, int] | None:
    """(bytes the WAV header declares for its data chunk, bytes the file holds), or None when the
    file is not RIFF/WAVE or declares no size (a stream written without a final header update)."""
    import struct

    if isinstance(f, str):
        size = os.path.getsize(f)
        with open(f, "rb") as fh:
            head = fh.read(1 << 16)
    else:
        head = f.getvalue()[: 1 << 16]
        size = len(f.getvalue())
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(head):
        cid, n = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        if cid == b"data":
            if n in (0, 0xFFFFFFFF):
                return None
            return n, size - (pos + 8)
        pos += 8 + n + (n & 1)
    return None


def _open_error(path: str, e: Exception) -> ValueError:
    """soundfile's "Error opening '<path>': ..." as a reason that says what the file is."""
    real = _zip_member(path)[0] if _zip_member(path) else path
    if _zip_member(path) is None and os.path.isfile(real) and os.path.getsize(real) == 0:
        return ValueError("empty file (0 bytes)")
    msg = str(e).split(": ", 1)[-1].strip() or type(e).__name__
    return ValueError(f"not a readable audio file ({msg})")


def audio_details(path: str, check_samples: bool = True) -> sf._SoundFileInfo:
    """soundfile's info for a file that can be trained on; raises ``ValueError`` saying why not.

    Found from the header alone: not an audio file, an empty file, no samples, a WAV truncated
    below the length its header declares. Float files (the only ones that can hold NaN or inf)
    are also decoded when ``check_samples``, and refused if any sample is not finite.
    """
    f = _open(path)
    try:
        info = sf.info(f)
    except Exception as e:  # soundfile raises RuntimeError/LibsndfileError for unknown formats
        raise _open_error(path, e) from None
    if info.frames <= 0:
        raise ValueError("zero-length audio (no samples)")
    if info.format == "WAV":
        sizes = _wav_data_bytes(f)
        if sizes is not None and sizes[1] < sizes[0]:
            frame = info.channels * _bytes_per_sample(info.subtype)
            raise ValueError(f"truncated: the header declares {sizes[0] / frame / info.samplerate:.3f} s "
                             f"of audio, the file holds {info.frames / info.samplerate:.3f} s")
    if check_samples and info.subtype in FLOAT_SUBTYPES:
        if not isinstance(f, str):
            f.seek(0)
        data, _ = sf.read(f, dtype="float32", always_2d=True)
        _check_finite(data)
    return info


def _bytes_per_sample(subtype: str) -> int:
    return {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4,
            "DOUBLE": 8}.get(subtype, 2)


def _check_finite(data: np.ndarray, offset: int = 0) -> None:
    """``offset``: the frame of the file ``data`` begins at (a block), so the error names the file's frame."""
    bad = ~np.isfinite(data)
    if bad.any():
        first = offset + int(np.argmax(bad.any(axis=1) if data.ndim == 2 else bad))
        raise ValueError(f"{int(bad.sum())} non-finite sample(s) (NaN or inf), the first at "
                         f"frame {first}")


def audio_info(path: str) -> tuple[int, int, float]:
    """(sample rate, channels, duration in seconds); raises ``ValueError`` saying why a file
    cannot be used (see :func:`audio_details`)."""
    info = audio_details(path)
    return info.samplerate, info.channels, info.frames / info.samplerate


def read_audio(path: str) -> tuple[np.ndarray, int]:
    """Decode to float32 mono (channels averaged) at the file's own rate.

    A file with NaN or inf samples raises ``ValueError``: cast to int16 (the cache) or fed to a
    model they would train and predict garbage without an error.
    """
    try:
        data, sr = sf.read(_open(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as e:
        raise _open_error(path, e) from None
    if data.shape[0] == 0:
        raise ValueError("zero-length audio (no samples)")
    _check_finite(data)
    if data.shape[1] == 1:  # mono: a view, no mixdown pass over the samples
        return data[:, 0], sr
    return data.mean(axis=1), sr


def audio_blocks(path: str, sample_rate: int | None = None, block_seconds: float = 20.0):
    """Mono float32 at ``sample_rate`` (None: the file's own rate), ``block_seconds`` of the file
    at a time (soundfile's block reading, soxr's streaming resampler: the same samples
    :func:`read_audio` + :func:`resample` give), so a two-hour file never sits in memory whole. A
    block with NaN or inf samples raises ``ValueError``. (A zip member is still read whole from
    its archive: zipfile hands it over as one buffer.)"""
    f = _open(path)
    try:
        info = sf.info(f)
    except Exception as e:
        raise _open_error(path, e) from None
    if not isinstance(f, str):
        f.seek(0)
    stream = None
    if sample_rate is not None and info.samplerate != sample_rate:
        import soxr

        stream = soxr.ResampleStream(info.samplerate, sample_rate, 1, dtype="float32")
    blocksize = max(1, int(block_seconds * info.samplerate))
    done = 0
    for block in sf.blocks(f, blocksize=blocksize, dtype="float32", always_2d=True):
        _check_finite(block, done)
        done += block.shape[0]
        mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1)
        yield stream.resample_chunk(np.ascontiguousarray(mono)) if stream is not None else mono
    if stream is not None:
        yield stream.resample_chunk(np.zeros(0, np.float32), last=True)


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono float32 signal with soxr (its default HQ quality).

    Measured by ``python -m benchmarks.run --suite rates`` (3 s clips, one core): soxr is 1.5-5x faster
    than torchaudio's windowed sinc at every rate the corpora use (8 kHz: 7,400 against 1,700
    files/s; 48 kHz: 2,300 against 1,000), and torchaudio's cost grows with the reduced ratio
    (24,414 Hz -> 16 kHz: seconds per clip), so every rate goes through soxr.
    """
    if orig_sr == target_sr:
        return wav
    import soxr

    return soxr.resample(np.ascontiguousarray(wav, dtype=np.float32), orig_sr, target_sr).astype(np.float32, copy=False)


#: part of the resample-cache key: a change of resampler re-decodes instead of reusing old clips
RESAMPLER = "soxr-hq"


def default_cache_dir() -> Path:
    """The zoo's cache folder (:func:`zoo.paths.cache_dir`)."""
    return cache_dir()


class AudioLoader:
    """Load a clip as mono float32 at ``sample_rate``, caching resampled clips on disk.

    The cache key is the file's path, size, mtime and the target rate, so an edited file is
    re-read. Clips are cached as int16 .npy (half the size of float32; the sources are 16-bit).
    """

    def __init__(self, sample_rate: int = 16000, cache_dir: str | Path | None = None):
        self.sample_rate = sample_rate
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._writes = True  # turned off by the first failed write (a full disk): reads go on
        if self.cache_dir is not None:
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:  # read-only or full: train without the cache
                self._cache_write_failed(self.cache_dir, e)

    def _key(self, path: str) -> str:
        real = _zip_member(path)[0] if _zip_member(path) else path
        st = os.stat(real)
        raw = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{self.sample_rate}|{RESAMPLER}"
        return hashlib.sha1(raw.encode()).hexdigest()

    def __call__(self, path: str) -> np.ndarray:
        cached = None
        if self.cache_dir is not None:
            cached = self.cache_dir / (self._key(path) + ".npy")
            if cached.exists():
                try:
                    return np.multiply(np.load(cached), np.float32(1 / 32767.0), dtype=np.float32)
                except (OSError, ValueError):
                    pass  # a torn write from a killed run: decode again
        wav, sr = read_audio(path)
        wav = resample(wav, sr, self.sample_rate)
        if cached is not None:
            q = np.clip(np.round(wav * 32767.0), -32768, 32767).astype(np.int16)
            if self._writes:
                tmp = cached.with_suffix(f".{os.getpid()}.tmp")
                try:
                    with open(tmp, "wb") as f:
                        np.save(f, q)
                    os.replace(tmp, cached)  # atomic: concurrent workers never read half a file
                except OSError as e:  # a full disk must not end a run: this clip is still used
                    tmp.unlink(missing_ok=True)  # never a torn entry
                    self._cache_write_failed(cached.parent, e)
            # the value the cache holds (int16), cached or not: a run gives the same result either way
            return np.multiply(q, np.float32(1 / 32767.0), dtype=np.float32)
        return wav.astype(np.float32, copy=False)

    def _cache_write_failed(self, folder: Path, e: OSError) -> None:
        self._writes = False
        if not _warned_cache[0]:  # once per process, not once per clip
            _warned_cache[0] = True
            import logging
            import shutil

            try:
                free = f"{shutil.disk_usage(folder if folder.exists() else folder.parent).free / 2 ** 20:.1f} MB free"
            except OSError:
                free = "free space unknown"
            logging.getLogger("zoo").warning(
                "audio cache: cannot write to %s (%s; %s): resampled clips are not cached from now on "
                "(training goes on; set cache_dir to a folder with space, or null)", folder, e.strerror or e, free)


def file_digest(path: str) -> str:
    """sha1 of the encoded bytes (for byte-identical audio across splits)."""
    h = hashlib.sha1()
    f = _open(path)
    if isinstance(f, str):
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    else:
        h.update(f.getvalue())
    return h.hexdigest()
