"""Corpus adapters: one module per corpus, each a registered :class:`Corpus` subclass.

Every module in this package is imported here, so a new adapter file is a new corpus (its
class is also exported by name: ``zoo.data.corpora.RAVDESS``). Standard library only.
"""
from __future__ import annotations

import importlib
import pkgutil

from zoo.data.corpora.base import Corpus, CorpusInfo, get_corpus, registry

__all__ = ["Corpus", "CorpusInfo", "get_corpus", "registry"]

for _m in pkgutil.iter_modules(__path__):
    if _m.name != "base" and not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")

for _cls in list(registry().values()):
    globals()[_cls.__name__] = _cls
    __all__.append(_cls.__name__)
del _m, _cls
