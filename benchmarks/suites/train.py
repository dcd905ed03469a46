"""train: training samples/s and peak RSS per model family, and the zoo's wav2vec2 beside
transformers.Trainer."""
from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks.common import Suite, child

DESCRIPTION = ("training samples/s and peak RSS per model family (tiny and default sizes, random "
               "weights), and the zoo's wav2vec2 beside transformers.Trainer + "
               "Wav2Vec2ForSequenceClassification with the same config, data, batch and optimiser")

# (name, model configs, overrides); names with "tiny", egemaps_mlp and text_tfidf run in --quick
CLASSIC_FAMILIES = [
    ("audio_cnn", ["configs/model/audio_cnn.yaml"], []),
    ("audio_cnn tiny", ["configs/model/audio_cnn.yaml", "configs/model/tiny/audio_cnn.yaml"], []),
    ("egemaps_mlp", ["configs/model/egemaps_mlp.yaml"], []),
    ("text_tfidf", ["configs/model/text_tfidf.yaml"], []),
    ("text_bert tiny (from scratch)", ["configs/model/text_kobert.yaml", "configs/model/tiny/text_kobert.yaml"], []),
    ("early_fusion tiny", ["configs/model/early_fusion.yaml", "configs/model/tiny/early_fusion.yaml"], []),
]


def ssl_families() -> list[tuple[str, list[str], list[str]]]:
    """One tiny row per SSL model type, derived from the registered table (zoo.nn.ssl): a type's
    first config of configs/model/ under its CPU-size overlay in configs/model/tiny/."""
    from zoo.nn.ssl.table import configs_by_type

    return [(f"{Path(names[0]).stem} tiny", [f"configs/model/{names[0]}", f"configs/model/tiny/{names[0]}"], [])
            for names in configs_by_type().values()]


SSL_FAMILIES = ssl_families()
FAMILIES = CLASSIC_FAMILIES + SSL_FAMILIES
# the zoo's wav2vec2 at base size, random weights, CNN frozen: the same config for transformers.Trainer
W2V_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
W2V_TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
            "conv_dim": [32] * 7, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4}


HF_SAMPLERS = {"random": "transformers.Trainer, random batches (default)",
               "group_by_length": "transformers.Trainer, group_by_length=True"}


def verdict(zoo: dict, hf: dict[str, dict]) -> tuple[bool, str]:
    """The goal against the FASTER Trainer configuration (the one a transformers user would pick):
    the zoo's samples/s >= 1.0x its samples/s and the zoo's peak RSS <= 1.1x its peak RSS. Returns
    (met, the faster configuration's name)."""
    best = max(hf, key=lambda k: hf[k]["samples_s"])
    ref = hf[best]
    return zoo["samples_s"] / ref["samples_s"] >= 1.0 and zoo["peak_mb"] / ref["peak_mb"] <= 1.1, best


def run(args, work: Path) -> Suite:
    device, precision = getattr(args, "device", "cpu"), getattr(args, "precision", "fp32")
    s = Suite("train", "zoo / the faster transformers.Trainer configuration (default random batches or "
                       f"group_by_length=True): samples/s >= 1.0 and peak RSS <= 1.1x (wav2vec2, same config, "
                       f"data, batch 8, AdamW, {precision}{', ' + device if device != 'cpu' else ''})")
    steps = max(6, int((8 if args.quick else 30) * args.scale))
    size = "120" if args.quick else "400"
    threads = str(os.cpu_count() or 1)
    # --families none: only the wav2vec2 comparison (benchmarks/gpu.sh)
    for name, configs, over in FAMILIES if getattr(args, "families", True) else []:
        if args.quick and "tiny" not in name and name not in ("egemaps_mlp", "text_tfidf"):
            continue
        try:
            r = child("train", json.dumps(configs), str(steps), json.dumps(over), threads, size, device, precision)
        except RuntimeError as e:
            s.notes.append(f"{name}: failed: {str(e).splitlines()[-1]}")
            continue
        s.add(f"{name} ({r['params'] / 1e6:.2f} M params)", r["samples_s"], "samples/s")
        s.add(f"{name} peak RSS", r["peak_mb"], "MB")
    base = not args.quick or getattr(args, "base", False)
    cfg = W2V_BASE if base else W2V_TINY
    label = "base size" if base else "tiny"
    zoo_over = ["--model.init_args.pretrained", "null", "--model.init_args.freeze_feature_encoder", "true",
                "--model.init_args.spec_augment", "false", "--model.init_args.encoder_lr", "null",
                "--model.init_args.optimizer.init_args.lr", "1e-4"]
    if base:
        zoo_cfgs = ["configs/model/wav2vec2.yaml"]
    else:
        zoo_cfgs = ["configs/model/wav2vec2.yaml", "configs/model/tiny/wav2vec2.yaml"]
    # timed over one epoch's batches (see the children): group_by_length orders an epoch's batches
    # by length, longest first, so a number of steps shorter than an epoch would favour random batches
    w_steps = "epoch"
    w_size = str(getattr(args, "w2v_corpus", None) or max(40, int((60 if args.quick else 240) * args.scale)))
    zoo = child("train", json.dumps(zoo_cfgs), w_steps, json.dumps(zoo_over), threads, w_size,
                device, precision)
    hf = {k: child("hf_trainer", json.dumps(cfg), w_steps, threads, str(work / f"hf-{k}"), w_size, k,
                   device, precision)
          for k in HF_SAMPLERS}
    met, best = verdict(zoo, hf)
    s.add(f"wav2vec2 {label}: zoo (Lightning, length-bucketed batches)", zoo["samples_s"], "samples/s")
    for k, what in HF_SAMPLERS.items():
        s.add(f"wav2vec2 {label}: {what}", hf[k]["samples_s"], "samples/s")
    s.add(f"wav2vec2 {label}: zoo peak RSS", zoo["peak_mb"], "MB")
    for k, what in HF_SAMPLERS.items():
        s.add(f"wav2vec2 {label}: {what} peak RSS", hf[k]["peak_mb"], "MB")
    if device == "cuda":
        s.add(f"wav2vec2 {label}: zoo peak GPU memory", zoo["peak_gpu_mb"], "MB")
        for k, what in HF_SAMPLERS.items():
            s.add(f"wav2vec2 {label}: {what} peak GPU memory", hf[k]["peak_gpu_mb"], "MB")
    for k, what in HF_SAMPLERS.items():
        s.add(f"wav2vec2 {label}: zoo / {what}, samples/s", zoo["samples_s"] / hf[k]["samples_s"], "x")
        s.add(f"wav2vec2 {label}: zoo / {what}, peak RSS", zoo["peak_mb"] / hf[k]["peak_mb"], "x")
    s.notes.append(f"all three: the synthetic corpus's training clips (<= 8 s), batches of 8 (a {w_size}-utterance corpus), "
                   f"timed from the 4th step over one epoch's worth of batches (zoo {zoo['steps'] - 3}, "
                   f"Trainer {hf['random']['steps'] - 3}), data loading inside the time; zoo: length-bucketed batches; "
                   "Trainer: random batches (its default), and group_by_length=True (LengthGroupedSampler, "
                   "lengths from each item's input_values, the feature extractor's input name)")
    s.notes.append(f"the goal is judged against the faster Trainer configuration: {HF_SAMPLERS[best]}")
    s.met = met
    return s
