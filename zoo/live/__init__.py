"""Live emotion recognition, a layer above inference: ``segment`` (Silero VAD speech segments,
chunk-invariant), ``stream`` (``zoo.stream(model)``: chunks in, segment / partial / state events
out, through the one ``Predictor``), ``listen`` (``python -m zoo listen``: the microphone or a file
at real-time pace), ``evaluate`` (segmentation accuracy on joined test utterances) and ``serve``
(``python -m zoo serve``: HTTP and WebSocket; its wire protocol in ``protocol``, the one model thread
every stream shares in ``shared``).

Nothing heavy is imported here: numpy with the segmenter, onnxruntime / torch when a model loads.
"""
from __future__ import annotations


def stream(model, **options):
    """``zoo.live.stream.stream``: a live :class:`~zoo.live.stream.Stream` over a model."""
    from .stream import stream as _stream

    return _stream(model, **options)


__all__ = ["stream"]
