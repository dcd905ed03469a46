"""Formant targets and the articulatory timeline of an utterance (segments, pauses, F0 targets)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .hangul import _CHO_INFO, _JONG_SOUND, _JUNG_PARTS
from .prosody import Prosody, Speaker


# Adult male formants (Hz): F1, F2, F3, F4. Female and child voices scale them (Speaker.fscale).
_VOWELS = {
    "a": (750, 1300, 2550, 3500), "ae": (560, 1800, 2550, 3500), "e": (480, 1900, 2550, 3550),
    "eo": (580, 980, 2500, 3400), "o": (400, 740, 2450, 3400), "u": (330, 900, 2250, 3350),
    "eu": (370, 1450, 2450, 3450), "i": (290, 2200, 2950, 3600),
    "j": (280, 2150, 2900, 3600), "w": (320, 700, 2300, 3350),
}
_SCHWA = np.array([500.0, 1500.0, 2500.0, 3500.0])
_NASALS = {"m": (280, 1000, 2200, 3300), "n": (280, 1450, 2400, 3400), "ng": (280, 1800, 2300, 3300)}
_LATERAL = (380, 1250, 2800, 3500)
_VOWEL_BW = (80.0, 100.0, 140.0, 250.0)
_NASAL_BW = (120.0, 300.0, 300.0, 400.0)
_LOCUS_F2 = {"labial": 900.0, "alveolar": 1750.0, "palatal": 2200.0, "velar": None, "glottal": None}
# noise bands (Hz) of bursts and frication
_BANDS = {
    "labial": (400.0, 1600.0), "alveolar": (2800.0, 6500.0), "velar": (1400.0, 3200.0),
    "palatal": (2200.0, 6000.0), "s": (3800.0, 9500.0),
}


@dataclass
class _Timeline:
    anchors: list  # (t, F(4), B(4))
    voice: list  # (t0, t1, amp)       glottal source on
    asp: list  # (t0, t1, amp)         noise into the vocal tract (h, aspiration)
    noise: list  # (t0, t1, amp, band, attack, decay)   bursts and frication, after the tract
    syls: list  # (v0, v1, word, k, n, stressed, last_word, boundary)
    end: float


def _timeline(words, pro: Prosody, spk: Speaker, rng: np.random.Generator) -> _Timeline:
    rate = pro.rate * spk.rate
    crate = rate ** 0.6  # consonants compress less than vowels
    space = pro.space

    def shape(F) -> np.ndarray:  # articulation (vowel space) then vocal-tract length
        F = np.asarray(F, dtype=float)
        return (_SCHWA + (F - _SCHWA) * space) * spk.fscale

    vbw = np.array(_VOWEL_BW) * pro.bw * spk.bw
    nbw = np.array(_NASAL_BW) * spk.bw

    def jit() -> float:
        return math.exp(rng.normal(0, 0.12))

    tl = _Timeline([], [], [], [], [], 0.0)
    t = rng.uniform(0.25, 0.7)
    tl.anchors.append((0.0, shape(_VOWELS["eo"]), vbw))
    n_words = len(words)
    prev_sonorant = False  # previous sound voiced and adjacent (no pause): lax stops get voiced
    burst = pro.burst
    for wi, (syls, boundary) in enumerate(words):
        n = len(syls)
        last_word = wi == n_words - 1
        first_cho = _CHO_INFO[syls[0][0]]
        laryngeal = first_cho[2] in ("tense", "asp") or first_cho[0] in ("fric", "h")
        stress_k = 0 if (laryngeal or n == 1) else 1
        for k, (cho, jung, jong) in enumerate(syls):
            glide, nuc, off = _JUNG_PARTS[jung]
            V0 = shape(_VOWELS[glide or nuc])
            Vn = shape(_VOWELS[nuc])
            manner, place, phon = _CHO_INFO[cho]
            # -- initial consonant
            locus = _LOCUS_F2.get(place)
            lf2 = V0[1] if locus is None else 0.5 * V0[1] + 0.5 * locus * spk.fscale
            lF = np.array([300.0 * spk.fscale, lf2, V0[2], V0[3]])
            if manner in ("stop", "affricate"):
                intervocalic = prev_sonorant and phon == "lax"
                clo = (0.07 if phon == "tense" else 0.045) * jit() / crate
                if intervocalic:
                    clo *= 0.7
                    tl.voice.append((t, t + clo, 0.06))  # voice bar
                tl.anchors.append((t, lF, vbw))
                t += clo
                band = _BANDS[place]
                if manner == "stop":
                    tl.noise.append((t, t + 0.012, 0.9 * burst, band, 0.001, 0.006))
                    t += 0.008
                    vot = {"lax": 0.0 if intervocalic else 0.03, "tense": 0.008, "asp": 0.07}[phon]
                else:
                    fr = {"lax": 0.045, "tense": 0.035, "asp": 0.065}[phon] * jit() / crate
                    tl.noise.append((t, t + fr, 0.2 * burst, band, 0.004, 0.01))
                    t += fr
                    vot = {"lax": 0.0 if intervocalic else 0.02, "tense": 0.0, "asp": 0.035}[phon]
                if vot:
                    vot *= jit() / crate
                    tl.asp.append((t, t + vot, 0.35 if phon == "asp" else 0.2))
                    t += vot
            elif manner == "fric":
                fr = (0.11 if phon == "tense" else 0.085) * jit() / crate
                tl.anchors.append((t, lF, vbw))
                tl.noise.append((t, t + fr, (0.13 if phon == "tense" else 0.09) * burst, _BANDS["s"],
                                 0.015, 0.015))
                t += fr
            elif manner == "h":
                d = (0.03 if prev_sonorant else 0.055) * jit() / crate
                tl.anchors.append((t, V0, vbw))
                tl.asp.append((t, t + d, 0.25))
                t += d
            elif manner == "nasal":
                d = 0.055 * jit() / crate
                NF = shape(_NASALS["m" if place == "labial" else "n"])
                tl.anchors.append((t, NF, nbw))
                tl.anchors.append((t + d - 0.008, NF, nbw))
                tl.voice.append((t, t + d, 0.3))
                t += d
            elif manner == "liquid":
                d = 0.03 * jit() / crate
                tl.anchors.append((t, shape(_LATERAL), vbw))
                tl.voice.append((t, t + d, 0.5))
                t += d
            # -- vowel
            final = last_word and k == n - 1
            dv = 0.095 * jit() / rate
            if k == n - 1:
                dv *= 1.5 if final else 1.1
            if glide:
                dv += 0.035 / rate
            if off:
                dv += 0.04 / rate
            v0 = t
            tl.anchors.append((t + min(0.02, dv / 4), V0, vbw))
            if glide:
                tl.anchors.append((t + 0.045 / rate, Vn, vbw))
            Vend = shape(_VOWELS[off]) if off else Vn
            tl.anchors.append((t + dv - 0.02, Vend, vbw))
            tl.voice.append((t, t + dv, 1.0))
            t += dv
            tl.syls.append((v0, t, wi, k, n, k == stress_k, last_word, boundary if k == n - 1 else ""))
            # -- final consonant
            coda = _JONG_SOUND[jong]
            prev_sonorant = True
            if coda in ("k", "t", "p"):
                place = {"k": "velar", "t": "alveolar", "p": "labial"}[coda]
                locus = _LOCUS_F2.get(place)
                lf2 = Vend[1] if locus is None else 0.5 * Vend[1] + 0.5 * locus * spk.fscale
                tl.anchors.append((t + 0.001, np.array([300.0 * spk.fscale, lf2, Vend[2], Vend[3]]), vbw))
                t += 0.05 * jit() / crate
                prev_sonorant = False
            elif coda in ("n", "m", "ng"):
                d = 0.065 * jit() / crate
                NF = shape(_NASALS[coda])
                tl.anchors.append((t + 0.008, NF, nbw))
                tl.anchors.append((t + d, NF, nbw))
                tl.voice.append((t, t + d, 0.3))
                t += d
            elif coda == "l":
                d = 0.055 * jit() / crate
                tl.anchors.append((t + 0.01, shape(_LATERAL), vbw))
                tl.voice.append((t, t + d, 0.5))
                t += d
        # -- boundary
        if wi < n_words - 1:
            if boundary == "space":
                gap = rng.uniform(0.04, 0.14) / rate if rng.random() < 0.4 else 0.0
            elif boundary == "comma":
                gap = rng.uniform(0.15, 0.3) / rate
            else:
                gap = rng.uniform(0.25, 0.45) / rate
            if gap:
                prev_sonorant = False
            t += gap
    tl.end = t
    return tl


def _syllable_targets(tl: _Timeline, pro: Prosody) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F0 anchor times and targets (semitones around the speaker's base), per the contour."""
    syls = tl.syls
    if not syls:
        return np.array([0.0, tl.end + 1.0]), np.zeros(2), np.zeros(len(syls))
    t_first, t_last = syls[0][0], syls[-1][1]
    span = max(t_last - t_first, 1e-3)
    times, values, stress = [], [], []
    n_words = syls[-1][2] + 1
    for v0, v1, w, k, n, stressed, last_word, boundary in syls:
        u = (0.5 * (v0 + v1) - t_first) / span
        a = 3.0 if stressed else 0.0  # accentual-phrase H tone
        b = a
        if boundary in ("space", "comma") and k == n - 1 and not stressed:
            a, b = 0.5, 2.0  # phrase-final rise of a non-final word
        decl = -2.5 * u
        c = pro.contour
        if c == "down":  # downward inflections on every word
            a, b = 2.0 - 1.3 * k, 2.0 - 1.3 * (k + 1)
        elif c == "up":  # smooth upward
            a, b = 0.8 * k, 0.8 * (k + 1)
            decl = 1.5 * u
        elif c == "abrupt":  # high steps on stressed syllables
            a = b = 4.0 if stressed else -0.5
            decl = -1.5 * u
        if boundary == "question":
            a, b = a, a + 6.0
        elif boundary == "stop" and k == n - 1:
            if c == "up":
                a, b = a, a + 2.5
            elif c != "abrupt":
                a, b = min(a, -1.0), -4.0
        if c == "terminal_fall" and last_word:  # wide fall across the last word
            a, b = 3.0 - 12.0 * k / n, 3.0 - 12.0 * (k + 1) / n
        if c == "steep_rise":
            if last_word:  # steep rise across the last word
                a, b = -1.0 + 9.0 * k / n, -1.0 + 9.0 * (k + 1) / n
            elif w == 0 and k == 0 and n_words > 1:
                a = b = 3.0
        d = min(0.015, 0.25 * (v1 - v0))
        times += [v0 + d, v1 - d]
        values += [a + decl, b + decl]
        stress.append(stressed)
    return np.asarray(times), np.asarray(values), np.asarray(stress)


def _scale_timeline(tl: _Timeline, k: float) -> None:
    tl.anchors = [(t * k, F, B) for t, F, B in tl.anchors]
    tl.voice = [(a * k, b * k, g) for a, b, g in tl.voice]
    tl.asp = [(a * k, b * k, g) for a, b, g in tl.asp]
    tl.noise = [(a * k, b * k, g, band, at, de) for a, b, g, band, at, de in tl.noise]
    tl.syls = [(a * k, b * k, *rest) for a, b, *rest in tl.syls]
    tl.end *= k
