"""The corpus plan: conversations, ObjectIds, texts, cues and the simulated annotators' votes."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from zoo.data.corpora.aihub import AIHUB_EMOTIONS

from .prosody import Session, Speaker, _make_session, _make_speaker
from .text import EMOTION_SENTENCES, FILLERS, NEUTRAL_SENTENCES


CUES = ("voice", "words", "both")
N_ANNOTATORS = 5


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
