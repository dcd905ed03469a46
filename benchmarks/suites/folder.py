"""folder: `python -m zoo infer` over a folder (sorted and batched by length) against transformers'
audio-classification pipeline over the same files, with the same weights."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.common import ROOT, Suite, child, child_env

DESCRIPTION = ("folder inference: `python -m zoo infer` on 1,000 speech-like files of 1-8 s (files/s, peak "
               "RSS), the default AudioCNN and a base-size wav2vec2, against transformers' "
               "audio-classification pipeline on the zoo's own HF export (same weights) at its best "
               "batch size")
SR = 16000


def speech_like(rng, seconds: float):
    """A clip that is voiced the way speech is: syllables of 80-300 ms with a gliding pitch
    (90-260 Hz) and decaying harmonics, pauses between words, a low noise floor."""
    import numpy as np

    n = int(seconds * SR)
    x = np.zeros(n, np.float32)
    pos = int(rng.uniform(0.02, 0.15) * SR)
    while pos < n:
        m = min(n - pos, int(rng.uniform(0.08, 0.3) * SR))
        t = np.arange(m) / SR
        f0 = rng.uniform(90, 260) * (1 + rng.uniform(-0.15, 0.15) * t / max(t[-1], 1e-3))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        syl = sum(rng.uniform(0.3, 1.0) / k * np.sin(k * phase) for k in range(1, 8))
        x[pos:pos + m] += (np.hanning(m) * syl * rng.uniform(0.05, 0.25)).astype(np.float32)
        pos += m + int((rng.uniform(0.15, 0.5) if rng.random() < 0.25 else rng.uniform(0.0, 0.05)) * SR)
    return x + 0.003 * rng.standard_normal(n).astype(np.float32)


def make_folder(folder: Path, n: int, seed: int = 0) -> list[float]:
    """``n`` PCM16 WAV files of 1-8 s (uniform) at 16 kHz in ``folder``; returns their durations."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    durations = [float(d) for d in rng.uniform(1.0, 8.0, n)]
    for i, d in enumerate(durations):
        sf.write(folder / f"clip{i:04d}.wav", speech_like(rng, d), SR, subtype="PCM_16")
    return durations


def subset(folder: Path, out: Path, n: int) -> int:
    """Every k-th file of ``folder`` (hard links) in ``out``: the same length distribution."""
    files = sorted(folder.glob("*.wav"))
    out.mkdir(parents=True, exist_ok=True)
    step = max(1, len(files) // n)
    picked = files[::step][:n]
    for f in picked:
        os.link(f, out / f.name)
    return len(picked)


def _zoo_probs(path: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {Path(r["file"]).name: r["probs"] for r in rows}


def max_diff(a: dict[str, dict], b: dict[str, dict]) -> float:
    """The largest difference of one class's probability for one file between two runs."""
    if set(a) != set(b):
        raise RuntimeError(f"the runs labelled different files ({len(a)} and {len(b)})")
    return max(abs(a[f][c] - b[f][c]) for f in a for c in a[f])


def best_batch(runs: dict[int, dict]) -> int:
    """The pipeline's batch size with the most files/s."""
    return max(runs, key=lambda b: runs[b]["files_s"])


def run(args, work: Path) -> Suite:
    device = getattr(args, "device", "cpu")
    s = Suite("folder", "`python -m zoo infer` files/s >= 1.5x transformers' audio-classification pipeline at "
                        "its best batch size (base-size wav2vec2, the same weights)")
    threads = str(os.cpu_count() or 1)
    n = max(20, int((60 if args.quick else 1000) * args.scale))
    # --scale shrinks both; a smaller wav2vec2 subset alone: a namespace's w2v_files (a busy CPU)
    n_w2v = getattr(args, "w2v_files", None) or max(8, int((16 if args.quick else 150) * args.scale))
    w2v = "wav2vec2_tiny" if args.quick else "wav2vec2"
    batches = getattr(args, "pipeline_batches", None) or ([1, 4] if args.quick else [1, 8, 16])
    folder, small = work / "files", work / "subset"
    durations = make_folder(folder, n)
    n_w2v = subset(folder, small, n_w2v)
    small_dur = [durations[int(p.stem[4:])] for p in small.glob("*.wav")]
    s.add(f"files (speech-like, 1-8 s, 16 kHz PCM16), {sum(durations) / 3600:.2f} h of audio", n, "files")

    # (i) the default-size AudioCNN: the pipeline cannot load it (no transformers class), so the
    # stand-in is what the pipeline's default does with any model: one file at a time
    ckpt = work / "audio_cnn.ckpt"
    params = child("folder_model", "audio_cnn", str(ckpt))["params"]
    cnn = child("folder_zoo", str(ckpt), str(folder), threads, str(work / "cnn.jsonl"), device, "16")
    one = child("folder_zoo", str(ckpt), str(folder), threads, str(work / "cnn1.jsonl"), device, "1")
    label = f"AudioCNN default size ({params / 1e6:.2f} M)"
    s.add(f"{label}: zoo infer, batches of 16 by length", cnn["files_s"], "files/s")
    s.add(f"{label}: zoo infer, one file at a time (--batch-size 1)", one["files_s"], "files/s")
    s.add(f"{label}: batched / one at a time", cnn["files_s"] / one["files_s"], "x")
    s.add(f"{label}: zoo infer peak RSS (batches of 16)", cnn["peak_mb"], "MB")
    s.add(f"{label}: zoo model load (in the files/s above)", cnn["load_s"], "s")
    s.add(f"{label}: max |probability difference|, batched vs one at a time",
          max_diff(_zoo_probs(work / "cnn.jsonl"), _zoo_probs(work / "cnn1.jsonl")), "")

    # (ii) wav2vec2: the zoo's checkpoint and its own HF export, so both run the same weights
    ckpt = work / "wav2vec2.ckpt"
    params = child("folder_model", w2v, str(ckpt))["params"]
    hf_dir = work / "wav2vec2-hf"
    env = child_env()
    r = subprocess.run([sys.executable, "-m", "zoo", "export", "--model", str(ckpt), "--format", "hf",
                        "--out", str(hf_dir)], capture_output=True, text=True, cwd=str(ROOT), env=env)
    if r.returncode != 0:
        raise RuntimeError(f"zoo export --format hf failed:\n{r.stderr[-2000:]}")
    label = f"wav2vec2 {'tiny' if args.quick else 'base size'} ({params / 1e6:.1f} M), {n_w2v} files"
    zoo = child("folder_zoo", str(ckpt), str(small), threads, str(work / "w2v.jsonl"), device, "16")
    hf = {b: child("folder_hf", str(hf_dir), str(small), threads, str(b), str(work / f"hf{b}.json"), device)
          for b in batches}
    probs = {b: json.loads((work / f"hf{b}.json").read_text()) for b in batches}
    best = best_batch(hf)
    s.add(f"{label}: zoo infer, batches of 16 by length", zoo["files_s"], "files/s")
    for b in batches:
        s.add(f"{label}: pipeline, batch_size={b}", hf[b]["files_s"], "files/s")
    s.add(f"{label}: zoo / pipeline at its best batch size ({best})", zoo["files_s"] / hf[best]["files_s"], "x")
    s.add(f"{label}: zoo infer, labelling alone (model load left out)", zoo["files"] / zoo["label_s"], "files/s")
    s.add(f"{label}: pipeline at batch_size={best}, labelling alone", hf[best]["files"] / hf[best]["label_s"],
          "files/s")
    s.add(f"{label}: model load, zoo / pipeline", f"{zoo['load_s']:.1f} / {hf[best]['load_s']:.1f}", "s")
    s.add(f"{label}: zoo infer peak RSS", zoo["peak_mb"], "MB")
    for b in batches:
        s.add(f"{label}: pipeline peak RSS, batch_size={b}", hf[b]["peak_mb"], "MB")
    s.add(f"{label}: max |probability difference|, zoo vs pipeline batch_size=1",
          max_diff(_zoo_probs(work / "w2v.jsonl"), probs[1]), "")
    for b in batches[1:]:
        s.add(f"{label}: max |probability difference|, pipeline batch_size={b} vs 1",
              max_diff(probs[b], probs[1]), "")
    s.notes.append(f"files: synthetic speech-like audio (voiced syllables, pauses), durations uniform in 1-8 s; "
                   f"wav2vec2 on one file in {max(1, n // n_w2v)} ({n_w2v} files, mean "
                   f"{sum(small_dur) / len(small_dur):.1f} s, against {sum(durations) / len(durations):.1f} s "
                   "for all), since a base-size encoder on a 2-core CPU runs near real time")
    s.notes.append("each run in its own process, timed from loading the model to the last result (decoding "
                   "the files included; the zoo: load, expand_inputs, predict_batch, write_results, as "
                   "`python -m zoo infer FOLDER --out F` runs them); the pipeline gets the clips decoded by soundfile (its own file "
                   "reading needs ffmpeg) in name order, and pads each batch to its longest clip with no "
                   "attention mask (the export's feature extractor, like wav2vec2-base's, returns none), "
                   "so its batched probabilities differ from its unbatched ones; the zoo masks padding")
    s.notes.append("AudioCNN: the pipeline cannot load it (no transformers class), so its row compares the "
                   "zoo's length-sorted batches with the same command one file at a time, which is what "
                   "the pipeline's default batch_size=1 does with any model")
    s.met = zoo["files_s"] / hf[best]["files_s"] >= 1.5
    return s
