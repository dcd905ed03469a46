"""A real ``python -m zoo serve`` app on a free port, in a thread, and the short synthetic talks
the live tests stream to it (shared by test_live_serve.py and test_live_browser.py)."""
from __future__ import annotations

import glob
import threading
import time
from pathlib import Path

import numpy as np

SPEECH_FIXTURE_SIZE = 14  # synthetic utterances generated (seeded, ~3 s each, 48 kHz)


def synthetic_utterances(root: Path) -> list[tuple[np.ndarray, int]]:
    """The seeded synthetic corpus's utterances (float32 mono, their own rate)."""
    import soundfile as sf

    from zoo.data.corpora import Synthetic

    Synthetic(root=str(root), size=SPEECH_FIXTURE_SIZE, corpus_seed=0).prepare()
    out = []
    for f in sorted(glob.glob(str(root / "**" / "*.wav"), recursive=True)):
        w, sr = sf.read(f, dtype="float32")
        out.append((w if w.ndim == 1 else w.mean(axis=1), sr))
    return out


def join(utterances, sr: int, gap: float = 0.8) -> np.ndarray:
    """Utterances (at ``sr``) with ``gap`` seconds of silence before, between and after them."""
    sil = np.zeros(int(gap * sr), dtype=np.float32)
    parts = [sil]
    for w in utterances:
        parts += [w.astype(np.float32), sil]
    return np.concatenate(parts)


def confident_utterances(predictor, utterances, n: int, margin: float = 0.2):
    """``n`` utterances with different labels that the model labels with a clear margin (top
    probability minus the second >= ``margin``), each one VAD segment: a browser's resampling or
    a segment boundary a few ms off cannot flip their label."""
    from zoo.live.stream import Stream

    chosen, labels = [], set()
    for w, sr in utterances:
        segs = [e for e in Stream(predictor, hop=None, smoothing=None).run(join([w], sr), sr)
                if e["type"] == "segment"]
        if len(segs) != 1:
            continue
        p = sorted(segs[0]["probs"].values())
        if p[-1] - p[-2] >= margin and segs[0]["label"] not in labels:
            chosen.append((w, sr))
            labels.add(segs[0]["label"])
        if len(chosen) == n:
            return chosen
    raise AssertionError(f"the synthetic corpus has fewer than {n} utterances labelled with a margin >= {margin}")


class Server:
    """uvicorn serving ``create_app(predictor, limits)`` on 127.0.0.1 and a free port."""

    def __init__(self, predictor, limits, name: str = "audio-cnn-synth"):
        import uvicorn

        from zoo.live.serve import create_app, uvicorn_config

        self.app = create_app(predictor, name=name, limits=limits)
        self.server = uvicorn.Server(uvicorn_config(self.app, "127.0.0.1", 0, limits, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.http = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}/stream"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
