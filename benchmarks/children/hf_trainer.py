"""The train suite's reference: transformers.Trainer + Wav2Vec2ForSequenceClassification on the
same clips, batch and optimiser as the zoo's wav2vec2 run (samples/s and peak RSS).

    python -m benchmarks.children.hf_trainer CONFIG_JSON STEPS THREADS OUTPUT_DIR CORPUS_SIZE \
        [SAMPLER [DEVICE [PRECISION [WORKERS]]]]

STEPS: optimizer steps, or ``epoch``: 3 warm-up steps plus one epoch's batches, so the timed
steps (from the 4th) cover every batch of an epoch once (with group_by_length the longest
batches come first in every epoch: a part of an epoch would not be its average).
SAMPLER: ``random`` (the Trainer's default) or ``group_by_length`` (``group_by_length=True``:
transformers' LengthGroupedSampler, which puts clips of similar length in a batch); DEVICE:
``cpu`` or ``cuda``; PRECISION: ``fp32`` or ``bf16`` (``bf16=True``: autocast); WORKERS: the
DataLoader's worker processes (default 0).
"""
from __future__ import annotations

import json
import sys
import time
import warnings

from benchmarks.children import peak_mb


def main() -> None:
    warnings.filterwarnings("ignore")
    import torch

    # the thread count is set before transformers and the zoo are imported
    torch.set_num_threads(int(sys.argv[3]))
    from transformers import (
        Trainer,
        TrainerCallback,
        TrainingArguments,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForSequenceClassification,
    )

    cfg = json.loads(sys.argv[1])
    sampler, device, precision, workers = (sys.argv[6:] + ["random", "cpu", "fp32", "0"][len(sys.argv[6:]):])[:4]
    if sampler not in ("random", "group_by_length") or device not in ("cpu", "cuda") \
            or precision not in ("fp32", "bf16"):
        sys.exit(f"hf_trainer: SAMPLER random|group_by_length, DEVICE cpu|cuda, PRECISION fp32|bf16; "
                 f"got {sampler} {device} {precision}")
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
    dm.prepare_data()
    dm.setup("fit")
    utts, load, names = dm.split("train"), AudioLoader(16000, dm.cache_dir), dm.class_names
    steps = 3 + -(-len(utts) // 8) if sys.argv[2] == "epoch" else int(sys.argv[2])

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(utts)

        def __getitem__(self, i):
            x = load(utts[i].audio)
            if len(x) > 8 * 16000:
                start = (len(x) - 8 * 16000) // 2
                x = x[start:start + 8 * 16000]
            return {"input_values": (x - x.mean()) / (x.std() + 1e-7), "labels": names.index(utts[i].label)}

    def collate(items):
        n = max(len(it["input_values"]) for it in items)
        x = torch.zeros(len(items), n)
        m = torch.zeros(len(items), n, dtype=torch.long)
        for k, it in enumerate(items):
            x[k, :len(it["input_values"])] = torch.from_numpy(it["input_values"])
            m[k, :len(it["input_values"])] = 1
        return {"input_values": x, "attention_mask": m, "labels": torch.tensor([it["labels"] for it in items])}

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    class Clock(TrainerCallback):
        t0 = None
        steps = 0

        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == 3:
                sync()
                self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if self.t0 is not None:
                self.steps += 1

    clock = Clock()
    grouped = sampler == "group_by_length"
    targs = TrainingArguments(output_dir=sys.argv[4], per_device_train_batch_size=8, max_steps=steps,
                              learning_rate=1e-4, weight_decay=0.01, logging_strategy="no", save_strategy="no",
                              report_to=[], use_cpu=device == "cpu", bf16=precision == "bf16",
                              dataloader_num_workers=int(workers), group_by_length=grouped,
                              disable_tqdm=True, remove_unused_columns=False)
    # group_by_length reads each item's length from a `length` column of a datasets.Dataset or,
    # for any other dataset (this one), from len(item[model_input_name]), the processor's first
    # input name: the feature extractor's "input_values", one pass over the clips before training
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                         do_normalize=True, return_attention_mask=True)
    Trainer(model=model, args=targs, train_dataset=DS(), data_collator=collate, callbacks=[clock],
            processing_class=extractor).train()
    sync()
    dt = time.perf_counter() - clock.t0
    # one epoch's batches: every clip once (the partial last batch included); else full batches
    samples = len(utts) if sys.argv[2] == "epoch" else 8 * clock.steps
    out = {"samples_s": samples / dt, "steps": steps, "peak_mb": peak_mb(),
           "params": sum(p.numel() for p in model.parameters())}
    if device == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out))


if __name__ == "__main__":
    main()
