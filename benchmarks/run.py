"""The zoo's performance, measured side by side with what a user would use instead.

    python benchmarks/run.py [--suite NAME ...] [--quick] [--json out.json]

Suites (each states its goal and whether this run met it):

  data       utterances/s from 48 kHz 16-bit wavs in the AI Hub layout to collated 16 kHz batches
             through the real EmotionDataModule (num_workers 0 and 2, cold and warm cache),
             beside the floor: decode + resample in a bare loop
  rates      resampling 3 s clips to 16 kHz from 8 ... 48 kHz: the zoo's resample beside
             torchaudio.functional.resample and soxr called directly (one thread)
  index      the corpus index of 44,000 rows in the AI Hub layout (three cp949 CSVs, label
             policy, conversation grouping, splits; empty audio stubs, a text-only run)
  bucketing  padded-sample fraction and training samples/s: random batches vs the DataModule's
             length-bucketed batches on a long-tailed 1-10 s duration mix
  train      training samples/s and peak RSS per model family (tiny and default sizes, random
             weights), and the zoo's wav2vec2 beside transformers.Trainer +
             Wav2Vec2ForSequenceClassification with the same config, data, batch and optimiser
  cache      the frozen-encoder embedding cache (per-epoch time with and without it)
  infer      real-time factor of zoo.load(...).predict_batch per shipped checkpoint, and the
             wall time of `python -m zoo --help` / `python -m zoo infer --help`

`--quick` shrinks every suite (about 5 minutes on 2 cores; for a smoke test, not for numbers);
`--scale` shrinks further (the test suite runs `--quick --scale 0.1`). Measurements that need
their own peak memory run in a fresh subprocess. The numbers of the last full run are in
docs/performance.md.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the seeded corpus fixture writers


# -- results --------------------------------------------------------------------------------------
@dataclass
class Suite:
    name: str
    goal: str
    rows: list[dict] = field(default_factory=list)
    met: bool | None = None  # None: no goal could be judged (e.g. not available)
    notes: list[str] = field(default_factory=list)

    def add(self, what: str, value, unit: str, **extra) -> None:
        self.rows.append({"what": what, "value": value, "unit": unit, **extra})

    def value(self, what: str):
        return next(r["value"] for r in self.rows if r["what"] == what)


def _fmt(v) -> str:
    if isinstance(v, float) and v and abs(v) < 1e-3:
        return f"{v:.1e}"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def print_table(suites: list[Suite]) -> None:
    for s in suites:
        verdict = {True: "goal met", False: "GOAL NOT MET", None: "not judged"}[s.met]
        print(f"\n== {s.name}: {verdict}\n   goal: {s.goal}")
        width = max([len(r["what"]) for r in s.rows] + [10])
        for r in s.rows:
            print(f"   {r['what']:<{width}}  {_fmt(r['value']):>12} {r['unit']}")
        for n in s.notes:
            print(f"   note: {n}")


def markdown(suites: list[Suite]) -> str:
    """The tables as Markdown (docs/performance.md embeds them)."""
    out = []
    for s in suites:
        verdict = {True: "goal met", False: "**goal not met**", None: "not judged"}[s.met]
        out += [f"### {s.name}: {verdict}", "", f"Goal: {s.goal}.", "", "| measurement | value | unit |",
                "|---|---:|---|"]
        out += [f"| {r['what']} | {_fmt(r['value'])} | {r['unit']} |" for r in s.rows]
        out += [""] + [f"- {n}" for n in s.notes] + [""]
    return "\n".join(out)


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "processor": platform.processor()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["processor"] = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().split()[1]
        info["memory_gb"] = round(int(mem) / 2**20, 1)
    except OSError:
        pass
    try:
        info["load_avg_1m"] = os.getloadavg()[0]
    except OSError:
        pass
    import importlib.metadata as md

    versions = {}
    for pkg in ("torch", "torchaudio", "lightning", "transformers", "soxr", "soundfile", "numpy", "zoo"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    try:
        versions["zoo_git"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                             capture_output=True, text=True).stdout.strip() or None
    except OSError:
        pass
    return {"machine": info, "versions": versions}


# Peak RSS of a child: VmHWM belongs to the process's own address space, while ru_maxrss
# survives exec on Linux and would report this (larger) parent's peak
PRELUDE = r"""
import resource
def peak_mb():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""


def child(code: str, *args: str, timeout: float = 1800) -> dict:
    """Run ``code`` in a fresh interpreter (its own peak RSS); it prints one JSON line last."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}", WANDB_MODE="disabled")
    r = subprocess.run([sys.executable, "-c", PRELUDE + code, *args], capture_output=True, text=True,
                       timeout=timeout, env=env, cwd=str(ROOT))
    if r.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# -- corpora written for the suites ---------------------------------------------------------------
def durations(n: int, seed: int = 0) -> np.ndarray:
    """A realistic conversational mix: most clips 1.5-5 s, a long tail up to 10 s."""
    rng = np.random.default_rng(seed)
    return np.clip(1.0 + rng.gamma(2.0, 1.2, n), 1.0, 10.0)


def object_ids(n: int, seed: int = 0) -> list[str]:
    """MongoDB-ObjectId-like wav ids (the AI Hub form: the first 8 hex digits are a time), a few
    seconds apart so consecutive utterances group into conversations."""
    rng = np.random.default_rng(seed)
    t = 1_591_000_000 + np.cumsum(rng.integers(3, 20, n) + (rng.random(n) < 0.1) * 400)
    return [f"{int(s):08x}{i:016x}" for i, s in enumerate(t)]


def write_aihub(root: Path, n: int, *, audio: str, seed: int = 0, splits=(1.0,)) -> list[str]:
    """An AI Hub KETI-02-002 layout of ``n`` rows (cp949 CSVs, one per share in ``splits``).

    audio: ``wav`` (48 kHz PCM16 clips of :func:`durations`) or ``stub`` (empty files)."""
    import soundfile as sf
    from fixtures.aihub import HEADER, make_row

    emotions = ["Angry", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]
    rng = np.random.default_rng(seed)
    ids = object_ids(n, seed)
    durs = durations(n, seed)
    root.mkdir(parents=True, exist_ok=True)
    names = ["4차년도", "5차년도", "5차년도_2차"]
    bounds = np.cumsum([0] + [int(round(s * n)) for s in splits])
    bounds[-1] = n
    for k in range(len(splits)):
        stem = names[k]
        wav_dir = root / stem / f"{stem}_wav"
        wav_dir.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(HEADER)
        for i in range(bounds[k], bounds[k + 1]):
            e = emotions[rng.integers(len(emotions))]
            votes = [(e, 1)] * 3 + [(emotions[rng.integers(7)], 1) for _ in range(2)]
            w.writerow(make_row(ids[i], "오늘 정말 기분이 " + "좋아" * (1 + i % 5), e.lower(), votes,
                                str(20 + i % 40), "여" if i % 2 else "남"))
            p = wav_dir / f"{ids[i]}.wav"
            if audio == "stub":
                p.touch()
            else:
                x = (rng.standard_normal(int(48_000 * durs[i])) * 3000).astype(np.int16)
                sf.write(p, x, 48_000, subtype="PCM_16")
        (root / f"{stem}.csv").write_bytes(buf.getvalue().encode("cp949"))
    return ids


# -- suites ---------------------------------------------------------------------------------------
def suite_rates(args) -> Suite:
    import soxr
    import torch
    import torchaudio.functional as AF

    from zoo.data.audio import resample

    s = Suite("rates", "every rate >= 300 files/s on one core, and the zoo never slower than the "
                       "faster of torchaudio and soxr (within 10% timing noise)")
    torch.set_num_threads(1)
    reps = max(3, int((10 if args.quick else 40) * args.scale))
    ok = True
    for sr in (8000, 16000, 22050, 24414, 44100, 48000):
        x = (np.random.default_rng(sr).standard_normal(3 * sr) * 0.1).astype(np.float32)

        def once(f, n):
            t = time.perf_counter()
            for _ in range(n):
                f()
            return n / (time.perf_counter() - t)

        fns = {"zoo": lambda: resample(x, sr, 16000), "soxr": lambda: soxr.resample(x, sr, 16000),
               "ta": lambda: AF.resample(torch.from_numpy(x), sr, 16000)}
        # torchaudio's kernel grows with the reduced ratio (24,414 -> 16,000: seconds per clip)
        n = {"zoo": reps, "soxr": reps, "ta": 1 if sr == 24414 else reps}
        best = {k: 0.0 for k in fns}
        for f in fns.values():
            f()  # warm-up
        for _ in range(3):  # interleaved rounds, the best of each: load spikes hit all three alike
            for k, f in fns.items():
                best[k] = max(best[k], once(f, n[k]))
        zoo_r, sox_r, ta_r = best["zoo"], best["soxr"], best["ta"]
        s.add(f"{sr} Hz zoo", zoo_r, "files/s")
        s.add(f"{sr} Hz torchaudio", ta_r, "files/s")
        s.add(f"{sr} Hz soxr", sox_r, "files/s")
        if sr != 16000:
            ok &= zoo_r >= 300 and zoo_r >= 0.9 * max(ta_r, sox_r)
    s.notes.append("16 kHz is a copy-free pass-through in the zoo; torchaudio returns at once too")
    s.met = ok
    return s


DATA_CHILD = r"""
import json, sys, time
from pathlib import Path
import numpy as np
from zoo.data import EmotionDataModule
from zoo.data.corpora import AIHub
root, cache, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
dm = EmotionDataModule(corpus=AIHub(root=root), modalities=["audio"], batch_size=32,
                       num_workers=workers, cache_dir=cache, max_seconds=None,
                       split={"mode": "random", "val_fraction": 0.0, "test_fraction": 0.0})
t = time.perf_counter(); dm.setup("fit"); setup_s = time.perf_counter() - t
out = {"setup_s": setup_s}
loader = dm.train_dataloader()  # one loader for both epochs, as in a fit (workers persist)
for epoch in ("cold", "warm"):
    n = 0; t = time.perf_counter()
    for b in loader:
        n += len(b)
    out[epoch] = n / (time.perf_counter() - t); out["n"] = n
print(json.dumps(out))
"""


def suite_data(args, work: Path) -> Suite:
    from zoo.data.audio import read_audio, resample

    n = max(50, int((300 if args.quick else 2000) * args.scale))
    s = Suite("data", "warm >= 2,000 utterances/s with 2 workers; cold within 1.5x of the floor "
                      "(num_workers 0 against the bare loop, both one process)")
    root = work / "aihub_wavs"
    write_aihub(root, n, audio="wav")
    wavs = sorted(root.rglob("*.wav"))
    s.add("clips (48 kHz PCM16, 1-10 s)", len(wavs), "files")
    s.add("audio", sum(f.stat().st_size for f in wavs) / 96_000 / 3600, "hours")
    os.system("sync")
    t = time.perf_counter()
    for f in wavs:
        w, sr = read_audio(str(f))
        resample(w, sr, 16000)
    floor = len(wavs) / (time.perf_counter() - t)
    s.add("floor: decode + resample, bare loop", floor, "utt/s")
    res = {}
    for workers in (0, 2):
        r = child(DATA_CHILD, str(root), str(work / f"cache_w{workers}"), str(workers))
        res[workers] = r
        s.add(f"DataModule setup (validation, splits), workers={workers}", r["setup_s"], "s")
        s.add(f"DataModule cold, num_workers={workers}", r["cold"], "utt/s")
        s.add(f"DataModule warm, num_workers={workers}", r["warm"], "utt/s")
    s.add("cold (workers=0) / floor", res[0]["cold"] / floor, "x")
    s.met = res[2]["warm"] >= 2000 and res[0]["cold"] >= floor / 1.5
    s.notes.append("cold = first pass (decode, resample, write the int16 resample cache); "
                   "warm = the next epoch reading the cache; the page cache is warm in both")
    return s


INDEX_CHILD = r"""
import json, resource, sys, time
from zoo.data import EmotionDataModule
from zoo.data.corpora import AIHub
base = peak_mb()
t = time.perf_counter()
dm = EmotionDataModule(corpus=AIHub(root=sys.argv[1]), modalities=["text"], cache_dir=None)
dm.setup("fit")
dt = time.perf_counter() - t
peak = peak_mb()
n = sum(len(dm.split(k)) for k in ("train", "val", "test"))
print(json.dumps({"s": dt, "peak_mb": peak, "growth_mb": peak - base, "base_mb": base, "rows": n}))
"""


def suite_index(args, work: Path) -> Suite:
    n = max(500, int((8000 if args.quick else 44000) * args.scale))
    s = Suite("index", f"the {n:,}-row index under 10 s and under 300 MB (memory the index adds "
                       "above the imported libraries)")
    root = work / "aihub_index"
    write_aihub(root, n, audio="stub", splits=(14606 / 43991, 10011 / 43991, 19374 / 43991))
    r = child(INDEX_CHILD, str(root))
    s.add("rows indexed (train + val + test)", r["rows"], "rows")
    s.add("index time (read CSVs, labels, conversations, splits)", r["s"], "s")
    s.add("peak RSS of the process", r["peak_mb"], "MB")
    s.add("of which the libraries (torch, lightning) at import", r["base_mb"], "MB")
    s.add("added by the index", r["growth_mb"], "MB")
    s.met = r["s"] < 10 and r["growth_mb"] < 300
    return s


def suite_bucketing(args) -> Suite:
    import torch

    from zoo.data.batch import BucketBatchSampler

    s = Suite("bucketing", "<= 10% padded samples with the DataModule's batching")
    n = max(256, int((1000 if args.quick else 4000) * args.scale))
    durs = durations(n, seed=1)
    bs = 16

    def pad_share(batches):
        padded = sum(len(b) * durs[b].max() for b in batches)
        return 1 - durs.sum() / padded
    rng = np.random.default_rng(0)
    random_batches = [np.asarray(b) for b in np.array_split(rng.permutation(n), int(np.ceil(n / bs)))]
    bucket_batches = [np.asarray(b) for b in BucketBatchSampler(durs, bs, shuffle=True, seed=0)]
    s.add("padded share, random batches", 100 * pad_share(random_batches), "%")
    s.add("padded share, length-bucketed batches", 100 * pad_share(bucket_batches), "%")

    # training throughput of the reference audio model on each batching (waveforms in memory)
    from zoo.data.batch import Batch
    from zoo.models import AudioCNN

    torch.manual_seed(0)
    model = AudioCNN(class_names=list("abcdefg"), channels=[16, 32, 32], hidden=32)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    sr = 16000
    steps = max(4, int((12 if args.quick else 40) * args.scale))

    def throughput(batches):
        model.train()
        t, seen = time.perf_counter(), 0
        for b in batches[:steps]:
            lengths = torch.tensor((durs[b] * sr).astype(int))
            wav = torch.randn(len(b), int(lengths.max())) * 0.1
            batch = Batch(ids=[str(i) for i in b], labels=torch.randint(0, 7, (len(b),)),
                          waveforms=wav, lengths=lengths)
            loss = model.loss(model(batch), batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(b)
        return seen / (time.perf_counter() - t)
    throughput(bucket_batches[:1])
    r, b_ = throughput(random_batches), throughput(bucket_batches)
    s.add("AudioCNN training, random batches", r, "samples/s")
    s.add("AudioCNN training, length-bucketed batches", b_, "samples/s")
    s.add("speed-up from bucketing", b_ / r, "x")
    s.met = pad_share(bucket_batches) <= 0.10
    return s


TRAIN_CHILD = r"""
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import torch
torch.set_num_threads(int(sys.argv[4]))
import lightning as L
from zoo.cli import build_cli
configs, steps, overrides = json.loads(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
args = ["--config", "configs/data/synthetic.yaml"]
for c in configs:
    args += ["--config", c]
args += ["--data.corpus.size", sys.argv[5], "--data.batch_size", "8", "--data.num_workers", "0"] + overrides
cli = build_cli(args, run=False)
class Clock(L.Callback):
    t0 = None; n = 0; skip = 3
    def on_train_batch_start(self, trainer, pl, batch, i):
        if i == self.skip: self.t0 = time.perf_counter(); self.n = 0
    def on_train_batch_end(self, trainer, pl, out, batch, i):
        if self.t0 is not None: self.n += len(batch)
clock = Clock()
trainer = L.Trainer(max_steps=steps, limit_val_batches=0, logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, callbacks=[clock],
                    num_sanity_val_steps=0, accelerator="cpu")
trainer.fit(cli.model, cli.datamodule)
dt = time.perf_counter() - clock.t0
params = sum(p.numel() for p in cli.model.parameters())
print(json.dumps({"samples_s": clock.n / dt, "peak_mb": peak_mb(),
                  "params": params}))
"""

HF_CHILD = r"""
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, torch
torch.set_num_threads(int(sys.argv[3]))
from transformers import (Trainer, TrainingArguments, TrainerCallback, Wav2Vec2Config,
                          Wav2Vec2ForSequenceClassification)
cfg, steps = json.loads(sys.argv[1]), int(sys.argv[2])
config = Wav2Vec2Config(num_labels=7, use_weighted_layer_sum=False, classifier_proj_size=cfg["hidden_size"],
                        **{k: v for k, v in cfg.items()})
model = Wav2Vec2ForSequenceClassification(config)
model.freeze_feature_encoder()  # as the zoo's run: freeze_feature_encoder true
# the same clips as the zoo's run: the synthetic corpus's training split through the zoo's
# DataModule index and resample cache, cropped to its max_seconds, standardised per clip
from zoo.data import EmotionDataModule
from zoo.data.audio import AudioLoader
from zoo.data.corpora import Synthetic
dm = EmotionDataModule(corpus=Synthetic(size=int(sys.argv[5])), modalities=["audio"], max_seconds=8.0,
                       split={"mode": "group", "val_fraction": 0.15, "test_fraction": 0.2})
dm.prepare_data(); dm.setup("fit")
utts, load, names = dm.split("train"), AudioLoader(16000, dm.cache_dir), dm.class_names
class DS(torch.utils.data.Dataset):
    def __len__(self): return len(utts)
    def __getitem__(self, i):
        x = load(utts[i].audio)
        if len(x) > 8 * 16000:
            start = (len(x) - 8 * 16000) // 2; x = x[start:start + 8 * 16000]
        return {"input_values": (x - x.mean()) / (x.std() + 1e-7), "labels": names.index(utts[i].label)}
def collate(items):
    n = max(len(it["input_values"]) for it in items)
    x = torch.zeros(len(items), n); m = torch.zeros(len(items), n, dtype=torch.long)
    for k, it in enumerate(items):
        x[k, :len(it["input_values"])] = torch.from_numpy(it["input_values"]); m[k, :len(it["input_values"])] = 1
    return {"input_values": x, "attention_mask": m, "labels": torch.tensor([it["labels"] for it in items])}
class Clock(TrainerCallback):
    t0 = None; steps = 0
    def on_step_begin(self, args, state, control, **kw):
        if state.global_step == 3: self.t0 = time.perf_counter()
    def on_step_end(self, args, state, control, **kw):
        if self.t0 is not None: self.steps += 1
clock = Clock()
targs = TrainingArguments(output_dir=sys.argv[4], per_device_train_batch_size=8, max_steps=steps,
                          learning_rate=1e-4, weight_decay=0.01, logging_strategy="no", save_strategy="no",
                          report_to=[], use_cpu=True, dataloader_num_workers=0, group_by_length=False,
                          disable_tqdm=True, remove_unused_columns=False)
Trainer(model=model, args=targs, train_dataset=DS(), data_collator=collate, callbacks=[clock]).train()
dt = time.perf_counter() - clock.t0
print(json.dumps({"samples_s": 8 * clock.steps / dt,
                  "peak_mb": peak_mb(),
                  "params": sum(p.numel() for p in model.parameters())}))
"""

# (name, model configs, overrides, sizes it runs at)
FAMILIES = [
    ("audio_cnn", ["configs/model/audio_cnn.yaml"], []),
    ("audio_cnn tiny", ["configs/model/audio_cnn.yaml", "configs/model/tiny/audio_cnn.yaml"], []),
    ("egemaps_mlp", ["configs/model/egemaps_mlp.yaml"], []),
    ("text_tfidf", ["configs/model/text_tfidf.yaml"], []),
    ("text_bert tiny (from scratch)", ["configs/model/text_kobert.yaml", "configs/model/tiny/text_kobert.yaml"], []),
    ("early_fusion tiny", ["configs/model/early_fusion.yaml", "configs/model/tiny/early_fusion.yaml"], []),
    ("wav2vec2 tiny", ["configs/model/wav2vec2.yaml", "configs/model/tiny/wav2vec2.yaml"], []),
]
# the zoo's wav2vec2 at base size, random weights, CNN frozen: the same config for transformers.Trainer
W2V_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
W2V_TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
            "conv_dim": [32] * 7, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4}


def suite_train(args, work: Path) -> Suite:
    s = Suite("train", "zoo / transformers.Trainer samples/s >= 1.0 and peak RSS <= 1.1x "
                       "(wav2vec2, same config, data, batch 8, AdamW, fp32)")
    steps = max(6, int((8 if args.quick else 30) * args.scale))
    size = "120" if args.quick else "400"
    threads = str(os.cpu_count() or 1)
    for name, configs, over in FAMILIES:
        if args.quick and "tiny" not in name and name not in ("egemaps_mlp", "text_tfidf"):
            continue
        try:
            r = child(TRAIN_CHILD, json.dumps(configs), str(steps), json.dumps(over), threads, size)
        except RuntimeError as e:
            s.notes.append(f"{name}: failed: {str(e).splitlines()[-1]}")
            continue
        s.add(f"{name} ({r['params'] / 1e6:.2f} M params)", r["samples_s"], "samples/s")
        s.add(f"{name} peak RSS", r["peak_mb"], "MB")
    cfg = W2V_TINY if args.quick else W2V_BASE
    label = "tiny" if args.quick else "base size"
    zoo_over = ["--model.init_args.pretrained", "null", "--model.init_args.freeze_feature_encoder", "true",
                "--model.init_args.spec_augment", "false", "--model.init_args.encoder_lr", "null",
                "--model.init_args.optimizer.init_args.lr", "1e-4"]
    if args.quick:
        zoo_cfgs = ["configs/model/wav2vec2.yaml", "configs/model/tiny/wav2vec2.yaml"]
    else:
        zoo_cfgs = ["configs/model/wav2vec2.yaml"]
    w_steps = max(6, int((8 if args.quick else 20) * args.scale))
    zoo = child(TRAIN_CHILD, json.dumps(zoo_cfgs), str(w_steps), json.dumps(zoo_over), threads, size)
    hf = child(HF_CHILD, json.dumps(cfg), str(w_steps), threads, str(work / "hf"), size)
    s.add(f"wav2vec2 {label}: zoo (Lightning)", zoo["samples_s"], "samples/s")
    s.add(f"wav2vec2 {label}: transformers.Trainer", hf["samples_s"], "samples/s")
    s.add(f"wav2vec2 {label}: zoo / HF samples/s", zoo["samples_s"] / hf["samples_s"], "x")
    s.add(f"wav2vec2 {label}: zoo peak RSS", zoo["peak_mb"], "MB")
    s.add(f"wav2vec2 {label}: HF peak RSS", hf["peak_mb"], "MB")
    s.add(f"wav2vec2 {label}: zoo / HF peak RSS", zoo["peak_mb"] / hf["peak_mb"], "x")
    s.notes.append("both: the synthetic corpus's training clips (<= 8 s), batches of 8, data loading "
                   "inside the time; zoo: length-bucketed batches; HF: random batches (its default)")
    s.met = zoo["samples_s"] / hf["samples_s"] >= 1.0 and zoo["peak_mb"] / hf["peak_mb"] <= 1.1
    return s


def suite_cache(args, work: Path) -> Suite:
    s = Suite("cache", ">= 20x per-epoch speed-up after the first epoch, logits within 1e-5")
    bench = ROOT / "benchmarks" / "cache.py"
    if not bench.exists():
        s.notes.append("not available: the frozen-encoder embedding cache is not built yet")
        return s
    # on a CPU a base-size encoder over 2,000 utterances takes hours per uncached epoch: the
    # suite runs a smaller encoder (run benchmarks/cache.py --size 2000 on a GPU for base size)
    n = max(40, int((100 if args.quick else 600) * args.scale))
    size = ["--hidden", "64", "--layers", "2"] if args.quick else ["--hidden", "256", "--layers", "4"]
    r = subprocess.run([sys.executable, str(bench), "--utterances", str(n), "--epochs", "3", *size,
                        "--json", str(work / "cache.json")],
                       capture_output=True, text=True, cwd=str(ROOT),
                       env=dict(os.environ, PYTHONPATH=str(ROOT), WANDB_MODE="disabled"))
    if r.returncode != 0:
        s.notes.append(f"failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
        s.met = False
        return s
    res = json.loads((work / "cache.json").read_text())
    for row in res["rows"]:
        s.add(row["what"], row["value"], row["unit"])
    s.met = res.get("met")
    return s


INFER_CHILD = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, torch
torch.set_num_threads(int(sys.argv[2]))
import zoo
m = zoo.load(sys.argv[1], device="cpu")
rng = np.random.default_rng(0)
sr = m.sample_rate
clips = [rng.standard_normal(int(sr * rng.uniform(2, 5))).astype(np.float32) * 0.1 for _ in range(int(sys.argv[3]))]
texts = ["오늘 정말 기분이 좋아"] * len(clips)
kw = {"texts": texts} if "text" in getattr(m, "inputs", ()) else {}
try:
    m.predict_batch(clips[:2], **({"texts": texts[:2]} if kw else {}))
except TypeError:
    kw = {}
    m.predict_batch(clips[:2])
t = time.perf_counter()
m.predict_batch(clips, **kw)
dt = time.perf_counter() - t
print(json.dumps({"rtf": dt / (sum(len(c) for c in clips) / sr)}))
"""


CNN_DEFAULT_CHILD = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
from zoo.data.batch import Batch
from zoo.models import AudioCNN
m = AudioCNN(class_names=list("abcdefg")).eval()  # the default size: channels 32-64-128, hidden 128
rng = np.random.default_rng(0)
clips = [torch.from_numpy(rng.standard_normal(int(16000 * rng.uniform(2, 5))).astype(np.float32) * 0.1)
         for _ in range(int(sys.argv[2]))]
order = sorted(range(len(clips)), key=lambda i: len(clips[i]))  # as predict_batch: by length, 16 a batch
def run():
    with torch.no_grad():
        for k in range(0, len(order), 16):
            part = [clips[i] for i in order[k:k + 16]]
            n = torch.tensor([len(c) for c in part])
            m(Batch(ids=[str(i) for i in range(len(part))], labels=torch.zeros(len(part), dtype=torch.long),
                    waveforms=torch.nn.utils.rnn.pad_sequence(part, batch_first=True), lengths=n))
run()
t = time.perf_counter(); run(); dt = time.perf_counter() - t
print(json.dumps({"rtf": dt / (sum(len(c) for c in clips) / 16000),
                  "params": sum(p.numel() for p in m.parameters())}))
"""


def suite_infer(args) -> Suite:
    from zoo.inference.registry import list_checkpoints

    s = Suite("infer", "audio CNN at default size <= 0.01 RTF; `--help` under 1 s")
    n = max(4, int((16 if args.quick else 64) * args.scale))
    threads = str(os.cpu_count() or 1)
    names = list_checkpoints()
    if args.quick:  # a smoke test: one shipped checkpoint
        names = [c for c in names if c == "audio-cnn-synth"] or names[:1]
    for name in names:
        try:
            r = child(INFER_CHILD, name, threads, str(n))
        except RuntimeError as e:
            s.notes.append(f"{name}: failed: {str(e).splitlines()[-1]}")
            continue
        s.add(f"{name}: predict_batch real-time factor", r["rtf"], "s per s of audio")

    r = child(CNN_DEFAULT_CHILD, threads, str(n))
    cnn_rtf = r["rtf"]
    s.add(f"AudioCNN at its default size ({r['params'] / 1e6:.2f} M params, random weights): forward RTF",
          cnn_rtf, "s per s of audio")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    helps = []
    for cmd in (["--help"], ["infer", "--help"]):
        subprocess.run([sys.executable, "-m", "zoo", *cmd], capture_output=True, env=env, cwd=str(ROOT))
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "zoo", *cmd], capture_output=True, env=env, cwd=str(ROOT))
        helps.append(time.perf_counter() - t)
        s.add(f"python -m zoo {' '.join(cmd)}", helps[-1], "s")
    s.notes.append("64 random clips of 2-5 s in one predict_batch call, after a warm-up call; the "
                   "shipped audio-cnn-synth is a narrow AudioCNN (16-32-32), so the default size is "
                   "timed on its own: the model's forward over length-sorted batches of 16")
    s.met = cnn_rtf <= 0.01 and max(helps) < 1.0
    return s


SUITES = ("data", "rates", "index", "bucketing", "train", "cache", "infer")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", nargs="+", choices=SUITES, default=list(SUITES))
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test, ~5 min)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every size by this (default 1)")
    ap.add_argument("--json", type=Path, help="write every figure with its unit, the machine and versions")
    ap.add_argument("--markdown", type=Path, help="also write the tables as Markdown")
    ap.add_argument("--workdir", type=Path, help="where the generated corpora go (default: a temp dir)")
    args = ap.parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "disabled")
    suites: list[Suite] = []
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        work = args.workdir or Path(tmp)
        for name in args.suite:
            t = time.perf_counter()
            print(f"[{name}] running ...", file=sys.stderr, flush=True)
            fn = globals()[f"suite_{name}"]
            wd = work / name
            wd.mkdir(parents=True, exist_ok=True)
            s = fn(args, wd) if fn.__code__.co_argcount == 2 else fn(args)
            s.notes.append(f"suite wall time {time.perf_counter() - t:.0f} s")
            suites.append(s)
    if args.quick:
        print("\n--quick: small sizes for a smoke test; the numbers and verdicts are not the "
              "measurement (docs/performance.md has the full run)")
    print_table(suites)
    if args.json:
        doc = {**machine(), "quick": args.quick, "scale": args.scale,
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "suites": [s.__dict__ for s in suites]}
        args.json.write_text(json.dumps(doc, indent=1, default=float))
        print(f"\nwrote {args.json}")
    if args.markdown:
        args.markdown.write_text(markdown(suites), encoding="utf-8")
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
