"""The ``/stream`` WebSocket protocol of ``python -m zoo serve``: the close codes, the audio
formats, what a client may ask (:class:`Limits`, ``CLIENT_OPTIONS``), the first message's parsing, and
:class:`Violation`, the error a client that breaks a rule is told and closed with (docs/live.md).

Pure Python and numpy: nothing of the server (FastAPI, the model thread) is needed to check a message.
"""
import json
from dataclasses import dataclass

import numpy as np

# WebSocket close codes (RFC 6455, section 7.4.1)
NORMAL = 1000
UNSUPPORTED = 1003  # a message the protocol does not allow (bad JSON, bad frame, bad rate)
POLICY = 1008  # a limit: frames per second, stream length, idle timeout
TOO_BIG = 1009  # one message larger than max_message_bytes
INTERNAL = 1011  # the server failed (logged); other streams go on
TRY_LATER = 1013  # max_streams streams are open

FORMATS = {"pcm16": np.dtype("<i2"), "float32": np.dtype("<f4")}
MIN_RATE, MAX_RATE = 8000, 192000


@dataclass
class Limits:
    """What one client may ask of the server; every limit is a ``python -m zoo serve`` option."""

    max_streams: int = 8  #: WebSocket streams open at once (more: close 1013, try again later)
    max_message_bytes: int = 1 << 20  #: one WebSocket message (1 MiB: 16 s of 16 kHz pcm16)
    max_frames_per_second: float = 1000.0  #: messages a stream may send per second (bursts of 2x)
    max_stream_seconds: float = 3600.0  #: audio one stream may send in all
    idle_timeout: float = 30.0  #: seconds without a message before a stream is closed
    max_upload_bytes: int = 20_000_000  #: one POST /predict body
    max_upload_seconds: float = 120.0  #: duration of an uploaded file
    max_backlog_seconds: float = 20.0  #: audio received but not yet analysed before reading pauses
    batch_wait: float = 0.02  #: seconds the model thread waits for busy streams to join a batch


class Violation(Exception):
    """A client broke the protocol or a limit: told why, then closed with ``code``."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def _parse_config(m: dict) -> dict:
    text = m.get("text")
    if text is None:
        raise Violation(UNSUPPORTED, 'the first message must be JSON text such as {"sample_rate": 16000, '
                                     '"format": "pcm16"}, not binary audio')
    try:
        cfg = json.loads(text)
    except ValueError as e:
        raise Violation(UNSUPPORTED, f"the first message is not JSON ({e}): send "
                                     '{"sample_rate": 16000, "format": "pcm16"}') from None
    if not isinstance(cfg, dict):
        raise Violation(UNSUPPORTED, 'the first message must be a JSON object such as {"sample_rate": 16000, '
                                     '"format": "pcm16"}')
    unknown = set(cfg) - {"sample_rate", "format", "options", "type"}
    if unknown:
        raise Violation(UNSUPPORTED, f"unknown keys in the first message: {sorted(unknown)} "
                                     "(known: sample_rate, format, options)")
    sr = cfg.get("sample_rate")
    if isinstance(sr, float) and sr.is_integer():
        sr = int(sr)  # a browser's AudioContext.sampleRate is a float: 48000.0
    if not isinstance(sr, int) or isinstance(sr, bool) or not MIN_RATE <= sr <= MAX_RATE:
        raise Violation(UNSUPPORTED, f"sample_rate must be a whole number of Hz from {MIN_RATE} to {MAX_RATE}, "
                                     f"got {cfg.get('sample_rate')!r}")
    fmt = cfg.get("format", "pcm16")
    if fmt not in FORMATS:
        raise Violation(UNSUPPORTED, f"format must be one of {sorted(FORMATS)} (little-endian, mono), got {fmt!r}")
    options = cfg.get("options") or {}
    if not isinstance(options, dict):
        raise Violation(UNSUPPORTED, "options must be a JSON object of zoo.stream options")
    return {"sample_rate": sr, "format": fmt, "options": options}


#: zoo.stream options a client may set in its first message, with the range each may take (the
#: others, such as asr, device or text, belong to the server's operator)
CLIENT_OPTIONS = {
    "threshold": (0.01, 0.99, False), "min_speech": (0.0, 10.0, False), "min_silence": (0.0, 10.0, False),
    "pad": (0.0, 2.0, False), "max_segment": (1.0, 30.0, False),  # bounds the audio a stream holds
    "hop": (0.25, 60.0, True), "smoothing": (0.1, 3600.0, True),  # (low, high, may be null)
}


def _check_options(options: dict) -> dict:
    unknown = sorted(set(options) - set(CLIENT_OPTIONS))
    if unknown:
        raise Violation(UNSUPPORTED, f"options not accepted here: {unknown} (a client may set "
                                     f"{', '.join(CLIENT_OPTIONS)})")
    for k, v in options.items():
        lo, hi, nullable = CLIENT_OPTIONS[k]
        if v is None and nullable:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise Violation(UNSUPPORTED, f"option {k} must be a number from {lo:g} to {hi:g}"
                                         f"{' or null' if nullable else ''}, got {v!r}")
    return options
