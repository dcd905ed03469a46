"""What the Predictor and its long-audio half share: the audio a caller may hand over, mono
conversion, and the level below which a clip or window holds no speech energy."""
from __future__ import annotations

import os

import numpy as np
import torch

from ..errors import ZooUserError

AudioInput = str | os.PathLike | np.ndarray | torch.Tensor

#: below this RMS level (dBFS) a clip or window holds no speech energy: digital silence, a muted
#: microphone (16-bit dither is about -100 dBFS, room tone -60 to -45, quiet speech above -50)
SILENCE_DB = -60.0
NO_SPEECH_ENERGY = "no speech energy"


def power_db(mean_square: float) -> float:
    """A mean square (of samples in [-1, 1]) in dBFS (-inf for digital silence)."""
    return 10.0 * np.log10(mean_square) if mean_square > 0 else float("-inf")


def rms_db(wav: np.ndarray) -> float:
    """The RMS level of a signal in dBFS (-inf for digital silence)."""
    if wav.size == 0:
        return float("-inf")
    return power_db(float(np.mean(np.square(wav, dtype=np.float64))))


def refuse_short(where, n: int, sample_rate: int) -> None:
    """The rule training applies (``min_seconds``): a click or a stub says nothing a model could
    label, so a clip of ``n`` samples under MIN_SECONDS is refused, naming ``where``."""
    from ..data.audio import MIN_SECONDS

    if n < MIN_SECONDS * sample_rate:
        raise ZooUserError(f"{where}: too short to label: {n} sample(s) ({n / sample_rate:.4f} s; "
                           f"clips under {MIN_SECONDS} s are refused, as in training: min_seconds)")


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
