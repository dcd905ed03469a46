"""RAVDESS (Livingstone & Russo, 2018), speech part: 24 actors, 8 emotions, 1,440 files.

Layout: ``Actor_XX/MM-VV-EE-II-SS-RR-AA.wav`` (``Audio_Speech_Actors_01-24.zip`` unpacked), e.g.
``Actor_01/03-01-05-02-01-01-01.wav``:

* MM modality (03 audio-only), VV vocal channel (01 speech, 02 song);
* EE emotion: 01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust,
  08 surprised;
* II intensity 01 normal, 02 strong (neutral has no strong);
* SS statement 01 "Kids are talking by the door", 02 "Dogs are sitting by the door";
* RR repetition 01/02; AA actor 01-24 (odd male, even female) = the speaker.

48 kHz, 16-bit; a few files are stereo (the DataModule mixes them to mono). Some public copies
also hold the song part (``03-02-...``, ``Audio_Song_Actors_01-24``): skipped and counted unless
``include_song``. Files whose name breaks the scheme are reported with the file named.

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

EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
            "06": "fearful", "07": "disgust", "08": "surprised"}
INTENSITY = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
NAME = re.compile(r"(?P<modality>\d\d)-(?P<channel>\d\d)-(?P<emotion>\d\d)-(?P<intensity>\d\d)-"
                  r"(?P<statement>\d\d)-(?P<repetition>\d\d)-(?P<actor>\d\d)")
ACTOR_DIR = re.compile(r"actor_(\d\d)", re.I)


def _has_actors(p: Path) -> bool:
    return p.is_dir() and any(ACTOR_DIR.fullmatch(d.name) and d.is_dir() for d in p.iterdir())


class RAVDESS(Corpus, name="ravdess"):
    """RAVDESS speech (``Actor_XX/03-01-EE-II-SS-RR-AA.wav``): 24 actors, 8 emotions.

    Args:
        root: The folder holding ``Actor_01/`` ... ``Actor_24/`` (a folder one level above or
            below it is found too).
        include_song: Also read the song part (``03-02-...``); it has no disgust or surprised.
    """

    default_class_names = tuple(EMOTIONS.values())
    info = CorpusInfo(
        title="RAVDESS", language="English (North American)", size="1,440 speech files (acted)",
        classes="8: " + ", ".join(EMOTIONS.values()), speakers="24 actors (12 female, 12 male)",
        protocol="speaker-independent group split (actor)",
        source="zenodo.org/record/1188976 (Audio_Speech_Actors_01-24.zip, CC BY-NC-SA 4.0)",
        config="configs/data/ravdess.yaml")

    def __init__(self, root: str, include_song: bool = False):
        self.root = root
        self.include_song = include_song

    def load(self, problems: ProblemLog) -> list[Utterance]:
        skipped = self.new_skip_log()
        root = find_root(self.root, "RAVDESS", _has_actors,
                         "the folder holding Actor_01/ ... Actor_24/ (Audio_Speech_Actors_01-24.zip unpacked)")
        utts = []
        for actor_dir in sorted(d for d in root.iterdir() if d.is_dir() and ACTOR_DIR.fullmatch(d.name)):
            folder_actor = ACTOR_DIR.fullmatch(actor_dir.name).group(1)
            for p in wav_files(actor_dir, skipped):
                m = NAME.fullmatch(p.stem)
                if m is None:
                    problems.add(p, "not a RAVDESS file name: expected MM-VV-EE-II-SS-RR-AA.wav, "
                                 "e.g. 03-01-05-02-01-01-01.wav")
                    continue
                if m["channel"] == "02" and not self.include_song:
                    skipped.add("song part (include_song: false)", p.name)
                    continue
                bad = []
                if m["modality"] != "03":
                    bad.append(f"modality {m['modality']} (audio-only files are 03)")
                if m["channel"] not in ("01", "02"):
                    bad.append(f"vocal channel {m['channel']} (01 speech, 02 song)")
                if m["emotion"] not in EMOTIONS:
                    bad.append(f"emotion code {m['emotion']} (01-08)")
                if m["intensity"] not in INTENSITY or (m["emotion"] == "01" and m["intensity"] == "02"):
                    bad.append(f"intensity {m['intensity']} (01 normal, 02 strong; neutral has no strong)")
                if m["statement"] not in STATEMENTS:
                    bad.append(f"statement {m['statement']} (01 or 02)")
                if m["actor"] != folder_actor:
                    bad.append(f"actor {m['actor']} in the folder of actor {folder_actor}")
                if bad:
                    problems.add(p, "bad RAVDESS file name: " + "; ".join(bad))
                    continue
                actor = m["actor"]
                utts.append(Utterance(
                    id=p.stem, audio=str(p.resolve()), text=STATEMENTS[m["statement"]],
                    label=EMOTIONS[m["emotion"]], speaker=actor,
                    meta={"gender": "male" if int(actor) % 2 else "female",
                          "intensity": INTENSITY[m["intensity"]], "statement": m["statement"],
                          "repetition": m["repetition"], "channel": "song" if m["channel"] == "02" else "speech"}))
        if not utts and not problems.items:
            raise CorpusError(f"RAVDESS root {root}: no RAVDESS wav files in its Actor_XX folders "
                              "(expected e.g. Actor_01/03-01-05-02-01-01-01.wav)"
                              + (f"; skipped {skipped}" if skipped.counts else ""))
        log.info("RAVDESS %s: %d utterance(s), %d actor(s)%s", root, len(utts),
                 len({u.speaker for u in utts}), f"; skipped {skipped}" if skipped.counts else "")
        return utts
