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

Modules: ``text`` (sentence pools), ``prosody`` (emotions, speakers, sessions, arousal/valence),
``hangul`` (text to syllables), ``articulation`` (formants and the timeline), ``render`` (the
synthesiser), ``plan`` (the rows and the annotators), ``writer`` (files, cache, lock, workers) and
``command`` (``python -m zoo synth``).

Only numpy is imported at package import; scipy.signal and soundfile are imported when audio is
rendered. Also runnable as ``python -m zoo.data.synth --out DIR`` (same options as
``python -m zoo synth``).
"""
from __future__ import annotations

from .command import main
from .plan import CONFUSIONS, CUES, N_ANNOTATORS, SITUATION_SPELLINGS
from .prosody import PROSODY, VALENCE, Prosody, Session, Speaker, prosody_arousal, utterance_dims
from .text import EMOTION_SENTENCES, FILLERS, NEUTRAL_SENTENCES
from .writer import (CSV_NAME, FORMAT_VERSION, HEADER, META_HEADER, META_NAME, PARTIAL_NAME, README_NAME,
                     STAMP_NAME, WAV_DIR, generate)

__all__ = [
    "generate", "main", "utterance_dims", "prosody_arousal",
    "HEADER", "META_HEADER", "CSV_NAME", "META_NAME", "WAV_DIR", "README_NAME", "STAMP_NAME", "PARTIAL_NAME",
    "FORMAT_VERSION", "CUES", "N_ANNOTATORS", "CONFUSIONS", "SITUATION_SPELLINGS",
    "EMOTION_SENTENCES", "NEUTRAL_SENTENCES", "FILLERS", "PROSODY", "VALENCE", "Prosody", "Speaker", "Session",
]
