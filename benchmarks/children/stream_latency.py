"""The stream suite's single-stream measurement: each model, one recording streamed in 20 ms chunks
through ``zoo.stream``'s :class:`~zoo.live.stream.Stream` (the default options of ``serve`` and
``listen``: Silero VAD, partial events every 1 s, the smoothed state).

    python -m benchmarks.children.stream_latency MODEL[,MODEL...] RECORDING.json THREADS[,THREADS...] \
        [--paced MODEL:SECONDS]

MODEL: a registry name, or ``audio-cnn-default`` (AudioCNN at configs/model/audio_cnn.yaml's size,
random weights). RECORDING.json: ``{"wav": path, "spans": [[start, end], ...]}`` (the true speech
of each utterance, seconds).

**The paced clock, simulated.** Every ``push`` is timed (``perf_counter``), back to back. A live
source delivers chunk ``i`` at ``a_i = (i + 1) * 0.02`` s (when its last sample exists); one
worker handles the pushes in order, so push ``i`` starts at ``max(a_i, f_{i-1})`` and finishes at
``f_i = start + compute_i`` (a push that overruns delays the next ones: the queue is in the
clock). An event returned by push ``i`` exists at ``f_i``. Latencies, per finished segment:

* from VAD close: ``f_i - a_i``, where ``a_i`` is the arrival of the chunk that let the VAD close
  the segment (``min_silence`` after the speech), i.e. the earliest moment any implementation fed
  this audio could know the segment had ended;
* from the end of speech: ``f_i - e``, ``e`` the true end of the utterance the segment covers most
  (the recording's truth), which adds the VAD's ``min_silence`` wait (0.3 s) and window grain;
* from the segment's reported ``end`` (speech end + ``pad``).

This equals a run that sleeps until each chunk is due, without its wall time; ``--paced MODEL:SECONDS``
runs that for MODEL (the first SECONDS of the recording, really sleeping) and reports the measured
from-close latencies beside the simulated ones of the same segments, as a check of the method.
Each model is measured at each torch thread count in THREADS (``torch.set_num_threads``).

Segments closed by ``flush()`` (the stream's end, not the VAD) are not counted.
"""
from __future__ import annotations

import json
import sys
import time
import warnings

CHUNK = 0.02  # seconds per push: a 20 ms audio frame


def _model(name: str):
    import zoo

    if name != "audio-cnn-default":
        return zoo.load(name, device="cpu")
    from zoo.inference.predictor import Predictor
    from zoo.models import AudioCNN

    # configs/model/audio_cnn.yaml's size (its defaults): channels 32-64-128, BiLSTM 128
    module = AudioCNN(class_names=["Angry", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"])
    return Predictor(module, source="AudioCNN default size, random weights", device="cpu")


def _pct(xs, q):
    import numpy as np

    return float(np.percentile(xs, q)) if len(xs) else float("nan")


def _summary(xs) -> dict:
    return {"p50": _pct(xs, 50), "p95": _pct(xs, 95), "max": float(max(xs)) if xs else float("nan"),
            "n": len(xs)}


def run_stream(predictor, wav, sr, spans, paced: bool = False) -> dict:
    """Stream ``wav`` in 20 ms chunks; per-push compute times, events and latencies (see above)."""
    import numpy as np

    from zoo.live.stream import Stream

    s = Stream(predictor)
    step = int(round(CHUNK * sr))
    n = -(-wav.size // step)
    compute = np.zeros(n)
    produced: list[tuple[int, dict]] = []  # (push index, segment event)
    real_finish: dict[int, float] = {}
    t_origin = time.perf_counter()
    for i in range(n):
        if paced:  # wait until chunk i's last sample would exist
            due = t_origin + (i + 1) * CHUNK
            while (d := due - time.perf_counter()) > 0:
                time.sleep(d)
        t = time.perf_counter()
        events = s.push(wav[i * step : (i + 1) * step], sample_rate=sr)
        compute[i] = time.perf_counter() - t
        if paced and events:
            real_finish[i] = time.perf_counter() - t_origin
        produced += [(i, e) for e in events if e["type"] == "segment"]
    t = time.perf_counter()
    flushed = [e for e in s.flush() if e["type"] == "segment"]
    flush_s = time.perf_counter() - t
    # the simulated paced clock
    finish = np.zeros(n)
    f = 0.0
    for i in range(n):
        f = max((i + 1) * CHUNK, f) + compute[i]
        finish[i] = f
    close, speech, reported, measured = [], [], [], []
    segs = []
    for i, e in produced:
        arrive = (i + 1) * CHUNK
        ov = [min(e["end"], b) - max(e["start"], a) for a, b in spans]
        k = int(np.argmax(ov)) if spans else -1
        true_end = spans[k][1] if k >= 0 and ov[k] > 0 else None
        close.append(finish[i] - arrive)
        reported.append(finish[i] - e["end"])
        if true_end is not None:
            speech.append(finish[i] - true_end)
        if paced:
            measured.append(real_finish[i] - arrive)
        segs.append({"index": e["index"], "start": e["start"], "end": e["end"], "close": round(arrive, 3),
                     "true_end": true_end, "label": e["label"]})
    out = {"seconds": wav.size / sr, "pushes": n, "compute_s": float(compute.sum() + flush_s),
           "rtf": float((compute.sum() + flush_s) / (wav.size / sr)),
           "push_ms": {"p50": _pct(compute, 50) * 1e3, "p99": _pct(compute, 99) * 1e3,
                       "max": float(compute.max()) * 1e3},
           "from_close": _summary(close), "from_speech_end": _summary(speech), "from_end": _summary(reported),
           "segments": segs, "flushed": len(flushed), "utterances": len(spans), "_close": close}
    if paced:
        out["measured_from_close"] = _summary(measured)
    return out


def vad_rtf(wav, sr) -> float:
    """Seconds of Silero VAD (the segmenter alone, whole recording at 16 kHz) per second of audio."""
    from zoo.data.audio import resample
    from zoo.live.segment import RATE, Segmenter

    x = resample(wav, sr, RATE)
    seg = Segmenter()
    seg.segments(x[: RATE * 2])  # warm-up
    t = time.perf_counter()
    seg.segments(x)
    return (time.perf_counter() - t) / (wav.size / sr)


def measure(name: str, wav, sr, spans, threads: list[int], paced: float) -> dict:
    import torch

    predictor = _model(name)
    res = {"model": name, "inputs": list(predictor.inputs), "vad_rtf": vad_rtf(wav, sr),
           "params": sum(p.numel() for p in predictor.module.parameters()), "runs": {}}
    # warm-up: one stream over the first utterances and their pauses (first-call costs stay out)
    warm_end = int(sr * min(wav.size / sr, spans[min(2, len(spans) - 1)][1] + 1.0 if spans else 5.0))
    for k, n in enumerate(threads):
        torch.set_num_threads(n)
        run_stream(predictor, wav[:warm_end], sr, [])
        out = run_stream(predictor, wav, sr, spans)
        if paced:
            # the first seconds again, really sleeping until each chunk is due: its measured
            # latencies beside the simulated ones of the back-to-back run for the same segments
            cut = int(sr * paced)
            p = run_stream(predictor, wav[:cut], sr, [sp for sp in spans if sp[1] <= paced], paced=True)
            done = {sg["index"] for sg in p["segments"]}
            sim = [lat for lat, sg in zip(out["_close"], out["segments"]) if sg["index"] in done]
            out["paced"] = {"seconds": p["seconds"], "measured_from_close": p["measured_from_close"],
                            "simulated_from_close": _summary(sim)}
        out.pop("_close")
        res["runs"][str(n)] = out
    return res


def main() -> None:
    warnings.filterwarnings("ignore")
    import logging

    import soundfile as sf
    import torch

    logging.getLogger("zoo").setLevel(logging.ERROR)  # e.g. "not adapted to a speaker": expected here
    names, rec_path = sys.argv[1].split(","), sys.argv[2]
    threads = [int(t) for t in sys.argv[3].split(",")]
    paced = sys.argv[sys.argv.index("--paced") + 1].split(":") if "--paced" in sys.argv else None
    # the thread count is set before the zoo is imported (and changed between runs)
    torch.set_num_threads(threads[0])
    rec = json.loads(open(rec_path).read())
    wav, sr = sf.read(rec["wav"], dtype="float32")
    spans = [tuple(s) for s in rec["spans"]]
    out = {}
    for name in names:
        try:
            out[name] = measure(name, wav, sr, spans, threads,
                                float(paced[1]) if paced and paced[0] == name else 0.0)
        except Exception as e:  # noqa: BLE001 - the other models are still measured
            out[name] = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out, default=float))


if __name__ == "__main__":
    main()
