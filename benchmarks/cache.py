"""Per-epoch training time of a frozen SSL encoder with and without the embedding cache
(docs/models.md, "Embedding cache").

SUPERB-style probing: a frozen encoder, a learnable weighted sum of its layers, mean pooling and
a linear head, trained on the synthetic corpus's training split with the zoo's DataModule (audio
decoded and resampled through its own cache, so both runs read the same .npy clips). Epoch 1 with
the cache runs the encoder and writes every utterance's pooled layer states; later epochs read
them. The encoder is random (from scratch) at the size given, so nothing is downloaded; what is
timed does not depend on its weights.

    python benchmarks/cache.py --size 2000 --epochs 3                  # base-size encoder
    python benchmarks/cache.py --size 200 --epochs 3 --hidden 256 --layers 4   # a quick CPU check
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch

from zoo.nn.ssl import MODEL_TYPES


class _EpochTimer:
    def __init__(self):
        import lightning as L

        class Timer(L.Callback):
            def __init__(self):
                self.times: list[float] = []

            def on_train_epoch_start(self, trainer, module):
                self.t0 = time.perf_counter()

            def on_train_epoch_end(self, trainer, module):
                self.times.append(time.perf_counter() - self.t0)

        self.callback = Timer()


def run(dm, args, cache: str | bool) -> list[float]:
    import lightning as L

    from zoo.models import SSLClassifier

    torch.manual_seed(0)
    model = SSLClassifier(
        pretrained=None, model_type=args.model_type, hidden_size=args.hidden, num_layers=args.layers,
        num_heads=max(1, args.hidden // 64), intermediate_size=4 * args.hidden, freeze_encoder=True,
        weighted_layers=True, embedding_cache=cache, class_names=dm.class_names,
        optimizer=lambda p: torch.optim.AdamW(p, lr=1e-3))
    timer = _EpochTimer().callback
    trainer = L.Trainer(max_epochs=args.epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                        callbacks=[timer], accelerator=args.accelerator, precision=args.precision)
    trainer.fit(model, datamodule=dm)
    return timer.times, model


def logit_difference(model, dm, batches: int = 4) -> float:
    """Max |logits from the cache - logits from the encoder| on training batches (cache hits)."""
    model.eval()
    worst = 0.0
    with torch.no_grad():
        for i, b in enumerate(dm.train_dataloader()):
            if i == batches:
                break
            cached = model.head(model.encoder(b.waveforms, b.lengths, cache=True))
            direct = model.head(model.encoder(b.waveforms, b.lengths, cache=False))
            worst = max(worst, float((cached - direct).abs().max()))
    return worst


def main(argv=None) -> None:
    from zoo.data import EmotionDataModule
    from zoo.data.corpora import Synthetic

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2000, help="synthetic utterances (the training split is ~65%%)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--model-type", default="wavlm", choices=MODEL_TYPES, help="an SSL type of zoo.nn.ssl's table")
    ap.add_argument("--hidden", type=int, default=768, help="encoder width (768 = base size)")
    ap.add_argument("--layers", type=int, default=12, help="encoder layers (12 = base size)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--accelerator", default="auto")
    ap.add_argument("--precision", default="32-true")
    ap.add_argument("--utterances", type=int, help="alias of --size (python -m benchmarks.run)")
    ap.add_argument("--json", help="write the rows for the cache suite of python -m benchmarks.run")
    a = ap.parse_args(argv)
    if a.utterances:
        a.size = a.utterances
    dm = EmotionDataModule(corpus=Synthetic(size=a.size),
                           split={"mode": "group", "val_fraction": 0.15, "test_fraction": 0.2},
                           batch_size=a.batch_size, max_seconds=8.0, modalities=["audio"])
    dm.prepare_data()
    dm.setup("fit")
    n = len(dm.split("train"))
    print(f"{a.model_type} {a.layers} layers x {a.hidden}, frozen + weighted layer sum; {n} training "
          f"utterances, batch {a.batch_size}, {a.accelerator}, {a.precision}")
    for _ in dm.train_dataloader():  # decode and resample every clip once: both runs read the audio cache
        pass
    off, _ = run(dm, a, False)
    with tempfile.TemporaryDirectory() as d:
        on, model = run(dm, a, d)
        diff = logit_difference(model, dm)
    print("epoch  no cache (s)  cache (s)  speed-up")
    for i, (x, y) in enumerate(zip(off, on), 1):
        print(f"{i:5d}  {x:12.2f}  {y:9.2f}  {x / y:7.1f}x")
    if len(on) > 1:
        later_off, later_on = sum(off[1:]) / len(off[1:]), sum(on[1:]) / len(on[1:])
        print(f"after the first epoch: {later_off:.2f} s -> {later_on:.2f} s per epoch, "
              f"{later_off / later_on:.1f}x faster")
    print(f"max |logits with the cache - without|: {diff:.2e}")
    if a.json:
        import json

        rows = [{"what": f"{a.model_type} {a.layers}x{a.hidden} frozen, {n} utterances", "value": n, "unit": "utt"}]
        for i, (x, y) in enumerate(zip(off, on), 1):
            rows += [{"what": f"epoch {i} without the cache", "value": x, "unit": "s"},
                     {"what": f"epoch {i} with the cache", "value": y, "unit": "s"}]
        speed = later_off / later_on if len(on) > 1 else None
        rows += [{"what": "speed-up after the first epoch", "value": speed, "unit": "x"},
                 {"what": "max abs logit difference", "value": diff, "unit": ""}]
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "met": bool(speed and speed >= 20 and diff <= 1e-5)}, f)


if __name__ == "__main__":
    main()
