"""Live recognition: the Silero VAD segmenter, zoo.stream (chunks in, events out), infer --segment
vad and listen. The core promise: a recording streamed in chunks of any size, dtype and sample
rate gives the same segments (times equal) and the same probabilities (1e-5) as the recording at
once, which is what infer --segment vad runs."""
import csv
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import zoo
from zoo.data.audio import resample
from zoo.errors import ZooUserError
from zoo.live.segment import RATE, Segmenter
from zoo.live.stream import Stream, segment_events

pytest.importorskip("silero_vad")

ROOT = Path(__file__).resolve().parents[1]
SR = 48000  # the synthetic corpus's rate
GAPS = (1.3, 1.0, 1.6, 1.2, 1.4, 0.9)  # seconds of room noise before each utterance (and after the last)
# The synthetic wavs carry up to ~0.7 s of room noise around the speech, so a VAD segment starts
# up to that much after its file begins and ends up to that much before it ends (+ the padding).
TOL = 0.8


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """Five synthetic utterances joined by stretches of faint noise, written as 16-bit PCM at
    48 kHz; with the true (file) span of each utterance in seconds."""
    from zoo.data.synth import generate

    tmp = tmp_path_factory.mktemp("live")
    root = generate(tmp / "c", size=5, seed=3, workers=1)
    rows = list(csv.DictReader(open(root / "synthetic.csv", encoding="cp949")))[:5]
    rng = np.random.default_rng(0)
    parts, truth, t = [], [], 0
    for r, gap in zip(rows, GAPS):
        wav, sr = sf.read(str(next(root.rglob(r["wav_id"] + ".wav"))), dtype="float32")
        assert sr == SR
        parts += [rng.standard_normal(int(gap * SR)).astype(np.float32) * 3e-4, wav]
        t += int(gap * SR)
        truth.append((t / SR, (t + wav.size) / SR))
        t += wav.size
    parts.append(rng.standard_normal(int(GAPS[-1] * SR)).astype(np.float32) * 3e-4)
    path = tmp / "talk.wav"
    sf.write(path, np.concatenate(parts), SR, subtype="PCM_16")
    return path, truth


@pytest.fixture(scope="module")
def model():
    return zoo.load("audio-cnn-synth", device="cpu")


@pytest.fixture(scope="module")
def offline(recording, model):
    """The reference: infer --segment vad's path, the whole file at once."""
    return model.predict_long(recording[0], segment="vad")


def _stream_in_chunks(model, wav, sr, chunk, **opts):
    s = zoo.stream(model, **opts)
    events, held = [], 0
    for i in range(0, wav.size, chunk):
        events += s.push(wav[i : i + chunk], sample_rate=sr)
        held = max(held, s._buf.end - s._buf.start)
    # memory is bounded by the longest segment, not the recording (the buffer keeps <= 2x + a chunk)
    assert held <= 2 * (s.segmenter.max_segment + 1) * s.model_rate + 2 * chunk * s.model_rate / sr + 65536
    return events + s.flush()


def _same_segments(events, track):
    segs = segment_events(events)
    assert [(e["start"], e["end"]) for e in segs] == [(w["start"], w["end"]) for w in track]
    for e, w in zip(segs, track):
        assert e["label"] == w["label"]
        assert e["probs"] == pytest.approx(w["probs"], abs=1e-5)


def test_vad_finds_each_utterance_near_its_true_span(recording, offline):
    _, truth = recording
    track = offline["track"]
    assert len(track) == len(truth), [(w["start"], w["end"]) for w in track]
    for w, (a, b) in zip(track, truth):
        assert a - 0.05 <= w["start"] <= a + TOL, (w, (a, b))
        assert b - TOL <= w["end"] <= b + 0.2, (w, (a, b))
    assert offline["segment"] == "vad" and offline["label"] in offline["probs"]
    speech = sum(w["end"] - w["start"] for w in track)
    assert offline["speech"] == pytest.approx(speech, abs=1e-3)
    # the aggregate is the duration-weighted mean of the segments
    for c, p in offline["probs"].items():
        assert p == pytest.approx(sum(w["probs"][c] * (w["end"] - w["start"]) for w in track) / speech, abs=1e-6)


@pytest.mark.parametrize("rate,chunk_s,dtype", [
    (SR, 0.02, "float32"),      # 20 ms
    (SR, 337 / SR, "int16"),    # an odd size
    (44100, 0.1, "float32"),    # 100 ms at a rate the model does not use
    (8000, 1.0, "int16"),       # 1 s at telephone rate
], ids=["48k-20ms-float", "48k-337-int16", "44k1-100ms-float", "8k-1s-int16"])
def test_streamed_in_chunks_equals_the_whole_recording(recording, model, rate, chunk_s, dtype):
    wav, sr = sf.read(str(recording[0]), dtype="float32")
    if rate != SR:
        wav = resample(wav, SR, rate)
    whole = Stream(model, hop=None).run(wav, rate)
    if rate == SR:  # the native file at once is exactly infer --segment vad
        ref = model.predict_long(recording[0], segment="vad")["track"]
        _same_segments(whole, ref)
    assert len(segment_events(whole)) == len(recording[1])
    x = np.clip(np.round(wav * 32768), -32768, 32767).astype(np.int16) if dtype == "int16" else wav
    if dtype == "int16":  # the same signal as int16: the whole float version of it is the reference
        whole = Stream(model, hop=None).run(x.astype(np.float32) / 32768, rate)
    chunk = max(1, int(round(chunk_s * rate)))
    events = _stream_in_chunks(model, x, rate, chunk, hop=None)
    _same_segments(events, segment_events(whole))


def test_infer_segment_vad_reads_a_file_a_block_at_a_time(recording, model, monkeypatch):
    """infer --segment vad never holds the file whole (docs/performance.md, "Long files"): it
    streams soundfile blocks into the stream, which gives what the recording pushed at once gives."""
    import zoo.data.audio as za

    wav, _ = sf.read(str(recording[0]), dtype="float32")
    whole = model.predict_long(wav, segment="vad", sample_rate=SR)
    blocks, orig = [], za.audio_blocks

    def small_blocks(p, sr=None, block_seconds=20.0):
        for b in orig(p, sr, 0.7):
            blocks.append(b.size)
            yield b

    monkeypatch.setattr(za, "read_audio", lambda *a, **k: pytest.fail("the file was read whole"))
    monkeypatch.setattr(za, "audio_blocks", small_blocks)
    r = model.predict_long(recording[0], segment="vad")
    assert len(blocks) > 20 and max(blocks) == int(0.7 * SR)  # at the file's own rate
    assert r["duration"] == whole["duration"] and r["speech"] == whole["speech"] and r["label"] == whole["label"]
    assert len(r["track"]) == len(recording[1])
    _same_segments([{"type": "segment", **w} for w in r["track"]], whole["track"])


def test_int16_and_float_chunks_agree_exactly(recording, model):
    i16, _ = sf.read(str(recording[0]), dtype="int16")
    f32, _ = sf.read(str(recording[0]), dtype="float32")  # = int16 / 32768 for a PCM_16 file
    a = _stream_in_chunks(model, i16, SR, 4800)
    b = _stream_in_chunks(model, f32, SR, 7001)
    assert [(e["type"], e["start"], e["end"], e["label"]) for e in a] == \
           [(e["type"], e["start"], e["end"], e["label"]) for e in b]


def test_partials_come_during_a_segment_and_state_smooths(recording, model):
    wav, _ = sf.read(str(recording[0]), dtype="float32")
    events = _stream_in_chunks(model, wav, SR, 1600, hop=0.5, smoothing=4.0)
    segs = segment_events(events)
    partials = [e for e in events if e["type"] == "partial"]
    assert partials
    for seg in segs:
        mine = [e for e in partials if e["index"] == seg["index"]]
        # one partial every 0.5 s of the open segment (it ends min_silence after its speech)
        assert len(mine) >= int((seg["end"] - seg["start"]) / 0.5) - 1 >= 1
        assert all(e["start"] == seg["start"] and e["label"] in e["probs"] for e in mine)
        ends = [e["end"] for e in mine]
        assert ends == sorted(ends) and np.allclose(np.diff(ends), 0.5, atol=0.033)
        # partials come before their segment in the event order
        assert max(events.index(e) for e in mine) < events.index(seg)
    # partials change nothing about the segments
    _same_segments(events, segment_events(Stream(model, hop=None).run(wav, SR)))
    states = [e for e in events if e["type"] == "state"]
    assert len(states) == len(segs)
    assert states[0]["probs"] == pytest.approx(segs[0]["probs"])
    want = np.array(list(states[0]["probs"].values()))
    for seg, st in zip(segs[1:], states[1:]):
        w = 1 - math.exp(-(seg["end"] - seg["start"]) / 4.0)
        want = (1 - w) * want + w * np.array(list(seg["probs"].values()))
        assert list(st["probs"].values()) == pytest.approx(list(want), abs=1e-6)
        assert st["label"] == max(st["probs"], key=st["probs"].get) and st["end"] == seg["end"]


def test_max_segment_cuts_a_long_turn(recording, model):
    wav, _ = sf.read(str(recording[0]), dtype="float32")
    wav16 = resample(wav, SR, RATE)
    # with a long min_silence the five utterances are one turn of about 20 s ...
    one = Segmenter(min_silence=5.0, max_segment=None).segments(wav16)
    assert len(one) == 1 and (one[0][1] - one[0][0]) / RATE > 15
    # ... which max_segment cuts into pieces no longer than it, covering the same speech
    cut = Segmenter(min_silence=5.0, max_segment=4.0).segments(wav16)
    assert len(cut) >= 5
    assert all(0 < b - a <= 4.0 * RATE for a, b in cut)
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(cut, cut[1:]))  # in order, no overlap
    assert cut[0][0] == one[0][0] and cut[-1][1] == one[0][1]
    # the stream says the same, in chunks
    events = _stream_in_chunks(model, wav, SR, 2205, hop=None, min_silence=5.0, max_segment=4.0)
    assert [(round(a / RATE, 3), round(b / RATE, 3)) for a, b in cut] == \
           [(e["start"], e["end"]) for e in segment_events(events)]


def test_segmenter_decisions_do_not_depend_on_chunking(recording):
    wav, _ = sf.read(str(recording[0]), dtype="float32")
    wav16 = resample(wav, SR, RATE)
    whole = Segmenter(partial_every=0.7)
    ref = whole.push(wav16) + whole.flush()
    rng = np.random.default_rng(1)
    s = Segmenter(partial_every=0.7)
    cuts, i = [], 0
    while i < wav16.size:
        n = int(rng.integers(1, 3000))
        cuts += s.push(wav16[i : i + n])
        i += n
    assert cuts + s.flush() == ref and s.probs == whole.probs


def test_stream_edges(model):
    s = zoo.stream(model)
    assert s.flush() == [] and s.flush() == []  # nothing pushed: nothing to say
    with pytest.raises(ZooUserError, match="flushed"):
        s.push(np.zeros(100, np.float32))
    s.reset()
    assert s.push(np.zeros(16000, np.float32), sample_rate=16000) == []
    with pytest.raises(ZooUserError, match="16000 Hz and got a chunk at 44100 Hz"):
        s.push(np.zeros(100, np.float32), sample_rate=44100)
    with pytest.raises(ZooUserError, match="1-D"):
        s.push(np.zeros((100, 2), np.float32))
    with pytest.raises(ZooUserError, match="dtype"):
        s.push(np.zeros(100, np.uint8))
    assert s.flush() == []  # a second of silence: no segment
    with pytest.raises(ZooUserError, match="threshold"):
        zoo.stream(model, threshold=1.5)


def test_silence_is_not_labelled(tmp_path, model, run):
    quiet = np.random.default_rng(0).standard_normal(3 * SR).astype(np.float32) * 3e-4
    r = model.predict_long(quiet, segment="vad", sample_rate=SR)
    assert r["label"] is None and r["probs"] == {} and r["track"] == [] and r["note"] == "no speech detected"
    sf.write(tmp_path / "quiet.wav", quiet, SR, subtype="PCM_16")
    out = tmp_path / "o.csv"
    res = run("infer", "--model", "audio-cnn-synth", str(tmp_path / "quiet.wav"), "--segment", "vad",
              "--out", str(out), "--plot", str(tmp_path / "p.png"))
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    assert len(rows) == 1 and rows[0]["label"] == "" and rows[0]["note"] == "no speech detected"
    assert "no speech detected in 1 file(s)" in res.stderr and not (tmp_path / "p.png").exists()


def test_infer_segment_vad_writes_the_stream_segments(tmp_path, recording, offline, run):
    path, truth = recording
    res = run("infer", "--model", "audio-cnn-synth", str(path), "--segment", "vad", "--out",
              str(tmp_path / "o.jsonl"), "--plot", str(tmp_path / "track.png"))
    assert res.returncode == 0, res.stderr
    row = json.loads((tmp_path / "o.jsonl").read_text().splitlines()[0])
    assert row["segment"] == "vad" and len(row["track"]) == len(truth)
    _same_segments([{"type": "segment", **w} for w in row["track"]], offline["track"])
    assert (tmp_path / "track.png").stat().st_size > 10_000
    res = run("infer", "--model", "audio-cnn-synth", str(path), "--segment", "vad", "--vad-min-silence", "5",
              "--vad-max-segment", "4", "--out", str(tmp_path / "o.csv"))
    rows = list(csv.DictReader(open(tmp_path / "o.csv", encoding="utf-8")))
    spans = [(float(r["start"]), float(r["end"])) for r in rows[1:]]
    assert len(spans) >= 5 and all(b - a <= 4.0 for a, b in spans) and rows[0]["start"] == ""
    res = run("infer", "--model", "audio-cnn-synth", str(path), "--segment", "vad", "--vad-threshold", "2")
    assert res.returncode != 0 and "threshold" in res.stderr


def test_dimensional_and_text_models(recording):
    wav, _ = sf.read(str(recording[0]), dtype="float32")
    wav = wav[: int(9 * SR)]  # the first two utterances
    dims = Stream(zoo.load("audio-cnn-dims-synth", device="cpu"), hop=None).run(wav, SR)
    seg = segment_events(dims)[0]
    assert seg["label"] is None and 0 <= seg["arousal"] <= 1 and 0 <= seg["valence"] <= 1
    state = next(e for e in dims if e["type"] == "state")
    assert state["arousal"] == pytest.approx(seg["arousal"])
    # late fusion predicts from audio alone; a text model needs a transcript per segment
    late = segment_events(Stream(zoo.load("late-fusion-synth", device="cpu"), hop=None).run(wav, SR))
    assert len(late) == 2 and all(e["text"] == "" for e in late)
    text_model = zoo.load("text-bert-synth", device="cpu")
    with pytest.raises(ZooUserError, match="asr"):
        Stream(text_model)
    heard = []

    def asr(w, sr):  # a stand-in recogniser: it sees each segment's audio at the model's rate
        heard.append((w.size, sr))
        return "나 어제 헤어졌어"
    segs = segment_events(Stream(text_model, hop=None, asr=asr).run(wav, SR))
    assert len(segs) == 2 and all(e["text"] == "나 어제 헤어졌어" for e in segs)
    assert [n / sr for n, sr in heard] == pytest.approx([e["end"] - e["start"] for e in segs], abs=1e-3)


def test_listen_file_realtime_prints_each_segment(tmp_path, recording, model, run):
    wav, _ = sf.read(str(recording[0]), dtype="float32")
    short = tmp_path / "short.wav"
    sf.write(short, wav[: int(4.5 * SR)], SR, subtype="PCM_16")  # the first utterance
    t0 = time.monotonic()
    res = run("listen", "--model", "audio-cnn-synth", "--file", str(short), "--realtime", "--chunk", "0.25")
    took = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    assert took >= 4.5 * 0.9  # paced to the clock
    want = segment_events(Stream(model, hop=None).run(wav[: int(4.5 * SR)], SR))
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) == len(want) == 1
    assert lines[0].split() == [f"{want[0]['start']:.2f}-", f"{want[0]['end']:.2f}", "s", want[0]["label"],
                                f"{want[0]['probs'][want[0]['label']]:.2f}"]
    res = run("listen", "--model", "audio-cnn-synth", "--file", str(recording[0]), "--jsonl", "--hop", "0")
    events = [json.loads(ln) for ln in res.stdout.splitlines()]
    assert {e["type"] for e in events} == {"segment", "state"}
    assert len(segment_events(events)) == len(recording[1])


def test_listen_without_a_microphone_says_so(monkeypatch, run):
    class NoDevices:
        @staticmethod
        def query_devices(*a, **k):
            return []
    monkeypatch.setitem(sys.modules, "sounddevice", NoDevices)
    res = run("listen", "--model", "audio-cnn-synth")
    assert res.returncode != 0 and "no audio input device" in res.stderr
    res = run("listen", "--model", "audio-cnn-synth", "--realtime")
    assert res.returncode != 0 and "--realtime paces a --file" in res.stderr


def test_live_imports_stay_light():
    code = ("import sys, zoo, zoo.live.segment, zoo.live.stream, zoo.live.listen; "
            "print(sorted(m for m in ('torch', 'lightning', 'onnxruntime', 'soxr', 'sounddevice') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_live_commands_run_torch_on_one_thread_by_default():
    """serve and listen default to one torch thread (p95 latency measured in docs/live.md), and
    refuse a count below one."""
    import torch

    from zoo.errors import ZooUserError
    from zoo.live.listen import parser as listen_parser
    from zoo.live.segment import set_threads
    from zoo.live.serve import serve_parser

    assert serve_parser().parse_args(["--model", "m"]).threads == 1
    assert listen_parser().parse_args(["--model", "m"]).threads == 1
    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        with pytest.raises(ZooUserError, match="--threads must be >= 1, got 0"):
            set_threads(0)
    finally:
        torch.set_num_threads(before)
