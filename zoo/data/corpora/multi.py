"""Several corpora at once, with one label map: multi-corpus training.

::

    corpus:
      class_path: zoo.data.corpora.MultiCorpus
      init_args:
        label_map: 4class
        corpora:
          - {class_path: zoo.data.corpora.RAVDESS, init_args: {root: /data/ravdess}}
          - {class_path: zoo.data.corpora.CREMAD, init_args: {root: /data/CREMA-D}}

Ids, speakers, groups and sessions are prefixed with the corpus's name (``ravdess:01``), so two
corpora's speaker 01 never merge and no speaker crosses splits. Each utterance records its corpus
(``meta["corpus"]``): val/test report per-corpus metrics (``test/UA/ravdess``) beside the pooled
ones.

Only the standard library is imported.
"""
from __future__ import annotations

import dataclasses
from collections import Counter

from zoo.data.corpora.base import Corpus, CorpusInfo
from zoo.data.utterance import Utterance
from zoo.errors import CorpusError, ProblemLog


class MultiCorpus(Corpus, name="multi"):
    """A list of corpora trained on together, their labels mapped onto one shared class set.

    Args:
        corpora: The corpora (each ``{class_path: ..., init_args: ...}``).
        label_map: The shared classes: a shipped map (``4class``, ``aihub7``) or a YAML file.
    """

    exportable = False
    info = CorpusInfo(
        title="multi-corpus", language="any", size="the sum", classes="those of the label map",
        dimensions="those of the corpora", speakers="per corpus, kept apart (name:speaker)",
        protocol="a group split over all speakers; per-corpus val/test metrics",
        source="the corpora listed", config="configs/data/multi_4class.yaml")

    def __init__(self, corpora: list[Corpus], label_map: str):
        if not corpora:
            raise CorpusError("MultiCorpus needs at least one corpus in corpora")
        for c in corpora:
            if not isinstance(c, Corpus):
                raise CorpusError(f"MultiCorpus: {c!r} is not a corpus (give class_path and init_args)")
        self.corpora = list(corpora)
        self.label_map = label_map
        names = [c.name or type(c).__name__.lower() for c in self.corpora]
        seen: Counter = Counter()
        self.tags = []
        for n in names:
            seen[n] += 1
            self.tags.append(n if names.count(n) == 1 else f"{n}{seen[n]}")

    @property
    def title(self) -> str:
        return "multi-corpus (" + ", ".join(self.tags) + ")"

    def options(self) -> dict:
        return {"corpora": [{"name": c.name, **c.options()} for c in self.corpora], "label_map": self.label_map}

    def prepare(self) -> None:
        for c in self.corpora:
            c.prepare()

    def load(self, problems: ProblemLog) -> list[Utterance]:
        skipped = self.new_skip_log()
        out = []
        for tag, c in zip(self.tags, self.corpora):
            for u in c.load(problems):
                pre = lambda v: None if v is None else f"{tag}:{v}"  # noqa: E731
                out.append(dataclasses.replace(u, id=f"{tag}/{u.id}", speaker=pre(u.speaker), group=pre(u.group),
                                               session=pre(u.session), meta={**u.meta, "corpus": tag}))
            child = getattr(c, "skipped", None)
            if child is not None:
                for reason, n in child.counts.items():
                    skipped.counts[f"{tag}: {reason}"] = n
                    skipped.examples[f"{tag}: {reason}"] = child.examples.get(reason, [])
        return out
