"""The Korean emotional TTS sample (emotiontts_open_db layout): speakers reading scripts in four
emotions, 22,050 Hz.

Layout: speaker folders, possibly grouped (``emotional-to-emotional/nea/``,
``plain-to-emotional/ema/``, ...), each with ``wav/``, ``script/`` and ``transcript/`` (UTF-8
with BOM). The file number encodes the emotion. The corpus README says 00001-00100 neutral,
00101-00200 happy, 00201-00300 angry, 00301-00400 sad, but the transcripts and the acoustics say
**00201-00300 sad and 00301-00400 angry**: that is the default (``emotion_ranges``), and the
map is an option. Transcripts are read from ``transcript/<stem>.txt`` or from list files in
``transcript/`` whose lines start with the file's stem or number (``nea00001|...``,
``00001<TAB>...``); ``script/`` is the fallback.

Only the standard library is imported.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from zoo.data.corpora.base import Corpus, CorpusInfo, decode_text, wav_files
from zoo.data.utterance import Utterance
from zoo.errors import CorpusError, ProblemLog
from zoo.ranges import PositiveInt

log = logging.getLogger("zoo")

#: the default emotion of each file-number range (inclusive); see the module docstring
DEFAULT_RANGES: dict[str, list[int]] = {"neutral": [1, 100], "happy": [101, 200], "sad": [201, 300],
                                        "angry": [301, 400]}
NUMBER = re.compile(r"(\d+)$")
LINE = re.compile(r"^\s*(?P<key>[A-Za-z]*\d+)(?:\.wav)?\s*[|\t:,]\s*(?P<text>.+?)\s*$|^\s*(?P<key2>[A-Za-z]*\d+)\s+(?P<text2>.+?)\s*$")


def _speaker_dirs(root: Path) -> list[Path]:
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (d / "wav").is_dir():
            out.append(d)
        else:
            out += sorted(s for s in d.iterdir() if s.is_dir() and (s / "wav").is_dir())
    return out


def _texts(folder: Path) -> dict[str, str]:
    """stem or number -> text from the .txt files of a transcript/ or script/ folder."""
    out: dict[str, str] = {}
    if not folder.is_dir():
        return out
    for f in sorted(folder.glob("*.txt")):
        if f.name.startswith("."):
            continue
        text, _ = decode_text(f.read_bytes(), f)
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if NUMBER.search(f.stem) and len(lines) == 1 and not LINE.match(lines[0]):
            out[f.stem.lower()] = lines[0].strip()  # one file per utterance
            continue
        for ln in lines:
            m = LINE.match(ln)
            if m:
                key = (m["key"] or m["key2"]).lower()
                out.setdefault(key, (m["text"] or m["text2"]).strip())
    return out


class KoreanTTS(Corpus, name="korean_tts"):
    """Korean emotional TTS sample (emotiontts_open_db layout): file numbers encode 4 emotions.

    Args:
        root: The folder holding the speaker folders (each with ``wav/``), or folders of them
            (``emotional-to-emotional/``, ``plain-to-emotional/``).
        emotion_ranges: Emotion -> [first, last] file number (inclusive). Default: 1-100 neutral,
            101-200 happy, 201-300 sad, 301-400 angry (what the transcripts and acoustics say;
            the corpus README swaps sad and angry). Files outside every range are skipped and
            counted.
    """

    info = CorpusInfo(
        title="Korean emotional TTS sample", language="Korean",
        size="speakers x 400 sentences (emotiontts_open_db)", classes="4: neutral, happy, sad, angry",
        speakers="the speaker folders (nea, ema, ...)",
        protocol="speaker-independent group split (speaker folder)",
        source="github.com/emotiontts/emotiontts_open_db (CC BY-NC-SA 4.0)",
        config="configs/data/korean_tts.yaml")

    def __init__(self, root: str, emotion_ranges: dict[str, list[PositiveInt]] | None = None):
        self.root = root
        self.emotion_ranges = emotion_ranges
        ranges = emotion_ranges or DEFAULT_RANGES
        for e, r in ranges.items():
            if len(r) != 2 or r[0] > r[1]:
                raise CorpusError(f"korean_tts emotion_ranges[{e!r}] must be [first, last], got {r!r}")
        self._ranges = {e: (int(r[0]), int(r[1])) for e, r in ranges.items()}

    @property
    def default_class_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self._ranges)

    def _emotion(self, number: int) -> str | None:
        for e, (lo, hi) in self._ranges.items():
            if lo <= number <= hi:
                return e
        return None

    def load(self, problems: ProblemLog) -> list[Utterance]:
        skipped = self.new_skip_log()
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise CorpusError(f"korean_tts root {str(root)!r} does not exist (or is not a folder); give the "
                              "folder holding the speaker folders (each with wav/, script/, transcript/)")
        speakers = _speaker_dirs(root)
        if not speakers and (root / "wav").is_dir():
            speakers = [root]  # one speaker folder given
        if not speakers:
            raise CorpusError(f"korean_tts root {root}: no speaker folder with a wav/ folder in it or one level "
                              "below (expected e.g. emotional-to-emotional/nea/wav/)")
        utts = []
        for spk in speakers:
            texts = _texts(spk / "transcript")
            scripts = _texts(spk / "script")
            for p in wav_files(spk / "wav", skipped):
                m = NUMBER.search(p.stem)
                if m is None:
                    problems.add(p, "no file number in the name (expected e.g. nea00001.wav)")
                    continue
                number = int(m.group(1))
                emotion = self._emotion(number)
                if emotion is None:
                    skipped.add("file number outside every emotion range", p.name)
                    continue
                key, num = p.stem.lower(), m.group(1)
                text = texts.get(key) or texts.get(num) or texts.get(str(number)) \
                    or scripts.get(key) or scripts.get(num) or scripts.get(str(number))
                if text is None:
                    skipped.add("no transcript (kept without one)", p.name)
                utts.append(Utterance(id=f"{spk.name}/{p.stem}", audio=str(p.resolve()), text=text,
                                      label=emotion, speaker=spk.name,
                                      meta={"number": number, "group": spk.parent.name if spk != root else None}))
        if not utts and not problems.items:
            raise CorpusError(f"korean_tts root {root}: no wav files in {', '.join(s.name for s in speakers)}")
        log.info("korean_tts %s: %d file(s), %d speaker(s)%s", root, len(utts), len({u.speaker for u in utts}),
                 f"; skipped {skipped}" if skipped.counts else "")
        return utts
