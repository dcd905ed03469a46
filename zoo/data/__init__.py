"""Data: corpus adapters (``zoo.data.corpora``) and the one EmotionDataModule that reads them.

Imports are lazy so light commands (``python -m zoo synth``) do not pay for Lightning.
"""
from importlib import import_module

_EXPORTS = {
    "Batch": ".batch",
    "EmotionDataModule": ".datamodule",
    "DataRequest": ".contract",
    "DataView": ".contract",
    "SplitOptions": ".splits",
    "Utterance": ".utterance",
    "AIHUB_EMOTIONS": ".corpora.aihub",
}

#: the per-corpus DataModules that were replaced by ``EmotionDataModule(corpus=...)``
REMOVED = {"AIHubDataModule": "AIHub", "SyntheticDataModule": "Synthetic",
           "ManifestDataModule": "Manifest", "EmoDBDataModule": "EmoDB"}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    if name in REMOVED:
        from .legacy import removed_message
        from ..errors import ZooUserError

        raise ZooUserError(removed_message(f"zoo.data.{name}"))
    raise AttributeError(f"module 'zoo.data' has no attribute {name!r}")
