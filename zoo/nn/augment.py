"""Training-time augmentation of a padded waveform batch, and mixup: plain nn.Modules.

Waveform augmentation runs inside the model, on the batch, on the model's device, and only in
training mode (``model.eval()`` turns it off; validation, test and predict never see it). The
DataModule stays model-agnostic and the random draws come from torch's global generators, which
``seed_everything`` seeds: a run is reproducible whatever ``num_workers`` is.

The signal processing is torchaudio's (``transforms.Speed``, which also returns the new lengths;
``functional.add_noise``, which measures the SNR over the valid samples only;
``functional.fftconvolve``), pink noise is SpeechBrain's ``pink_noise_like``. What is written
here is only the per-clip bookkeeping (a different draw for each clip of the batch, the lengths,
zeroed padding) and the synthetic room impulse response.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from .pooling import length_mask

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


@dataclass
class WaveAugmentation:
    """Waveform augmentation options (each off by default).

    Args:
        speeds: Speed-perturbation factors, one drawn per clip (``[0.9, 1.0, 1.1]``: the Kaldi /
            SpeechBrain recipe). Changes duration *and* pitch (resampling); lengths follow.
        noise_prob: Share of clips that get additive noise.
        snr_db: Range of the signal-to-noise ratio in dB, drawn uniformly per clip.
        noise: Generated noise colour, ``white`` or ``pink`` (1/f), when ``noise_dir`` is unset.
        noise_dir: A folder of noise recordings (e.g. MUSAN ``noise/``; searched recursively for
            .wav/.flac/.ogg/.mp3): each noisy clip gets a random excerpt of a random file.
        gain_prob: Share of clips whose level is changed.
        gain_db: Range of the gain in dB, drawn uniformly per clip. A model that normalises each
            utterance (``normalize: utterance``) cannot see a gain: use it with ``global``.
        reverb_prob: Share of clips convolved with a room impulse response.
        rt60: Range of the reverberation time in seconds of the synthetic impulse responses
            (exponentially decaying noise after a direct path), drawn uniformly per clip.
        rir_dir: A folder of measured impulse responses to use instead of synthetic ones.
    """

    speeds: list[float] = field(default_factory=lambda: [1.0])
    noise_prob: float = 0.0
    snr_db: tuple[float, float] = (5.0, 20.0)
    noise: Literal["white", "pink"] = "white"
    noise_dir: str | None = None
    gain_prob: float = 0.0
    gain_db: tuple[float, float] = (-6.0, 6.0)
    reverb_prob: float = 0.0
    rt60: tuple[float, float] = (0.2, 0.7)
    rir_dir: str | None = None

    def __post_init__(self):
        from ..errors import ZooUserError

        if not self.speeds or any(not 0.5 <= s <= 2.0 for s in self.speeds):
            raise ZooUserError(f"wave_augment.speeds must be factors in [0.5, 2], got {self.speeds}")
        for name in ("noise_prob", "gain_prob", "reverb_prob"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ZooUserError(f"wave_augment.{name} must be in [0, 1], got {p}")
        for name in ("snr_db", "gain_db", "rt60"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ZooUserError(f"wave_augment.{name} is a range [low, high], got {[lo, hi]}")
            setattr(self, name, (float(lo), float(hi)))
        if self.rt60[0] <= 0:
            raise ZooUserError(f"wave_augment.rt60 must be > 0 s, got {list(self.rt60)}")
        if self.noise not in ("white", "pink"):
            raise ZooUserError(f"wave_augment.noise must be white or pink, got {self.noise!r}")

    @property
    def active(self) -> bool:
        return (any(s != 1.0 for s in self.speeds) or self.noise_prob > 0 or self.gain_prob > 0
                or self.reverb_prob > 0)

    def as_dict(self) -> dict:
        """Plain types only (what a checkpoint can record and ``weights_only`` can load)."""
        return {"speeds": [float(s) for s in self.speeds], "noise_prob": self.noise_prob,
                "snr_db": list(self.snr_db), "noise": self.noise, "noise_dir": self.noise_dir,
                "gain_prob": self.gain_prob, "gain_db": list(self.gain_db),
                "reverb_prob": self.reverb_prob, "rt60": list(self.rt60), "rir_dir": self.rir_dir}

    @classmethod
    def of(cls, value: "WaveAugmentation | dict | None") -> "WaveAugmentation | None":
        """The options from a dataclass, a dict (a checkpoint's record, a spec) or None."""
        if value is None or isinstance(value, cls):
            return value
        if isinstance(value, dict):
            from ..errors import ZooUserError

            unknown = set(value) - set(cls.__dataclass_fields__)
            if unknown:
                raise ZooUserError(f"unknown wave_augment option(s) {sorted(unknown)}; "
                                   f"known: {sorted(cls.__dataclass_fields__)}")
            return cls(**value)
        raise TypeError(f"wave_augment must be WaveAugmentation, a dict or None, got {type(value).__name__}")


def _audio_files(folder: str, option: str) -> list[str]:
    from ..errors import ZooUserError

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ZooUserError(f"wave_augment.{option}: {folder} is not a folder")
    files = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise ZooUserError(f"wave_augment.{option}: no audio files ({', '.join(AUDIO_SUFFIXES)}) under {folder}")
    return files


class WaveAugment(nn.Module):
    """Augment a padded batch ``(B, T)`` with true ``lengths``; returns ``(waveforms, lengths)``.

    Order: speed, reverberation, noise, gain (noise after the room, as a microphone hears it).
    Each clip gets its own draws; the padding stays zero. Identity in eval mode. No parameters
    and no buffers, so a checkpoint loads into a model with or without augmentation.
    """

    def __init__(self, options: WaveAugmentation, sample_rate: int = 16000):
        super().__init__()
        self.options = options
        self.sample_rate = sample_rate
        self._speed: dict = {}  # (factor, device) -> torchaudio Speed; kept out of the state dict
        self._files: dict[str, list[str]] = {}
        self._loader = None

    def check(self) -> None:
        """Find the noise / impulse-response files now (before training starts)."""
        for option in ("noise_dir", "rir_dir"):
            folder = getattr(self.options, option)
            if folder and option not in self._files:
                self._files[option] = _audio_files(folder, option)

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        o = self.options
        if not self.training or not o.active or wav.shape[0] == 0:
            return wav, lengths
        with torch.autocast(wav.device.type, enabled=False):  # signal processing stays float32
            return self._augment(wav.float(), lengths)

    def _augment(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        o = self.options
        if any(s != 1.0 for s in o.speeds):
            wav, lengths = self.speed(wav, lengths)
        if o.reverb_prob > 0:
            wav = self.reverb(wav, lengths, self._draw(wav.shape[0], o.reverb_prob))
        if o.noise_prob > 0:
            wav = self.add_noise(wav, lengths, self._draw(wav.shape[0], o.noise_prob))
        if o.gain_prob > 0:
            wav = self.gain(wav, self._draw(wav.shape[0], o.gain_prob))
        return wav, lengths

    # -- the parts, usable alone -------------------------------------------------------------------
    @staticmethod
    def _draw(n: int, p: float) -> torch.Tensor:
        return torch.rand(n) < p

    @staticmethod
    def _uniform(n: int, lo_hi: tuple[float, float]) -> torch.Tensor:
        lo, hi = lo_hi
        return lo + (hi - lo) * torch.rand(n)

    def _speed_module(self, factor: float, device: torch.device):
        import torchaudio

        key = (factor, str(device))
        if key not in self._speed:
            self._speed[key] = torchaudio.transforms.Speed(self.sample_rate, factor).to(device)
        return self._speed[key]

    def speed(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One factor of ``speeds`` per clip (torchaudio ``Speed``); new lengths and padding."""
        speeds = self.options.speeds
        choice = torch.randint(len(speeds), (wav.shape[0],))
        parts = []
        for k, f in enumerate(speeds):
            idx = (choice == k).nonzero().flatten()
            if len(idx) == 0:
                continue
            idx_dev = idx.to(wav.device)
            if f == 1.0:
                parts.append((idx_dev, wav[idx_dev], lengths[idx_dev]))
            else:
                out, n = self._speed_module(f, wav.device)(wav[idx_dev], lengths[idx_dev])
                parts.append((idx_dev, out, n))
        new_len = torch.empty_like(lengths)
        for idx, _, n in parts:
            new_len[idx] = n
        out = wav.new_zeros(wav.shape[0], int(new_len.max()))
        for idx, w, _ in parts:
            t = min(w.shape[1], out.shape[1])
            out[idx, :t] = w[:, :t]
        # the resampling filter rings past a clip's end: its padding is zeroed again
        return out * length_mask(new_len, out.shape[1]).to(out.dtype), new_len

    def _noise_like(self, wav: torch.Tensor, lengths: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        sub = wav[rows]
        if self.options.noise_dir:
            return torch.stack([self._excerpt("noise_dir", sub.shape[1], wav.device) for _ in range(len(sub))])
        if self.options.noise == "pink":
            from speechbrain.augment.time_domain import pink_noise_like

            return pink_noise_like(sub)
        return torch.randn_like(sub)

    def add_noise(self, wav: torch.Tensor, lengths: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        """Noise at an SNR drawn from ``snr_db`` (torchaudio ``add_noise``, over valid samples)."""
        import torchaudio

        rows = which.nonzero().flatten().to(wav.device)
        if len(rows) == 0:
            return wav
        n = lengths[rows]
        mask = length_mask(n, wav.shape[1]).to(wav.dtype)
        noise = self._noise_like(wav, lengths, rows) * mask
        clean = wav[rows]
        silent = (clean.abs().sum(1) == 0) | (noise.abs().sum(1) == 0)  # no level to relate the noise to
        snr = self._uniform(len(rows), self.options.snr_db).to(wav.device, wav.dtype)
        noisy = torchaudio.functional.add_noise(clean, noise, snr, n)
        noisy = torch.where(silent[:, None], clean, noisy)
        out = wav.clone()
        out[rows] = noisy * mask
        return out

    def gain(self, wav: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        """Each chosen clip scaled by a gain drawn from ``gain_db``."""
        import torchaudio

        db = self._uniform(wav.shape[0], self.options.gain_db) * which
        return wav * torchaudio.functional.DB_to_amplitude(db, 1.0, 0.5).to(wav.device, wav.dtype)[:, None]

    def impulse_response(self, rt60: float, device: torch.device | str = "cpu") -> torch.Tensor:
        """A synthetic room impulse response: a unit direct path, then Gaussian noise decaying
        by 60 dB over ``rt60`` seconds (the statistical reverberation model), the tail scaled to
        the direct path's energy."""
        n = max(2, int(rt60 * self.sample_rate))
        t = torch.arange(n, device=device) / self.sample_rate
        tail = torch.randn(n, device=device) * torch.exp(-math.log(1000.0) * t / rt60)
        tail[0] = 0.0
        rir = tail / tail.norm().clamp(min=1e-8)
        rir[0] = 1.0
        return rir

    def reverb(self, wav: torch.Tensor, lengths: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        """Convolve the chosen clips with an impulse response (torchaudio ``fftconvolve``); each
        keeps its length and its RMS level."""
        import torchaudio

        rows = which.nonzero().flatten().to(wav.device)
        if len(rows) == 0:
            return wav
        if self.options.rir_dir:
            rirs = [self._recording("rir_dir", wav.device) for _ in range(len(rows))]
        else:
            rirs = [self.impulse_response(float(r), wav.device)
                    for r in self._uniform(len(rows), self.options.rt60)]
        rir = wav.new_zeros(len(rows), max(len(r) for r in rirs))
        for i, r in enumerate(rirs):
            rir[i, : len(r)] = r
        clean = wav[rows]
        mask = length_mask(lengths[rows], wav.shape[1]).to(wav.dtype)
        wet = torchaudio.functional.fftconvolve(clean, rir)[:, : wav.shape[1]] * mask
        rms = lambda x: (x.pow(2).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1)).sqrt()
        wet = wet * (rms(clean) / rms(wet).clamp(min=1e-8))
        out = wav.clone()
        out[rows] = wet
        return out

    # -- recordings from a folder ------------------------------------------------------------------
    def _recording(self, option: str, device) -> torch.Tensor:
        self.check()
        if self._loader is None:
            from ..data.audio import AudioLoader
            from ..paths import cache_dir

            self._loader = AudioLoader(self.sample_rate, cache_dir("audio"))
        files = self._files[option]
        path = files[int(torch.randint(len(files), ()))]
        wav = torch.from_numpy(self._loader(path)).to(device)
        if wav.numel() == 0:
            from ..errors import ZooUserError

            raise ZooUserError(f"wave_augment.{option}: {path} holds no samples")
        return wav

    def _excerpt(self, option: str, n: int, device) -> torch.Tensor:
        """``n`` samples of a random recording from a random offset (looped when too short)."""
        wav = self._recording(option, device)
        if wav.shape[0] < n:
            wav = wav.repeat(math.ceil(n / wav.shape[0]))
        start = int(torch.randint(wav.shape[0] - n + 1, ()))
        return wav[start : start + n]


def mixup(x: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup (Zhang et al., 2018) of a batch of embeddings or features with a shuffled copy of
    itself: returns the mixed batch, the permutation and the weight ``lam`` of the original;
    the loss is ``lam * loss(y) + (1 - lam) * loss(y[perm])``."""
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(x.shape[0]).to(x.device)
    return lam * x + (1.0 - lam) * x[perm], perm, lam
