"""Self-supervised speech encoder: wav2vec 2.0 (Hugging Face checkpoint) -> pooling -> classifier."""
from __future__ import annotations

import logging
from typing import Any, Literal

import torch
from torch import nn

from ..data.batch import Batch
from ..errors import ZooUserError
from ..nn.augment import WaveAugment, WaveAugmentation
from ..nn.wav2vec2 import Wav2Vec2Encoder
from .base import EmotionModule

log = logging.getLogger("zoo")


class Wav2Vec2Classifier(EmotionModule):
    """wav2vec 2.0 / XLS-R fine-tuning or SUPERB-style probing on raw 16 kHz audio.

    Padding-exact: a clip gets the same logits alone and in a padded batch (per-clip waveform
    standardisation, CNN GroupNorm statistics over valid frames only, transformer attention mask,
    pooling over valid frames).

    Args:
        pretrained: Hugging Face hub id (e.g. ``facebook/wav2vec2-base``,
            ``facebook/wav2vec2-xls-r-300m``, a Korean fine-tuned XLS-R) or a local directory
            written by ``save_pretrained``; ``null`` trains a model of the size below from scratch.
        hidden_size: Transformer width (only when ``pretrained`` is null).
        num_layers: Transformer layers (only when ``pretrained`` is null).
        num_heads: Attention heads (only when ``pretrained`` is null).
        intermediate_size: Feed-forward width (only when ``pretrained`` is null).
        conv_dim: Channels of the CNN feature encoder layers (only when ``pretrained`` is null;
            default seven layers of 512).
        conv_kernel: Kernel sizes of the CNN layers (only when ``pretrained`` is null; default
            ``[10, 3, 3, 3, 3, 2, 2]``).
        conv_stride: Strides of the CNN layers (only when ``pretrained`` is null; default
            ``[5, 2, 2, 2, 2, 2, 2]``, 20 ms frames).
        feat_extract_norm: ``group`` (wav2vec2-base style) or ``layer`` (large-lv60 / XLS-R style)
            CNN normalisation (only when ``pretrained`` is null).
        config_overrides: Extra ``Wav2Vec2Config`` fields, applied to the pretrained config too,
            e.g. ``{layerdrop: 0.0, mask_time_prob: 0.05, hidden_dropout: 0.1}``.
        freeze_feature_encoder: Keep the CNN feature encoder frozen (standard for fine-tuning).
        freeze_encoder: Freeze the whole wav2vec2 backbone for the whole run (probing); only the
            pooling, layer weights and head train.
        weighted_layers: SUPERB protocol: a softmax-weighted sum of all hidden states (transformer
            input + each layer's output) with learnable weights replaces the last layer; usually
            with ``freeze_encoder: true``.
        trainable_layers: Fine-tune only the top k transformer layers (the rest of the backbone
            stays frozen); null trains the whole backbone (minus the CNN when
            ``freeze_feature_encoder``).
        unfreeze_after_steps: Keep the backbone frozen for the first N optimizer steps (the head
            warms up), then train it as the options above say.
        encoder_lr: Learning rate of the backbone parameters (the head uses the optimizer's lr);
            null: the optimizer's lr for all.
        pooling: ``mean`` or ``attentive`` pooling over the valid frames.
        normalize_waveform: Standardise each clip to zero mean, unit variance over its own samples
            (what wav2vec2-base and XLS-R expect; ``do_normalize`` of their feature extractor).
        spec_augment: SpecAugment-style time masking of the CNN features (the checkpoint's
            ``mask_time_prob``) while the whole backbone is fine-tuned; never in eval.
        dropout: Dropout before the classifier (and after its hidden layer).
        head_hidden: Width of a hidden ReLU layer in the head; null: a single linear layer.
        wave_augment: Waveform augmentation of the training batches (speed perturbation, noise,
            gain, reverberation; :class:`zoo.nn.augment.WaveAugmentation`); null = none.
    """

    inputs = ("audio",)

    def __init__(self, pretrained: str | None = "facebook/wav2vec2-base", hidden_size: int = 768,
                 num_layers: int = 12, num_heads: int = 12, intermediate_size: int = 3072,
                 conv_dim: list[int] | None = None, conv_kernel: list[int] | None = None,
                 conv_stride: list[int] | None = None, feat_extract_norm: Literal["group", "layer"] = "group",
                 config_overrides: dict[str, Any] | None = None, freeze_feature_encoder: bool = True,
                 freeze_encoder: bool = False, weighted_layers: bool = False,
                 trainable_layers: int | None = None, unfreeze_after_steps: int | None = None,
                 encoder_lr: float | None = None, pooling: Literal["mean", "attentive"] = "mean",
                 normalize_waveform: bool = True, spec_augment: bool = True, dropout: float = 0.1,
                 head_hidden: int | None = None, wave_augment: WaveAugmentation | None = None, **kwargs):
        super().__init__(**kwargs)
        wave_augment = WaveAugmentation.of(wave_augment)
        self._record_hparam("wave_augment", wave_augment.as_dict() if wave_augment else None)
        self.wave_augment = WaveAugment(wave_augment, self.sample_rate) if wave_augment and wave_augment.active else None
        if freeze_encoder and unfreeze_after_steps is not None:
            raise ZooUserError("freeze_encoder keeps the backbone frozen for the whole run; "
                               "unfreeze_after_steps needs freeze_encoder: false")
        if unfreeze_after_steps is not None and unfreeze_after_steps < 0:
            raise ZooUserError(f"unfreeze_after_steps must be >= 0, got {unfreeze_after_steps}")
        if pretrained is not None and self.sample_rate != 16000:
            raise ZooUserError(f"pretrained wav2vec2 checkpoints take 16 kHz audio, but the data is at "
                               f"{self.sample_rate} Hz: set data.sample_rate: 16000")
        warmup = unfreeze_after_steps is not None and unfreeze_after_steps > 0
        try:
            self.encoder = Wav2Vec2Encoder(
                pretrained, hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
                intermediate_size=intermediate_size, conv_dim=conv_dim, conv_kernel=conv_kernel,
                conv_stride=conv_stride, feat_extract_norm=feat_extract_norm,
                config_overrides=config_overrides, spec_augment=spec_augment,
                normalize_waveform=normalize_waveform, freeze_feature_encoder=freeze_feature_encoder,
                freeze_encoder=freeze_encoder or warmup, layer_weighting=weighted_layers,
                trainable_layers=trainable_layers, pooling=pooling)
        except ValueError as e:  # bad size / trainable_layers: the user's to fix
            raise ZooUserError(str(e)) from e
        self.freeze_encoder = freeze_encoder
        self.unfreeze_after_steps = unfreeze_after_steps if warmup else None
        self.encoder_lr = encoder_lr
        self.embed_dim = self.encoder.out_dim
        if head_hidden:
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.embed_dim, head_hidden), nn.ReLU(),
                                      nn.Dropout(dropout), nn.Linear(head_hidden, self.num_classes))
        else:
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.embed_dim, self.num_classes))

    def embed(self, batch: Batch) -> torch.Tensor:
        """Utterance embedding (B, embed_dim) (used by late fusion)."""
        wav, lengths = batch.waveforms, batch.lengths
        if self.wave_augment is not None and self.training:
            wav, lengths = self.wave_augment(wav, lengths)
        return self.encoder(wav, lengths)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.head(self.embed(batch))

    # -- optimisation ---------------------------------------------------------------------------
    def parameter_groups(self) -> list[dict]:
        """Head (+ pooling, layer weights) at the optimizer's lr; the backbone at ``encoder_lr``.

        Backbone parameters that only train after ``unfreeze_after_steps`` are in the optimizer from
        the start (their gradients stay None, so it skips them, until they are unfrozen)."""
        backbone = set(map(id, self.encoder.model.parameters()))
        head = [p for p in self.parameters() if id(p) not in backbone and p.requires_grad]
        groups: list[dict] = [{"params": head, "name": "head"}]
        if not self.freeze_encoder:
            enc = self.encoder.trainable_backbone_parameters()
            if enc:
                group: dict = {"params": enc, "name": "encoder"}
                if self.encoder_lr is not None:
                    group["lr"] = self.encoder_lr
                groups.append(group)
        return groups

    def checkpoint_hparams(self, hp: dict) -> dict:
        # self-contained: the checkpoint rebuilds the architecture from its recorded config (no
        # hub download or HF cache needed to load it); the weights come from the state dict
        if hp.get("pretrained") is not None:
            cfg = {k: v for k, v in self.encoder.model.config.to_dict().items()
                   if not k.startswith("_") and k not in ("architectures", "transformers_version", "torch_dtype")}
            hp["config_overrides"], hp["pretrained"] = cfg, None
        return hp

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        n = self.unfreeze_after_steps
        if n is not None and self.encoder.backbone_frozen and self.global_step >= n:
            self.encoder.set_backbone_frozen(False)
            log.info("step %d: wav2vec2 backbone unfrozen", self.global_step)
