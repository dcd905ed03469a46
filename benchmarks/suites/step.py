"""step: one padding-exact SSL training step of the zoo beside transformers' own, same batch."""
from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks.common import Suite, child

DESCRIPTION = ("one wav2vec2 training step (forward + backward, base size, random weights, CNN frozen) "
               "on one identical padded batch of 8 clips of 2.8-3.5 s: the zoo's padding-exact encoder "
               "+ head beside transformers' Wav2Vec2ForSequenceClassification with its attention mask, "
               "interleaved, with each side's top operators")

BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
SMALL = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128,
         "conv_dim": [64] * 7, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4}


def run(args, work: Path) -> Suite:
    s = Suite("step", "zoo step <= 1.1x transformers' step on the same padded batch (wav2vec2 base, fp32)")
    cfg, label = (SMALL, "small") if args.quick else (BASE, "base size")
    rounds = max(1, int((2 if args.quick else 3) * args.scale))
    threads = str(min(2, os.cpu_count() or 1))
    r = child("ssl_step", json.dumps(cfg), str(rounds), threads, "8")
    s.add(f"wav2vec2 {label}: zoo step (fastest of {rounds})", r["zoo_s"], "s")
    s.add(f"wav2vec2 {label}: transformers step (fastest of {rounds})", r["hf_s"], "s")
    s.add(f"wav2vec2 {label}: zoo / transformers", r["ratio"], "x")
    if "group_norm_masked_s" in r:
        s.add("first-layer GroupNorm over valid frames (zoo)", r["group_norm_masked_s"], "s")
        s.add("first-layer nn.GroupNorm over the padded batch (transformers)", r["group_norm_native_s"], "s")
    for side in ("zoo", "hf"):
        top = ", ".join(f"{name.removeprefix('aten::')} {100 * share:.0f}%" for name, _, share, _ in r[f"{side}_profile"])
        s.notes.append(f"{'zoo' if side == 'zoo' else 'transformers'} step, top operators by self CPU time "
                       f"({r[f'{side}_profile_total_s']:.1f} s profiled): {top}")
    s.notes.append(f"{threads} threads; steps interleaved (zoo, transformers, ...) so that machine load hits "
                   "both alike; LayerDrop and SpecAugment off, dropout on, in both")
    s.met = None if args.quick else r["ratio"] <= 1.1
    return s
