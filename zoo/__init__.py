"""zoo: a PyTorch Lightning model zoo for speech emotion recognition.

    import zoo
    model = zoo.load("audio-cnn-synth")      # a registry name or a .ckpt path
    model.predict("a.wav")                   # {"label": ..., "probs": {...}}
    s = zoo.stream("audio-cnn-synth")        # live: s.push(chunk, sample_rate=sr) -> events
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


def stream(model, **options):
    """A live stream over a model (registry name, checkpoint path or Predictor): ``push`` chunks
    of any size and rate, get ``segment`` / ``partial`` / ``state`` events (see ``zoo.live.stream``
    and docs/live.md)."""
    from .live.stream import stream as _stream

    return _stream(model, **options)


def list_checkpoints(registry=None) -> list[str]:
    """Names of the pretrained checkpoints in the registry (``checkpoints/registry.yaml``)."""
    from .inference.registry import list_checkpoints as _list

    return _list(registry)


__all__ = ["load", "stream", "list_checkpoints", "__version__"]
