"""IEMOCAP (Busso et al., 2008): 5 sessions, 10 actors, improvised and scripted dialogues.

Layout (``IEMOCAP_full_release/``, the folder holding ``Session1`` ... ``Session5``):

* ``SessionN/sentences/wav/<dialog>/<utterance>.wav``;
* ``SessionN/dialog/EmoEvaluation/<dialog>.txt``: one block per utterance::

      [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]
      C-E2:<TAB>Neutral;<TAB>()
      C-F1:<TAB>Neutral; Frustration;<TAB>(curious)
      A-E3:<TAB>val 3; act 2; dom  2;<TAB>()

  the consensus category (neu hap exc ang sad fru sur fea dis oth xxx; xxx = no agreement),
  then valence, arousal, dominance on 1-5; below it each evaluator's categories (``C-...``,
  the soft label) and ratings (``A-...``);
* ``SessionN/dialog/transcriptions/<dialog>.txt``:
  ``Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.``

The speaker is the session plus the letter before the utterance number (``Ses01F_impro01_F000``
-> ``Ses01F``, the female actor of session 1): 10 speakers. ``session`` is ``Session1`` ...
``Session5`` (leave-one-session-out folds: ``split: {mode: kfold, group_by: session,
num_folds: 5}``). The field's usual setting is the default: 4 classes (neutral, happy + excited
merged, angry, sad: 5,531 utterances), improvised and scripted dialogues. Scripted dialogues
repeat their transcripts across sessions: the setup's leakage report counts them.

Only the standard library is imported.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Literal

from zoo.data.corpora.base import Corpus, CorpusInfo, decode_text, find_root, normalize_dims
from zoo.data.utterance import Utterance
from zoo.errors import CorpusError, ProblemLog
from zoo.ranges import IemocapSession

log = logging.getLogger("zoo")

CODES = {"neu": "neutral", "hap": "happy", "exc": "excited", "ang": "angry", "sad": "sad",
         "fru": "frustrated", "sur": "surprised", "fea": "fear", "dis": "disgust", "oth": "other"}
# the label sets: consensus code -> class name (codes not listed are skipped and counted)
LABEL_SETS = {
    "4class": {"neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad"},
    "all": dict(CODES),
}
# evaluator words (C-E1: Neutral; Frustration;) -> code, by prefix (spellings vary: "Neutral state")
EVALUATOR_WORDS = (("neutral", "neu"), ("happ", "hap"), ("excit", "exc"), ("ang", "ang"), ("sad", "sad"),
                   ("frus", "fru"), ("surp", "sur"), ("fear", "fea"), ("disg", "dis"), ("other", "oth"))
HEAD = re.compile(r"\[\s*(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\s*\]\s+(?P<id>\S+)\s+(?P<code>\w+)\s+"
                  r"\[\s*(?P<v>[\d.]+)\s*,\s*(?P<a>[\d.]+)\s*,\s*(?P<d>[\d.]+)\s*\]")
EVAL = re.compile(r"C-\S+:\s*(?P<labels>[^()]*)")
TRANSCRIPT = re.compile(r"(?P<id>Ses\d\d[FM]_\S+)\s+\[[^\]]*\]:\s?(?P<text>.*)")
SPEAKER = re.compile(r"(?P<ses>Ses\d\d)[FM]?_.*_(?P<letter>[FM])\d+$")


def _has_sessions(p: Path) -> bool:
    return p.is_dir() and any(re.fullmatch(r"Session\d", d.name) and d.is_dir() for d in p.iterdir())


def _evaluator_codes(labels: str) -> list[str]:
    out = []
    for word in (w.strip().lower() for w in labels.split(";")):
        code = next((c for prefix, c in EVALUATOR_WORDS if word.startswith(prefix)), None)
        if code:
            out.append(code)
    return out


class IEMOCAP(Corpus, name="iemocap"):
    """IEMOCAP (``Session1..5/``): 10 actors; categories, valence/arousal/dominance, evaluators.

    Args:
        root: ``IEMOCAP_full_release``, the folder holding ``Session1/`` ... ``Session5/`` (one
            level above or below it is found too).
        label_set: ``4class`` (neutral, happy = happy + excited, angry, sad: the field's usual
            setting, 5,531 utterances) or ``all`` (every consensus category but ``xxx``).
            Utterances outside the set are skipped and counted.
        improvised_only: Read only the improvised dialogues (``*_impro*``); scripted dialogues
            repeat their transcripts across sessions.
        sessions: Which sessions to read (1-5); null = all.
    """

    dims_scale = (1.0, 5.0)
    info = CorpusInfo(
        title="IEMOCAP", language="English", size="10,039 turns; 5,531 in the 4-class setting",
        classes="4: neutral, happy (+ excited), angry, sad (label_set: all for 10)",
        dimensions="valence, arousal, dominance (1-5)", speakers="10 actors in 5 sessions",
        protocol="leave-one-session-out, 5 folds (split.mode kfold, group_by session)",
        source="sail.usc.edu/iemocap (license form)", config="configs/data/iemocap.yaml")

    def __init__(self, root: str, label_set: Literal["4class", "all"] = "4class",
                 improvised_only: bool = False, sessions: list[IemocapSession] | None = None):
        if label_set not in LABEL_SETS:
            raise CorpusError(f"IEMOCAP label_set must be one of {', '.join(LABEL_SETS)}, got {label_set!r}")
        self.root = root
        self.label_set = label_set
        self.improvised_only = improvised_only
        self.sessions = sessions

    @property
    def default_class_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(dict.fromkeys(LABEL_SETS[self.label_set].values()))

    def load(self, problems: ProblemLog) -> list[Utterance]:
        skipped = self.new_skip_log()
        root = find_root(self.root, "IEMOCAP", _has_sessions,
                         "IEMOCAP_full_release, the folder holding Session1/ ... Session5/")
        mapping = LABEL_SETS[self.label_set]
        session_dirs = sorted(d for d in root.iterdir() if d.is_dir() and re.fullmatch(r"Session\d", d.name))
        if self.sessions:
            session_dirs = [d for d in session_dirs if int(d.name[-1]) in set(self.sessions)]
        utts: list[Utterance] = []
        annotated: set[str] = set()
        wav_index: dict[str, Path] = {}
        for sdir in session_dirs:
            wav_root = sdir / "sentences" / "wav"
            if wav_root.is_dir():
                for p in wav_root.rglob("*.wav"):
                    if not p.name.startswith("."):
                        wav_index[p.stem] = p
            texts: dict[str, str] = {}
            tdir = sdir / "dialog" / "transcriptions"
            for tf in sorted(tdir.glob("*.txt")) if tdir.is_dir() else []:
                if tf.name.startswith("."):
                    continue
                text, _ = decode_text(tf.read_bytes(), tf)
                for line in text.splitlines():
                    m = TRANSCRIPT.match(line.strip())
                    if m:
                        texts[m["id"]] = m["text"].strip()
            edir = sdir / "dialog" / "EmoEvaluation"
            eval_files = sorted(f for f in edir.glob("*.txt") if not f.name.startswith(".")) if edir.is_dir() else []
            if not eval_files:
                problems.add(edir, "no EmoEvaluation/<dialog>.txt files (the labels) in this session")
            for ef in eval_files:
                if self.improvised_only and "_impro" not in ef.stem:
                    continue
                text, _ = decode_text(ef.read_bytes(), ef)
                current = None
                for n, line in enumerate(text.splitlines(), start=1):
                    s = line.strip()
                    m = HEAD.match(s)
                    if m:
                        current = self._utterance(m, ef, n, sdir.name, texts, wav_index, mapping,
                                                  problems, skipped, annotated)
                        if current is not None:
                            utts.append(current)
                        continue
                    if current is not None:
                        e = EVAL.match(s)
                        if e:
                            current.votes_raw.append(_evaluator_codes(e["labels"]))  # type: ignore[attr-defined]
                    if s.startswith("[") and not m:
                        problems.add(ef, f"not an IEMOCAP label line: {s[:60]!r} (expected "
                                     "[start - end]<TAB>id<TAB>code<TAB>[v, a, d])", row=n)
        if not utts and not problems.items:
            raise CorpusError(f"IEMOCAP root {root}: no labelled utterances found in "
                              f"{', '.join(d.name for d in session_dirs) or 'no Session folder'} "
                              "(expected SessionN/dialog/EmoEvaluation/<dialog>.txt)")
        # soft labels from the evaluators' categories, mapped to the label set: each evaluator
        # weighs 1, spread over the distinct classes they named ("Frustration; Anger;" = 1/2 each)
        for u in utts:
            weights: Counter = Counter()
            for codes in u.votes_raw:  # type: ignore[attr-defined]
                names = {mapping[c] for c in codes if c in mapping}
                for name in names:
                    weights[name] += 1 / len(names)
            total = sum(weights.values())
            if total:
                u.soft = {k: v / total for k, v in weights.items()}
            del u.votes_raw  # type: ignore[attr-defined]
        unlabelled = sorted(set(wav_index) - annotated)
        for stem in unlabelled:
            if self.improvised_only and "_impro" not in stem:
                continue
            if self.sessions and int(stem[3:5]) not in set(self.sessions):
                continue
            skipped.add("audio without a label line", stem)
        log.info("IEMOCAP %s: %d utterance(s), %d speaker(s), %d session(s)%s", root, len(utts),
                 len({u.speaker for u in utts}), len({u.session for u in utts}),
                 f"; skipped {skipped}" if skipped.counts else "")
        return utts

    def _utterance(self, m, ef, n, session, texts, wav_index, mapping, problems, skipped, annotated):
        uid, code = m["id"], m["code"].lower()
        annotated.add(uid)
        if self.improvised_only and "_impro" not in uid:
            return None
        sp = SPEAKER.match(uid)
        if sp is None:
            problems.add(ef, f"utterance id {uid!r} does not name a speaker (expected e.g. Ses01F_impro01_F000)", row=n)
            return None
        if code == "xxx":
            skipped.add("label xxx (no agreement)", uid)
            return None
        if code not in CODES:
            problems.add(ef, f"unknown category {m['code']!r} for {uid} (expected one of {', '.join(CODES)}, xxx)", row=n)
            return None
        if code not in mapping:
            skipped.add(f"label {code} (not in label_set {self.label_set})", uid)
            return None
        wav = wav_index.get(uid)
        if wav is None:
            problems.add(ef, f"audio not found: {session}/sentences/wav/{uid.rsplit('_', 1)[0]}/{uid}.wav", row=n)
            return None
        raw = {"valence": float(m["v"]), "arousal": float(m["a"]), "dominance": float(m["d"])}
        try:
            dims = normalize_dims(raw, self.dims_scale)
        except ValueError as e:
            problems.add(ef, f"{uid}: {e}", row=n)
            return None
        u = Utterance(id=uid, audio=str(wav.resolve()), text=texts.get(uid), label=mapping[code],
                      speaker=f"{sp['ses']}{sp['letter']}", session=session, dims=dims,
                      dims_scale=self.dims_scale,
                      meta={"category": code, "dims_raw": raw, "dialog": ef.stem, "row": n, "csv": str(ef),
                            "improvised": "_impro" in uid, "start": float(m["start"]), "end": float(m["end"])})
        u.votes_raw = []  # type: ignore[attr-defined]
        return u
