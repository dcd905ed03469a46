"""Segmentation accuracy (python -m zoo segeval): joined recordings keep their true spans, the
frame / utterance scoring, and the command end to end on a tiny synthetic corpus."""
import json

import numpy as np
import pytest
import yaml

import zoo
from zoo.live.evaluate import (FRAME, build_recordings, frame_labels, split_utterances, speech_bounds,
                               unweighted_recall, utterance_label)

pytest.importorskip("silero_vad")


def test_joined_recordings_keep_the_true_spans():
    rng = np.random.default_rng(0)
    audios = [rng.standard_normal(int(rng.integers(8000, 30000))).astype(np.float32) for _ in range(7)]
    labels = list("ABCABCA")
    recs = build_recordings(audios, labels, 16000, per_recording=3, gap=(0.5, 1.0), noise_snr=None, seed=1)
    assert [len(r.spans) for r in recs] == [3, 3, 1]
    seen = []
    for r in recs:
        assert r.spans[0][0] >= 0.5 and r.duration - r.spans[-1][1] >= 0.5 - 1e-9
        for (a, b), (a2, _) in zip(r.spans, r.spans[1:]):
            assert 0.5 - 1e-9 <= a2 - b <= 1.0 + 1e-9
        for (a, b), lab in zip(r.spans, r.labels):
            clip = r.wav[int(round(a * 16000)) : int(round(b * 16000))]
            i = next(i for i, x in enumerate(audios) if x.size == clip.size and np.array_equal(x, clip))
            assert labels[i] == lab
            seen.append(i)
        # outside the utterances: silence
        mask = np.ones(r.wav.size, bool)
        for a, b in r.spans:
            mask[int(round(a * 16000)) : int(round(b * 16000))] = False
        assert not r.wav[mask].any()
    assert sorted(seen) == list(range(7))
    inner = build_recordings(audios, labels, 16000, per_recording=7, noise_snr=None, seed=1,
                             speech=[(100, x.size - 200) for x in audios])[0]
    for (a, b), (ca, cb) in zip(inner.spans, inner.clips):
        assert a == pytest.approx(ca + 100 / 16000) and b == pytest.approx(cb - 200 / 16000)
    noisy, again = build_recordings(audios, labels, 16000, per_recording=4, noise_snr=10.0, seed=1,
                                    speech=[(0, x.size) for x in audios])
    for rec in (noisy, again):  # every recording gets noise at the SNR of its own clips
        a = rec.clips[0][0]
        gap = rec.wav[: int(a * 16000)]
        power = np.mean(np.concatenate([rec.wav[int(round(x * 16000)) : int(round(y * 16000))]
                                        for x, y in rec.clips]) ** 2)
        assert 10 * np.log10(power / np.mean(gap ** 2)) == pytest.approx(10.0, abs=0.6)


def test_speech_bounds_leave_out_the_room_tone():
    sr = 16000
    rng = np.random.default_rng(0)
    tone = (0.5 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr)).astype(np.float32)
    room = lambda n: rng.standard_normal(n).astype(np.float32) * 1e-3  # noqa: E731  (-51 dB below the tone)
    wav = np.concatenate([room(8000), tone, room(4000)])
    a, b = speech_bounds(wav, sr, 40)
    assert a == 8000 and b == 8000 + sr
    assert speech_bounds(wav, sr, 80) == (0, wav.size)  # the room tone is within 80 dB: kept
    assert speech_bounds(np.zeros(100, np.float32), sr) == (0, 100)


def test_frame_and_utterance_scoring():
    p = lambda c: {"A": 0.9 if c == "A" else 0.1, "B": 0.9 if c == "B" else 0.1}  # noqa: E731
    # overlapping windows: each instant takes the window centred nearest to it
    wins = [{"start": 0.0, "end": 1.0, "label": "A", "probs": p("A")},
            {"start": 0.5, "end": 1.5, "label": "B", "probs": p("B")}]
    fl = frame_labels(wins, 200, overlap=True)
    assert fl[:75] == ["A"] * 75 and fl[75:150] == ["B"] * 75 and fl[150:] == [None] * 50
    # segments: what no segment covers has no label
    segs = [{"start": 0.2, "end": 0.6, "label": "B", "probs": p("B")}]
    fl = frame_labels(segs, 100, overlap=False)
    assert fl[19] is None and fl[20] == "B" and fl[59] == "B" and fl[60] is None
    assert unweighted_recall(["A", "A", "B", "B"], ["A", None, "B", "A"], ["A", "B", "C"]) == pytest.approx(0.5)
    assert utterance_label(wins, (0.0, 0.7)) == "A"  # 0.7 s of A against 0.2 s of B
    assert utterance_label(wins, (0.6, 1.5)) == "B"
    assert utterance_label(segs, (1.0, 2.0)) is None
    assert FRAME == 0.01


def test_segeval_on_a_tiny_synthetic_corpus(tmp_path, run):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"class_path": "zoo.data.EmotionDataModule", "init_args": {
        "corpus": {"class_path": "zoo.data.corpora.Synthetic", "init_args": {"size": 16, "corpus_seed": 0}},
        "split": {"mode": "random", "val_fraction": 0.1, "test_fraction": 0.3}, "cache_dir": None}}}))
    out = tmp_path / "ev"
    res = run("segeval", "--model", "audio-cnn-synth", "--config", str(cfg), "--per-recording", "3",
              "--gap", "1.0", "1.5", "--noise-snr", "-1", "--out", str(out))
    assert res.returncode == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    m = summary["methods"]
    assert set(m) == {"oracle", "vad", "windows"}
    # the oracle labels each true utterance as predicting its own file does
    utts, classes = split_utterances([str(cfg)])
    assert summary["utterances"] == len(utts) >= 3
    model = zoo.load("audio-cnn-synth", device="cpu")
    preds = [r["label"] for r in model.predict_batch([u.audio for u in utts])]
    assert m["oracle"]["segment_UA"] == pytest.approx(unweighted_recall([u.label for u in utts], preds, classes))
    # pauses of >= 1 s: the VAD finds one segment per utterance, around its speech
    assert m["vad"]["segments_per_utterance"] == 1.0 and m["vad"]["false_alarm"] < 0.2
    assert 0.8 < m["vad"]["speech_recall"] <= 1.0
    for r in m.values():
        assert 0.0 <= r["time_UA"] <= 1.0 and 0.0 <= r["segment_UA"] <= 1.0
    md = (out / "summary.md").read_text()
    assert "| oracle |" in md and "| vad |" in md and "| windows |" in md
    assert (out / "track.png").stat().st_size > 10_000
