"""The stream suite's concurrent clients: N WebSocket streams to one ``python -m zoo serve``, each
sending one recording as PCM16 in 20 ms frames at real-time pace, from this process (asyncio and
the websockets library: the clients do not share the server's interpreter or GIL).

    python -m benchmarks.children.stream_clients URL RECORDING.json REFERENCE.json N STAGGER SEED

RECORDING.json: ``{"wav": path}`` (16-bit-safe float, any rate). REFERENCE.json: the segments a
20 ms-chunked stream of the same audio finishes, ``[{"index", "close", "true_end"}, ...]`` (from
benchmarks/children/stream_latency.py: the VAD decides them, whatever the model; ``close`` is the
stream time of the chunk that let the VAD close the segment). Each client connects, then all start
together, client ``k`` after a seeded random delay in ``[0, STAGGER)`` s so that segments do not
all end at the same instant. Client ``k``'s frame ``j`` is due at ``T_k + (j + 1) * 0.02`` (when
its last sample would exist), so a segment event received at ``r`` has the latency
``r - (T_k + close)`` from the VAD close and ``r - (T_k + true_end)`` from the end of speech.

A frame counts as dropped when the server's closing ``{"type": "end", "seconds"}`` reports less
audio than was sent, when a stream ends in an error or an abnormal close, or when a reference
segment never comes back. Prints one JSON line: the latencies, drops and the clients' own send lag
(how late a frame left its due time: the clients' share of any delay).
"""
from __future__ import annotations

import asyncio
import json
import sys
import time

FRAME = 0.02


async def client(url: str, pcm, sr: int, ref: dict, start_at: float, out: dict, ready) -> None:
    from websockets.asyncio.client import connect

    step = int(round(FRAME * sr))
    lat_close, lat_speech, lag, seen = out["close"], out["speech"], out["lag"], set()
    try:
        async with connect(url, max_size=None, ping_interval=None) as ws:
            await ws.send(json.dumps({"sample_rate": sr, "format": "pcm16"}))
            first = json.loads(await ws.recv())
            if first.get("type") != "ready":
                out["errors"].append(str(first)[:200])
                ready()
                return
            ready()
            t0 = await start_at

            async def send():
                for j in range(0, -(-pcm.size // step)):
                    due = t0 + (j + 1) * FRAME
                    d = due - time.monotonic()
                    if d > 0:
                        await asyncio.sleep(d)
                    lag.append(time.monotonic() - due)
                    await ws.send(pcm[j * step : (j + 1) * step].tobytes())
                await ws.send(json.dumps({"type": "end"}))

            sender = asyncio.create_task(send())
            async for message in ws:
                now = time.monotonic()
                e = json.loads(message)
                if e["type"] == "segment" and e["index"] in ref and e["index"] not in seen:
                    seen.add(e["index"])
                    lat_close.append(now - t0 - ref[e["index"]]["close"])
                    if ref[e["index"]]["true_end"] is not None:
                        lat_speech.append(now - t0 - ref[e["index"]]["true_end"])
                elif e["type"] == "error":
                    out["errors"].append(e.get("error", "")[:200])
                elif e["type"] == "end":
                    # the server counts the audio it received, in seconds to the millisecond
                    missed = pcm.size - round(e["seconds"] * sr)
                    if missed > sr // 1000:
                        out["dropped_samples"] += missed
            await sender
            if ws.close_code not in (1000, None):
                out["errors"].append(f"closed with code {ws.close_code}")
    except Exception as e:  # noqa: BLE001 - a failed stream is a result, not a crash of the benchmark
        out["errors"].append(f"{type(e).__name__}: {e}"[:200])
        ready()
    out["missing"] += len(set(ref) - seen)


async def main_async(url: str, pcm, sr: int, ref: dict, n: int, stagger: float, seed: int) -> dict:
    import numpy as np

    delays = np.random.default_rng(seed).uniform(0, stagger, n) if stagger > 0 else np.zeros(n)
    out = {"close": [], "speech": [], "lag": [], "errors": [], "dropped_samples": 0, "missing": 0}
    loop = asyncio.get_running_loop()
    pending = [n]
    connected = asyncio.Event()

    def ready():
        pending[0] -= 1
        if pending[0] == 0:
            connected.set()

    starts = [loop.create_future() for _ in range(n)]
    tasks = [asyncio.create_task(client(url, pcm, sr, ref, starts[k], out, ready)) for k in range(n)]
    await asyncio.wait_for(connected.wait(), 120)  # every stream is open before the clock starts
    t = time.monotonic() + 0.2
    for k in range(n):
        starts[k].set_result(t + float(delays[k]))
    await asyncio.gather(*tasks)
    return out


def main() -> None:
    import numpy as np
    import soundfile as sf

    url, rec_path, ref_path = sys.argv[1], sys.argv[2], sys.argv[3]
    n, stagger, seed = int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    wav, sr = sf.read(json.loads(open(rec_path).read())["wav"], dtype="float32")
    pcm = (np.clip(wav, -1, 1 - 1 / 32768) * 32768).astype("<i2")
    ref = {r["index"]: r for r in json.loads(open(ref_path).read())}
    t = time.monotonic()
    out = asyncio.run(main_async(url, pcm, sr, ref, n, stagger, seed))

    def pct(xs, q):
        return float(np.percentile(xs, q)) if xs else float("nan")

    print(json.dumps({
        "streams": n, "wall_s": time.monotonic() - t, "segments": len(out["close"]), "expected": n * len(ref),
        "close_p50": pct(out["close"], 50), "close_p95": pct(out["close"], 95),
        "close_max": max(out["close"], default=float("nan")),
        "speech_p50": pct(out["speech"], 50), "speech_p95": pct(out["speech"], 95),
        "lag_p95": pct(out["lag"], 95), "lag_max": max(out["lag"], default=float("nan")),
        "dropped_samples": out["dropped_samples"], "missing": out["missing"], "errors": out["errors"][:5],
        "n_errors": len(out["errors"])}))


if __name__ == "__main__":
    main()
