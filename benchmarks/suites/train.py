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


def run(args, work: Path) -> Suite:
    s = Suite("train", "zoo / transformers.Trainer samples/s >= 1.0 and peak RSS <= 1.1x "
                       "(wav2vec2, same config, data, batch 8, AdamW, fp32)")
    steps = max(6, int((8 if args.quick else 30) * args.scale))
    size = "120" if args.quick else "400"
    threads = str(os.cpu_count() or 1)
    for name, configs, over in FAMILIES:
        if args.quick and "tiny" not in name and name not in ("egemaps_mlp", "text_tfidf"):
            continue
        try:
            r = child("train", json.dumps(configs), str(steps), json.dumps(over), threads, size)
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
    zoo = child("train", json.dumps(zoo_cfgs), str(w_steps), json.dumps(zoo_over), threads, size)
    hf = child("hf_trainer", json.dumps(cfg), str(w_steps), threads, str(work / "hf"), size)
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
