"""Prosody per emotion (Murray & Arnott), simulated speakers and sessions, arousal and valence."""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class Prosody:
    """How one emotion is spoken, relative to the speaker's baseline (Neutral)."""

    rate: float  # speech-rate factor (syllables per second x rate)
    shift: float  # pitch average, semitones above the speaker's base
    range: float  # pitch range factor (excursions in semitones x range)
    gain: float  # intensity, dB
    breath: float  # aspiration noise / pulse energy ratio (breathiness)
    oq: float  # glottal open quotient (low = tense, pressed)
    closing: float  # share of the open phase spent closing (low = abrupt closure, bright)
    jitter: float  # per-period F0 perturbation (relative s.d.)
    shimmer: float  # per-period amplitude perturbation (relative s.d.)
    tremor: float  # 5-7 Hz F0 modulation, semitones
    space: float  # vowel-space factor (articulation: <1 slurred, >1 precise)
    burst: float  # consonant burst / frication strength
    bw: float  # formant bandwidth factor (<1 resonant)
    stress_db: float  # extra level on stressed syllables
    creak: float  # period-doubling (vocal fry) on the last part, 0..1
    contour: str  # pitch-contour shape, see _syllable_targets
    smooth: float  # F0 smoothing window, seconds (small = abrupt)


# After Murray & Arnott (DESIGN.md); Neutral is the baseline, Surprise is added (high, wide,
# steep rise).
PROSODY: dict[str, Prosody] = {
    "Neutral": Prosody(1.00, 0.0, 1.00, 0.0, 0.08, 0.60, 0.35, 0.005, 0.04, 0.0, 1.00, 1.0, 1.0, 1.0, 0.0, "neutral", 0.045),
    # much faster, very much higher, much wider, normal intensity, irregular voicing, precise
    "Fear": Prosody(1.30, 7.0, 1.60, 0.0, 0.15, 0.55, 0.35, 0.035, 0.20, 0.9, 1.10, 1.3, 1.0, 1.0, 0.0, "neutral", 0.035),
    # slightly faster, very much higher, much wider, higher, breathy chest tone, abrupt, tense
    "Angry": Prosody(1.12, 6.0, 1.70, 6.0, 0.20, 0.42, 0.18, 0.010, 0.07, 0.0, 1.05, 1.5, 1.0, 4.0, 0.0, "abrupt", 0.010),
    # slightly slower, slightly lower, slightly narrower, lower, resonant, downward, slurring
    "Sadness": Prosody(0.85, -1.5, 0.60, -6.0, 0.10, 0.72, 0.50, 0.007, 0.05, 0.0, 0.70, 0.5, 0.8, 0.5, 0.0, "down", 0.070),
    # faster (or slower), much higher, much wider, higher, breathy blaring, smooth upward
    "Happiness": Prosody(1.12, 4.5, 1.70, 3.0, 0.30, 0.55, 0.30, 0.005, 0.05, 0.0, 1.00, 1.0, 1.0, 1.5, 0.0, "up", 0.090),
    # very much slower, very much lower, slightly wider, lower, grumbled chest tone, wide terminal fall
    "Disgust": Prosody(0.70, -4.0, 1.25, -3.0, 0.10, 0.48, 0.30, 0.015, 0.12, 0.0, 1.00, 1.0, 1.0, 1.0, 0.45, "terminal_fall", 0.050),
    # (not in the table) high pitch, wide range, steep rise
    "Surprise": Prosody(1.05, 6.0, 2.00, 3.0, 0.15, 0.55, 0.30, 0.006, 0.05, 0.0, 1.05, 1.2, 1.0, 1.5, 0.0, "steep_rise", 0.030),
}

_NUMERIC = tuple(f.name for f in fields(Prosody) if f.name not in ("contour", "smooth"))


@dataclass(frozen=True)
class Speaker:
    id: str
    gender: str  # "male" | "female"
    age: int
    f0: float  # base pitch, Hz
    range: float  # pitch-range factor
    rate: float  # speech-rate factor
    fscale: float  # vocal-tract scaling of formants
    bw: float  # bandwidth factor
    breath: float  # added breathiness
    oq: float  # added open quotient
    jitter: float  # added jitter
    gain: float  # dB
    expressive: float  # how strongly this speaker acts the emotions


@dataclass(frozen=True)
class Session:
    """One conversation's recording conditions."""

    noise_db: float  # room noise level, dBFS
    noise_color: float  # one-pole low-pass coefficient of the room noise
    hum_db: float  # 60 Hz hum level (very low = none)
    rt60: float  # reverberation time, s
    wet: float  # reverberation mix
    gain: float  # microphone gain, dB


_AGES = (20, 30, 40, 50, 60)


def _make_speaker(seed: int, s: int) -> Speaker:
    rng = np.random.default_rng([seed, 6, s])
    gender = "female" if s % 2 == 0 else "male"
    age = _AGES[(s // 2 + 2 * (s % 2)) % len(_AGES)]
    if gender == "female":
        f0 = (222.0 - 1.1 * (age - 20)) * math.exp(rng.normal(0, 0.06))
        fscale = rng.uniform(1.12, 1.22)
        breath = rng.uniform(0.02, 0.07)
    else:
        f0 = (118.0 + 0.15 * max(age - 40, 0) ** 1.3) * math.exp(rng.normal(0, 0.07))
        fscale = rng.uniform(0.94, 1.04)
        breath = rng.uniform(0.0, 0.04)
    fscale *= 1.0 - 0.0015 * (age - 20)
    return Speaker(
        id=f"spk{s:02d}", gender=gender, age=age, f0=float(f0), range=float(rng.uniform(0.8, 1.25)),
        rate=float(rng.uniform(0.9, 1.1)), fscale=float(fscale), bw=float(rng.uniform(0.9, 1.15)),
        breath=float(breath), oq=float(rng.uniform(-0.05, 0.05)),
        jitter=float(0.002 + 0.0001 * (age - 20) * rng.uniform(0.5, 1.5)),
        gain=float(rng.uniform(-2.0, 2.0)), expressive=float(rng.uniform(0.85, 1.15)),
    )


def _make_session(seed: int, c: int) -> Session:
    rng = np.random.default_rng([seed, 8, c])
    return Session(
        noise_db=float(rng.uniform(-76.0, -62.0)), noise_color=float(rng.uniform(0.5, 0.98)),
        hum_db=float(rng.uniform(-75.0, -62.0) if rng.random() < 0.3 else -200.0),
        rt60=float(rng.uniform(0.12, 0.35)), wet=float(rng.uniform(0.05, 0.2)),
        gain=float(rng.uniform(-2.0, 2.0)),
    )


def _utterance_prosody(emotion: str, speaker: Speaker, rng: np.random.Generator) -> Prosody:
    """The emotion's prosody scaled by a random strength and jittered, for one utterance."""
    return _draw_prosody(emotion, speaker, rng)[0]


def _draw_prosody(emotion: str, speaker: Speaker, rng: np.random.Generator) -> tuple[Prosody, float]:
    """The utterance's prosody and its strength (how far from Neutral it is acted)."""
    base, emo = PROSODY["Neutral"], PROSODY[emotion]
    s = rng.uniform(0.75, 1.2) * speaker.expressive
    v = {k: getattr(base, k) + s * (getattr(emo, k) - getattr(base, k)) for k in _NUMERIC}
    v["rate"] *= math.exp(rng.normal(0, 0.07))
    v["shift"] += rng.normal(0, 0.8)
    v["range"] *= math.exp(rng.normal(0, 0.15))
    v["gain"] += rng.normal(0, 1.5)
    v["breath"] = max(0.0, v["breath"] * math.exp(rng.normal(0, 0.2)) + speaker.breath)
    v["oq"] = float(np.clip(v["oq"] + speaker.oq + rng.normal(0, 0.03), 0.3, 0.85))
    v["closing"] = float(np.clip(v["closing"] + rng.normal(0, 0.03), 0.1, 0.6))
    v["jitter"] = max(0.0, v["jitter"] * math.exp(rng.normal(0, 0.2)) + speaker.jitter)
    v["shimmer"] = max(0.0, v["shimmer"] * math.exp(rng.normal(0, 0.2)))
    v["creak"] = float(np.clip(v["creak"], 0.0, 0.9))
    return Prosody(**v, contour=emo.contour, smooth=emo.smooth), float(s)


#: valence of each emotion on [-1, 1] (after Russell's circumplex; Neutral is 0)
VALENCE: dict[str, float] = {"Neutral": 0.0, "Happiness": 0.8, "Surprise": 0.3, "Angry": -0.6,
                             "Disgust": -0.7, "Fear": -0.6, "Sadness": -0.7}


def prosody_arousal(pro: Prosody) -> float:
    """Arousal on [-1, 1]-ish from what the voice does (relative to the speaker's Neutral):
    faster speech, higher pitch, a wider pitch range and more intensity are more aroused. Each
    term is 1 at the level of the most aroused emotion that uses it (Fear's rate and pitch,
    Angry's range and intensity)."""
    return (0.3 * math.log(pro.rate) / math.log(1.3) + 0.3 * pro.shift / 7.0
            + 0.2 * math.log(pro.range) / math.log(1.7) + 0.2 * pro.gain / 6.0)


def utterance_dims(emotion: str, prosody_emotion: str, speaker: Speaker, seed: int, index: int) -> dict[str, float]:
    """Arousal and valence in [0, 1] of one rendered utterance.

    Arousal comes from the prosody the wav is rendered with (the same random draws as
    ``_render``): its per-utterance strength and jitter of rate, pitch, range and level move it,
    so it is audible; a words-cued row (Neutral prosody) has a neutral arousal. Valence is the
    emotion's circumplex valence, scaled by the acted strength when the voice carries the emotion
    (words alone carry it at full strength). Both pass through a logistic onto [0, 1].
    """
    pro, strength = _draw_prosody(prosody_emotion, speaker, np.random.default_rng([seed, 7, index]))
    v = VALENCE[emotion] * (strength if prosody_emotion == emotion else 1.0)
    return {"arousal": 1.0 / (1.0 + math.exp(-2.0 * prosody_arousal(pro))),
            "valence": 1.0 / (1.0 + math.exp(-2.0 * v))}
