"""``python -m zoo serve``: the HTTP routes, the WebSocket /stream protocol, its limits, and one
model shared by concurrent streams. One real uvicorn server (in a thread) serves the whole module,
so every test that breaks a rule also checks that the server still serves a good stream
correctly afterwards."""
from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
websockets = pytest.importorskip("websockets")
httpx = pytest.importorskip("httpx")
soundfile = pytest.importorskip("soundfile")
pytest.importorskip("silero_vad")

from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from live_server import Server, confident_utterances, join, synthetic_utterances  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SR = 16000
LIMITS = dict(max_streams=3, max_message_bytes=64 * 1024, max_frames_per_second=1000.0,
              max_stream_seconds=40.0, idle_timeout=2.0, max_upload_bytes=400_000,
              max_upload_seconds=8.0, max_backlog_seconds=5.0,
              # the model thread waits this long for busy streams to join a batch: longer than the
              # default so that the batching test does not depend on the scheduling of 2 shared cores
              batch_wait=0.25)


@pytest.fixture(scope="module")
def predictor():
    import zoo

    return zoo.load("audio-cnn-synth", device="cpu")


@pytest.fixture(scope="module")
def talks(predictor, tmp_path_factory):
    """16 kHz talks (pcm16-exact float32): three utterances with pauses; a quieter one with the
    same timing (different audio, segments ending together); one utterance alone."""
    from zoo.data.audio import resample

    utts = confident_utterances(predictor, synthetic_utterances(tmp_path_factory.mktemp("synth")), 3)
    x = join([resample(w, sr, SR) for w, sr in utts], SR)
    x = (np.round(x * 32767) / 32768).astype(np.float32)  # exactly representable as pcm16
    y = (np.round(x * 0.6 * 32767) / 32768).astype(np.float32)
    short = x[: int(0.8 * SR) + len(utts[0][0]) * SR // utts[0][1] + int(0.8 * SR)]
    return x, y, short


def reference(predictor, x: np.ndarray, sr: int = SR) -> list[dict]:
    """The events of the file pushed whole into one ``zoo.stream`` in this process."""
    from zoo.live.stream import Stream

    return Stream(predictor, sample_rate=sr).run(x, sr)


@pytest.fixture(scope="module")
def refs(predictor, talks):
    return [reference(predictor, t) for t in talks]


@pytest.fixture(scope="module")
def server(predictor):
    from zoo.live.protocol import Limits

    with Server(predictor, Limits(**LIMITS)) as s:
        yield s


def segments(events):
    return [e for e in events if e["type"] == "segment"]


def assert_same_segments(got: list[dict], want: list[dict]) -> None:
    got, want = segments(got), segments(want)
    assert [(e["start"], e["end"], e["label"]) for e in got] == [(e["start"], e["end"], e["label"]) for e in want]
    for g, w in zip(got, want):
        assert g["probs"] == pytest.approx(w["probs"], rel=1e-4, abs=1e-5)


def pcm(x: np.ndarray, fmt: str) -> bytes:
    return (np.round(x * 32768).clip(-32768, 32767).astype("<i2") if fmt == "pcm16" else x.astype("<f4")).tobytes()


async def stream_audio(url: str, x: np.ndarray, sr: int = SR, fmt: str = "pcm16", frame: float = 0.1,
                       options: dict | None = None, pace: float = 0.0, origin: str | None = None) -> list[dict]:
    """Every message the server sends for ``x`` sent in frames of ``frame`` seconds, then end."""
    async with connect(url, max_size=None, origin=origin) as ws:
        first = {"sample_rate": sr, "format": fmt, **({"options": options} if options else {})}
        await ws.send(json.dumps(first))
        data, step = pcm(x, fmt), int(frame * sr) * (2 if fmt == "pcm16" else 4)

        async def send():
            for i in range(0, len(data), step):
                await ws.send(data[i : i + step])
                if pace:
                    await asyncio.sleep(pace)
            await ws.send(json.dumps({"type": "end"}))
        sender = asyncio.create_task(send())
        events = [json.loads(m) async for m in ws]
        await sender
        assert ws.close_code == 1000, events[-1:]
    assert events[0]["type"] == "ready" and events[-1]["type"] == "end", (events[:1], events[-1:])
    return events[1:-1]


def arun(coro):
    return asyncio.run(coro)


def assert_serves(server, talks, refs) -> None:
    """The server still streams a good client correctly."""
    assert_same_segments(arun(stream_audio(server.ws, talks[2], frame=0.5)), refs[2])


async def violate(url: str, *messages, wait: float = 10.0) -> tuple[dict, int]:
    """Send ``messages`` (str: text, bytes: binary) and return the server's error event and close code."""
    return await violate_from(None, url, *messages, wait=wait)


async def violate_from(origin: str | None, url: str, *messages, wait: float = 10.0) -> tuple[dict, int]:
    async with connect(url, max_size=None, origin=origin) as ws:
        try:
            for m in messages:
                await ws.send(m)
        except ConnectionClosed:
            pass
        got = []

        async def read():
            async for m in ws:
                got.append(json.loads(m))
        try:
            await asyncio.wait_for(read(), wait)
        except ConnectionClosed:
            pass
        code = ws.close_code
    errors = [e for e in got if e.get("type") == "error"]
    assert len(errors) == 1, got
    assert errors[0]["code"] == code, (errors, code)
    return errors[0], code


HELLO = json.dumps({"sample_rate": SR, "format": "pcm16"})


# -- HTTP ------------------------------------------------------------------------------------------------
def test_health_card_and_page(server, predictor):
    h = httpx.get(server.http + "/health")
    assert h.status_code == 200 and h.json()["status"] == "ok" and h.json()["model"] == "audio-cnn-synth"
    c = httpx.get(server.http + "/card").json()
    assert c["class_names"] == predictor.class_names and c["dims"] == [] and c["sample_rate"] == 16000
    assert c["model"] == "AudioCNN" and "audio-cnn-synth" in c["card"]
    page = httpx.get(server.http + "/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    # everything the page loads is served here (no CDN), and it declares UTF-8 (Hangul class names)
    assert '<meta charset="utf-8">' in page.text
    for src in re.findall(r'(?:src|href)="([^"]+)"', page.text.replace('href="data:,"', "")):
        assert src.startswith("/static/"), src
        assert httpx.get(server.http + src).status_code == 200, src
    assert httpx.get(server.http + "/static/capture-worklet.js").status_code == 200


def test_predict_equals_infer(server, talks, tmp_path, run):
    wav = tmp_path / "talk.wav"
    soundfile.write(wav, talks[0][: 4 * SR], SR, subtype="PCM_16")
    r = httpx.post(server.http + "/predict", files={"file": ("talk.wav", wav.read_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    cli = run("infer", "--model", "audio-cnn-synth", "--device", "cpu", "--no-progress", str(wav))
    assert cli.returncode == 0, cli.stderr
    want = json.loads(cli.stdout.strip().splitlines()[-1])
    got = r.json()
    assert got["file"] == "talk.wav" and set(got) == set(want)
    assert got["label"] == want["label"] and got["duration"] == want["duration"]
    assert got["probs"] == pytest.approx(want["probs"], rel=1e-4, abs=1e-5)


def test_predict_refusals(server, talks, refs, tmp_path):
    long = tmp_path / "long.wav"  # 10 s > max_upload_seconds (8 s), 320 kB < max_upload_bytes
    soundfile.write(long, np.zeros(10 * SR, np.float32), SR, subtype="PCM_16")
    r = httpx.post(server.http + "/predict", files={"file": ("long.wav", long.read_bytes(), "audio/wav")})
    assert r.status_code == 413 and "10.0 s long" in r.json()["error"] and "8 s" in r.json()["error"]
    big = b"RIFF" + bytes(500_000)  # > max_upload_bytes: refused by its Content-Length
    r = httpx.post(server.http + "/predict", files={"file": ("big.wav", big, "audio/wav")})
    assert r.status_code == 413 and "larger than this server accepts" in r.json()["error"]

    def chunked():  # no Content-Length: counted as it arrives
        yield b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n"
        for _ in range(10):
            yield bytes(50_000)
    r = httpx.post(server.http + "/predict", content=chunked(),
                   headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413, r.text
    r = httpx.post(server.http + "/predict", files={"file": ("notes.wav", b"not audio at all", "audio/wav")})
    assert r.status_code == 415 and "notes.wav" in r.json()["error"]
    r = httpx.post(server.http + "/predict", files={"file": ("long.wav", long.read_bytes(), "audio/wav")},
                   headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and "another site" in r.json()["error"]
    r = httpx.post(server.http + "/predict", data={"text": "no file"})
    assert r.status_code in (400, 422) and "'file'" in r.json()["error"]
    assert httpx.get(server.http + "/health").status_code == 200
    assert_serves(server, talks, refs)


# -- the stream --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt,frame", [("pcm16", 0.02), ("float32", 0.137)])
def test_stream_equals_offline(server, talks, refs, fmt, frame):
    events = arun(stream_audio(server.ws, talks[0], fmt=fmt, frame=frame))
    assert len(segments(events)) == 3
    assert_same_segments(events, refs[0])
    # the provisional labels and the smoothed state come through too, in stream time order
    assert {e["type"] for e in events} == {"segment", "partial", "state"}
    ends = [e["end"] for e in events if e["type"] == "segment"]
    assert ends == sorted(ends)


def test_stream_any_rate(server, predictor, talks):
    from zoo.data.audio import resample

    x = resample(talks[0], SR, 44100).astype(np.float32)
    events = arun(stream_audio(server.ws, x, sr=44100, fmt="float32", frame=0.05))
    assert_same_segments(events, reference(predictor, x, 44100))


def test_stream_options(server, predictor, talks):
    events = arun(stream_audio(server.ws, talks[0], options={"hop": None, "smoothing": None}))
    assert {e["type"] for e in events} == {"segment"}


def test_concurrent_streams_share_one_batched_model(server, talks, refs):
    """Three streams at once (two with the same talk, one quieter): segments that end together go
    through one predict_batch, and every stream gets what it would get alone."""
    batcher = server.app.state.batcher
    before = batcher.calls

    async def three():
        # lockstep: every stream sends its next frame, then all wait a little
        return await asyncio.gather(*(stream_audio(server.ws, t, frame=0.2, pace=0.03)
                                      for t in (talks[0], talks[1], talks[0])))
    got = arun(three())
    for events, ref in zip(got, (refs[0], refs[1], refs[0])):
        assert_same_segments(events, ref)
    # (requests merged, clips): each request is one stream's push waiting on the model thread
    batches = list(batcher.batches)[-(batcher.calls - before):]
    assert max(r for r, _ in batches) > 1, f"no batch held several streams' segments: {batches}"


# -- the protocol's refusals ----------------------------------------------------------------------------
@pytest.mark.parametrize("first,code,says", [
    (b"\x00\x01", 1003, "JSON text"),
    ("hello", 1003, "not JSON"),
    ("[16000]", 1003, "JSON object"),
    (json.dumps({"format": "pcm16"}), 1003, "sample_rate"),
    (json.dumps({"sample_rate": 1000, "format": "pcm16"}), 1003, "sample_rate"),
    (json.dumps({"sample_rate": "16000", "format": "pcm16"}), 1003, "sample_rate"),
    (json.dumps({"sample_rate": 16000.5, "format": "pcm16"}), 1003, "sample_rate"),
    (json.dumps({"sample_rate": 16000, "format": "mp3"}), 1003, "format"),
    (json.dumps({"sample_rate": 16000, "rate": 1}), 1003, "unknown keys"),
    (json.dumps({"sample_rate": 16000, "options": {"asr": "openai/whisper-large"}}), 1003, "asr"),
    (json.dumps({"sample_rate": 16000, "options": {"hop": 0.001}}), 1003, "hop"),
])
def test_malformed_first_message(server, talks, refs, first, code, says):
    err, got = arun(violate(server.ws, first))
    assert got == code and says in err["error"], err
    assert_serves(server, talks, refs)


@pytest.mark.parametrize("fmt,frame,says", [
    ("pcm16", b"\x00\x01\x02", "3 bytes"),
    ("float32", b"\x00" * 6, "6 bytes"),
    ("float32", np.array([0.1, np.nan], "<f4").tobytes(), "NaN"),
    ("pcm16", "more audio", "binary audio frames"),
])
def test_malformed_frame(server, talks, refs, fmt, frame, says):
    hello = json.dumps({"sample_rate": SR, "format": fmt})
    err, code = arun(violate(server.ws, hello, bytes(640), frame))
    assert code == 1003 and says in err["error"], err
    assert_serves(server, talks, refs)


def test_message_too_big(server, talks, refs):
    err, code = arun(violate(server.ws, HELLO, bytes(100 * 1024)))  # > 64 KiB
    assert code == 1009 and "102400 bytes" in err["error"], err
    assert_serves(server, talks, refs)


def test_flood_of_tiny_frames(server, talks, refs):
    """Thousands of 2-byte frames: refused by the frames-per-second limit (1008), while a stream
    sending many small frames within the limit is served (coalesced into few pushes)."""
    err, code = arun(violate(server.ws, HELLO, *[b"\x01\x00"] * 3000))
    assert code == 1008 and "frames per second" in err["error"], err
    assert_serves(server, talks, refs)
    small = arun(stream_audio(server.ws, talks[0], frame=0.02))  # 50 frames a second of audio
    assert_same_segments(small, refs[0])


def test_idle_stream_is_closed(server, talks, refs):
    t = time.monotonic()
    err, code = arun(violate(server.ws, HELLO, bytes(3200)))
    assert code == 1008 and "idle" in err["error"] and time.monotonic() - t >= 1.9, err
    assert_serves(server, talks, refs)


def test_stream_length_limit(server, talks, refs):
    frames = [bytes(32000)] * 41  # 41 s of silence > max_stream_seconds (40)
    err, code = arun(violate(server.ws, HELLO, *frames))
    assert code == 1008 and "40 s of audio" in err["error"], err
    assert_serves(server, talks, refs)


def test_other_sites_pages_are_refused(server, talks, refs):
    """A web page of another site may not use the local server through the visitor's browser."""
    err, code = arun(violate_from("http://evil.example", server.ws, HELLO))
    assert code == 1008 and "another site" in err["error"] and "evil.example" in err["error"], err
    host = server.http.removeprefix("http://")
    events = arun(stream_audio(server.ws, talks[2], frame=0.5, origin=f"http://{host}"))  # the server's own page
    assert_same_segments(events, refs[2])


def test_too_many_streams(server, talks, refs):
    async def go():
        held = []
        for _ in range(LIMITS["max_streams"]):
            ws = await connect(server.ws)
            await ws.send(HELLO)
            assert json.loads(await ws.recv())["type"] == "ready"
            held.append(ws)
        err, code = await violate(server.ws, HELLO)
        assert code == 1013 and "too many streams" in err["error"], err
        await held.pop().close()  # a slot frees: the next client is served
        for _ in range(50):
            if httpx.get(server.http + "/health").json()["streams"] < LIMITS["max_streams"]:
                break
            await asyncio.sleep(0.05)
        events = await stream_audio(server.ws, talks[0], frame=0.25)
        for ws in held:
            await ws.close()
        return events
    assert_same_segments(arun(go()), refs[0])


def test_client_vanishes_mid_stream(server, talks, refs):
    """A client whose connection drops (no close frame) while the server is analysing: its slot
    is freed, nothing is logged as a failure, and a concurrent stream is unaffected."""
    failures = []

    class Catch(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.ERROR:
                failures.append(record.getMessage())
    handler = Catch()
    for name in ("zoo", "uvicorn.error"):
        logging.getLogger(name).addHandler(handler)
    try:
        async def go():
            good = asyncio.create_task(stream_audio(server.ws, talks[0], frame=0.2, pace=0.01))
            ws = await connect(server.ws)
            await ws.send(HELLO)
            await ws.recv()
            data = pcm(talks[0], "pcm16")
            for i in range(0, len(data), 6400):
                await ws.send(data[i : i + 6400])
            ws.transport.abort()  # the TCP connection drops: no close handshake
            return await good
        events = arun(go())
        for _ in range(100):
            if httpx.get(server.http + "/health").json()["streams"] == 0:
                break
            time.sleep(0.05)
        assert httpx.get(server.http + "/health").json()["streams"] == 0
    finally:
        for name in ("zoo", "uvicorn.error"):
            logging.getLogger(name).removeHandler(handler)
    assert_same_segments(events, refs[0])
    assert not failures, failures
    assert_serves(server, talks, refs)


def test_raw_garbage_socket(server, talks, refs):
    """Bytes that are not a WebSocket handshake at all, then a half-open connection."""
    host, port = server.http.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        s.settimeout(5)
        assert s.recv(100).startswith(b"HTTP/1.1 4")  # no Sec-WebSocket-Key: refused by uvicorn
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"\x16\x03\x01\x00\xa5garbage\r\n\r\n")  # a TLS hello on a plain port
    assert_serves(server, talks, refs)


# -- the documented client -----------------------------------------------------------------------------
def doc_client() -> str:
    """The Python client of docs/live.md (the block after the "stream_client.py" marker)."""
    text = (ROOT / "docs" / "live.md").read_text(encoding="utf-8")
    m = re.search(r"```python\n(# stream_client\.py.*?)```", text, flags=re.S)
    assert m, "docs/live.md has no ```python block starting with '# stream_client.py'"
    return m.group(1)


def test_documented_client(server, talks, refs, tmp_path):
    code = doc_client()
    assert len(code.splitlines()) <= 30, "the documented client should stay short"
    script, wav = tmp_path / "stream_client.py", tmp_path / "talk.wav"
    script.write_text(code, encoding="utf-8")
    soundfile.write(wav, talks[0], SR, subtype="PCM_16")
    out = subprocess.run([sys.executable, str(script), str(wav), server.ws], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    printed = [m.groups() for m in re.finditer(r"^\s*([\d.]+)-\s*([\d.]+) s\s+(\S+)$", out.stdout, flags=re.M)]
    want = [(f"{e['start']:.2f}", f"{e['end']:.2f}", e["label"]) for e in segments(refs[0])]
    assert printed == want, out.stdout


def test_dimensional_model(talks, tmp_path):
    """A dimension-only model: /card names its dimensions, segments carry arousal and valence (no
    label), /predict gives them under "dims", and all equal the model run in this process."""
    import zoo
    from zoo.live.protocol import Limits

    dims_model = zoo.load("audio-cnn-dims-synth", device="cpu")
    with Server(dims_model, Limits(), name="audio-cnn-dims-synth") as s:
        assert httpx.get(s.http + "/card").json()["dims"] == ["arousal", "valence"]
        got = segments(arun(stream_audio(s.ws, talks[0], frame=0.5)))
        wav = tmp_path / "talk.wav"
        soundfile.write(wav, talks[2], SR, subtype="PCM_16")
        r = httpx.post(s.http + "/predict", files={"file": ("talk.wav", wav.read_bytes(), "audio/wav")}).json()
    want = segments(reference(dims_model, talks[0]))
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        assert g["label"] is None and (g["start"], g["end"]) == (w["start"], w["end"])
        assert (g["arousal"], g["valence"]) == pytest.approx((w["arousal"], w["valence"]), abs=1e-5)
    assert r["label"] is None and r["dims"] == pytest.approx(dims_model.predict(str(wav))["dims"], abs=1e-5)
