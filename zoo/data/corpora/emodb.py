"""Berlin EmoDB (Burkhardt et al., Interspeech 2005): 10 actors, 10 German sentences, 7 classes.

Every file is named ``SSTTTEV.wav``, e.g. ``03a01Fa.wav``: speaker ``03``, text code ``a01``,
emotion letter ``F`` (German initial: Freude = happiness) and version ``a``. Emotion letters:

=====  ==============  ===========
W      Wut (anger)     ``Angry``
L      Langeweile      ``Boredom``
E      Ekel (disgust)  ``Disgust``
A      Angst (fear)    ``Fear``
F      Freude (joy)    ``Happiness``
T      Trauer (sad)    ``Sadness``
N      neutral         ``Neutral``
=====  ==============  ===========

Class names follow the AI Hub spelling where the two corpora share a class. The ten sentences
(text codes a01, a02, a04, a05, a07, b01, b02, b03, b09, b10) and the speakers' gender and age are
those of the EmoDB documentation (emodb.bilderbar.info); the sentences also match the syllable
label files (``silb/``) shipped with the corpus. When ``erkennung.txt`` (the perception test:
recognition and naturalness in %) is present its figures are added to ``meta``.

Only the standard library is imported.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from zoo.data.corpora.base import Corpus, CorpusInfo
from zoo.data.utterance import Utterance
from zoo.errors import CorpusError, ProblemLog

log = logging.getLogger("zoo")

EMOTIONS: dict[str, str] = {
    "W": "Angry", "L": "Boredom", "E": "Disgust", "A": "Fear",
    "F": "Happiness", "T": "Sadness", "N": "Neutral",
}
SENTENCES: dict[str, str] = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    # the documentation says "Stück Papier"; every recording (and its silb/ label) says "Blatt"
    "a05": "Das schwarze Blatt Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}
# speaker -> (gender, age)
SPEAKERS: dict[str, tuple[str, int]] = {
    "03": ("male", 31), "08": ("female", 34), "09": ("female", 21), "10": ("male", 32),
    "11": ("male", 26), "12": ("male", 30), "13": ("female", 32), "14": ("female", 35),
    "15": ("male", 25), "16": ("female", 31),
}
NAME = re.compile(r"(?P<speaker>\d{2})(?P<text>[ab]\d{2})(?P<emotion>[A-Z])(?P<version>[a-z])")


def _perception(path: Path) -> dict[str, tuple[float, float]]:
    """stem -> (recognition %, naturalness %) from erkennung.txt (latin-1, tabs, decimal comma)."""
    out: dict[str, tuple[float, float]] = {}
    for line in path.read_text(encoding="latin-1").splitlines()[1:]:
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) < 4 or not parts[1].lower().endswith(".wav"):
            continue
        try:
            out[parts[1][:-4]] = (float(parts[2].replace(",", ".")), float(parts[3].replace(",", ".")))
        except ValueError:
            continue
    return out


def load_emodb(root: str | Path, *, problems: ProblemLog) -> list[Utterance]:
    """Read Berlin EmoDB into :class:`Utterance` records, sorted by file name.

    ``root`` is the corpus folder (holding ``wav/``) or the ``wav`` folder itself. Each record:
    ``id`` = file stem, ``audio`` = absolute path, ``label`` = class name (see the table above),
    ``speaker`` = the two-digit code (``"03"``), ``text`` = the German sentence, ``meta``:
    ``text_code``, ``emotion_code``, ``version``, ``gender``, ``age`` and, when ``erkennung.txt``
    is there, ``recognition`` and ``naturalness`` (percent). A wav whose name does not follow the
    scheme, or has an unknown emotion letter, is recorded in ``problems`` and left out.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise CorpusError(f"EmoDB root {str(root)!r} does not exist; give the EmoDB folder (with wav/)")
    wav_dir = root / "wav" if (root / "wav").is_dir() else root
    if not wav_dir.is_dir():
        raise CorpusError(f"EmoDB root {root} is not a folder")
    files = sorted(p for p in wav_dir.iterdir() if p.suffix.lower() == ".wav" and p.is_file())
    if not files:
        raise CorpusError(f"no .wav files in {wav_dir}: point root at the EmoDB folder (with wav/)")
    perception = {}
    for candidate in (root / "erkennung.txt", wav_dir.parent / "erkennung.txt"):
        if candidate.is_file():
            perception = _perception(candidate)
            break
    utts = []
    for p in files:
        m = NAME.fullmatch(p.stem)
        if m is None:
            problems.add(p, "not an EmoDB file name: expected e.g. 03a01Fa.wav (speaker, text "
                         "code, emotion letter, version)")
            continue
        letter = m["emotion"]
        if letter not in EMOTIONS:
            problems.add(p, f"unknown emotion letter: {letter!r} (expected one of "
                         f"{', '.join(EMOTIONS)})")
            continue
        speaker, code = m["speaker"], m["text"]
        gender, age = SPEAKERS.get(speaker, (None, None))
        meta = {"text_code": code, "emotion_code": letter, "version": m["version"],
                "gender": gender, "age": age}
        if p.stem in perception:
            meta["recognition"], meta["naturalness"] = perception[p.stem]
        utts.append(Utterance(id=p.stem, audio=str(p.resolve()), text=SENTENCES.get(code),
                              label=EMOTIONS[letter], speaker=speaker, meta=meta))
    log.info("EmoDB %s: %d utterance(s), %d speaker(s)", wav_dir, len(utts),
             len({u.speaker for u in utts}))
    return utts


class EmoDB(Corpus, name="emodb"):
    """Berlin EmoDB (535 German clips, 10 speakers, 7 classes incl. Boredom).

    Args:
        root: The EmoDB folder (with ``wav/``), or the ``wav`` folder itself.
    """

    info = CorpusInfo(
        title="EmoDB", language="German", size="535 clips (acted)",
        classes="7: " + ", ".join(sorted(EMOTIONS.values())), speakers="10 (5 female, 5 male)",
        protocol="speaker-independent group split (configs/emodb.yaml: speakers 15, 16 test)",
        source="emodb.bilderbar.info (free download)", config="configs/data/emodb.yaml")

    def __init__(self, root: str):
        self.root = root

    def load(self, problems: ProblemLog) -> list[Utterance]:
        return load_emodb(self.root, problems=problems)
