"""CREMA-D (Cao et al., 2014): 91 actors, 12 sentences, 6 emotions, 7,442 clips.

Layout (the repository as cloned, or the AudioWAV folder on its own):

* ``AudioWAV/1001_DFA_ANG_XX.wav``: actor 1001-1091 (the speaker), sentence code (12 codes,
  each a fixed English sentence), emotion ``ANG DIS FEA HAP NEU SAD``, level ``LO MD HI XX``
  (XX = unspecified). 16 kHz mono.
* ``processedResults/tabulatedVotes.csv`` (optional): the crowd's votes per clip (columns
  ``A D F H N S`` = counts, ``fileName``); they become the soft label. A clip named more than
  once (the votes of several presentation modes) gets the counts summed.
* ``VideoDemographics.csv`` (optional): ``ActorID, Age, Sex, Race, Ethnicity`` -> ``meta``.

The hard label is the emotion the actor was asked to portray (the file name), as the field
reports CREMA-D. One published clip (``1076_MTI_SAD_XX``) has no audio signal: the DataModule's
audio validation finds it (``configs/data/cremad.yaml`` skips and counts it).

Only the standard library is imported.
"""
from __future__ import annotations

import csv
import io
import logging
import re
from collections import Counter
from pathlib import Path

from zoo.data.corpora.base import Corpus, CorpusInfo, decode_text, find_root, wav_files
from zoo.data.utterance import Utterance
from zoo.errors import CorpusError, ProblemLog

log = logging.getLogger("zoo")

EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
VOTE_LETTERS = {"A": "angry", "D": "disgust", "F": "fear", "H": "happy", "N": "neutral", "S": "sad"}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
SENTENCES = {
    "IEO": "It's eleven o'clock.", "TIE": "That is exactly what happened.",
    "IOM": "I'm on my way to the meeting.", "IWW": "I wonder what this is about.",
    "TAI": "The airplane is almost full.", "MTI": "Maybe tomorrow it will be cold.",
    "IWL": "I would like a new alarm clock.", "ITH": "I think I have a doctor's appointment.",
    "DFA": "Don't forget a jacket.", "ITS": "I think I've seen this before.",
    "TSI": "The surface is slick.", "WSI": "We'll stop in a couple of minutes.",
}
NAME = re.compile(r"(?P<actor>\d{4})_(?P<sentence>[A-Za-z]{3})_(?P<emotion>[A-Za-z]{3})_(?P<level>[A-Za-z]{2})")


def _has_audio(p: Path) -> bool:
    return (p / "AudioWAV").is_dir()


def _read_csv(path: Path) -> list[dict[str, str]]:
    text, _ = decode_text(path.read_bytes(), path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    return [{(k or "").strip().strip('"'): (v or "").strip() for k, v in row.items() if k is not None}
            for row in reader]


class CREMAD(Corpus, name="cremad"):
    """CREMA-D (``AudioWAV/1001_DFA_ANG_XX.wav``): 91 actors, 6 emotions, crowd soft labels.

    Args:
        root: The folder holding ``AudioWAV/`` (and, when present, ``processedResults/`` and
            ``VideoDemographics.csv``); one level above or below it is found too.
        soft_labels: Read the crowd votes of ``processedResults/tabulatedVotes.csv`` as soft
            labels when the file is there.
    """

    default_class_names = tuple(EMOTIONS.values())
    info = CorpusInfo(
        title="CREMA-D", language="English", size="7,442 clips (acted)",
        classes="6: " + ", ".join(EMOTIONS.values()), dimensions="-",
        speakers="91 actors (43 female, 48 male)", protocol="speaker-independent group split (actor)",
        source="github.com/CheyneyComputerScience/CREMA-D (ODbL; git-lfs)",
        config="configs/data/cremad.yaml")

    def __init__(self, root: str, soft_labels: bool = True):
        self.root = root
        self.soft_labels = soft_labels

    def load(self, problems: ProblemLog) -> list[Utterance]:
        skipped = self.new_skip_log()
        root = find_root(self.root, "CREMA-D", _has_audio,
                         "the folder holding AudioWAV/ (the CREMA-D repository as cloned)")
        demo: dict[str, dict] = {}
        demo_csv = root / "VideoDemographics.csv"
        if demo_csv.is_file():
            for row in _read_csv(demo_csv):
                actor = row.get("ActorID", "")
                if actor:
                    demo[actor] = {"age": int(row["Age"]) if row.get("Age", "").isdigit() else row.get("Age"),
                                   "gender": (row.get("Sex") or "").lower() or None}
        votes: dict[str, Counter] = {}
        votes_csv = root / "processedResults" / "tabulatedVotes.csv"
        repeated = 0
        if self.soft_labels and votes_csv.is_file():
            rows = _read_csv(votes_csv)
            if rows and not {"fileName", *VOTE_LETTERS} <= set(rows[0]):
                raise CorpusError(f"{votes_csv}: expected the columns fileName, A, D, F, H, N, S "
                                  f"(found {', '.join(rows[0])})")
            for line, row in enumerate(rows, start=2):
                stem = Path(row["fileName"]).stem
                try:
                    c = Counter({VOTE_LETTERS[k]: int(float(row[k] or 0)) for k in VOTE_LETTERS})
                except ValueError:
                    problems.add(votes_csv, f"bad vote count in {row}", row=line)
                    continue
                if stem in votes:
                    repeated += 1
                    votes[stem].update(c)
                else:
                    votes[stem] = c
        utts, unmatched = [], 0
        for p in wav_files(root / "AudioWAV", skipped):
            m = NAME.fullmatch(p.stem)
            emotion = m["emotion"].upper() if m else None
            if m is None or emotion not in EMOTIONS or m["level"].upper() not in LEVELS \
                    or m["sentence"].upper() not in SENTENCES:
                problems.add(p, "not a CREMA-D file name: expected ACTOR_SENTENCE_EMOTION_LEVEL.wav, e.g. "
                             "1001_DFA_ANG_XX.wav (sentences " + " ".join(SENTENCES) + "; emotions "
                             + " ".join(EMOTIONS) + "; levels " + " ".join(LEVELS) + ")")
                continue
            actor = m["actor"]
            soft = None
            if votes:
                c = votes.get(p.stem)
                if c is None:
                    unmatched += 1
                elif sum(c.values()) > 0:
                    total = sum(c.values())
                    soft = {k: n / total for k, n in c.items() if n}
            utts.append(Utterance(
                id=p.stem, audio=str(p.resolve()), text=SENTENCES[m["sentence"].upper()],
                label=EMOTIONS[emotion], speaker=actor, soft=soft,
                meta={"level": LEVELS[m["level"].upper()], "sentence": m["sentence"].upper(),
                      **demo.get(actor, {})}))
        if not utts and not problems.items:
            raise CorpusError(f"CREMA-D root {root}: no clips in AudioWAV/ (expected e.g. 1001_DFA_ANG_XX.wav)")
        extra = []
        if votes:
            found = {u.id for u in utts}
            orphans = sorted(set(votes) - found)
            extra.append(f"crowd votes for {len(utts) - unmatched} clip(s), {unmatched} clip(s) without votes, "
                         f"{len(orphans)} vote row(s) without audio" + (f" (e.g. {', '.join(orphans[:3])})" if orphans else "")
                         + (f", {repeated} repeated file name(s) summed" if repeated else ""))
            self.votes_report = {"clips_without_votes": unmatched, "votes_without_audio": len(orphans)}
        log.info("CREMA-D %s: %d clip(s), %d actor(s)%s", root, len(utts), len({u.speaker for u in utts}),
                 "; " + "; ".join(extra) if extra else "")
        return utts
