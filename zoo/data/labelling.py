"""A corpus's rows as a labelled set for one class list: the exclude list, the label policy
(:func:`zoo.data.labels.apply_label_policy`), the label map, the class names and their spellings.
No audio is opened."""
from __future__ import annotations

import logging
from collections import Counter
from typing import Sequence

from ..errors import ProblemLog
from .corpora.base import Corpus
from .labels import TieBreak, apply_label_policy
from .rows import drop_excluded_problems, normalize_text, respell_labels, spellings
from .utterance import Utterance

log = logging.getLogger("zoo")


def problem_source(u: Utterance) -> str:
    """The file a problem with this utterance should name: its CSV/manifest, else its audio."""
    return u.meta.get("csv") or u.meta.get("manifest") or u.audio or u.id


def labelled_utterances(corpus: Corpus, problems: ProblemLog, *, tie_break: TieBreak, min_agreement: float,
                        label_map=None, class_names: Sequence[str] | None = None,
                        exclude: set[str] | None = None, exclude_file: str | None = None,
                        ) -> tuple[list[Utterance], list[str], Counter, int]:
    """``(kept, class_names, dropped, n_read)``: the corpus's utterances whose label is one of the
    class names (given, else the label map's, the corpus's own, or the labels found), the class
    names, the rows dropped per reason, and how many rows the corpus gave. A row with another label
    is a problem in ``problems``, which is checked here (it raises, or with ``on_error: skip``
    the drops are counted)."""
    title = corpus.title
    utts = [normalize_text(u) for u in corpus.load(problems)]
    n_read = len(utts)
    n_excluded = 0
    if exclude is not None:
        kept_ = [u for u in utts if u.id not in exclude and u.audio not in exclude]
        if len(kept_) < len(utts):
            log.info("%s: %d utterance(s) left out by the exclude list %s", title,
                     len(utts) - len(kept_), exclude_file)
        n_excluded = len(utts) - len(kept_)
        utts = kept_
    utts, dropped = apply_label_policy(utts, tie_break=tie_break, min_agreement=min_agreement, problems=problems)
    defaults = corpus.default_class_names
    if label_map is not None:
        from .label_map import apply_label_map

        utts, unmapped = apply_label_map(utts, label_map)
        dropped.update(unmapped)
        defaults = label_map.classes
    names = list(class_names) if class_names else list(defaults or spellings(utts))
    respelled = respell_labels(utts, names)
    if respelled:
        log.info("%s: %d label(s) matched to a class name by case and spacing (e.g. %s)",
                 title, sum(respelled.values()),
                 ", ".join(f"{a!r} -> {b!r}" for a, b in list(respelled)[:3]))
    known = set(names)
    kept = []
    for u in utts:
        if u.label in known:
            kept.append(u)
        else:
            problems.add(problem_source(u),
                         f"label {u.label!r} is not one of class_names {names}",
                         row=u.meta.get("row"), column="label")
    if exclude is not None:  # rows the reader refused, named "FILE, row N"
        n_excluded += drop_excluded_problems(problems, exclude)
    problems.check(f"{title}")  # raises, or (on_error=skip) reports the drops
    dropped = Counter(dropped)
    if n_excluded:
        dropped["excluded (exclude list)"] = n_excluded
    dropped.update(problems.counts())
    skipped = getattr(corpus, "skipped", None)  # files the adapter passed over on purpose
    if skipped is not None and skipped.counts:
        dropped.update(skipped.dropped())
        log.info("%s: skipped %s", title, skipped)
    return kept, names, dropped, n_read
