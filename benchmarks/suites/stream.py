"""stream: live recognition. Latency from the end of a speech segment to its event and the
real-time factor of VAD + model, one stream per shipped audio model; the concurrent real-time
streams one ``python -m zoo serve`` process holds (docs/live.md, "Measured").

The test recording: synthetic-corpus utterances (``zoo.data.synth.generate``) joined by random
pauses of 0.5-2 s with white noise at 30 dB SNR (``zoo.live.evaluate.build_recordings``, as
``segeval`` joins them), written as 16 kHz PCM16, with the true speech span of each utterance
(the clip without the room noise around its speech).
"""
from __future__ import annotations

import csv
import importlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmarks.common import ROOT, Suite, child

DESCRIPTION = ("live streaming: latency from a speech segment's end to its event (20 ms chunks, paced "
               "clock) and real-time factor of VAD + model per shipped audio model and the default-size "
               "AudioCNN; concurrent real-time WebSocket streams one `serve` process holds")

SR = 16000
SINGLE_GOAL = 0.300  # s: p95 latency from VAD close, one stream, every shipped audio model
MULTI_GOAL = 0.500  # s: p95 latency from VAD close with N concurrent streams
STREAMS_GOAL = 20  # concurrent streams of the AudioCNN (audio-cnn-synth)
SERVED = ("audio-cnn-synth", "emodb-compare")  # the models the concurrency search runs on


def audio_models() -> tuple[list[str], list[str]]:
    """(shipped checkpoints that stream from audio alone, the others with why): an audio or
    audio-feature input, and no transcript needed (late fusion predicts without one)."""
    from zoo.data.features import FEATURE_MODALITIES
    from zoo.inference.registry import Registry

    keep, skip = [], []
    for name, e in Registry.load().entries.items():
        if e.local_path is None or not e.local_path.is_file():
            skip.append(f"{name} (not shipped: no local file)")
            continue
        if not ({"audio", *FEATURE_MODALITIES} & set(e.inputs)):
            skip.append(f"{name} (reads text only)")
            continue
        if "text" in e.inputs:
            mod, _, cls = e.model.rpartition(".")
            if not getattr(getattr(importlib.import_module(mod), cls), "text_optional", False):
                skip.append(f"{name} (needs a transcript per segment: an ASR model in front)")
                continue
        keep.append(name)
    return keep, skip


def make_recording(work: Path, seconds: float, seed: int = 0) -> Path:
    """A joined synthetic recording of about ``seconds`` (at least one utterance), as
    ``recording.json`` (``{"wav", "spans"}``) next to its wav."""
    import numpy as np
    import soundfile as sf

    from zoo.data.synth import generate
    from zoo.live.evaluate import build_recordings, speech_bounds

    n = max(2, int(round(seconds / 4.45)))  # ~3.2 s utterances + 1.25 s mean pause
    root = generate(work / "corpus", size=n, seed=5, sample_rate=SR, workers=1)
    with open(root / "synthetic.csv", encoding="cp949") as f:  # the AI Hub layout's encoding
        rows = list(csv.DictReader(f))
    audios = [sf.read(str(next(root.rglob(r["wav_id"] + ".wav"))), dtype="float32")[0] for r in rows]
    rec = build_recordings(audios, [r["1번 감정"] for r in rows], SR, per_recording=len(audios), seed=seed,
                           speech=[speech_bounds(w, SR, _top_db(w)) for w in audios])[0]
    wav = work / "recording.wav"
    # PCM16: the samples the WebSocket clients send are exactly those the single-stream run reads
    sf.write(wav, np.clip(rec.wav, -1, 1 - 1 / 32768), SR, subtype="PCM_16")
    path = work / "recording.json"
    path.write_text(json.dumps({"wav": str(wav), "spans": rec.spans, "seconds": rec.duration}))
    return path


def _top_db(wav) -> float:
    """How far below its loudest 10 ms a clip's speech reaches: 40 dB, or 10 dB above its room
    noise when that is louder (a third of the synthetic clips carry room noise only 30-40 dB
    below their peak, where a fixed 40 dB would count the whole clip as speech)."""
    import numpy as np

    hop = SR // 100
    n = wav.size // hop
    rms = np.sqrt((wav[: n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(1)) + 1e-12
    floor = float(np.percentile(20 * np.log10(rms / rms.max()), 10))  # the room noise, dB below the peak
    return min(40.0, -floor - 10.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m zoo serve --model NAME`` as a subprocess on a free port, until closed."""

    def __init__(self, model: str, max_streams: int, log: Path):
        self.port = _free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT), WANDB_MODE="disabled")
        self.log_path = log
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zoo", "serve", "--model", model, "--port", str(self.port),
             "--max-streams", str(max_streams), "--log-level", "warning"],
            cwd=str(ROOT), env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"ws://127.0.0.1:{self.port}/stream"

    def wait_ready(self, timeout: float = 180) -> "Server":
        """Block until ``GET /health`` answers 200 (the model is loaded)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"zoo serve exited ({self.proc.returncode}): {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"zoo serve did not answer /health in {timeout:g} s: "
                                   f"{self.log_path.read_text()[-2000:]}")
            time.sleep(0.25)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _passes(r: dict) -> bool:
    return (not r["n_errors"] and not r["dropped_samples"] and not r["missing"]
            and r["close_p95"] <= MULTI_GOAL)


def max_streams(server: Server, model: str, rec: Path, ref: Path, ladder: list[int], stagger: float,
                bisect: int) -> tuple[int, list[dict]]:
    """The largest N in ``ladder`` (then bisected towards the first failure) whose trial passes:
    p95 latency from VAD close <= 0.5 s, no dropped frame, no missing segment, no error."""
    trials: list[dict] = []
    try:
        server.wait_ready()
        def trial(n: int) -> bool:
            r = child("stream_clients", server.url, str(rec), str(ref), str(n), str(stagger), str(n), timeout=600)
            r["load_1m"] = os.getloadavg()[0]
            trials.append(r)
            print(f"[stream] {model}: {n} streams: p95 {r['close_p95']:.3f} s from close, "
                  f"{r['n_errors']} errors, {r['dropped_samples']} samples dropped, "
                  f"client lag p95 {r['lag_p95'] * 1e3:.0f} ms", file=sys.stderr, flush=True)
            return _passes(r)

        best, fail = 0, None
        for n in ladder:
            if not trial(n):
                fail = n
                break
            best = n
        for _ in range(bisect):
            if fail is None or fail - best <= 1:
                break
            mid = (best + fail) // 2
            if trial(mid):
                best = mid
            else:
                fail = mid
    finally:
        server.close()
    return best, trials


def run(args, work: Path) -> Suite:
    s = Suite("stream", f"one stream: p95 latency from VAD close <= {SINGLE_GOAL * 1e3:.0f} ms for every shipped "
                        f"audio model (torch's default threads); one serve process: >= {STREAMS_GOAL} real-time "
                        f"streams of audio-cnn-synth at p95 <= {MULTI_GOAL * 1e3:.0f} ms with no dropped frame")
    rec = make_recording(work, max(8.0, (20 if args.quick else 60) * args.scale))
    models, skipped = audio_models()
    if args.quick:  # a smoke test: one shipped model
        models = [m for m in models if m == "audio-cnn-synth"] or models[:1]
    ladder = [2] if args.quick else [1, 2, 4, 8, 16, 24, 32, 48, 64]
    # a smoke test starts its one server while the single streams run (their numbers are not
    # the measurement there); a full run starts each server after them
    early = Server(SERVED[0], max(ladder) + 4, work / f"serve-{SERVED[0]}.log") if args.quick else None
    try:
        ref = _single(s, args, work, rec, models)
        if ref is not None:
            _concurrent(s, args, work, rec, ref, models, ladder, early)
    finally:
        if early:
            early.close()
    doc = json.loads(rec.read_text())
    s.notes.append(f"models: {', '.join(models)}; left out: {'; '.join(skipped) or 'none'}")
    s.notes.append(
        f"one stream: a {doc['seconds']:.0f} s synthetic recording ({len(doc['spans'])} utterances joined by 0.5-2 s "
        "pauses, 30 dB SNR noise) pushed in 20 ms chunks with zoo.stream's defaults (hop 1 s, smoothing 5 s); each "
        "push timed, the paced clock simulated (benchmarks/children/stream_latency.py); 'from VAD close' starts at "
        "the chunk that lets the VAD end the segment, 'from end of speech' at the utterance's true end (it adds the "
        "VAD's min_silence, 0.3 s, and its decay)")
    return s


def _single(s: Suite, args, work: Path, rec: Path, models: list[str]) -> Path | None:
    """One stream per model, at torch's default thread count and at 1; the VAD's segments with
    their close times (the reference of the concurrent clients), or None if nothing ran."""
    cores = os.cpu_count() or 1
    threads = [cores, 1] if cores > 1 and not args.quick else [cores]
    paced = [] if args.quick else ["--paced", "audio-cnn-synth:20"]  # the check of the simulated clock
    load0 = os.getloadavg()[0]
    results = child("stream_latency", ",".join([*models, "audio-cnn-default"]), str(rec),
                    ",".join(map(str, threads)), *paced, timeout=1800)
    s.notes.append(f"load average (1 min) before / after the single-stream runs: {load0:.2f} / "
                   f"{os.getloadavg()[0]:.2f} (other jobs share this machine's cores)")
    met, ref, vad = True, None, []
    for name, r in results.items():
        if "error" in r:
            s.notes.append(f"{name}: failed: {r['error']}")
            met = False
            continue
        label = "AudioCNN default size (random weights)" if name == "audio-cnn-default" else name
        for t, run_ in r["runs"].items():
            tag = f"{label}, {t} thread{'s' if t != '1' else ''}"
            c, e = run_["from_close"], run_["from_speech_end"]
            s.add(f"{tag}: latency from VAD close, p95", c["p95"], "s", p50=c["p50"], max=c["max"], segments=c["n"])
            s.add(f"{tag}: latency from end of speech, p95", e["p95"], "s", p50=e["p50"], max=e["max"])
            s.add(f"{tag}: real-time factor (VAD + model)", run_["rtf"], "s per s of audio")
            if name != "audio-cnn-default" and t == str(cores):
                met = met and c["p95"] <= SINGLE_GOAL
            if "paced" in run_:
                p = run_["paced"]
                s.add(f"{tag}: check, really paced ({p['seconds']:.0f} s): measured p95 from VAD close",
                      p["measured_from_close"]["p95"], "s", simulated=p["simulated_from_close"]["p95"],
                      measured_max=p["measured_from_close"]["max"], simulated_max=p["simulated_from_close"]["max"])
        vad.append(r["vad_rtf"])
        if ref is None:
            ref = work / "reference.json"
            ref.write_text(json.dumps(r["runs"][str(threads[0])]["segments"]))
    if vad:
        s.add("Silero VAD alone (onnxruntime, 1 thread), real-time factor", min(vad), "s per s of audio")
    s.met = met and ref is not None
    return ref


def _concurrent(s: Suite, args, work: Path, rec: Path, ref: Path, models: list[str], ladder: list[int],
                early: Server | None) -> None:
    """The concurrency search per served model, on the first utterances of the recording (the
    reference segments that close within them)."""
    names, stagger = ([SERVED[0]], 0.5) if args.quick else (list(SERVED), 2.0)
    cut = _cut(rec, 6.0 if args.quick else 20.0, work)
    short_ref = work / "reference_short.json"
    short_ref.write_text(json.dumps([g for g in json.loads(ref.read_text()) if g["close"] <= cut["seconds"]]))
    for name in names:
        if name not in models and not args.quick:
            s.notes.append(f"{name}: not shipped here, no concurrency search")
            continue
        try:
            server = early if early and name == SERVED[0] else Server(name, max(ladder) + 4, work / f"serve-{name}.log")
            best, trials = max_streams(server, name, Path(cut["path"]), short_ref, ladder, stagger,
                                       bisect=0 if args.quick else 2)
        except RuntimeError as e:
            s.notes.append(f"{name} serve: failed: {str(e).splitlines()[-1]}")
            s.met = False
            continue
        s.add(f"{name}: concurrent real-time streams held (p95 from close <= {MULTI_GOAL:g} s, no drop)",
              best, "streams", trials=trials)
        at = next((t for t in trials if t["streams"] == best), None)
        if at:
            s.add(f"{name}: at {best} streams, latency from VAD close p95", at["close_p95"], "s")
            s.add(f"{name}: at {best} streams, latency from end of speech p95", at["speech_p95"], "s")
        over = [t for t in trials if t["streams"] > best]
        if over:
            t = min(over, key=lambda t: t["streams"])
            why = []
            if t["close_p95"] > MULTI_GOAL:
                why.append(f"p95 {t['close_p95']:.2f} s")
            if t["dropped_samples"] or t["missing"]:
                why.append(f"{t['dropped_samples']} samples dropped, {t['missing']} segments missing")
            if t["n_errors"]:
                why.append(f"{t['n_errors']} stream errors ({t['errors'][0]})")
            s.notes.append(f"{name}: {t['streams']} streams failed: {'; '.join(why)}")
        elif not args.quick:
            s.notes.append(f"{name}: passed every step of the ladder up to {ladder[-1]} streams (not pushed further)")
        if name == "audio-cnn-synth" and not args.quick:
            s.met = bool(s.met) and best >= STREAMS_GOAL
    threads = os.environ.get("OMP_NUM_THREADS")
    s.notes.append(
        f"concurrent: one `python -m zoo serve` subprocess (torch threads: "
        f"{'OMP_NUM_THREADS=' + threads if threads else 'its default, one per core'}), clients in another process "
        f"(asyncio + websockets), each sending the first {cut['seconds']:.0f} s of the recording as PCM16 in 20 ms "
        f"frames at real-time pace, starts staggered over {stagger:g} s; each trial's 1-min load average (which "
        "counts the server and the clients) is in the JSON")


def _cut(rec: Path, seconds: float, work: Path) -> dict:
    """The first utterances of the recording, cut ~0.6 s after the speech of the last one that
    ends before ``seconds`` (inside its following pause, after the VAD has closed it)."""
    import soundfile as sf

    doc = json.loads(rec.read_text())
    wav, sr = sf.read(doc["wav"], dtype="int16")
    ends = [b for _, b in doc["spans"]]
    end = max([b for b in ends if b + 0.6 <= seconds] or [ends[0]]) + 0.6
    path = work / "recording_short.wav"
    sf.write(path, wav[: int(end * sr)], sr, subtype="PCM_16")
    out = {"path": str(work / "recording_short.json"), "seconds": end}
    Path(out["path"]).write_text(json.dumps({"wav": str(path), "spans": doc["spans"], "seconds": end}))
    return out
