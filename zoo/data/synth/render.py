"""Formant synthesis: glottal source, resonator cascade, noise, room; one utterance to int16."""
from __future__ import annotations

import math

import numpy as np

from .articulation import _scale_timeline, _syllable_targets, _timeline
from .hangul import _parse
from .prosody import Session, Speaker, _utterance_prosody


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1:
        return x
    pad = width // 2
    xp = np.concatenate([np.full(pad, x[0]), x, np.full(width - 1 - pad, x[-1])])
    c = np.cumsum(np.concatenate([[0.0], xp]))
    return (c[width:] - c[:-width]) / width


def _fill(n: int, spans, sr: int) -> np.ndarray:
    out = np.zeros(n)
    for t0, t1, amp in spans:
        a, b = int(t0 * sr), int(t1 * sr)
        out[a:b] = np.maximum(out[a:b], amp)
    return out


_BAND_CACHE: dict = {}


def _filter_noise(band: tuple[float, float], sr: int, x: np.ndarray) -> np.ndarray:
    """White noise through a 2nd-order Butterworth band-pass (kept below 0.45 sr)."""
    from scipy.signal import butter

    key = (band, sr)
    if key not in _BAND_CACHE:
        hi = min(band[1], 0.45 * sr)
        lo = min(band[0], 0.5 * hi)
        _BAND_CACHE[key] = butter(2, [lo, hi], btype="bandpass", fs=sr, output="sos")
    y, _ = _sosfilt_state()(_BAND_CACHE[key], x, np.zeros((_BAND_CACHE[key].shape[0], 2)))
    return y


_SOSFILT = None


def _sosfilt_state():
    """``f(sos, x, zi) -> (y, zf)`` for float64 1-D ``x``: scipy's sosfilt without its per-call
    argument checks (~10x faster on the short blocks the cascade filters), checked once against
    the public :func:`scipy.signal.sosfilt` and replaced by it if anything differs."""
    global _SOSFILT
    if _SOSFILT is not None:
        return _SOSFILT
    from scipy.signal import sosfilt

    def public(sos, x, zi):
        return sosfilt(sos, x, zi=zi)

    _SOSFILT = public
    try:
        from scipy.signal._sosfilt import _sosfilt as raw

        def fast(sos, x, zi):
            y = np.array(x, dtype=np.float64, ndmin=2, order="C")  # a copy: filtered in place
            z = np.array(zi, dtype=np.float64, order="C").reshape(1, -1, 2)
            raw(sos, y, z)
            return y[0], z[0]

        rng = np.random.default_rng(0)
        sos = np.array([[0.1, 0.0, 0.0, 1.0, -1.8, 0.9], [0.05, 0.0, 0.0, 1.0, -1.2, 0.8]])
        x, zi = rng.standard_normal(300), rng.standard_normal((2, 2))
        y1, z1 = fast(sos, x, zi)
        y2, z2 = public(sos, x, zi)
        if np.array_equal(y1, y2) and np.array_equal(z1, z2):
            _SOSFILT = fast
    except Exception:  # pragma: no cover - another scipy layout: keep the public function
        pass
    return _SOSFILT


def _cascade(x: np.ndarray, F: np.ndarray, B: np.ndarray, hop: int, sr: int) -> np.ndarray:
    """Cascade of 2-pole resonators (unity gain at DC) whose formants change every hop samples."""
    filt = _sosfilt_state()
    F = np.minimum(F, 0.45 * sr)
    r = np.exp(-np.pi * B / sr)
    a1 = -2.0 * r * np.cos(2.0 * np.pi * F / sr)
    a2 = r * r
    sos = np.zeros(F.shape + (6,))
    sos[..., 0] = 1.0 + a1 + a2
    sos[..., 3] = 1.0
    sos[..., 4] = a1
    sos[..., 5] = a2
    y = np.zeros_like(x)
    zi = np.zeros((F.shape[1], 2))
    n = x.size
    for k in range(F.shape[0]):
        a = k * hop
        if a >= n:
            break
        b = min(a + hop, n)
        seg = x[a:b]
        if not seg.any() and np.abs(zi).max() < 1e-9:
            zi[:] = 0.0
            continue
        y[a:b], zi = filt(sos[k], seg, zi)
    return y


def _internal_factor(sr: int) -> int:
    """Voiced speech is synthesised at sr / q (about 16 kHz) and upsampled: the glottal source and
    the formant cascade cost three times less, and voiced energy above 8 kHz is negligible."""
    q = max(1, sr // 16000)
    while sr % q:
        q -= 1
    return q


def _render(text: str, emotion: str, spk: Speaker, ses: Session, seed: int, index: int,
            sr: int) -> np.ndarray:
    """One utterance as int16 samples."""
    from scipy.signal import fftconvolve, lfilter, resample_poly

    rng = np.random.default_rng([seed, 7, index])
    pro = _utterance_prosody(emotion, spk, rng)
    words = _parse(text)
    tl = _timeline(words, pro, spk, rng)
    # -- fit the speech into 2-6 s with leading/trailing silence
    speech_end = tl.end
    target = max(speech_end + rng.uniform(0.4, 0.9), rng.uniform(2.3, 3.3))
    if target > 5.9:  # too long: squeeze the timeline
        _scale_timeline(tl, (5.9 - 0.5) / speech_end)
        speech_end, target = tl.end, 5.9
    q = _internal_factor(sr)
    fs = sr // q  # internal rate of the voiced path
    n = int(round(target * sr))
    m = -(-n // q)

    # -- F0 contour (5 ms control rate)
    times, values, stressed = _syllable_targets(tl, pro)
    ctl = np.arange(0.0, m / fs + 0.01, 0.005)
    st = np.interp(ctl, times, values) * pro.range * spk.range
    st = _moving_average(st, max(1, int(round(pro.smooth / 0.005))))
    drift = _moving_average(np.cumsum(rng.normal(0, 0.08, ctl.size)), 20)
    st = st + drift - drift.mean()
    if pro.tremor > 0:
        st += pro.tremor * np.sin(2 * np.pi * rng.uniform(5.0, 7.0) * ctl + rng.uniform(0, 2 * np.pi))
    f0c = np.clip(spk.f0 * 2.0 ** ((pro.shift + st) / 12.0), 55.0, 650.0)
    f0 = np.interp(np.arange(m) / fs, ctl, f0c)

    # -- glottal source: Rosenberg pulses from a phase accumulator, jitter and shimmer per period
    phase = np.cumsum(f0) / fs
    idx = phase.astype(np.int64)
    periods = int(idx[-1]) + 2
    if pro.jitter > 0:
        f0 *= np.exp(pro.jitter * rng.standard_normal(periods))[idx]
        phase = np.cumsum(f0) / fs
        idx = phase.astype(np.int64)
        periods = int(idx[-1]) + 2
    frac = phase - idx
    tp = pro.oq * (1.0 - pro.closing)
    tn = pro.oq * pro.closing
    flow = np.zeros(m)
    m1 = frac < tp
    flow[m1] = 0.5 * (1.0 - np.cos((np.pi / tp) * frac[m1]))
    m2 = (frac >= tp) & (frac < pro.oq)
    flow[m2] = np.cos((0.5 * np.pi / tn) * (frac[m2] - tp))
    src = np.diff(flow, prepend=0.0)  # flow derivative: the source with lip radiation
    pamp = np.maximum(0.1, 1.0 + pro.shimmer * rng.standard_normal(periods))
    if pro.creak > 0:  # period doubling over the last 40 % of the speech
        start = int(idx[min(int(0.6 * speech_end * fs), m - 1)])
        pamp[start + 1::2] *= 1.0 - pro.creak
    src *= pamp[idx]
    voice_env = _moving_average(_fill(m, tl.voice, fs), int(0.006 * fs))
    # syllable-level intensity: stressed syllables louder, a slight declination
    t_first = tl.syls[0][0] if tl.syls else 0.0
    syl_gain = np.ones(m)
    for (v0, v1, *_rest), s in zip(tl.syls, stressed):
        u = (v0 - t_first) / max(tl.end - t_first, 1e-3)
        syl_gain[int(v0 * fs):int(v1 * fs)] = 10 ** (((pro.stress_db if s else 0.0) - 3.0 * u) / 20)
    voice_env *= _moving_average(syl_gain, int(0.01 * fs))
    on = voice_env > 0.05
    if on.any():
        src /= np.sqrt(np.mean(src[on] ** 2)) + 1e-12
    exc = voice_env * (src + pro.breath * rng.standard_normal(m) * (0.3 + flow))  # pulsed breath noise
    exc += _moving_average(_fill(m, tl.asp, fs), int(0.004 * fs)) * rng.standard_normal(m)

    # -- vocal tract: formants every 10 ms
    hop = max(1, fs // 100)
    nfr = -(-m // hop)
    fc = (np.arange(nfr) + 0.5) * hop / fs
    at = np.array([a[0] for a in tl.anchors])
    order = np.argsort(at, kind="stable")  # (fast speech can put a glide target past the next)
    at = at[order] + np.arange(at.size) * 1e-6  # strictly increasing
    aF = np.array([a[1] for a in tl.anchors])[order]
    aB = np.array([a[2] for a in tl.anchors])[order]
    F = np.stack([np.interp(fc, at, aF[:, j]) for j in range(4)], axis=1)
    B = np.stack([np.interp(fc, at, aB[:, j]) for j in range(4)], axis=1)
    y = _cascade(exc, F, B, hop, fs)
    y /= (np.sqrt(np.mean(y[on] ** 2)) if on.any() else 1.0) + 1e-12  # vowels at RMS 1

    # -- the room's reverberation, then up to the output rate
    if ses.wet > 0:
        L = int(min(ses.rt60, 0.3) * fs)
        ir = rng.standard_normal(L) * np.exp((-6.9 / ses.rt60 / fs) * np.arange(L))
        y += (ses.wet / np.sqrt(np.sum(ir ** 2))) * fftconvolve(y, ir)[:m]
    if q > 1:
        y = resample_poly(y, q, 1)
    y = y[:n]

    # -- bursts and frication, at the output rate
    for t0, t1, amp, band, attack, decay in tl.noise:
        a, b = int(t0 * sr), min(int(t1 * sr), n)
        if b - a < 4:
            continue
        k = b - a
        z = _filter_noise(band, sr, rng.standard_normal(k + 64))[64:]
        z /= np.sqrt(np.mean(z ** 2)) + 1e-12
        tt = np.arange(k) / sr
        env = np.minimum(1.0, tt / max(attack, 1e-4)) * np.minimum(1.0, (k / sr - tt) / max(decay, 1e-4))
        y[a:b] += (amp * 3.0) * env * z

    # -- level (speaker, session, emotion), room noise, hum, a soft limiter
    y *= 10 ** ((-30.0 + pro.gain + spk.gain + ses.gain) / 20)
    room = lfilter([1.0 - ses.noise_color], [1.0, -ses.noise_color], rng.standard_normal(n, dtype=np.float32))
    y += room * (10 ** (ses.noise_db / 20) / (float(np.sqrt(np.mean(room ** 2))) + 1e-12))
    if ses.hum_db > -150:
        y += 10 ** (ses.hum_db / 20) * math.sqrt(2) * np.sin(
            (2 * np.pi * 60.0 / sr) * np.arange(n) + rng.uniform(0, 2 * np.pi))
    over = np.flatnonzero(np.abs(y) > 0.7)
    if over.size:
        v = y[over]
        y[over] = np.sign(v) * (0.7 + 0.28 * np.tanh((np.abs(v) - 0.7) / 0.28))
    y *= 32767.0
    np.round(y, out=y)
    np.clip(y, -32768, 32767, out=y)
    return y.astype(np.int16)


def _render_job(job) -> tuple[int, int]:
    import soundfile as sf

    index, path, text, emotion, spk, ses, seed, sr = job
    pcm = _render(text, emotion, spk, ses, seed, index, sr)
    sf.write(path, pcm, sr, subtype="PCM_16", format="WAV")
    return index, pcm.size
