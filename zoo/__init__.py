"""zoo: a PyTorch Lightning model zoo for speech emotion recognition.

    import zoo
    model = zoo.load("audio-cnn-synth")      # a registry name or a .ckpt path
    model.predict("a.wav")                   # {"label": ..., "probs": {...}}
    zoo.list_checkpoints()

``import zoo`` is light: torch and Lightning load on first use.
"""
from __future__ import annotations

__version__ = "0.1.0"


def load(name_or_path, **kwargs):
    """A pretrained model ready for ``.predict`` / ``.predict_batch`` / ``.predict_long``
    (see ``zoo.inference.predictor.load`` for the options)."""
    from .inference.predictor import load as _load

    return _load(name_or_path, **kwargs)


def list_checkpoints(registry=None) -> list[str]:
    """Names of the pretrained checkpoints in the registry (``checkpoints/registry.yaml``)."""
    from .inference.registry import list_checkpoints as _list

    return _list(registry)


__all__ = ["load", "list_checkpoints", "__version__"]
