"""The resample cache: exact re-reads, invalidation when the source changes, concurrent writers."""
from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from zoo.data.audio import AudioLoader, read_audio, resample


def _write(path: Path, seed: int, sr: int = 48_000, seconds: float = 0.5) -> np.ndarray:
    x = (np.random.default_rng(seed).standard_normal(int(sr * seconds)) * 0.1).astype(np.float32)
    sf.write(path, x, sr, subtype="PCM_16")
    return x


def _load(args):
    cache, path = args
    return AudioLoader(16000, cache)(path)


def test_cache_returns_the_decoded_clip_and_a_changed_file_is_read_again(tmp_path):
    wav = tmp_path / "a.wav"
    _write(wav, 0)
    load = AudioLoader(16000, tmp_path / "cache")
    fresh = resample(*read_audio(str(wav)), 16000)
    first, again = load(str(wav)), load(str(wav))
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    np.testing.assert_allclose(first, fresh, atol=1 / 32767)  # int16 in the cache
    np.testing.assert_array_equal(first, again)
    # the file is rewritten with other samples (new size/mtime): the cache must not serve the old one
    time.sleep(0.01)
    _write(wav, 1, seconds=0.6)
    changed = load(str(wav))
    assert changed.shape != first.shape
    np.testing.assert_allclose(changed, resample(*read_audio(str(wav)), 16000), atol=1 / 32767)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2


def test_a_torn_cache_entry_is_decoded_again(tmp_path):
    wav = tmp_path / "a.wav"
    _write(wav, 0)
    load = AudioLoader(16000, tmp_path / "cache")
    good = load(str(wav))
    entry = next((tmp_path / "cache").glob("*.npy"))
    entry.write_bytes(entry.read_bytes()[:40])  # a half-written file from a killed run
    np.testing.assert_array_equal(load(str(wav)), good)


def test_several_processes_writing_one_entry_leave_one_whole_file(tmp_path):
    """Workers of several runs decode the same clip at once: every reader gets the whole clip
    and the cache holds one complete entry (written to a temp name, then renamed)."""
    wav = tmp_path / "a.wav"
    _write(wav, 2, seconds=2.0)
    cache = tmp_path / "cache"
    with mp.get_context("spawn").Pool(4) as pool:
        outs = pool.map(_load, [(str(cache), str(wav))] * 16)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    assert [p.suffix for p in cache.iterdir()] == [".npy"]  # no temp files left behind
    np.testing.assert_array_equal(np.load(next(cache.iterdir())).shape, outs[0].shape)


def test_loader_options_pin_memory_only_on_cuda_and_keep_workers(tmp_path):
    from fixtures.aihub import write_aihub_fixture
    from zoo.data import EmotionDataModule
    from zoo.data.corpora import AIHub

    write_aihub_fixture(tmp_path)
    dm = EmotionDataModule(corpus=AIHub(root=str(tmp_path)), cache_dir=None, num_workers=2,
                           prefetch_factor=4)
    opts = dm._loader_options()
    assert opts["pin_memory"] is False  # no trainer on CUDA
    assert opts["persistent_workers"] is True and opts["prefetch_factor"] == 4
    assert EmotionDataModule(corpus=AIHub(root=str(tmp_path)), pin_memory=True)._loader_options()["pin_memory"]
