"""The infer suite's AudioCNN at its default size (random weights): forward real-time factor over
length-sorted batches of 16, as predict_batch batches.

    python -m benchmarks.children.cnn_default THREADS N_CLIPS
"""
from __future__ import annotations

import json
import sys
import time
import warnings


def main() -> None:
    warnings.filterwarnings("ignore")
    import numpy as np
    import torch

    # the thread count is set before the zoo is imported
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
    t = time.perf_counter()
    run()
    dt = time.perf_counter() - t
    print(json.dumps({"rtf": dt / (sum(len(c) for c in clips) / 16000),
                      "params": sum(p.numel() for p in m.parameters())}))


if __name__ == "__main__":
    main()
