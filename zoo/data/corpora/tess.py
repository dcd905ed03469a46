"""TESS, the Toronto emotional speech set (Dupuis & Pichora-Fuller, 2010): 2 speakers, 200 words,
7 emotions, 2,800 files.

Layout: one folder per speaker and emotion, ``OAF_angry/OAF_back_angry.wav`` (speakers OAF and
YAF; ``SPEAKER_WORD_EMOTION.wav``; emotions angry, disgust, fear, happy, neutral, ps = pleasant
surprise, sad). Public copies spell the folders differently (``OAF_Fear``,
``YAF_pleasant_surprised``, ``OAF_Pleasant_surprise``), so the emotion is taken from the file
name (a folder that disagrees is counted, not obeyed) and the speaker from its prefix; a stray file whose prefix is cut (``OA_bite_neutral.wav``
in ``OAF_neutral/``) takes its speaker from the folder. Only the folders directly in the root
are read (some copies nest a second, identical copy of the corpus inside).

Recorded at 24,414 Hz; a few copies hold files at other rates, or AIFF data under a ``.wav``
name: the DataModule decodes by content (libsndfile reads the header), not by extension.

Only the standard library is imported.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from zoo.data.corpora.base import Corpus, CorpusInfo, find_root, wav_files
from zoo.data.utterance import Utterance
from zoo.errors import CorpusError, ProblemLog

log = logging.getLogger("zoo")

SPEAKERS = ("OAF", "YAF")
# spellings of the emotion in file and folder names -> class name
EMOTIONS = {
    "angry": "angry", "anger": "angry", "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "happy": "happy", "happiness": "happy",
    "neutral": "neutral", "ps": "pleasant_surprise", "pleasant_surprise": "pleasant_surprise",
    "pleasant_surprised": "pleasant_surprise", "surprise": "pleasant_surprise",
    "surprised": "pleasant_surprise", "sad": "sad", "sadness": "sad",
}
FOLDER = re.compile(r"(?P<speaker>[OY]AF)_(?P<emotion>.+)", re.I)


def _has_speaker_folders(p: Path) -> bool:
    return p.is_dir() and any(d.is_dir() and FOLDER.fullmatch(d.name) for d in p.iterdir())


def _emotion(tokens: list[str]) -> str | None:
    for k in (2, 1):  # "pleasant_surprised" before "surprised"
        if len(tokens) >= k:
            e = EMOTIONS.get("_".join(tokens[-k:]).lower())
            if e:
                return e
    return None


class TESS(Corpus, name="tess"):
    """TESS (``OAF_angry/OAF_back_angry.wav``): 2 speakers, 7 emotions, 2,800 files.

    Args:
        root: The folder holding the speaker_emotion folders (``OAF_angry/`` ...); one level
            above or below it is found too.
    """

    default_class_names = ("angry", "disgust", "fear", "happy", "neutral", "pleasant_surprise", "sad")
    info = CorpusInfo(
        title="TESS", language="English (Canadian)", size="2,800 files (200 words x 7 x 2)",
        classes="7: angry, disgust, fear, happy, neutral, pleasant_surprise, sad",
        speakers="2 (OAF aged 64, YAF aged 26; both female)",
        protocol="random split, stratified (two speakers: no speaker-independent split)",
        source="tspace.library.utoronto.ca/handle/1807/24487 (CC BY-NC-ND 4.0)",
        config="configs/data/tess.yaml")

    def __init__(self, root: str):
        self.root = root

    def load(self, problems: ProblemLog) -> list[Utterance]:
        skipped = self.new_skip_log()
        root = find_root(self.root, "TESS", _has_speaker_folders,
                         "the folder holding the speaker_emotion folders (OAF_angry/, YAF_sad/, ...)")
        utts, from_folder = [], []
        for folder in sorted(d for d in root.iterdir() if d.is_dir() and FOLDER.fullmatch(d.name)):
            fm = FOLDER.fullmatch(folder.name)
            folder_speaker = fm["speaker"].upper()
            folder_emotion = EMOTIONS.get(fm["emotion"].lower())
            for p in wav_files(folder, skipped):
                tokens = p.stem.split("_")
                emotion = _emotion(tokens)
                if len(tokens) < 3 or emotion is None:
                    problems.add(p, "not a TESS file name: expected SPEAKER_WORD_EMOTION.wav, e.g. "
                                 "OAF_back_angry.wav (emotions: angry disgust fear happy neutral ps sad)")
                    continue
                speaker = tokens[0].upper()
                if speaker not in SPEAKERS:
                    from_folder.append(p.name)  # e.g. OA_bite_neutral.wav: the prefix is cut
                    speaker = folder_speaker
                if folder_emotion is not None and folder_emotion != emotion:
                    # the file name is the label (folder spellings vary between copies); counted
                    skipped.add("file name and folder disagree (file name used, file kept)", f"{folder.name}/{p.name}")
                word = tokens[1].lower()
                utts.append(Utterance(id=f"{folder.name}/{p.stem}", audio=str(p.resolve()),
                                      text=f"Say the word {word}", label=emotion, speaker=speaker,
                                      meta={"word": word, "folder": folder.name}))
        if not utts and not problems.items:
            raise CorpusError(f"TESS root {root}: no wav files in its speaker_emotion folders "
                              "(expected e.g. OAF_angry/OAF_back_angry.wav)")
        if from_folder:
            log.info("TESS: %d file(s) with a cut speaker prefix took the speaker from their folder: %s",
                     len(from_folder), ", ".join(from_folder[:5]))
        self.speaker_from_folder = from_folder
        log.info("TESS %s: %d file(s), %d speaker(s)%s", root, len(utts), len({u.speaker for u in utts}),
                 f"; skipped {skipped}" if skipped.counts else "")
        return utts
