"""``python -m zoo listen --model X``: live emotion recognition from the microphone (or a file).

One line per speech segment as it ends (start-end, label, top probability, arousal / valence /
dominance when the model predicts them); while someone speaks, the provisional label of the
segment so far updates in place on one line (when stdout is a terminal). ``--file x.wav`` sends
a file through the same stream, at real-time pace with ``--realtime`` (what the tests use),
otherwise as fast as it goes. ``--jsonl`` prints every event as JSON instead.

The microphone needs ``sounddevice`` and the PortAudio library (``pip install sounddevice``;
Debian/Ubuntu: ``apt install libportaudio2``); both load only when the microphone is used.
"""
from __future__ import annotations

import argparse
import json
import logging
import queue
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence, TextIO

import numpy as np

from ..errors import ZooUserError

log = logging.getLogger("zoo")

EPILOG = """\
examples:
  python -m zoo listen --model audio-cnn-synth                   # the default microphone
  python -m zoo listen --model audio-cnn-dims-synth --input-device 2
  python -m zoo listen --model audio-cnn-synth --file talk.wav --realtime
  python -m zoo listen --model audio-cnn-synth --file talk.wav --jsonl > events.jsonl
"""


def parser() -> argparse.ArgumentParser:
    from ..inference.commands import _model_args
    from .segment import add_threads_argument, add_vad_arguments

    ap = argparse.ArgumentParser(
        prog="python -m zoo listen", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Live emotion recognition from the microphone: the voice activity detector cuts "
                    "the speech into segments and each is labelled as it ends (Ctrl-C stops).")
    _model_args(ap)
    ap.add_argument("--file", default=None, help="read this audio file instead of the microphone")
    ap.add_argument("--realtime", action="store_true", help="with --file: feed it at real-time pace")
    ap.add_argument("--chunk", type=float, default=0.1, help="seconds of audio per chunk (default 0.1)")
    ap.add_argument("--input-device", default=None,
                    help="microphone: a device number or name part (default: the system's default input; "
                         "--list-devices shows them)")
    ap.add_argument("--list-devices", action="store_true", help="list the audio devices and exit")
    ap.add_argument("--sample-rate", type=int, default=None,
                    help="microphone rate (default: the device's own; the stream resamples)")
    ap.add_argument("--hop", type=float, default=1.0,
                    help="seconds between provisional labels while a segment is open (default 1; 0: none)")
    ap.add_argument("--smoothing", type=float, default=5.0,
                    help="time constant in seconds of the smoothed state (--jsonl 'state' events; default 5)")
    ap.add_argument("--asr", default=None,
                    help="models that read text: transcribe each segment with this transformers ASR model")
    ap.add_argument("--jsonl", action="store_true", help="print every event as one JSON line")
    ap.add_argument("--device", default=None, help="the model's device: cpu, cuda, ... (default: cuda when available)")
    add_vad_arguments(ap)
    add_threads_argument(ap)
    return ap


# -- sources ----------------------------------------------------------------------------------------
def file_chunks(path: str, chunk_s: float, realtime: bool) -> tuple[int, Iterator[np.ndarray]]:
    """The file's rate and its chunks (mono float32), paced to the clock with ``realtime``."""
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise ZooUserError(f"--file: no such file: {p}")
    try:
        info = sf.info(str(p))
    except Exception as e:
        raise ZooUserError(f"--file {p}: cannot read it as audio: {e}") from e
    sr = int(info.samplerate)
    block = max(1, int(round(chunk_s * sr)))

    def gen() -> Iterator[np.ndarray]:
        t0, sent = time.monotonic(), 0
        for b in sf.blocks(str(p), blocksize=block, dtype="float32", always_2d=True):
            if realtime:  # a chunk is "recorded" once its last sample's time has come
                wait = t0 + (sent + b.shape[0]) / sr - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            sent += b.shape[0]
            yield b.mean(axis=1)
    return sr, gen()


def _sounddevice():
    try:
        import sounddevice as sd
    except ImportError as e:
        raise ZooUserError("the microphone needs sounddevice: pip install sounddevice "
                           "(or pip install -e '.[live]'); --file reads a file instead") from e
    except OSError as e:  # the module is there, the PortAudio library is not
        raise ZooUserError(f"sounddevice cannot load the PortAudio library ({e}): install it "
                           "(Debian/Ubuntu: apt install libportaudio2; macOS: brew install portaudio)") from e
    return sd


def _input_device(sd, wanted: str | None):
    try:
        devices = sd.query_devices()
    except Exception as e:
        raise ZooUserError(f"cannot list audio devices: {e}") from e
    inputs = [(i, d) for i, d in enumerate(devices) if d.get("max_input_channels", 0) > 0]
    if not inputs:
        raise ZooUserError("no audio input device found (no microphone on this machine?): "
                           "use --file x.wav to run on a recording")
    if wanted is None:
        try:
            d = sd.query_devices(kind="input")
        except Exception as e:
            raise ZooUserError(f"no default audio input device ({e}); pick one with --input-device "
                               f"(python -m zoo listen --list-devices)") from e
        return None, d
    for i, d in inputs:
        if wanted == str(i) or wanted.lower() in d["name"].lower():
            return i, d
    raise ZooUserError(f"--input-device {wanted}: no such input device; inputs: "
                       + ", ".join(f"{i}: {d['name']}" for i, d in inputs))


def mic_chunks(device: str | None, sample_rate: int | None, chunk_s: float) -> tuple[int, Iterator[np.ndarray]]:
    sd = _sounddevice()
    index, info = _input_device(sd, device)
    sr = int(sample_rate or info.get("default_samplerate") or 16000)
    q: queue.Queue = queue.Queue()

    def callback(indata, frames, t, status):  # PortAudio's thread: hand the samples over, nothing else
        if status:
            q.put(status)
        q.put(indata[:, 0].copy())

    def gen() -> Iterator[np.ndarray]:
        try:
            st = sd.InputStream(device=index, channels=1, samplerate=sr, dtype="float32",
                                blocksize=max(1, int(chunk_s * sr)), callback=callback)
        except Exception as e:
            raise ZooUserError(f"cannot open the microphone {info.get('name', '')!r} at {sr} Hz: {e}") from e
        with st:
            print(f"listening on {info.get('name', 'the default input')} at {sr} Hz (Ctrl-C stops) ...",
                  file=sys.stderr, flush=True)
            while True:
                x = q.get()
                if isinstance(x, np.ndarray):
                    yield x
                else:
                    log.warning("microphone: %s", x)  # an overflow: samples were lost
    return sr, gen()


# -- output -----------------------------------------------------------------------------------------
class Printer:
    """Segment lines; the open segment's provisional label rewritten in place on a terminal."""

    def __init__(self, out: TextIO, dims: Sequence[str], as_json: bool = False):
        self.out, self.dims, self.json = out, list(dims), as_json
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self._partial = False

    def line(self, ev: dict) -> str:
        head = f"{ev['start']:7.2f}-{ev['end']:7.2f} s"
        parts = [head]
        if ev.get("label") is not None:
            parts.append(f"{ev['label']:<10s} {ev['probs'][ev['label']]:.2f}")
        dims = " ".join(f"{d[0].upper()} {ev[d]:.2f}" for d in self.dims if d in ev)
        if dims:
            parts.append(dims)
        if ev.get("text"):
            parts.append(repr(ev["text"]))
        return "  ".join(parts)

    def __call__(self, ev: dict) -> None:
        if self.json:
            print(json.dumps(ev, ensure_ascii=False), file=self.out, flush=True)
            return
        if ev["type"] == "partial":
            if self.tty:
                self.out.write("\r\033[K" + self.line(ev) + "  ...")
                self.out.flush()
                self._partial = True
            return
        if ev["type"] != "segment":
            return
        if self._partial:
            self.out.write("\r\033[K")
            self._partial = False
        print(self.line(ev), file=self.out, flush=True)


def run(stream, sr: int, chunks: Iterator[np.ndarray], emit) -> int:
    """Push every chunk, emit every event, flush at the end or on Ctrl-C; the segment count."""
    n = 0
    try:
        for x in chunks:
            for ev in stream.push(x, sample_rate=sr):
                n += ev["type"] == "segment"
                emit(ev)
    except KeyboardInterrupt:
        pass
    for ev in stream.flush():
        n += ev["type"] == "segment"
        emit(ev)
    return n


def main(argv: Sequence[str] | None = None) -> None:
    a = parser().parse_args(argv)
    if a.list_devices:
        print(_sounddevice().query_devices())
        return
    if a.realtime and not a.file:
        raise ZooUserError("--realtime paces a --file; the microphone is real time already")
    if a.chunk <= 0:
        raise ZooUserError(f"--chunk must be > 0 seconds, got {a.chunk}")
    from ..inference.predictor import load
    from .segment import set_threads, vad_options
    from .stream import Stream

    set_threads(a.threads)

    # the source first: a missing file or microphone is reported before the model loads
    sr, chunks = file_chunks(a.file, a.chunk, a.realtime) if a.file else mic_chunks(a.input_device, a.sample_rate,
                                                                                    a.chunk)
    model = load(a.model, registry=a.registry, trust=a.trust, device=a.device)
    stream = Stream(model, sample_rate=sr, hop=a.hop or None, smoothing=a.smoothing, asr=a.asr, device=a.device,
                    **vad_options(a))
    printer = Printer(sys.stdout, model.dims, as_json=a.jsonl)
    n = run(stream, sr, chunks, printer)
    if not a.jsonl:
        print(f"{n} speech segment(s) in {stream.time:.1f} s" if n else
              f"no speech detected in {stream.time:.1f} s", file=sys.stderr)


__all__ = ["main", "run", "Printer", "file_chunks", "mic_chunks"]
