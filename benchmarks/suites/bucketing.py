"""bucketing: padding and training throughput, random vs length-bucketed batches."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.common import Suite
from benchmarks.corpora import durations

DESCRIPTION = ("padded-sample fraction and training samples/s: random batches vs the DataModule's "
               "length-bucketed batches on a long-tailed 1-10 s duration mix")


def run(args, work: Path) -> Suite:
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
