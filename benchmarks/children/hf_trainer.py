"""The train suite's reference: transformers.Trainer + Wav2Vec2ForSequenceClassification on the
same clips, batch and optimiser as the zoo's wav2vec2 run (samples/s and peak RSS).

    python -m benchmarks.children.hf_trainer CONFIG_JSON STEPS THREADS OUTPUT_DIR CORPUS_SIZE
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
        Wav2Vec2ForSequenceClassification,
    )

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
    dm.prepare_data()
    dm.setup("fit")
    utts, load, names = dm.split("train"), AudioLoader(16000, dm.cache_dir), dm.class_names

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

    class Clock(TrainerCallback):
        t0 = None
        steps = 0

        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == 3:
                self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if self.t0 is not None:
                self.steps += 1

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


if __name__ == "__main__":
    main()
