"""The step suite's measurement: one padding-exact SSL training step of the zoo beside
transformers' own forward + backward of the same model on the same padded batch.

    python -m benchmarks.children.ssl_step SIZE_JSON ROUNDS THREADS [PROFILE_ROWS]

SIZE_JSON: wav2vec2 config fields (hidden_size, num_hidden_layers, ...). The zoo's encoder
(random weights, CNN frozen, no SpecAugment, no LayerDrop) + its head, and
``Wav2Vec2ForSequenceClassification`` holding the same encoder weights, each take one identical
batch of 8 clips of 2.8-3.5 s at 16 kHz: the zoo the raw zero-padded waveforms and lengths (it
standardises each clip itself), transformers the standardised waveforms and the sample-level
attention mask, as its feature extractor would give them. Steps alternate (zoo, transformers,
zoo, ...) so that load on the machine hits both alike; each side's fastest step counts. With
PROFILE_ROWS > 0 one more step of each runs under torch.profiler and its top operators (self CPU
time) come back too.
"""
from __future__ import annotations

import json
import sys
import time
import warnings

CLIPS = 8
SECONDS = (2.8, 3.5)
RATE = 16000


def batch(seed: int = 0):
    """8 zero-padded clips of 2.8-3.5 s (noise with a tone, a different level per clip), lengths."""
    import torch

    g = torch.Generator().manual_seed(seed)
    lengths = torch.linspace(SECONDS[0] * RATE, SECONDS[1] * RATE, CLIPS).long()
    x = torch.zeros(CLIPS, int(lengths.max()))
    for i, n in enumerate(lengths.tolist()):
        t = torch.arange(n) / RATE
        x[i, :n] = (0.05 + 0.02 * i) * torch.randn(n, generator=g) + 0.1 * torch.sin(2 * torch.pi * (120 + 30 * i) * t)
    return x, lengths


def models(cfg: dict):
    import torch
    from transformers import Wav2Vec2ForSequenceClassification

    from zoo.nn.heads import Head
    from zoo.nn.ssl import SSLEncoder

    torch.manual_seed(0)
    size = {"hidden_size": cfg["hidden_size"], "num_layers": cfg["num_hidden_layers"],
            "num_heads": cfg["num_attention_heads"], "intermediate_size": cfg["intermediate_size"]}
    extra = {k: v for k, v in cfg.items() if k not in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                       "intermediate_size")}
    enc = SSLEncoder(None, "wav2vec2", **size, config_overrides={"layerdrop": 0.0, **extra}, spec_augment=False,
                     freeze_feature_encoder=True)
    zoo = torch.nn.ModuleDict({"encoder": enc, "head": Head(enc.out_dim, 7, 0, dropout=0.1)})
    config = enc.model.config.to_dict()
    for k in ("id2label", "label2id"):
        config.pop(k, None)
    config.update(num_labels=7, classifier_proj_size=cfg["hidden_size"], use_weighted_layer_sum=False)
    hf = Wav2Vec2ForSequenceClassification(type(enc.model.config).from_dict(config))
    missing = hf.wav2vec2.load_state_dict(enc.model.state_dict(), strict=True)
    assert not missing.missing_keys
    hf.freeze_feature_encoder()
    zoo.train()
    hf.train()
    return zoo, hf


def main() -> None:
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(int(sys.argv[3]))
    cfg, rounds = json.loads(sys.argv[1]), int(sys.argv[2])
    profile_rows = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    zoo, hf = models(cfg)
    wav, lengths = batch()
    y = torch.arange(CLIPS) % 7
    mask = torch.arange(wav.shape[1])[None] < lengths[:, None]
    # transformers' input: what Wav2Vec2FeatureExtractor(do_normalize=True) gives (outside the step)
    std = torch.zeros_like(wav)
    for i, n in enumerate(lengths.tolist()):
        c = wav[i, :n]
        std[i, :n] = (c - c.mean()) / torch.sqrt(c.var(unbiased=False) + 1e-7)

    def zoo_step():
        logits = zoo["head"](zoo["encoder"](wav, lengths, cache=False))
        torch.nn.functional.cross_entropy(logits, y).backward()
        zoo.zero_grad(set_to_none=True)

    def hf_step():
        hf(input_values=std, attention_mask=mask.long(), labels=y).loss.backward()
        hf.zero_grad(set_to_none=True)

    steps = {"zoo": zoo_step, "hf": hf_step}
    best = {k: float("inf") for k in steps}
    for f in steps.values():
        f()  # warm-up
    for _ in range(rounds):
        for k, f in steps.items():
            t = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t)
    out = {"zoo_s": best["zoo"], "hf_s": best["hf"], "ratio": best["zoo"] / best["hf"]}
    # the price of exactness in the first conv layer: its GroupNorm over each clip's valid frames
    # against nn.GroupNorm over the padded batch, on this batch's first conv output
    from zoo.nn.ssl import _masked_group_norm

    layer = zoo["encoder"].model.feature_extractor.conv_layers[0]
    if isinstance(getattr(layer, "layer_norm", None), torch.nn.GroupNorm):
        with torch.no_grad():
            h = layer.conv(wav[:, None])
            k, st = layer.conv.kernel_size[0], layer.conv.stride[0]
            n = torch.div(lengths - k, st, rounding_mode="floor") + 1
            norms = {"masked": lambda: _masked_group_norm(h, n, layer.layer_norm), "native": lambda: layer.layer_norm(h)}
            gn = {k: float("inf") for k in norms}
            for _ in range(max(rounds, 1) + 1):
                for k, f in norms.items():
                    t = time.perf_counter()
                    f()
                    gn[k] = min(gn[k], time.perf_counter() - t)
        out.update(group_norm_masked_s=gn["masked"], group_norm_native_s=gn["native"])
    if profile_rows:
        from torch.profiler import ProfilerActivity, profile

        for k, f in steps.items():
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                f()
            events = prof.key_averages()
            total = sum(e.self_cpu_time_total for e in events)
            top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:profile_rows]
            out[f"{k}_profile"] = [[e.key, e.self_cpu_time_total / 1e6, e.self_cpu_time_total / total, e.count]
                                   for e in top]
            out[f"{k}_profile_total_s"] = total / 1e6
    print(json.dumps(out))


if __name__ == "__main__":
    main()
