"""Data: corpus adapters, the shared EmotionDataModule and its corpus subclasses.

Imports are lazy so light commands (``python -m zoo synth``) do not pay for Lightning.
"""
from importlib import import_module

_EXPORTS = {
    "Batch": ".batch",
    "EmotionDataModule": ".datamodule",
    "AIHubDataModule": ".corpus_modules",
    "SyntheticDataModule": ".corpus_modules",
    "ManifestDataModule": ".corpus_modules",
    "EmoDBDataModule": ".corpus_modules",
    "Utterance": ".utterance",
    "AIHUB_EMOTIONS": ".utterance",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'zoo.data' has no attribute {name!r}")
