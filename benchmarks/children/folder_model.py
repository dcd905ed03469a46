"""The folder suite's models: a zoo checkpoint with random weights, as ``python -m zoo fit`` writes
one (the class path, hyper-parameters and state dict), for ``python -m zoo infer`` and ``export``.

    python -m benchmarks.children.folder_model MODEL OUT.ckpt

MODEL: ``audio_cnn`` (the default-size AudioCNN, configs/model/audio_cnn.yaml), ``wav2vec2``
(base size, 95 M parameters: configs/model/wav2vec2.yaml with pretrained: null) or
``wav2vec2_tiny`` (a 2-layer, 32-wide one for a smoke test).
"""
from __future__ import annotations

import sys

CLASSES = ["Angry", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]
TINY_W2V = dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, conv_dim=[32] * 7,
                config_overrides={"num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4})


def main() -> None:
    import lightning
    import torch

    from zoo.models.loading import build_module

    name, out = sys.argv[1], sys.argv[2]
    spec = {"audio_cnn": ("zoo.models.AudioCNN", {}),
            "wav2vec2": ("zoo.models.Wav2Vec2Classifier", {"pretrained": None}),
            "wav2vec2_tiny": ("zoo.models.Wav2Vec2Classifier", {"pretrained": None, **TINY_W2V})}
    if name not in spec:
        sys.exit(f"folder_model: MODEL is one of {', '.join(spec)}, got {name!r}")
    torch.manual_seed(0)
    cls, init = spec[name]
    m = build_module({"class_path": cls, "init_args": init}, class_names=CLASSES, sample_rate=16000).eval()
    with torch.no_grad():  # away from uniform probabilities, so differences between runs show
        last = [p for n, p in m.head.named_parameters() if n.endswith("weight")][-1]
        last.mul_(20)
    ckpt = {"hyper_parameters": {**dict(m.hparams), "_class_path": cls}, "state_dict": m.state_dict(),
            "pytorch-lightning_version": lightning.__version__, "epoch": 0, "global_step": 0}
    m.on_save_checkpoint(ckpt)
    torch.save(ckpt, out)
    print(f'{{"params": {sum(p.numel() for p in m.parameters())}}}')


if __name__ == "__main__":
    main()
