"""``python -m zoo serve``: one model behind HTTP and WebSocket (FastAPI + uvicorn; the ``serve`` extra).

Routes:

- ``GET /``: the live page (``zoo/live/static/``: plain HTML and JS, no build step, no CDN);
- ``GET /health``: 200 and ``{"status": "ok", ...}`` once the model is loaded;
- ``GET /card``: what the model is (class names, dimensions, sample rate, metrics, its card);
- ``POST /predict``: one audio file (multipart field ``file``, optional form field ``text``) ->
  the JSON line ``python -m zoo infer`` writes for that file;
- ``WebSocket /stream``: a JSON message ``{"sample_rate": 16000, "format": "pcm16"}`` (or
  ``"float32"``; optional ``"options"`` for ``zoo.stream``), then binary frames of mono PCM; the
  server answers ``{"type": "ready", ...}`` and then every event of ``zoo.stream`` as a JSON text
  message; ``{"type": "end"}`` from the client flushes the last segment, the server sends
  ``{"type": "end"}`` and closes (1000). docs/live.md has the protocol and a client.

Every prediction of the server (all streams and uploads) runs on one model thread (:class:`Batcher`):
the event loop never waits on the model, and segments of several streams that end together go
through one ``Predictor.predict_batch`` call (batched == single: the Predictor's promise).

A client that breaks a limit (:class:`Limits`) gets ``{"type": "error", "code": ..., "error": why}``
and a WebSocket close with that code (HTTP: a status and ``{"error": why}``); the server goes on
serving the others.
"""
# no `from __future__ import annotations`: FastAPI reads the route functions' annotations
# (Request, WebSocket, imported inside create_app) as objects
import argparse
import asyncio
import contextlib
import json
import logging
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ZooUserError
from .protocol import (FORMATS, INTERNAL, NORMAL, POLICY, TOO_BIG, TRY_LATER, UNSUPPORTED, Limits, Violation,
                       _check_options, _parse_config)
from .segment import add_threads_argument, set_threads
from .shared import Batcher, SharedPredictor

log = logging.getLogger("zoo")

STATIC = Path(__file__).with_name("static")


# -- the app -----------------------------------------------------------------------------------------
def _jsonable(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def dumps(o: Any) -> str:
    return json.dumps(o, ensure_ascii=False, default=_jsonable)


def card(predictor, name: str) -> dict:
    """``GET /card``: the model's metadata and its card in Markdown."""
    from ..inference.cards import card_markdown
    from ..inference.commands import _card_meta

    meta = _card_meta(predictor.module, predictor.entry, source=str(predictor.source or name))
    return {"name": name, "model": type(predictor.module).__name__, "inputs": list(predictor.inputs),
            "sample_rate": predictor.sample_rate, "class_names": predictor.class_names, "dims": predictor.dims,
            "needs_text": predictor.needs_text, "metrics": meta.get("metrics", {}),
            "corpus": meta.get("corpus", ""), "description": meta.get("description", ""),
            "card": card_markdown(meta)}


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a POST /predict body above ``max_bytes`` gets 413 before it is spooled
    anywhere (Content-Length checked up front; a chunked body is counted as it arrives)."""

    def __init__(self, app, max_bytes: int, paths: tuple[str, ...] = ("/predict",)):
        self.app, self.max_bytes, self.paths = app, max_bytes, paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        message = (f"the upload is larger than this server accepts ({self.max_bytes / 1e6:g} MB; "
                   "python -m zoo serve --max-upload-mb)")
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await _send_json(send, 413, {"error": message})
        seen = 0
        started = False

        async def counted():
            nonlocal seen
            m = await receive()
            if m["type"] == "http.request":
                seen += len(m.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return m

        async def tracked(m):
            nonlocal started
            started = started or m["type"] == "http.response.start"
            await send(m)
        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _send_json(send, 413, {"error": message})


async def _send_json(send, status: int, body: dict) -> None:
    data = dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def create_app(predictor, *, name: str = "model", limits: Limits | None = None,
               allow_origins: Sequence[str] = ()):
    """The FastAPI app serving ``predictor`` (a ``zoo.load(...)`` Predictor) under ``limits``.
    ``allow_origins``: web pages of other sites allowed to open /stream (``"*"``: any)."""
    from fastapi import FastAPI, Request, WebSocket
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.datastructures import UploadFile
    from starlette.websockets import WebSocketDisconnect, WebSocketState

    limits = limits or Limits()
    batcher = Batcher(predictor, limits.batch_wait)
    shared = SharedPredictor(predictor, batcher)
    # a thread per open stream (its push waits on the model thread) plus uploads
    pool = ThreadPoolExecutor(max_workers=limits.max_streams + 2, thread_name_prefix="zoo-stream")
    # uploads wait on threads of their own: a burst of them never delays a stream's audio
    upload_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="zoo-upload")
    state = {"streams": 0, "served": 0}
    model_card = card(predictor, name)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        batcher.close()
        pool.shutdown(wait=False, cancel_futures=True)
        upload_pool.shutdown(wait=False, cancel_futures=True)

    # the OpenAPI pages load their scripts from a CDN: off (the schema stays at /openapi.json)
    app = FastAPI(title="zoo: speech emotion recognition", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.batcher, app.state.limits, app.state.streams = batcher, limits, state
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": name, "streams": state["streams"], "streams_served": state["served"],
                "max_streams": limits.max_streams, "predict_calls": batcher.calls}

    @app.get("/card")
    async def get_card():
        return model_card

    @app.get("/limits")
    async def get_limits():
        return asdict(limits)

    @app.get("/")
    async def index():
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.post("/predict")
    async def predict(request: Request):
        from ..data.audio import audio_info

        origin = request.headers.get("origin")
        if not _origin_allowed(origin, request.headers.get("host"), allow_origins):
            return error(403, f"an upload from the page of another site ({origin}) refused: "
                              "python -m zoo serve --allow-origin ORIGIN allows it")

        try:
            form = await request.form(max_files=1, max_fields=4)
        except Exception as e:  # starlette: MultiPartException, bad Content-Type, ...
            if isinstance(e, _TooLarge):
                raise
            return error(400, f"send a multipart/form-data body with the audio in the field 'file': {e}")
        upload, text = form.get("file"), form.get("text")
        if not isinstance(upload, UploadFile):
            return error(422, "no audio: send the file in the multipart field 'file'")
        if text is not None and not isinstance(text, str):
            return error(422, "the field 'text' must be text")
        text = (text or "").strip() or None
        if predictor.needs_text and not text:
            return error(422, f"{model_card['model']} reads the transcript: send it in the form field 'text'")
        filename = Path(upload.filename or "upload").name
        suffix = "".join(c for c in Path(filename).suffix[:8] if c.isalnum() or c == ".")
        with tempfile.TemporaryDirectory(prefix="zoo-serve-") as tmp:
            path = os.path.join(tmp, "upload" + suffix)
            with open(path, "wb") as f:
                while chunk := await upload.read(1 << 16):
                    f.write(chunk)
            await upload.close()
            try:
                seconds = audio_info(path)[2]
            except Exception as e:
                return error(415, f"{filename}: not a readable audio file: {e}")
            if seconds > limits.max_upload_seconds:
                return error(413, f"{filename} is {seconds:.1f} s long; this server accepts up to "
                                  f"{limits.max_upload_seconds:g} s (python -m zoo serve --max-upload-seconds)")

            def run():
                with batcher.busy():
                    return shared.predict_batch([path], [text], names=[filename], skip_errors=True)[0]
            r = await asyncio.get_running_loop().run_in_executor(upload_pool, run)
        if "error" in r:
            return error(422, f"{filename}: {r['error']}")
        row = {"file": filename, **r}
        if predictor.uses_text:
            row["text"] = text or ""
        return JSONResponse(row)


    @app.websocket("/stream")
    async def stream(ws: WebSocket):
        await ws.accept()
        origin = ws.headers.get("origin")
        if not _origin_allowed(origin, ws.headers.get("host"), allow_origins):
            await _close(ws, Violation(POLICY, f"WebSocket from the page of another site ({origin}) refused: "
                                               "python -m zoo serve --allow-origin ORIGIN allows it"))
            return
        if state["streams"] >= limits.max_streams:
            await _close(ws, Violation(TRY_LATER, f"too many streams: this server serves {limits.max_streams} "
                                                  "at once (python -m zoo serve --max-streams); try again later"))
            return
        state["streams"] += 1
        state["served"] += 1
        loop = asyncio.get_running_loop()
        try:
            cfg = _parse_config(await _receive(ws, limits))
            s = await loop.run_in_executor(pool, _open_stream, shared, cfg)
            await ws.send_text(dumps({"type": "ready", "model": name, "sample_rate": cfg["sample_rate"],
                                      "format": cfg["format"], "class_names": predictor.class_names,
                                      "dims": predictor.dims, "limits": asdict(limits)}))
            await _serve_stream(ws, s, cfg, loop)
        except WebSocketDisconnect:
            pass  # the client went away: nothing to tell it
        except Violation as v:
            await _close(ws, v)
        except Exception as e:  # noqa: BLE001 - one stream's failure must not stop the server
            if ws.client_state == WebSocketState.DISCONNECTED or ws.application_state == WebSocketState.DISCONNECTED:
                return  # a send to a client that had gone: same as a disconnect
            log.exception("stream failed")
            await _close(ws, Violation(INTERNAL, f"the server failed on this stream: {type(e).__name__}: {e}"))
        finally:
            state["streams"] -= 1

    async def _close(ws, v: Violation) -> None:
        with contextlib.suppress(Exception):
            if ws.application_state == WebSocketState.CONNECTED:
                await ws.send_text(dumps({"type": "error", "code": v.code, "error": str(v)}))
                # a close reason is at most 123 bytes; the full message went in the JSON
                await ws.close(v.code, str(v).encode()[:120].decode(errors="ignore"))

    async def _receive(ws, limits: Limits) -> dict:
        try:
            m = await asyncio.wait_for(ws.receive(), limits.idle_timeout)
        except asyncio.TimeoutError:
            raise Violation(POLICY, f"idle for {limits.idle_timeout:g} s: closed "
                                    "(python -m zoo serve --idle-timeout)") from None
        if m["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(m.get("code", 1000))
        data = m.get("bytes") if m.get("bytes") is not None else m.get("text")
        if data is not None and len(data) > limits.max_message_bytes:
            raise Violation(TOO_BIG, f"a message of {len(data)} bytes; this server accepts up to "
                                     f"{limits.max_message_bytes} (python -m zoo serve --max-message-kb): "
                                     "send shorter frames")
        return m

    async def _serve_stream(ws, s, cfg, loop) -> None:
        """Receive frames and hand them to ``s.push`` in order, coalescing the frames that arrived
        while the previous push ran (a flood of tiny frames costs bytes, not pushes)."""
        sr, dtype = cfg["sample_rate"], FORMATS[cfg["format"]]
        pending: list[np.ndarray] = []
        backlog = 0  # samples in pending
        wake, drained = asyncio.Event(), asyncio.Event()
        ending = False
        seconds = 0.0
        rate, burst = limits.max_frames_per_second, 2 * limits.max_frames_per_second
        tokens, last = burst, time.monotonic()

        def push(chunk):
            with batcher.busy():
                return s.push(chunk, sample_rate=sr)

        def flush():
            with batcher.busy():
                return s.flush()

        async def consume():
            nonlocal backlog
            while True:
                await wake.wait()
                wake.clear()
                while pending:
                    chunk = np.concatenate(pending)
                    pending.clear()
                    backlog = 0
                    drained.set()
                    for e in await loop.run_in_executor(pool, push, chunk) or []:
                        await ws.send_text(dumps(e))
                if ending:
                    for e in await loop.run_in_executor(pool, flush) or []:
                        await ws.send_text(dumps(e))
                    return
        consumer = asyncio.ensure_future(consume())
        try:
            while True:
                recv = asyncio.ensure_future(_receive(ws, limits))
                done, _ = await asyncio.wait({recv, consumer}, return_when=asyncio.FIRST_COMPLETED)
                if consumer in done:  # it failed (it only returns after "end")
                    recv.cancel()
                    consumer.result()
                m = recv.result()
                if m.get("text") is not None:
                    try:
                        msg = json.loads(m["text"])
                    except ValueError:
                        msg = None
                    if not (isinstance(msg, dict) and msg.get("type") == "end"):
                        raise Violation(UNSUPPORTED, 'after the first message, send binary audio frames, or '
                                                     '{"type": "end"} to finish; got the text ' + repr(m["text"][:80]))
                    break
                data = m.get("bytes") or b""
                now = time.monotonic()
                tokens = min(burst, tokens + (now - last) * rate)
                last = now
                if tokens < 1:
                    raise Violation(POLICY, f"more than {rate:g} frames per second: send fewer, longer frames "
                                            "(20-100 ms of audio each; python -m zoo serve --max-frames-per-second)")
                tokens -= 1
                if len(data) % dtype.itemsize:
                    raise Violation(UNSUPPORTED, f"a {cfg['format']} frame of {len(data)} bytes: not a whole "
                                                 f"number of {dtype.itemsize}-byte samples")
                if not data:
                    continue
                x = np.frombuffer(data, dtype=dtype)
                if dtype.kind == "f":
                    if not np.isfinite(x).all():
                        raise Violation(UNSUPPORTED, "a float32 frame with NaN or infinite samples")
                    x = x.astype(np.float32)
                else:
                    x = x.astype(np.int16)
                seconds += x.size / sr
                if seconds > limits.max_stream_seconds:
                    raise Violation(POLICY, f"more than {limits.max_stream_seconds:g} s of audio on one stream "
                                            "(python -m zoo serve --max-stream-seconds): open a new one")
                pending.append(x)
                backlog += x.size
                wake.set()
                # a client faster than the model: stop reading (TCP pushes back) until the
                # analysis catches up, so memory stays bounded whatever the client sends
                while backlog > limits.max_backlog_seconds * sr and not consumer.done():
                    drained.clear()
                    waiter = asyncio.ensure_future(drained.wait())
                    await asyncio.wait({consumer, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
            ending = True
            wake.set()
            await consumer
            await ws.send_text(dumps({"type": "end", "seconds": round(seconds, 3)}))
            await ws.close(NORMAL)
        finally:
            # a violation or a vanished client: the push in flight finishes on its thread and the
            # stream is dropped unflushed (its last segment has nobody to go to: a WebSocket sends
            # nothing after a close)
            if not consumer.done():
                consumer.cancel()

    return app


def _origin_allowed(origin: str | None, host: str | None, allowed: Sequence[str]) -> bool:
    """A browser names the page that opens a WebSocket (Origin), and WebSockets are not bound by
    the same-origin policy: without this check any site the user visits could stream to, and read
    from, the local server. Clients that are not browsers send no Origin and are let in."""
    if origin is None or "*" in allowed or origin in allowed:
        return True
    from urllib.parse import urlsplit

    return urlsplit(origin).netloc == host



def _open_stream(shared, cfg: dict):
    from .stream import Stream

    options = _check_options(cfg["options"])
    try:
        return Stream(shared, sample_rate=cfg["sample_rate"], **options)
    except ZooUserError as e:
        raise Violation(UNSUPPORTED, f"cannot stream with this model: {e}") from None


# -- command line ------------------------------------------------------------------------------------
SERVE_EPILOG = """\
examples:
  python -m zoo serve --model audio-cnn-synth                # then open http://127.0.0.1:8000/
  python -m zoo serve --model audio-cnn-synth --host 0.0.0.0 --port 9000 --max-streams 4
"""


def serve_parser() -> argparse.ArgumentParser:
    from ..inference.commands import _model_args

    d = Limits()
    ap = argparse.ArgumentParser(
        prog="python -m zoo serve", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SERVE_EPILOG,
        description="Serve a model over HTTP and WebSocket: the live page at /, POST /predict (one file), "
                    "WebSocket /stream (live audio -> an emotion per speech segment), GET /health and "
                    "/card (needs the serve extra: pip install -e '.[serve]'; protocol: docs/live.md).")
    _model_args(ap)
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind: 127.0.0.1 (default: this machine only) or 0.0.0.0 (every interface)")
    ap.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    ap.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    add_threads_argument(ap)
    ap.add_argument("--max-streams", type=int, default=d.max_streams,
                    help=f"WebSocket streams open at once (default {d.max_streams})")
    ap.add_argument("--max-message-kb", type=float, default=d.max_message_bytes / 1024,
                    help=f"largest WebSocket message in KiB (default {d.max_message_bytes // 1024})")
    ap.add_argument("--max-frames-per-second", type=float, default=d.max_frames_per_second,
                    help=f"audio frames one stream may send per second (default {d.max_frames_per_second:g})")
    ap.add_argument("--max-stream-seconds", type=float, default=d.max_stream_seconds,
                    help=f"audio one stream may send in all, in seconds (default {d.max_stream_seconds:g})")
    ap.add_argument("--idle-timeout", type=float, default=d.idle_timeout,
                    help=f"seconds without a message before a stream is closed (default {d.idle_timeout:g})")
    ap.add_argument("--max-upload-mb", type=float, default=d.max_upload_bytes / 1e6,
                    help=f"largest POST /predict upload in MB (default {d.max_upload_bytes / 1e6:g})")
    ap.add_argument("--max-upload-seconds", type=float, default=d.max_upload_seconds,
                    help=f"longest uploaded recording in seconds (default {d.max_upload_seconds:g})")
    ap.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                    help="a web page of another site (e.g. https://example.org) that may open /stream; "
                         "repeatable; '*' for any (default: only the server's own page)")
    ap.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return ap


def limits_from_args(a: argparse.Namespace) -> Limits:
    lim = Limits(max_streams=a.max_streams, max_message_bytes=int(a.max_message_kb * 1024),
                 max_frames_per_second=a.max_frames_per_second, max_stream_seconds=a.max_stream_seconds,
                 idle_timeout=a.idle_timeout, max_upload_bytes=int(a.max_upload_mb * 1e6),
                 max_upload_seconds=a.max_upload_seconds)
    for f in fields(lim):
        if getattr(lim, f.name) <= 0 and f.name != "batch_wait":
            raise ZooUserError(f"--{f.name.replace('_', '-')} must be positive, got {getattr(lim, f.name)}")
    return lim


def uvicorn_config(app, host: str, port: int, limits: Limits, **kw):
    import uvicorn

    # uvicorn's own cap is a backstop four times above the limit: messages in between reach the app,
    # which answers with a JSON error before closing (1009); uvicorn closes larger ones itself
    return uvicorn.Config(app, host=host, port=port, ws="websockets-sansio",
                          ws_max_size=4 * limits.max_message_bytes, **kw)


def main(argv: Sequence[str] | None = None) -> None:
    a = serve_parser().parse_args(argv)
    limits = limits_from_args(a)
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as e:
        raise ZooUserError(f"python -m zoo serve needs the serve extra: pip install -e '.[serve]' ({e})") from e
    from ..inference.predictor import load

    set_threads(a.threads)
    predictor = load(a.model, registry=a.registry, trust=a.trust, device=a.device)
    app = create_app(predictor, name=a.model, limits=limits, allow_origins=a.allow_origin)
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: anyone who can reach this address can use the model (no authentication)",
                    a.host)
    log.info("serving %s on http://%s:%d/ (live page), WebSocket /stream, POST /predict", a.model,
             "127.0.0.1" if a.host == "0.0.0.0" else a.host, a.port)
    uvicorn.Server(uvicorn_config(app, a.host, a.port, limits, log_level=a.log_level)).run()


main_serve = main

__all__ = ["create_app", "Limits", "Batcher", "SharedPredictor", "Violation", "main"]
