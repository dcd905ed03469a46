"""MSP-Podcast (Lotfian & Busso; release 1.9 and later): podcast segments, crowd-sourced labels.

Layout (the root holds ``Audios/`` and ``Labels/``):

* ``Audios/<FileName>`` (``MSP-PODCAST_0001_0008.wav``; found in any sub-folder of ``Audios/``);
* ``Labels/labels_consensus.csv``: ``FileName, EmoClass, EmoAct, EmoVal, EmoDom, SpkrID,
  Gender, Split_Set``. EmoClass: A angry, S sad, H happy, U surprise, F fear, D disgust,
  C contempt, N neutral, O other, X no agreement (O and X are dropped and counted unless
  ``keep_other``); EmoAct / EmoVal / EmoDom on 1-7 (normalised to [0, 1]); Split_Set ``Train``,
  ``Development``, ``Test1``, ``Test2`` (``Test3`` in later releases) is the official partition
  and the default split (``test_set`` picks the test set; rows of the other test sets are
  skipped and counted); ``SpkrID`` may be ``Unknown`` (no speaker);
* ``Labels/labels_detailed.csv`` (optional, later releases): one row per rater, ``FileName``,
  ``EmoClass_Major`` (the rater's primary emotion, spelled out: ``Angry``, ``Sad``, ``Happy``,
  ``Surprise``, ``Fear``, ``Disgust``, ``Contempt``, ``Neutral``, ``Other``; one-letter codes
  are accepted too), then secondary emotions and ratings. The raters' primary emotions become
  the soft label (``label_mode: soft``); votes for Other and unknown spellings are counted
  and left out of the distribution;
* ``Transcripts/<name>.txt`` (optional, later releases): the transcript.

Only the standard library is imported.
"""
from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path

from zoo.data.corpora.base import Corpus, CorpusInfo, decode_text, find_root, normalize_dims, walk
from zoo.data.utterance import Utterance
from zoo.errors import CorpusError, ProblemLog

log = logging.getLogger("zoo")

CLASSES = {"A": "angry", "S": "sad", "H": "happy", "U": "surprise", "F": "fear", "D": "disgust",
           "C": "contempt", "N": "neutral", "O": "other", "X": "no agreement"}
SPLITS = {"train": "train", "development": "val", "validation": "val", "dev": "val"}
REQUIRED = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Split_Set")
#: a rater's primary emotion in labels_detailed.csv, spelled out (or a one-letter code)
DETAILED = {"angry": "angry", "anger": "angry", "sad": "sad", "sadness": "sad", "happy": "happy",
            "happiness": "happy", "surprise": "surprise", "fear": "fear", "disgust": "disgust",
            "contempt": "contempt", "neutral": "neutral",
            **{k.lower(): v for k, v in CLASSES.items() if k not in ("O", "X")}}


def _looks_like(p: Path) -> bool:
    return (p / "Labels").is_dir() and (p / "Audios").is_dir()


class MSPPodcast(Corpus, name="msp_podcast"):
    """MSP-Podcast (``Audios/``, ``Labels/labels_consensus.csv``): 8 classes, arousal/valence/dominance.

    Args:
        root: The folder holding ``Audios/`` and ``Labels/`` (one level above or below it is
            found too).
        labels_file: The consensus labels, relative to ``Labels/``.
        test_set: The official test set used as the test split (``Test1``, ``Test2``,
            ``Test3``); rows of the other test sets are skipped and counted.
        keep_other: Keep EmoClass O (other) and X (no agreement) as classes ``other`` and
            ``no agreement`` (for dimensional models); dropped and counted by default.
        detailed_file: The per-rater labels, relative to ``Labels/``, read for soft labels
            when present; null: none.
    """

    dims_scale = (1.0, 7.0)
    default_class_names = ("angry", "sad", "happy", "surprise", "fear", "disgust", "contempt", "neutral")
    info = CorpusInfo(
        title="MSP-Podcast", language="English", size="v1.9: 55,283 segments; v1.11: 84,030",
        classes="8: angry, sad, happy, surprise, fear, disgust, contempt, neutral",
        dimensions="arousal, valence, dominance (1-7)", speakers="1,000+ (SpkrID; some Unknown)",
        protocol="the official partition (Split_Set: Train / Development / Test1)",
        source="ecs.utdallas.edu/research/researchgroups/msp-lab (academic license)",
        config="configs/data/msp_podcast.yaml")

    def __init__(self, root: str, labels_file: str = "labels_consensus.csv", test_set: str = "Test1",
                 keep_other: bool = False, detailed_file: str | None = "labels_detailed.csv"):
        self.root = root
        self.detailed_file = detailed_file
        self.labels_file = labels_file
        self.test_set = test_set
        self.keep_other = keep_other

    def load(self, problems: ProblemLog) -> list[Utterance]:
        skipped = self.new_skip_log()
        root = find_root(self.root, "MSP-Podcast", _looks_like, "the folder holding Audios/ and Labels/")
        labels = root / "Labels" / self.labels_file
        if not labels.is_file():
            raise CorpusError(f"MSP-Podcast: {labels} not found (labels_file: {self.labels_file}; "
                              "expected Labels/labels_consensus.csv)")
        audio: dict[str, str] = {}
        for folder, dirs, files in walk(root / "Audios"):
            for f in files:
                if f.lower().endswith(".wav") and not f.startswith("."):
                    audio.setdefault(f, os.path.join(folder, f))
        text, _ = decode_text(labels.read_bytes(), labels)
        reader = csv.reader(io.StringIO(text, newline=""))
        header = [h.replace("\ufeff", "").strip() for h in next(reader, [])]
        pos = {h.lower(): i for i, h in enumerate(header)}
        missing = [c for c in REQUIRED if c.lower() not in pos]
        if missing:
            raise CorpusError(f"{labels}: lacks the column(s) {', '.join(missing)} (found: {', '.join(header)})")
        transcripts = root / "Transcripts"
        soft = self._soft_labels(root, skipped)
        test_set = self.test_set.strip().lower()
        utts, seen, named = [], set(), set()
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            line = reader.line_num

            def cell(name: str) -> str:
                i = pos[name.lower()]
                return cells[i].strip() if i < len(cells) else ""
            name = cell("FileName")
            named.add(Path(name).stem)
            code = cell("EmoClass").upper()
            split_raw = cell("Split_Set")
            if code not in CLASSES:
                problems.add(labels, f"unknown EmoClass {cell('EmoClass')!r} (expected one of "
                             f"{', '.join(CLASSES)})", row=line, column="EmoClass")
                continue
            if code in ("O", "X") and not self.keep_other:
                skipped.add(f"EmoClass {code} ({CLASSES[code]})", name)
                continue
            key = split_raw.lower()
            if key.startswith("test"):
                if key != test_set:
                    skipped.add(f"{split_raw} rows (test_set: {self.test_set})", name)
                    continue
                split = "test"
            elif key in SPLITS:
                split = SPLITS[key]
            else:
                problems.add(labels, f"unknown Split_Set {split_raw!r} (expected Train, Development, "
                             "Test1, Test2, Test3)", row=line, column="Split_Set")
                continue
            if name in seen:
                problems.add(labels, f"duplicate FileName {name}", row=line, column="FileName")
                continue
            seen.add(name)
            path = audio.get(name) or audio.get(f"{name}.wav")
            if path is None:
                problems.add(labels, f"audio not found: Audios/{name}", row=line, column="FileName")
                continue
            raw = {}
            try:
                raw = {"arousal": float(cell("EmoAct")), "valence": float(cell("EmoVal")),
                       "dominance": float(cell("EmoDom"))}
                dims = normalize_dims(raw, self.dims_scale)
            except ValueError as e:
                problems.add(labels, f"bad rating: {e}", row=line)
                continue
            speaker = cell("SpkrID")
            stem = Path(name).stem
            text = None
            tfile = transcripts / f"{stem}.txt"
            if tfile.is_file():
                text = decode_text(tfile.read_bytes(), tfile)[0].strip() or None
            utts.append(Utterance(
                id=stem, audio=str(Path(path).resolve()), text=text, label=CLASSES[code],
                speaker=None if speaker.lower() in ("", "unknown") else speaker, split=split, dims=dims,
                dims_scale=self.dims_scale, soft=soft.get(stem),
                meta={"gender": cell("Gender") if "gender" in pos else None, "split_set": split_raw,
                      "dims_raw": raw, "csv": str(labels), "row": line}))
        if soft:
            log.info("MSP-Podcast: soft labels from %s for %d of %d segment(s)", self.detailed_file,
                     sum(u.soft is not None for u in utts), len(utts))
        orphans = sorted({Path(n).stem for n in audio} - named)
        for o in orphans:
            skipped.add("audio without a label row", o)
        if not utts and not problems.items:
            raise CorpusError(f"MSP-Podcast {labels}: no usable rows")
        log.info("MSP-Podcast %s: %d segment(s), %d speaker(s)%s", root, len(utts),
                 len({u.speaker for u in utts if u.speaker}), f"; skipped {skipped}" if skipped.counts else "")
        return utts

    def _soft_labels(self, root: Path, skipped) -> dict[str, dict[str, float]]:
        """Per segment (file stem), the distribution of the raters' primary emotions."""
        if not self.detailed_file:
            return {}
        path = root / "Labels" / self.detailed_file
        if not path.is_file():
            return {}
        text, _ = decode_text(path.read_bytes(), path)
        reader = csv.reader(io.StringIO(text, newline=""))
        header = [h.replace("\ufeff", "").strip().lower() for h in next(reader, [])]
        name_col = header.index("filename") if "filename" in header else None
        emo_col = next((header.index(c) for c in ("emoclass_major", "emoclass") if c in header), None)
        if name_col is None or emo_col is None:
            log.warning("MSP-Podcast %s: no FileName / EmoClass_Major column (found: %s); no soft labels",
                        path, ", ".join(header))
            return {}
        votes: dict[str, dict[str, int]] = {}
        for cells in reader:
            if len(cells) <= max(name_col, emo_col) or not cells[name_col].strip():
                continue
            stem = Path(cells[name_col].strip()).stem
            raw = cells[emo_col].strip()
            label = DETAILED.get(raw.lower())
            if label is None:
                skipped.add(f"{self.detailed_file}: rater label {raw!r} (not one of the 8 classes)", stem)
                continue
            counts = votes.setdefault(stem, {})
            counts[label] = counts.get(label, 0) + 1
        return {stem: {k: n / sum(c.values()) for k, n in c.items()} for stem, c in votes.items()}
