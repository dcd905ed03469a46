"""A deterministic synthetic Korean emotional speech corpus in the AI Hub KETI-02-002 layout.

``generate(out, size=400, seed=0)`` writes, under ``out``:

* ``synthetic.csv``: cp949, the verbatim AI Hub header (``wav_id, 발화문, 상황, 1번 감정, ...,
  4번감정세기, ..., 나이, 성별``), one row per utterance. ``wav_id`` is a MongoDB-style ObjectId whose
  first 8 hex digits are the Unix time of the recording: rows of one conversation are 5-40 s
  apart, conversations are 2 minutes to 4 hours apart. ``상황`` is the scripted situation of the
  conversation (lowercase, ``anger``/``angry`` and ``sad``/``sadness`` both used); five annotators
  label each row (mixed case now and then, as in the real releases) and sometimes disagree.
* ``wav/{wav_id}.wav``: 48 kHz mono PCM 16-bit, 2-6 s, rendered from the sentence itself.
* ``synthetic_meta.csv`` (UTF-8): ``wav_id, speaker, emotion, cue, arousal, valence``: the true
  rendered emotion, the simulated speaker and where the emotion lives (``voice``: neutral words,
  emotional prosody; ``words``: emotional words, neutral prosody; ``both``). Neutral rows are
  neutral in both; they still get a cue drawn like the others, so the fractions hold over the
  whole corpus. ``arousal`` and ``valence`` are dimensional ratings in [0, 1] (see
  :func:`utterance_dims`): arousal is read from the prosody the wav was rendered with, valence
  from the emotion and how strongly it was acted.
* ``README.md`` and ``.synthetic.json`` (the arguments; written last: its presence means the
  corpus is complete, and a later call with the same arguments returns at once).

The audio is a small formant synthesiser. Every Hangul syllable is split into its jamo: the
vowel sets formant targets (F1-F4, with glides for diphthongs), consonants become closures,
bursts, frication, aspiration, nasal murmurs or laterals; spaces and punctuation become pauses
(``?`` a final rise); digits are read in Sino-Korean. A Rosenberg glottal pulse train follows an
F0 contour (phase accumulator, per-period jitter and shimmer, pulsed aspiration noise) through a
cascade of resonators whose formants move every 10 ms. The voiced path is synthesised at about
16 kHz and upsampled (voiced energy above 8 kHz is negligible, and it is three times cheaper);
bursts, frication and the room noise are made at the output rate. A little reverberation and
room noise are added.

Emotion changes the prosody after Murray & Arnott (see the table in DESIGN.md): speech rate,
pitch level and range, intensity, voice quality (breathiness, tension, irregular voicing, creak),
articulation (vowel space, burst strength) and the pitch contour (Sadness falls on every word,
Happiness rises smoothly, Disgust has a wide terminal fall, Anger jumps abruptly on stressed
syllables, Surprise rises steeply at the end). Speakers differ in base pitch, range, rate,
voice quality and vocal-tract length; every utterance jitters its prosody parameters.

Determinism: the corpus plan is drawn row by row from generators keyed on ``(seed, purpose,
index)``, and each wav from ``default_rng([seed, 7, row])``; the output does not depend on the
number of worker processes, and the first rows of a larger corpus equal a smaller one's.

Only numpy is imported at module import; scipy.signal and soundfile are imported when audio is
rendered. Also runnable as ``python -m zoo.data.synthetic --out DIR`` (same options as
``python -m zoo synth``).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import math
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np

from zoo.data.corpora.aihub import AIHUB_EMOTIONS
from zoo.errors import ZooUserError

__all__ = ["HEADER", "CSV_NAME", "META_NAME", "WAV_DIR", "STAMP_NAME", "generate", "main"]

log = logging.getLogger("zoo")

# Bump when the output for the same arguments changes: old stamps then no longer match.
FORMAT_VERSION = 1

HEADER: tuple[str, ...] = (
    "wav_id", "발화문", "상황", "1번 감정", "1번 감정세기", "2번 감정", "2번 감정세기",
    "3번 감정", "3번 감정세기", "4번 감정", "4번감정세기", "5번 감정", "5번 감정세기", "나이", "성별",
)
META_HEADER: tuple[str, ...] = ("wav_id", "speaker", "emotion", "cue", "arousal", "valence")
CSV_NAME = "synthetic.csv"
META_NAME = "synthetic_meta.csv"
WAV_DIR = "wav"
README_NAME = "README.md"
STAMP_NAME = ".synthetic.json"
PARTIAL_NAME = ".synthetic.partial.json"
CUES = ("voice", "words", "both")
N_ANNOTATORS = 5

# ==============================================================================================
# Sentences. Emotional sentences carry their class in the words; the neutral pool is used for
# Neutral rows and for every voice-cued row, so its text says nothing about the class.

EMOTION_SENTENCES: dict[str, tuple[str, ...]] = {
    "Happiness": (
        "오늘 진짜 기분 좋다", "나 드디어 합격했어!", "시험 잘 봐서 너무 신나",
        "생일 선물 받아서 너무 행복해", "우리 강아지가 너무 귀여워서 웃음이 나",
        "이번 여행 정말 재밌었어", "월급 올랐어, 완전 최고야", "친구들이 깜짝 파티 해 줘서 너무 고마웠어",
        "오랜만에 가족들이랑 밥 먹어서 좋았어", "너랑 있으면 항상 즐거워", "드디어 주말이다 너무 좋아",
        "칭찬 받아서 하루 종일 기분이 좋아", "맛있는 거 먹으니까 행복하다", "우리 팀이 이겼어 대박이야",
        "원하던 회사에 붙었어", "좋아하는 가수 콘서트 표 구했어", "아기가 처음으로 걸었어 너무 기뻐",
    ),
    "Angry": (
        "진짜 너무 화가 나", "왜 맨날 약속을 안 지켜?", "그만 좀 해, 짜증 나니까",
        "내 말 좀 끝까지 들어", "도대체 몇 번을 말해야 알아들어?", "너 때문에 다 망쳤잖아",
        "그걸 왜 이제 말해?", "지금 장난하는 거야?", "진짜 열받아서 못 참겠어",
        "누가 내 물건 함부로 만졌어?", "당장 사과해", "어떻게 나한테 이럴 수가 있어",
        "또 늦었어? 이게 몇 번째야", "거짓말 좀 그만해", "왜 맨날 남 탓만 해?",
        "층간 소음 때문에 미치겠어 진짜",
    ),
    "Disgust": (
        "으, 냄새 진짜 역겨워", "이거 상한 거 아니야? 토할 것 같아", "바퀴벌레 나왔어 너무 징그러워",
        "그 사람 하는 짓 보면 진짜 정떨어져", "더러워서 손도 대기 싫어", "음식에서 머리카락 나왔어 비위 상해",
        "그런 말 하는 거 진짜 혐오스러워", "화장실이 너무 더러워서 못 쓰겠어",
        "쓰레기 냄새 때문에 속이 울렁거려", "남의 뒷담화나 하고 진짜 추하다",
        "저런 인간이랑은 말도 섞기 싫어", "국에 벌레가 빠져 있었어", "길에 침 뱉는 거 보고 기분 더러웠어",
        "상한 우유를 마셔 버렸어 우웩", "위선 떠는 거 보니까 역겹다", "하수구 냄새가 진동을 해",
    ),
    "Fear": (
        "어제저녁에 진짜 무서웠어", "누가 자꾸 나를 따라오는 것 같아", "밤에 혼자 있기 너무 무서워",
        "방금 이상한 소리 들렸어", "엘리베이터가 갑자기 멈춰서 겁났어", "수술 받는 게 너무 두려워",
        "골목에서 누가 쳐다봐서 소름 돋았어", "지진 나면 어떡하지?", "무서운 꿈 꿔서 잠을 못 잤어",
        "차가 튀어나와서 죽는 줄 알았어", "문이 저절로 열려서 너무 무서웠어", "높은 데 올라가면 다리가 떨려",
        "누가 밤새 문을 계속 두드렸어", "길을 잃어서 너무 불안했어", "혼자 산길 걷는데 너무 무서웠어",
        "불이 날까 봐 겁이 나",
    ),
    "Sadness": (
        "나 어제 헤어졌어", "요즘 너무 외로워", "할머니가 돌아가셨어", "아무것도 하기 싫고 우울해",
        "시험에 또 떨어졌어", "키우던 강아지가 죽었어", "친구가 멀리 이사 가서 너무 보고 싶어",
        "다 내 잘못인 것 같아", "오늘따라 자꾸 눈물이 나", "아무도 내 마음을 몰라줘",
        "회사에서 잘렸어", "그때 생각하면 아직도 마음이 아파", "열심히 했는데 다 소용없었어",
        "혼자 밥 먹는 게 너무 쓸쓸해", "돌아가신 아버지가 보고 싶다", "이제 다 끝난 것 같아",
    ),
    "Surprise": (
        "헐, 진짜야?", "어떻게 여기서 너를 만나?", "벌써 다 끝났다고?", "와, 이거 네가 만든 거야?",
        "갑자기 웬 눈이야", "설마 그게 사실이야?", "깜짝이야, 언제 왔어?", "대박, 복권에 당첨됐다고?",
        "걔가 결혼한다고?", "말도 안 돼, 벌써 12시야?", "어, 이게 왜 여기 있어?", "와, 진짜 예상 못 했어",
        "그 사람이 사장님 아들이었어?", "세상에, 이게 다 공짜야?", "네가 그걸 어떻게 알아?",
        "우와, 키가 이렇게 컸어?",
    ),
}

NEUTRAL_SENTENCES: tuple[str, ...] = (
    "오늘 점심은 학교 앞에서 먹었어", "내일 아침에 회의가 있어", "버스는 10분 뒤에 와",
    "주말에 집에서 책 읽었어", "이번 주는 비가 온대", "저녁은 집에서 먹을 거야",
    "2호선 타고 회사에 가", "가는 길에 우유 좀 사 올게", "다음 주에 이사해",
    "그 책 도서관에 반납했어", "이따가 다시 전화할게", "오늘은 일찍 자야겠다",
    "회의실은 3층에 있어", "어제 머리 잘랐어", "은행에 들렀다가 갈게",
    "어제 친구랑 영화 봤어", "오늘 아침에 커피 마셨어", "방 청소 좀 해야 돼",
    "이번 달에 시험이 있어", "동생이 학교에서 돌아왔어", "아까 엄마가 전화했어",
    "지금 편의점 가는 중이야", "택배가 문 앞에 와 있어", "오후에 비 온다고 했어",
    "내일은 수업이 없어", "점심 메뉴 아직 안 정했어", "회사에서 방금 나왔어",
    "그 사람 오늘 출장 갔대", "강아지 산책시키고 왔어", "이 노래 라디오에서 나왔어",
    "형이 차를 새로 샀대", "저녁에 친구 만나기로 했어", "주말에 고향에 내려가",
    "냉장고에 반찬 있어", "아까 그 가게 문 닫았더라", "오늘 회의 두 시간 했어",
    "이번에 휴대폰 바꿨어", "내일 병원 가야 돼", "다음 역에서 내리면 돼",
    "그 얘기 어제 들었어", "숙제 다 했어", "택시 타고 집에 왔어",
    "창문 좀 열어 줄래?", "이거 1500원이래", "우리 2019년에 처음 만났지",
)

FILLERS: tuple[str, ...] = ("음,", "아,", "근데", "그니까", "있잖아,")

# 상황 spellings (lowercase, both forms the releases use).
SITUATION_SPELLINGS: dict[str, tuple[str, ...]] = {
    "Angry": ("angry", "anger"), "Disgust": ("disgust",), "Fear": ("fear",),
    "Happiness": ("happiness",), "Neutral": ("neutral",), "Sadness": ("sad", "sadness"),
    "Surprise": ("surprise",),
}

# Annotator confusions: whom an annotator hears instead of the true class, and how often.
CONFUSIONS: dict[str, dict[str, float]] = {
    "Angry": {"Disgust": 0.5, "Surprise": 0.2, "Fear": 0.1, "Neutral": 0.2},
    "Disgust": {"Angry": 0.5, "Sadness": 0.25, "Neutral": 0.25},
    "Fear": {"Surprise": 0.5, "Sadness": 0.3, "Neutral": 0.2},
    "Happiness": {"Surprise": 0.5, "Neutral": 0.5},
    "Neutral": {"Sadness": 0.5, "Happiness": 0.3, "Surprise": 0.2},
    "Sadness": {"Neutral": 0.5, "Disgust": 0.25, "Fear": 0.25},
    "Surprise": {"Fear": 0.4, "Happiness": 0.4, "Neutral": 0.2},
}

# ==============================================================================================
# Prosody


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


# ==============================================================================================
# Text -> syllables

_CHO = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
# initial consonant: (manner, place, phonation)
_CHO_INFO = (
    ("stop", "velar", "lax"), ("stop", "velar", "tense"), ("nasal", "alveolar", ""),
    ("stop", "alveolar", "lax"), ("stop", "alveolar", "tense"), ("liquid", "alveolar", ""),
    ("nasal", "labial", ""), ("stop", "labial", "lax"), ("stop", "labial", "tense"),
    ("fric", "alveolar", "lax"), ("fric", "alveolar", "tense"), ("none", "", ""),
    ("affricate", "palatal", "lax"), ("affricate", "palatal", "tense"),
    ("affricate", "palatal", "asp"), ("stop", "velar", "asp"), ("stop", "alveolar", "asp"),
    ("stop", "labial", "asp"), ("h", "glottal", ""),
)
# medial vowel: (glide, nucleus, offglide)   ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ
_JUNG_PARTS = (
    ("", "a", ""), ("", "ae", ""), ("j", "a", ""), ("j", "ae", ""), ("", "eo", ""), ("", "e", ""),
    ("j", "eo", ""), ("j", "e", ""), ("", "o", ""), ("w", "a", ""), ("w", "ae", ""), ("w", "e", ""),
    ("j", "o", ""), ("", "u", ""), ("w", "eo", ""), ("w", "e", ""), ("w", "i", ""), ("j", "u", ""),
    ("", "eu", ""), ("", "eu", "i"), ("", "i", ""),
)
# final consonant -> one of the seven coda sounds
_JONG_SOUND = ("", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m",
               "p", "p", "t", "t", "ng", "t", "t", "k", "t", "p", "t")

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

_DIGITS = "영일이삼사오육칠팔구"


def _read_number(n: int) -> str:
    """Sino-Korean reading of a non-negative integer (10 -> 십, 1500 -> 천오백, 2019 -> 이천십구)."""
    if n == 0:
        return "영"
    out = ""
    for value, name in ((10**8, "억"), (10**4, "만")):
        q, n = divmod(n, value)
        if q:
            out += _read_number(q) + name
    for value, name in ((1000, "천"), (100, "백"), (10, "십")):
        q, n = divmod(n, value)
        if q:
            out += ("" if q == 1 else _DIGITS[q]) + name
    return out + (_DIGITS[n] if n else "")


_BOUNDARY_RANK = {"space": 0, "comma": 1, "stop": 2, "question": 3}


def _parse(text: str) -> list[tuple[list[tuple[int, int, int]], str]]:
    """Words as ``([(cho, jung, jong), ...], boundary)``; boundary in space/comma/stop/question."""
    text = re.sub(r"\d+(?:,\d{3})*", lambda m: _read_number(int(m.group().replace(",", ""))), text)
    words: list[tuple[list[tuple[int, int, int]], str]] = []
    cur: list[tuple[int, int, int]] = []

    def close(boundary: str) -> None:
        nonlocal cur
        if cur:
            words.append((cur, boundary))
            cur = []
        elif words and _BOUNDARY_RANK[boundary] > _BOUNDARY_RANK[words[-1][1]]:
            words[-1] = (words[-1][0], boundary)

    for ch in text:
        code = ord(ch) - 0xAC00
        if 0 <= code < 11172:
            cur.append((code // 588, (code % 588) // 28, code % 28))
        elif ch.isascii() and ch.isalpha():
            cur.append((11, 4, 0))  # a Latin letter is read as a neutral 어
        elif ch.isspace():
            close("space")
        elif ch in ",;:":
            close("comma")
        elif ch in ".!…":
            close("stop")
        elif ch == "?":
            close("question")
    close("stop")
    if words and words[-1][1] in ("space", "comma"):
        words[-1] = (words[-1][0], "stop")
    return words


# ==============================================================================================
# Rendering


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


def _scale_timeline(tl: _Timeline, k: float) -> None:
    tl.anchors = [(t * k, F, B) for t, F, B in tl.anchors]
    tl.voice = [(a * k, b * k, g) for a, b, g in tl.voice]
    tl.asp = [(a * k, b * k, g) for a, b, g in tl.asp]
    tl.noise = [(a * k, b * k, g, band, at, de) for a, b, g, band, at, de in tl.noise]
    tl.syls = [(a * k, b * k, *rest) for a, b, *rest in tl.syls]
    tl.end *= k


def _render_job(job) -> tuple[int, int]:
    import soundfile as sf

    index, path, text, emotion, spk, ses, seed, sr = job
    pcm = _render(text, emotion, spk, ses, seed, index, sr)
    sf.write(path, pcm, sr, subtype="PCM_16", format="WAV")
    return index, pcm.size


# ==============================================================================================
# The corpus plan (rows of the CSV)


@dataclass(frozen=True)
class _Row:
    index: int
    conversation: int
    wav_id: str
    text: str
    situation: str  # as spelled in 상황
    votes: tuple[str, ...]  # as spelled
    intensities: tuple[int, ...]
    speaker: Speaker
    session: Session
    emotion: str  # true (rendered) emotion
    cue: str
    prosody: str  # the emotion the voice renders (Neutral for words-cued rows)


def _spell(label: str, rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.04:
        return label.lower()
    if r < 0.055:
        return label.upper()
    return label


def _plan(size: int, seed: int, fractions: Sequence[float], num_speakers: int) -> list[_Row]:
    emotions = list(AIHUB_EMOTIONS)
    speakers = [_make_speaker(seed, s) for s in range(num_speakers)]
    cue_p = np.asarray(fractions, dtype=float) / float(np.sum(fractions))
    rows: list[_Row] = []
    r0 = np.random.default_rng([seed, 0])
    t = float(r0.integers(1_590_969_600, 1_590_969_600 + 40 * 86400))  # June-July 2020
    counters: dict[tuple[int, int], int] = {}
    class_rows: Counter = Counter()
    speaker_rows: Counter = Counter()
    speaker_situations: Counter = Counter()
    c = 0
    while len(rows) < size:
        rc = np.random.default_rng([seed, 1, c])
        # balance: the situation is the class with the fewest rows so far; the speaker the one with
        # the fewest conversations in this situation, then the fewest rows (ties in random order)
        situation = str(min(rc.permutation(emotions), key=lambda e: class_rows[str(e)]))
        spk = min(rc.permutation(num_speakers),
                  key=lambda s: (speaker_situations[int(s), situation], speaker_rows[int(s)]))
        speaker_situations[int(spk), situation] += 1
        spk_index, spk = int(spk), speakers[int(spk)]
        ses = _make_session(seed, c)
        n_utts = int(rc.integers(3, 9))
        if c > 0:
            t += math.exp(rc.uniform(math.log(150.0), math.log(4 * 3600.0)))
        spelled_situation = str(rc.choice(SITUATION_SPELLINGS[situation]))
        for j in range(min(n_utts, size - len(rows))):
            i = len(rows)
            ru = np.random.default_rng([seed, 4, i])
            if j > 0:
                t += ru.uniform(5.0, 40.0)
            ts = int(t)
            # ObjectId: time, 5 bytes of a server process (a few per week), that process's counter
            week = ts // (7 * 86400)
            rp = np.random.default_rng([seed, 5, week])
            n_proc = int(rp.integers(3, 7))
            procs = [int(rp.integers(0, 2**24)) << 16 | int(rp.integers(0x0E00, 0x1000)) for _ in range(n_proc)]
            starts = rp.integers(0, 2**24, n_proc)
            p = int(ru.integers(0, n_proc))
            key = (week, p)
            counters[key] = (counters.get(key, int(starts[p])) + int(ru.integers(1, 4))) % 2**24
            wav_id = f"{ts:08x}{procs[p]:010x}{counters[key]:06x}"
            # the true emotion: mostly the situation's
            if ru.random() < 0.75:
                emotion = situation
            else:
                emotion = str(ru.choice([e for e in emotions if e != situation]))
            cue = CUES[int(ru.choice(3, p=cue_p))]
            if emotion == "Neutral" or cue == "voice":
                text = str(ru.choice(NEUTRAL_SENTENCES))
            else:
                text = str(ru.choice(EMOTION_SENTENCES[emotion]))
            if ru.random() < 0.12:
                text = f"{ru.choice(FILLERS)} {text}"
            prosody = "Neutral" if cue == "words" else emotion
            # five annotators: each hears the true class with the row's clarity, else a confusion
            clarity = ru.beta(8.0, 2.2)
            votes, levels = [], []
            for _ in range(N_ANNOTATORS):
                if ru.random() < clarity:
                    heard = emotion
                elif cue == "words" and emotion != "Neutral" and ru.random() < 0.35:
                    heard = "Neutral"  # neutral voice, emotional words
                else:
                    conf = CONFUSIONS[emotion]
                    names = list(conf)
                    heard = names[int(ru.choice(len(names), p=np.array(list(conf.values())) / sum(conf.values())))]
                if heard == "Neutral":
                    level = 0
                else:
                    p2 = {"both": 0.5, "voice": 0.35, "words": 0.2}[cue] if heard == emotion else 0.15
                    r = ru.random()
                    level = 0 if r < 0.05 else (2 if r < 0.05 + p2 else 1)
                votes.append(_spell(heard, ru))
                levels.append(level)
            class_rows[emotion] += 1
            speaker_rows[spk_index] += 1
            rows.append(_Row(i, c, wav_id, text, spelled_situation, tuple(votes), tuple(levels), spk, ses,
                             emotion, cue, prosody))
        c += 1
    return rows


# ==============================================================================================
# Files


def _stamp(size, seed, voice, words, both, num_speakers, sample_rate) -> dict:
    return {
        "generator": "zoo.data.synthetic", "version": FORMAT_VERSION, "size": int(size), "seed": int(seed),
        "voice": float(voice), "words": float(words), "both": float(both),
        "num_speakers": int(num_speakers), "sample_rate": int(sample_rate),
    }


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _args_of(data: dict | None) -> dict | None:
    return None if data is None else data.get("args")


def _complete(out: Path, stamp: dict) -> bool:
    if _args_of(_read_json(out / STAMP_NAME)) != stamp:
        return False
    if not (out / CSV_NAME).is_file() or not (out / META_NAME).is_file():
        return False
    wav_dir = out / WAV_DIR
    return wav_dir.is_dir() and sum(1 for p in wav_dir.iterdir() if p.suffix == ".wav") >= stamp["size"]


def _cli_command(stamp: dict) -> str:
    return (f"python -m zoo synth --out <this folder> --size {stamp['size']} --seed {stamp['seed']} "
            f"--voice {stamp['voice']:g} --words {stamp['words']:g} --both {stamp['both']:g} "
            f"--speakers {stamp['num_speakers']}"
            + ("" if stamp["sample_rate"] == 48000 else f" --sample-rate {stamp['sample_rate']}"))


def _readme(stamp: dict, rows: list[_Row], seconds: float) -> str:
    by_class = Counter(r.emotion for r in rows)
    by_cue = Counter(r.cue for r in rows)
    speakers = sorted({r.speaker for r in rows}, key=lambda s: s.id)
    sp = ", ".join(f"{s.id} ({s.gender}, {s.age}, {s.f0:.0f} Hz)" for s in speakers)
    return f"""# Synthetic AI Hub KETI-02-002-style corpus

A deterministic, synthetic Korean emotional speech corpus laid out like the AI Hub
"multimodal emotion dialogues" (KETI-02-002) releases, made by `zoo.data.synthetic` for tests,
demos and smoke runs. It is **not** real speech: a formant synthesiser reads Korean sentences,
and the emotion is carried by the words, by the prosody (after Murray & Arnott), or by both.

Made with:

    {_cli_command(stamp)}

or `zoo.data.synthetic.generate(out, size={stamp['size']}, seed={stamp['seed']}, voice={stamp['voice']:g}, words={stamp['words']:g}, both={stamp['both']:g}, num_speakers={stamp['num_speakers']}, sample_rate={stamp['sample_rate']})`.
The same arguments write the same bytes.

## Files

- `{CSV_NAME}`: cp949, the AI Hub header verbatim (`{",".join(HEADER)}`).
  `wav_id` is an ObjectId (first 8 hex digits = Unix time; rows of a conversation are seconds
  apart, conversations minutes to hours apart). `상황` is the conversation's scripted situation,
  not the label; the five `N번 감정` columns are annotator votes (sometimes disagreeing, sometimes
  lower- or upper-case), `N번 감정세기` their intensity 0-2.
- `{WAV_DIR}/{{wav_id}}.wav`: {stamp['sample_rate']} Hz, mono, PCM 16-bit, 2-6 s.
- `{META_NAME}` (UTF-8): `wav_id,speaker,emotion,cue`: the simulated speaker, the true rendered
  emotion, and the cue: `voice` = neutral words with emotional prosody, `words` = emotional
  words with neutral prosody, `both` = both. Neutral rows are neutral in words and voice.

## Contents

- {len(rows)} utterances, {seconds / 60:.1f} minutes of audio, {len({r.conversation for r in rows})} conversations
- true emotions: {", ".join(f"{e} {by_class.get(e, 0)}" for e in AIHUB_EMOTIONS)}
- cues: {", ".join(f"{c} {by_cue.get(c, 0)}" for c in CUES)}
- speakers: {sp}
"""


def _default_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def _prepare(out: Path, stamp: dict, overwrite: bool) -> bool:
    """Check OUT; return True when it already holds this corpus (nothing to do)."""
    if out.exists() and not out.is_dir():
        raise ZooUserError(f"synthetic corpus: {out} exists and is not a folder; choose another --out")
    if not out.exists():
        return False
    if not overwrite and _complete(out, stamp):
        return True
    entries = list(out.iterdir())
    if not entries or overwrite:
        return False
    old = _args_of(_read_json(out / STAMP_NAME)) or _args_of(_read_json(out / PARTIAL_NAME))
    if old == stamp:
        log.warning("synthetic corpus in %s is incomplete (an interrupted run?); writing it again", out)
        return False
    if old is not None:
        diff = ", ".join(f"{k}: {old.get(k)!r} -> {v!r}" for k, v in stamp.items() if old.get(k) != v)
        what = f"a synthetic corpus made with other arguments ({diff})"
    else:
        shown = ", ".join(sorted(p.name for p in entries)[:5]) + (", ..." if len(entries) > 5 else "")
        what = f"files that are not a synthetic corpus ({shown})"
    raise ZooUserError(
        f"synthetic corpus: {out} already holds {what}. Choose an empty or new --out folder, or "
        "pass overwrite=True (--overwrite) to replace the corpus files there.")


def _clear(out: Path) -> None:
    """Remove the files a previous corpus wrote (only those; other files are left alone)."""
    for name in (STAMP_NAME, PARTIAL_NAME, CSV_NAME, META_NAME, README_NAME):
        p = out / name
        if p.is_file():
            p.unlink()
    wav_dir = out / WAV_DIR
    if wav_dir.is_dir():
        for p in wav_dir.iterdir():
            if p.suffix == ".wav" and p.is_file():
                p.unlink()


def _generate(out, size, seed, voice, words, both, num_speakers, sample_rate, overwrite,
              workers) -> tuple[Path, bool, list[_Row] | None, float]:
    out = Path(out).expanduser()
    for name, value in (("size", size), ("seed", seed), ("num_speakers", num_speakers),
                        ("sample_rate", sample_rate)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ZooUserError(f"synthetic corpus: {name} must be an integer, got {value!r}")
    if seed < 0:
        raise ZooUserError(f"synthetic corpus: seed must be >= 0, got {seed}")
    if size < 1:
        raise ZooUserError(f"synthetic corpus: size must be >= 1, got {size}")
    if num_speakers < 1:
        raise ZooUserError(f"synthetic corpus: num_speakers must be >= 1, got {num_speakers}")
    if sample_rate < 8000:
        raise ZooUserError(f"synthetic corpus: sample_rate must be >= 8000 Hz, got {sample_rate}")
    fr = (voice, words, both)
    if any(not isinstance(f, (int, float)) or not math.isfinite(f) or f < 0 for f in fr):
        raise ZooUserError(f"synthetic corpus: cue fractions must be non-negative numbers, got "
                           f"voice={voice!r}, words={words!r}, both={both!r}")
    if abs(sum(fr) - 1.0) > 1e-6:
        raise ZooUserError(f"synthetic corpus: cue fractions voice + words + both must sum to 1, got "
                           f"{voice:g} + {words:g} + {both:g} = {sum(fr):g}")
    stamp = _stamp(size, seed, voice, words, both, num_speakers, sample_rate)
    # parallel fits (an ablation's --jobs, a SLURM array) may ask for the same corpus at once:
    # one process writes it, the others wait and then find it complete
    with _corpus_lock(out):
        return _write(out, stamp, size, seed, fr, num_speakers, sample_rate, overwrite, workers)


@contextlib.contextmanager
def _corpus_lock(out: Path):
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock (run one generator at a time)
        yield
        return
    with open(out.parent / f".{out.name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write_meta(out: Path, rows: list[_Row], seed: int) -> None:
    tmp = out / (META_NAME + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(META_HEADER)
        for r in rows:
            d = utterance_dims(r.emotion, r.prosody, r.speaker, seed, r.index)
            w.writerow([r.wav_id, r.speaker.id, r.emotion, r.cue, f"{d['arousal']:.4f}", f"{d['valence']:.4f}"])
    os.replace(tmp, out / META_NAME)  # a reader never sees half a file


def _upgrade_meta(out: Path, size, seed, fr, num_speakers) -> None:
    """A corpus written before the meta sidecar had arousal/valence gets them (the plan is
    redrawn, no audio is touched: the wavs and the label CSV stay byte for byte)."""
    with open(out / META_NAME, encoding="utf-8", newline="") as f:
        header = next(csv.reader(f), [])
    if tuple(header) != META_HEADER:
        log.info("synthetic corpus %s: adding arousal/valence to %s", out, META_NAME)
        _write_meta(out, _plan(size, seed, fr, num_speakers), seed)


def _write(out: Path, stamp: dict, size, seed, fr, num_speakers, sample_rate, overwrite,
           workers) -> tuple[Path, bool, list[_Row] | None, float]:
    if _prepare(out, stamp, overwrite):
        _upgrade_meta(out, size, seed, fr, num_speakers)
        return out, True, None, float((_read_json(out / STAMP_NAME) or {}).get("seconds", 0.0))
    out.mkdir(parents=True, exist_ok=True)
    _clear(out)
    (out / PARTIAL_NAME).write_text(json.dumps({"args": stamp}, indent=1) + "\n", encoding="utf-8")
    rows = _plan(size, seed, fr, num_speakers)
    wav_dir = out / WAV_DIR
    wav_dir.mkdir(exist_ok=True)
    jobs = [(r.index, str(wav_dir / f"{r.wav_id}.wav"), r.text, r.prosody, r.speaker, r.session, seed,
             sample_rate) for r in rows]
    workers = _default_workers() if workers is None else max(1, int(workers))
    workers = min(workers, max(1, len(jobs) // 16))
    # ~60 ms of one core per utterance: say what is happening before a minute of silence
    log.info("generating the synthetic corpus: %d utterances into %s (about %d s on %d "
                                  "process(es); cached afterwards) ...", size, out,
                                  max(1, round(0.06 * size / workers)), workers)
    from tqdm.auto import tqdm

    bar = dict(total=len(jobs), desc="synthetic corpus", unit="utt", leave=False,
               disable=not sys.stderr.isatty())
    if workers > 1:
        import multiprocessing as mp

        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ctx.Pool(workers) as pool:
            lengths = dict(tqdm(pool.imap_unordered(_render_job, jobs, chunksize=8), **bar))
    else:
        lengths = dict(tqdm(map(_render_job, jobs), **bar))
    seconds = sum(lengths.values()) / sample_rate

    with open(out / CSV_NAME, "w", encoding="cp949", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for r in rows:
            cells = [r.wav_id, r.text, r.situation]
            for v, lv in zip(r.votes, r.intensities):
                cells += [v, lv]
            w.writerow(cells + [r.speaker.age, r.speaker.gender])
    _write_meta(out, rows, seed)
    (out / README_NAME).write_text(_readme(stamp, rows, seconds), encoding="utf-8")
    (out / STAMP_NAME).write_text(json.dumps({"args": stamp, "seconds": round(seconds, 3)}, indent=1) + "\n",
                                  encoding="utf-8")
    (out / PARTIAL_NAME).unlink(missing_ok=True)
    return out, False, rows, seconds


def generate(out, size: int = 400, seed: int = 0, *, voice: float = 0.4, words: float = 0.3,
             both: float = 0.3, num_speakers: int = 8, sample_rate: int = 48000, overwrite: bool = False,
             workers: int | None = None) -> Path:
    """Write a synthetic AI Hub KETI-02-002-style corpus into ``out``; return the folder.

    size: utterances; seed: everything follows from it (same arguments -> same bytes);
    voice / words / both: fractions of rows whose emotion is in the prosody only, the words only,
    or both (they must sum to 1); num_speakers: simulated speakers (alternately female and male,
    ages 20-60); sample_rate: of the wavs (the real corpus: 48000). If ``out`` already holds a
    complete corpus made with the same arguments it is returned untouched; if it holds anything
    else a :class:`~zoo.errors.ZooUserError` is raised unless ``overwrite`` (which replaces the
    corpus files and leaves other files alone). ``workers``: processes rendering the wavs
    (default: the usable CPUs, at most 8); the output does not depend on it.
    """
    return _generate(out, size, seed, voice, words, both, num_speakers, sample_rate, overwrite, workers)[0]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m zoo synth --out DIR [--size N] [--seed S] ...``: write a synthetic corpus."""
    p = argparse.ArgumentParser(
        prog="zoo synth",
        description="Write a deterministic synthetic Korean emotional speech corpus in the AI Hub "
                    "KETI-02-002 layout (cp949 CSV + 48 kHz wavs + a meta sidecar).")
    p.add_argument("--out", required=True, help="output folder (created; reused when it already holds "
                                                "the same corpus)")
    p.add_argument("--size", type=int, default=400, help="number of utterances (default: 400)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--voice", type=float, default=0.4,
                   help="fraction of rows with emotional prosody and neutral words (default: 0.4)")
    p.add_argument("--words", type=float, default=0.3,
                   help="fraction of rows with emotional words and neutral prosody (default: 0.3)")
    p.add_argument("--both", type=float, default=0.3,
                   help="fraction of rows with emotional words and prosody (default: 0.3)")
    p.add_argument("--speakers", type=int, default=8, help="number of simulated speakers (default: 8)")
    p.add_argument("--sample-rate", type=int, default=48000,
                   help="sample rate of the wavs in Hz (default: 48000, as the real corpus)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes rendering audio (default: usable CPUs, at most 8)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the corpus files in --out even if they were made with other arguments")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    path, cached, rows, seconds = _generate(a.out, a.size, a.seed, a.voice, a.words, a.both, a.speakers,
                                            a.sample_rate, a.overwrite, a.workers)
    if cached:
        print(f"synthetic corpus up to date: {path} ({a.size} utterances, seed {a.seed}); nothing written")
    else:
        counts = Counter(r.emotion for r in rows)
        print(f"wrote {len(rows)} utterances ({seconds / 60:.1f} min of audio, "
              f"{len({r.speaker.id for r in rows})} speakers, "
              + " ".join(f"{e}={counts.get(e, 0)}" for e in AIHUB_EMOTIONS)
              + f") to {path} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
