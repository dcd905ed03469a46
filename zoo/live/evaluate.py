"""``python -m zoo segeval``: how much does segmentation cost? Long recordings are built by joining
held-out test utterances of a corpus with random pauses and, optionally, noise, so the true span
(the speech inside each clip, without the room tone around it) and label of every utterance are
known; each recording is then labelled three ways:

* **oracle**: each whole clip on its own (what the usual per-clip test measures);
* **vad**: the speech segments the VAD finds (``zoo.stream`` / ``infer --segment vad``);
* **windows**: fixed windows (4 s every 2 s by default: ``infer``'s long-audio default).

Two scores per method:

* **time UA**: over the true speech time, in 10 ms frames, the recall of each class (frames whose
  predicted label at that instant is the true one, over the class's frames), averaged over the
  classes. A frame no segment covers counts as wrong (speech the VAD missed loses accuracy here).
  For overlapping windows the window centred nearest to the instant gives its label.
* **segment UA**: one label per true utterance, the argmax of the overlapping parts' probabilities
  averaged with their overlap as weights (an utterance nothing overlaps is wrong), UA over them.

For the VAD alone: speech recall (share of true speech time inside a segment), false alarm (share
of the segments' time outside true speech) and segments per utterance.

Writes ``summary.md`` / ``summary.json`` (the table) and ``track.png`` (the first recording's
labels along time for the truth and each method) to ``--out``.
"""
from __future__ import annotations

import argparse
import inspect
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ZooUserError

log = logging.getLogger("zoo")

FRAME = 0.01  # seconds: the time UA's resolution


@dataclass
class Recording:
    """One joined recording: mono float32 at ``sample_rate`` and the true utterances in it."""

    wav: np.ndarray
    sample_rate: int
    spans: list[tuple[float, float]]  # seconds: the speech of each utterance (the truth)
    labels: list[str]
    ids: list[str] = field(default_factory=list)
    clips: list[tuple[float, float]] = field(default_factory=list)  # seconds: each whole clip

    @property
    def duration(self) -> float:
        return self.wav.size / self.sample_rate


def split_utterances(configs: Sequence[str], split: str = "test"):
    """(utterances of ``split``, class names) of the corpus a data config describes, split exactly
    as ``fit`` / ``test`` split it."""
    from ..check import build_corpus, data_options
    from ..data.datamodule import EmotionDataModule

    opts = data_options(list(configs))
    corpus = build_corpus(opts.pop("corpus"))
    accepted = set(inspect.signature(EmotionDataModule.__init__).parameters) - {"self", "corpus", "modalities"}
    unknown = set(opts) - accepted
    if unknown:
        raise ZooUserError(f"unknown data option(s) in {', '.join(configs)}: {sorted(unknown)}")
    dm = EmotionDataModule(corpus=corpus, modalities=["audio"], **opts)
    dm.prepare_data()
    dm.setup("test")
    return list(dm.split(split)), dm.class_names


def build_recordings(audios: Sequence[np.ndarray], labels: Sequence[str], sample_rate: int, *,
                     per_recording: int = 6, gap: tuple[float, float] = (0.5, 2.0),
                     noise_snr: float | None = 30.0, seed: int = 0,
                     ids: Sequence[str] | None = None,
                     speech: Sequence[tuple[int, int]] | None = None) -> list[Recording]:
    """Join the utterances, ``per_recording`` at a time in a seeded random order, with pauses
    drawn uniformly from ``gap`` seconds (one before the first utterance and after the last too).
    ``speech`` gives the speech inside each clip as (start, end) samples (``speech_bounds``;
    default: the whole clip); it is the truth that is scored. ``noise_snr`` adds white noise over
    the whole recording at that SNR in dB relative to the clips' mean power (None: digital
    silence between utterances)."""
    if per_recording < 1:
        raise ZooUserError(f"per_recording must be >= 1, got {per_recording}")
    if not (0 <= gap[0] <= gap[1]):
        raise ZooUserError(f"gap must be (min, max) seconds with 0 <= min <= max, got {gap}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(audios))
    ids = list(ids) if ids is not None else [str(i) for i in range(len(audios))]
    out = []
    for k in range(0, len(order), per_recording):
        parts, spans, clips, labs, names, t = [], [], [], [], [], 0
        for i in order[k : k + per_recording]:
            pause = np.zeros(int(round(rng.uniform(*gap) * sample_rate)), np.float32)
            parts += [pause, np.asarray(audios[i], np.float32)]
            t += pause.size
            a, b = speech[i] if speech is not None else (0, audios[i].size)
            spans.append(((t + a) / sample_rate, (t + b) / sample_rate))
            clips.append((t / sample_rate, (t + audios[i].size) / sample_rate))
            t += audios[i].size
            labs.append(labels[i])
            names.append(ids[i])
        parts.append(np.zeros(int(round(rng.uniform(*gap) * sample_rate)), np.float32))
        wav = np.concatenate(parts)
        if noise_snr is not None:
            voiced = np.concatenate(parts[1::2])
            power = float(np.mean(voiced.astype(np.float64) ** 2)) or 1e-8
            wav = wav + rng.standard_normal(wav.size).astype(np.float32) * np.float32(
                np.sqrt(power / 10 ** (noise_snr / 10)))
        out.append(Recording(wav.astype(np.float32), sample_rate, spans, labs, names, clips))
    return out


def speech_bounds(wav: np.ndarray, sample_rate: int, top_db: float = 40.0) -> tuple[int, int]:
    """``(start, end)`` samples of the speech in a clip: without its leading and trailing stretch
    quieter than ``top_db`` below its loudest 10 ms frame (corpus clips carry room tone around the
    speech)."""
    hop = max(1, int(sample_rate * 0.01))
    n = wav.size // hop
    if n == 0:
        return 0, wav.size
    rms = np.sqrt((wav[: n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(1))
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (-top_db / 20))
    if loud.size == 0 or rms.max() == 0:  # digital silence: nothing to find
        return 0, wav.size
    end = wav.size if loud[-1] == n - 1 else int((loud[-1] + 1) * hop)
    return int(loud[0] * hop), end


# -- scoring -------------------------------------------------------------------------------------------
def frame_labels(track: Sequence[dict], n: int, overlap: bool) -> list[str | None]:
    """The label at each 10 ms frame centre: the part covering it (for ``overlap``ping windows,
    the one centred nearest), None where no part does."""
    out: list[str | None] = [None] * n
    best = np.full(n, np.inf)
    for w in track:
        a, b = int(np.floor(w["start"] / FRAME)), int(np.ceil(w["end"] / FRAME))
        idx = np.arange(max(a, 0), min(b, n))
        t = (idx + 0.5) * FRAME
        inside = (t >= w["start"]) & (t < w["end"])
        idx, t = idx[inside], t[inside]
        dist = np.abs(t - (w["start"] + w["end"]) / 2) if overlap else np.zeros(idx.size)
        for i, d in zip(idx, dist):
            if d < best[i]:
                best[i], out[i] = d, w["label"]
    return out


def unweighted_recall(true: Sequence[str], pred: Sequence[str | None], classes: Sequence[str]) -> float:
    """UA: recall averaged over the classes that occur in ``true`` (a None prediction is wrong)."""
    rec = []
    for c in classes:
        m = [p for t, p in zip(true, pred) if t == c]
        if m:
            rec.append(sum(p == c for p in m) / len(m))
    return float(np.mean(rec)) if rec else float("nan")


def utterance_label(track: Sequence[dict], span: tuple[float, float]) -> str | None:
    """Argmax of the overlap-weighted mean probabilities of the parts overlapping ``span``."""
    acc: dict[str, float] = {}
    for w in track:
        ov = min(w["end"], span[1]) - max(w["start"], span[0])
        if ov > 0 and w["probs"]:
            for c, p in w["probs"].items():
                acc[c] = acc.get(c, 0.0) + ov * p
    return max(acc, key=acc.get) if acc else None


def _speech_mask(spans, n: int) -> np.ndarray:
    m = np.zeros(n, bool)
    t = (np.arange(n) + 0.5) * FRAME
    for a, b in spans:
        m |= (t >= a) & (t < b)
    return m


def evaluate(model, recordings: Sequence[Recording], *, window: float = 4.0, hop: float = 2.0,
             vad: dict | None = None) -> dict:
    """Scores of oracle / vad / windows over the recordings (see the module docstring), and each
    recording's tracks (``tracks``: one dict per recording: method -> track)."""
    from .stream import Stream

    classes = model.class_names
    if not classes:
        raise ZooUserError("segeval scores class labels; this model predicts dimensions only")
    stream = Stream(model, hop=None, smoothing=None, **(vad or {}))
    true_frames: list[str] = []
    pred_frames: dict[str, list] = {"oracle": [], "vad": [], "windows": []}
    utt_true: list[str] = []
    utt_pred: dict[str, list] = {k: [] for k in pred_frames}
    recall_num = fa_num = seg_time = speech_time = 0.0
    n_segments = 0
    tracks = []
    for rec in recordings:
        sr = rec.sample_rate
        # the oracle labels each whole clip, as the per-clip test does, and speaks for its speech
        cuts = rec.clips or rec.spans
        clips = [rec.wav[int(round(a * sr)) : int(round(b * sr))] for a, b in cuts]
        oracle = [{"start": a, "end": b, **{k: r[k] for k in ("label", "probs")}}
                  for (a, b), r in zip(rec.spans, model.predict_batch(clips, sample_rate=sr))]
        segs = [{"start": e["start"], "end": e["end"], "label": e["label"], "probs": e["probs"]}
                for e in stream.run(rec.wav, sr) if e["type"] == "segment"]
        wins = model.predict_long(rec.wav, sample_rate=sr, segment="windows", window=window, hop=hop)["track"]
        tr = {"oracle": oracle, "vad": segs, "windows": wins}
        tracks.append(tr)
        n = int(np.ceil(rec.duration / FRAME))
        speech = _speech_mask(rec.spans, n)
        truth = np.array([None] * n, dtype=object)
        t = (np.arange(n) + 0.5) * FRAME
        for (a, b), lab in zip(rec.spans, rec.labels):
            truth[(t >= a) & (t < b)] = lab
        true_frames += list(truth[speech])
        for k, track in tr.items():
            fl = np.array(frame_labels(track, n, overlap=(k == "windows")), dtype=object)
            pred_frames[k] += list(fl[speech])
            for span in rec.spans:
                utt_pred[k].append(utterance_label(track, span))
        utt_true += rec.labels
        vmask = _speech_mask([(s["start"], s["end"]) for s in segs], n)
        recall_num += float((vmask & speech).sum())
        fa_num += float((vmask & ~speech).sum())
        seg_time += float(vmask.sum())
        speech_time += float(speech.sum())
        n_segments += len(segs)
    rows = {k: {"time_UA": unweighted_recall(true_frames, pred_frames[k], classes),
                "segment_UA": unweighted_recall(utt_true, utt_pred[k], classes)} for k in pred_frames}
    rows["vad"].update(speech_recall=recall_num / max(speech_time, 1.0),
                       false_alarm=fa_num / max(seg_time, 1.0),
                       segments_per_utterance=n_segments / max(len(utt_true), 1))
    return {"methods": rows, "recordings": len(recordings), "utterances": len(utt_true),
            "speech_seconds": round(speech_time * FRAME, 2),
            "seconds": round(sum(r.duration for r in recordings), 2), "tracks": tracks}


def summary_markdown(res: dict, title: str = "") -> str:
    lines = [f"Segmentation: {res['recordings']} recording(s), {res['utterances']} utterances, "
             f"{res['speech_seconds']:.0f} s of speech in {res['seconds']:.0f} s" + (f" ({title})" if title else ""),
             "", "| segments | time UA | segment UA | speech recall | false alarm | segments / utterance |",
             "|---|---|---|---|---|---|"]
    for k, r in res["methods"].items():
        extra = [f"{r[x]:.3f}" if x in r else "-" for x in ("speech_recall", "false_alarm")]
        spu = f"{r['segments_per_utterance']:.2f}" if "segments_per_utterance" in r else "-"
        lines.append(f"| {k} | {r['time_UA']:.3f} | {r['segment_UA']:.3f} | {' | '.join(extra)} | {spu} |")
    return "\n".join(lines) + "\n"


def plot_recording(rec: Recording, tracks: dict, png: Path, classes: Sequence[str]) -> Path:
    """The truth and each method's labels along the recording, one row each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = plt.get_cmap("tab10").colors
    rows = [("truth", [{"start": a, "end": b, "label": l} for (a, b), l in zip(rec.spans, rec.labels)])]
    rows += [(k, v) for k, v in tracks.items()]
    fig, ax = plt.subplots(figsize=(11, 0.6 * len(rows) + 1.2))
    n = int(np.ceil(rec.duration / FRAME))
    for y, (name, track) in enumerate(reversed(rows)):
        if name == "windows":  # overlapping windows: the label in force at each instant
            fl = frame_labels(track, n, overlap=True)
            k0 = 0
            for k in range(1, n + 1):
                if k == n or fl[k] != fl[k0]:
                    if fl[k0] is not None:
                        ax.barh(y, (k - k0) * FRAME, left=k0 * FRAME, color=colors[classes.index(fl[k0]) % 10])
                    k0 = k
        else:
            for w in track:
                ax.barh(y, w["end"] - w["start"], left=w["start"], color=colors[classes.index(w["label"]) % 10],
                        edgecolor="black" if name == "truth" else None, linewidth=0.5)
    ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)])
    ax.set_xlim(0, rec.duration)
    ax.set_xlabel("time (s)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[i % 10]) for i in range(len(classes))]
    ax.legend(handles, classes, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_title("labels along one joined recording: truth and three segmentations")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def main(argv: Sequence[str] | None = None) -> None:
    from ..inference.commands import _model_args
    from .segment import add_vad_arguments, vad_options

    ap = argparse.ArgumentParser(
        prog="python -m zoo segeval",
        description="Score segmentation for live recognition: test utterances of a corpus joined into long "
                    "recordings with random pauses, labelled per true utterance (oracle), per VAD segment "
                    "and per fixed window; time-weighted and per-utterance UA (docs/live.md).")
    _model_args(ap)
    ap.add_argument("--config", action="append", required=True,
                    help="the data config (as for fit; repeatable) whose test split is used")
    ap.add_argument("--split", default="test", choices=["test", "val", "train", "all"])
    ap.add_argument("--per-recording", type=int, default=6, help="utterances per recording (default 6)")
    ap.add_argument("--gap", type=float, nargs=2, default=(0.5, 2.0), metavar=("MIN", "MAX"),
                    help="pause between utterances, uniform in [MIN, MAX] seconds (default 0.5 2.0)")
    ap.add_argument("--noise-snr", type=float, default=30.0,
                    help="white noise over the recording at this SNR in dB (default 30; -1: none)")
    ap.add_argument("--speech-db", type=float, default=40.0,
                    help="an utterance's true span is its speech: the clip without its leading/trailing stretch "
                         "quieter than this many dB below its loudest 10 ms (default 40; -1: the whole clip)")
    ap.add_argument("--max-utterances", type=int, default=None, help="use at most this many (seeded draw)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--window", type=float, default=4.0, help="window length of the windows method (default 4)")
    ap.add_argument("--hop", type=float, default=2.0, help="its hop (default 2)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", required=True, help="folder for summary.md, summary.json and track.png")
    add_vad_arguments(ap)
    a = ap.parse_args(argv)
    from ..data.audio import read_audio, resample
    from ..inference.predictor import load

    model = load(a.model, registry=a.registry, trust=a.trust, device=a.device)
    utts, classes = split_utterances(a.config, a.split)
    if list(classes) != list(model.class_names):
        raise ZooUserError(f"the corpus's classes {classes} are not the model's {model.class_names}")
    if a.max_utterances and len(utts) > a.max_utterances:
        keep = np.random.default_rng(a.seed).choice(len(utts), a.max_utterances, replace=False)
        utts = [utts[i] for i in sorted(keep)]
    if not utts:
        raise ZooUserError(f"no utterances in the {a.split} split")
    sr = model.sample_rate
    audios = []
    for u in utts:
        wav, fsr = read_audio(u.audio)
        audios.append(resample(wav, fsr, sr))
    bounds = [speech_bounds(w, sr, a.speech_db) for w in audios] if a.speech_db >= 0 else None
    recs = build_recordings(audios, [u.label for u in utts], sr, per_recording=a.per_recording,
                            gap=tuple(a.gap), noise_snr=None if a.noise_snr < 0 else a.noise_snr, seed=a.seed,
                            ids=[u.id for u in utts], speech=bounds)
    log.info("scoring %d recording(s) of %d utterances with %s ...", len(recs), len(utts), a.model)
    res = evaluate(model, recs, window=a.window, hop=a.hop, vad=vad_options(a))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    md = summary_markdown(res, f"{a.model} on {', '.join(a.config)}, {a.split} split")
    (out / "summary.md").write_text(md, encoding="utf-8")
    meta = {k: v for k, v in res.items() if k != "tracks"}
    meta.update(model=a.model, config=a.config, split=a.split, per_recording=a.per_recording, gap=list(a.gap),
                noise_snr=a.noise_snr, speech_db=a.speech_db, window=a.window, hop=a.hop, vad=vad_options(a), seed=a.seed)
    (out / "summary.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    plot_recording(recs[0], res["tracks"][0], out / "track.png", classes)
    print(md)
    log.info("wrote %s, %s and %s", out / "summary.md", out / "summary.json", out / "track.png")


__all__ = ["Recording", "build_recordings", "speech_bounds", "evaluate", "split_utterances", "frame_labels",
           "unweighted_recall", "utterance_label", "summary_markdown", "main"]
