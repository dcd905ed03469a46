"""One classifier over every transformers speech encoder of the SSL family table
(:mod:`zoo.nn.ssl`: wav2vec2 / XLS-R, HuBERT, WavLM, data2vec-audio, UniSpeech, UniSpeech-SAT,
Whisper's encoder) -> pooling -> classifier."""
from __future__ import annotations

import logging
from typing import Any, Literal

import torch

from ..data.batch import Batch
from ..errors import ZooUserError
from ..ranges import Fraction, NonNegativeInt, PositiveFloat, PositiveInt
from ..nn.augment import WaveAugment, WaveAugmentation
from ..nn.ssl import ModelType, SSLEncoder, family_for
from .base import EmotionModule

log = logging.getLogger("zoo")

#: config keys that describe a saved file, not the architecture
_NOT_ARCHITECTURE = ("architectures", "transformers_version", "torch_dtype", "dtype")


def _checkpoint_normalises(pretrained: str, model_type: str) -> bool:
    """``do_normalize`` of the checkpoint's preprocessor_config.json; without one: the family's
    default (True for the wav2vec2 layout, what wav2vec2 / XLS-R / data2vec-audio were trained
    on; False for Whisper, which never reads one: log-mel only)."""
    default = family_for(model_type).normalize_waveform_default
    if not default:
        return False
    try:
        from transformers import AutoFeatureExtractor

        from ..hub import from_pretrained

        fe = from_pretrained(AutoFeatureExtractor.from_pretrained, pretrained, "the feature extractor")
    except Exception:  # no preprocessor_config.json: the type's default
        return default
    return bool(getattr(fe, "do_normalize", default))


class SSLClassifier(EmotionModule):
    """Fine-tuning, LoRA or SUPERB-style probing of a self-supervised speech encoder on raw 16 kHz audio.

    The encoder is any transformers checkpoint whose ``model_type`` is in the SSL family table
    (:data:`zoo.nn.ssl.MODEL_TYPES`, listed in docs/models.md): ``wav2vec2`` also runs XLS-R and
    its Korean fine-tunes, ``whisper`` Whisper's encoder on log-mel features (see
    :mod:`zoo.nn.ssl.whisper` for how short clips are handled). Every type is padding-exact: a
    clip gets the same logits alone and in a padded batch.

    Freezing modes: ``freeze_encoder`` + ``weighted_layers`` (SUPERB: frozen upstream, learnable
    layer weights) or + ``layer`` (one chosen hidden layer); ``trainable_layers`` (top-k
    fine-tuning); full fine-tuning with ``encoder_lr``; ``unfreeze_after_steps`` (head warm-up);
    ``lora_rank`` (LoRA adapters via ``peft``, base weights frozen).

    Args:
        pretrained: The encoder: a Hugging Face hub id (``microsoft/wavlm-base-plus``,
            ``facebook/hubert-base-ls960``, ``openai/whisper-small``, ``facebook/data2vec-audio-base``,
            ``facebook/wav2vec2-xls-r-300m``, ``kresnik/wav2vec2-large-xlsr-korean``, ...) or a local
            directory written by ``save_pretrained``; its ``config.json`` names the architecture.
            ``null`` trains a ``model_type`` model of the size below from scratch.
        model_type: Architecture when ``pretrained`` is null: one of the table's types (the CLI's
            choices; a checkpoint names its own).
        hidden_size: Transformer width (only when ``pretrained`` is null).
        num_layers: Transformer layers (only when ``pretrained`` is null).
        num_heads: Attention heads (only when ``pretrained`` is null).
        intermediate_size: Feed-forward width (only when ``pretrained`` is null).
        conv_dim: Channels of the CNN feature encoder layers (only when ``pretrained`` is null;
            default seven layers of 512; not Whisper).
        conv_kernel: Kernel sizes of the CNN layers (only when ``pretrained`` is null; default
            ``[10, 3, 3, 3, 3, 2, 2]``).
        conv_stride: Strides of the CNN layers (only when ``pretrained`` is null; default
            ``[5, 2, 2, 2, 2, 2, 2]``, 20 ms frames).
        feat_extract_norm: ``group`` (wav2vec2-base style) or ``layer`` (large-lv60 / XLS-R style)
            CNN normalisation (only when ``pretrained`` is null; data2vec-audio is always ``layer``).
        num_mel_bins: Whisper's log-mel channels (only when ``pretrained`` is null).
        config_overrides: Extra transformers config fields, applied to the pretrained config too,
            e.g. ``{layerdrop: 0.0, mask_time_prob: 0.05, hidden_dropout: 0.1}``.
        freeze_feature_encoder: Keep the CNN feature encoder (Whisper: its two convolutions)
            frozen (standard for fine-tuning).
        freeze_encoder: Freeze the whole backbone for the whole run (probing); only the pooling,
            layer weights and head train.
        weighted_layers: SUPERB protocol: a softmax-weighted sum of all hidden states (transformer
            input + each layer's output) with learnable weights replaces the last layer; usually
            with ``freeze_encoder: true``.
        layer: Use one hidden state instead of the last (0 = transformer input, num_layers = the
            last layer's output); e.g. a middle layer of a frozen model. Not with ``weighted_layers``.
        trainable_layers: Fine-tune only the top k transformer layers (the rest of the backbone
            stays frozen); null trains the whole backbone (minus the CNN when
            ``freeze_feature_encoder``).
        unfreeze_after_steps: Keep the backbone frozen for the first N optimizer steps (the head
            warms up), then train it as the options above say.
        encoder_lr: Learning rate of the backbone parameters (LoRA: the adapters; the head uses
            the optimizer's lr); null: the optimizer's lr for all.
        pooling: ``mean`` or ``attentive`` pooling over the valid frames.
        normalize_waveform: Standardise each clip to zero mean, unit variance over its own samples
            (``do_normalize`` of the checkpoint's feature extractor: wav2vec2-base, XLS-R expect it);
            null: what the checkpoint's ``preprocessor_config.json`` says (without one: true,
            Whisper false). The resolved value is recorded in the checkpoint.
        whisper_context: Whisper only: ``clip`` runs the encoder on each clip's own frames
            (padding masked out; cheap, but the attention never sees the silence Whisper was
            trained with after a short clip), ``30s`` pads every clip to Whisper's 30 s window
            (the exact training input; 30 s of compute per clip).
        lora_rank: Rank of LoRA adapters (``peft``) in the transformer layers; the encoder's own
            weights stay frozen and the adapters train (with ``encoder_lr``). null: no LoRA.
        lora_alpha: LoRA scaling numerator (the update is scaled by alpha / rank).
        lora_dropout: Dropout on the LoRA branch's input.
        lora_target_modules: Names of the linear layers to adapt; null: the type's default,
            ``q_proj`` and ``v_proj`` (WavLM: ``intermediate_dense`` and ``output_dense``, because
            its attention bypasses the q/k/v modules).
        spec_augment: SpecAugment-style time masking of the CNN features (the checkpoint's
            ``mask_time_prob``) while the backbone is fine-tuned; never in eval; not Whisper.
        dropout: Dropout before the classifier (and after its hidden layer).
        head_hidden: Width of a hidden ReLU layer in the head; null: a single linear layer.
        wave_augment: Waveform augmentation of the training batches (speed perturbation, noise,
            gain, reverberation; :class:`zoo.nn.augment.WaveAugmentation`); null = none.
        embedding_cache: Cache the encoder's outputs on disk while it is frozen (SUPERB probing,
            the warm-up of ``unfreeze_after_steps``, a frozen late-fusion branch), so later epochs
            and runs skip it: ``true`` (``$ZOO_CACHE_DIR/embeddings``, default
            ``~/.cache/zoo/embeddings``), a directory, or ``false``. Keyed by the encoder's weights,
            config and options and by the exact input samples (:mod:`zoo.nn.cache`). Used inside
            Lightning runs only (not by ``zoo.load``/``infer``), never on randomly augmented
            training batches, never while any encoder weight trains.
    """

    inputs = ("audio",)

    def __init__(self, pretrained: str | None = "facebook/wav2vec2-base", model_type: ModelType = "wav2vec2",
                 hidden_size: PositiveInt = 768, num_layers: PositiveInt = 12, num_heads: PositiveInt = 12,
                 intermediate_size: PositiveInt = 3072, conv_dim: list[PositiveInt] | None = None,
                 conv_kernel: list[PositiveInt] | None = None, conv_stride: list[PositiveInt] | None = None, feat_extract_norm: Literal["group", "layer"] = "group",
                 num_mel_bins: PositiveInt = 80, config_overrides: dict[str, Any] | None = None,
                 freeze_feature_encoder: bool = True, freeze_encoder: bool = False, weighted_layers: bool = False,
                 layer: NonNegativeInt | None = None, trainable_layers: NonNegativeInt | None = None,
                 unfreeze_after_steps: NonNegativeInt | None = None, encoder_lr: PositiveFloat | None = None,
                 pooling: Literal["mean", "attentive"] = "mean", normalize_waveform: bool | None = None,
                 whisper_context: Literal["clip", "30s"] = "clip", lora_rank: PositiveInt | None = None,
                 lora_alpha: PositiveFloat = 16.0, lora_dropout: Fraction = 0.0, lora_target_modules: list[str] | None = None,
                 spec_augment: bool = True, dropout: Fraction = 0.1, head_hidden: PositiveInt | None = None,
                 wave_augment: WaveAugmentation | None = None, embedding_cache: bool | str = True, **kwargs):
        super().__init__(**kwargs)
        wave_augment = WaveAugmentation.of(wave_augment)
        self._record_hparam("wave_augment", wave_augment.as_dict() if wave_augment else None)
        self.wave_augment = WaveAugment(wave_augment, self.sample_rate) if wave_augment and wave_augment.active else None
        if freeze_encoder and unfreeze_after_steps is not None:
            raise ZooUserError("freeze_encoder keeps the backbone frozen for the whole run; "
                               "unfreeze_after_steps needs freeze_encoder: false")
        if unfreeze_after_steps is not None and unfreeze_after_steps < 0:
            raise ZooUserError(f"unfreeze_after_steps must be >= 0, got {unfreeze_after_steps}")
        if lora_rank is not None and (freeze_encoder or trainable_layers is not None):
            raise ZooUserError("lora_rank trains adapters in every layer on a frozen encoder: it takes neither "
                               "freeze_encoder: true (nothing would train) nor trainable_layers")
        if (pretrained is not None or family_for(model_type).fixed_sample_rate) and self.sample_rate != 16000:
            raise ZooUserError(f"pretrained speech encoders take 16 kHz audio, but the data is at "
                               f"{self.sample_rate} Hz: set data.sample_rate: 16000")
        warmup = unfreeze_after_steps is not None and unfreeze_after_steps > 0
        try:
            self.encoder = SSLEncoder(
                pretrained, model_type=model_type, hidden_size=hidden_size, num_layers=num_layers,
                num_heads=num_heads, intermediate_size=intermediate_size, conv_dim=conv_dim, conv_kernel=conv_kernel,
                conv_stride=conv_stride, feat_extract_norm=feat_extract_norm, num_mel_bins=num_mel_bins,
                config_overrides=config_overrides, spec_augment=spec_augment, normalize_waveform=True,
                freeze_feature_encoder=freeze_feature_encoder, freeze_encoder=freeze_encoder or warmup,
                layer_weighting=weighted_layers, layer=layer, trainable_layers=trainable_layers, pooling=pooling,
                lora_rank=lora_rank, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                lora_target_modules=lora_target_modules, whisper_context=whisper_context)
        except ValueError as e:  # bad size / trainable_layers / layer: the user's to fix
            raise ZooUserError(str(e)) from e
        if warmup:
            # the warm-up freezes the backbone by running it without autograd, not by clearing
            # requires_grad: DDP builds its gradient reducer from the parameters that require grad
            # when it wraps the model (before step 0), so parameters switched on later would train
            # on each rank's own gradients, never synced, and the ranks' weights would drift apart
            self.encoder.set_backbone_frozen(True, keep_requires_grad=True)
        if normalize_waveform is None:
            normalize_waveform = (_checkpoint_normalises(pretrained, self.encoder.model_type) if pretrained
                                  else self.encoder.family.normalize_waveform_default)
            self._record_hparam("normalize_waveform", normalize_waveform)
        self.encoder.normalize_waveform = normalize_waveform
        if embedding_cache is True:
            from ..nn.cache import default_embedding_cache_dir

            self.encoder.cache_dir = str(default_embedding_cache_dir())
        elif embedding_cache:
            self.encoder.cache_dir = str(embedding_cache)
        self.freeze_encoder = freeze_encoder
        self.unfreeze_after_steps = unfreeze_after_steps if warmup else None
        self.encoder_lr = encoder_lr
        self.embed_dim = self.encoder.out_dim
        self.head = self.make_head(self.embed_dim, hidden=head_hidden, dropout=dropout)

    def _input(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """The (augmented, in training) waveforms and lengths, and whether the cache may serve them."""
        wav, lengths = batch.waveforms, batch.lengths
        augmented = self.wave_augment is not None and self.training
        if augmented:
            wav, lengths = self.wave_augment(wav, lengths)
        # the cache serves Lightning runs (epochs repeat; a fusion model's trainer reaches its
        # branches too); a random augmentation never repeats
        return wav, lengths, self._trainer is not None and not augmented

    def embed(self, batch: Batch) -> torch.Tensor:
        """Utterance embedding (B, embed_dim) (used by late fusion)."""
        wav, lengths, cache = self._input(batch)
        return self.encoder(wav, lengths, cache=cache)

    def frames(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(frames (B, T', embed_dim), frame_lengths (B,))``: the frame sequence before pooling
        (used by early fusion); padded frames are zero (:meth:`zoo.nn.ssl.SSLEncoder.sequence`)."""
        wav, lengths, cache = self._input(batch)
        return self.encoder.sequence(wav, lengths, cache=cache)

    # -- export ----------------------------------------------------------------------------------
    hf_exportable = True  # the family says for which types (SSLType.hf_classifier)

    def export_graph(self):
        """ONNX: the encoder and head as they are (traceable, padding masked), where the family
        can be traced (not Whisper)."""
        return self.encoder.export_graph(self.head)

    # -- optimisation ---------------------------------------------------------------------------
    def parameter_groups(self) -> list[dict]:
        """Head (+ pooling, layer weights) at the optimizer's lr; the backbone (or its LoRA
        adapters) at ``encoder_lr``.

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

    def ddp_find_unused_parameters(self) -> bool:
        # a backbone that trains (now or after unfreeze_after_steps) leaves parameters without a
        # gradient in some steps: the warm-up's, LayerDrop's dropped layers, SpecAugment's mask
        # embedding when it is off or nothing is masked, layers above a chosen `layer`
        return not self.freeze_encoder

    def checkpoint_hparams(self, hp: dict) -> dict:
        # self-contained: the checkpoint rebuilds the architecture from its recorded config (no
        # hub download or HF cache needed to load it); the weights (LoRA adapters included) come
        # from the state dict
        if hp.get("pretrained") is not None:
            cfg = {k: v for k, v in self.encoder.model.config.to_dict().items()
                   if not k.startswith("_") and k not in _NOT_ARCHITECTURE}
            hp["config_overrides"], hp["pretrained"] = cfg, None
            hp["model_type"] = self.encoder.model_type
        return hp

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # also called by a fusion model holding this one as its branch (the trainer reaches both)
        n = self.unfreeze_after_steps
        if n is not None and self.encoder.backbone_frozen and self.global_step >= n:
            self.encoder.set_backbone_frozen(False)
            log.info("step %d: %s backbone unfrozen", self.global_step, self.encoder.model_type)
