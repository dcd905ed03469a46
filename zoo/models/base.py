"""EmotionModule: the one LightningModule base class. Loss, metrics, optimisation and predict
live here once; a model family only builds its encoder(s) and maps a Batch to logits.

The metrics (WA, UA, macro-F1; CCC and MAE per dimension) are defined in :mod:`zoo.models.metrics`,
the confusion-matrix figure in :mod:`zoo.models.plots`, checkpoint loading and model specs in
:mod:`zoo.models.loading`.

Longer than 500 lines because it is one class, the LightningModule every family inherits: its hooks
(setup, DDP, checkpoint, the steps) must be its methods, and what could move out already has.
"""
from __future__ import annotations

import logging
from typing import Literal, Sequence

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torchmetrics.classification import MulticlassConfusionMatrix

from ..data.batch import Batch
from ..data.utterance import DIMENSIONS
from ..nn.heads import Head
from ..ranges import Fraction, NonNegativeFloat, PositiveInt
from .metrics import corpus_scores, count_by_corpus, dimension_metrics, emotion_metrics
from .plots import save_confusion_matrix

#: per-speaker standardisation: a speaker needs this many utterances for statistics of their own
#: (else the global statistics stand in); one utterance would be utterance normalisation
MIN_SPEAKER_UTTERANCES = 2

log = logging.getLogger("zoo")


#: what a model can be trained to predict: the class, and the dimensional ratings
Target = Literal["category", "arousal", "valence", "dominance"]


class EmotionModule(L.LightningModule):
    """Shared base of every model in the zoo.

    Args:
        class_names: Class order of the outputs; linked from the DataModule (never typed twice).
        sample_rate: Audio rate the model expects; linked from the DataModule.
        optimizer: Optimizer (class path + init args), e.g. ``AdamW`` with ``lr``.
        lr_scheduler: Optional LR scheduler (class path + init args), stepped per epoch (e.g.
            ``ReduceLROnPlateau`` on val/UA). For warm-up and decay use ``lr_schedule`` instead.
        lr_schedule: LR schedule stepped per optimiser step (transformers' schedules):
            ``constant`` (after any warm-up), ``cosine`` or ``linear`` decay to 0 at the last step
            (``trainer.estimated_stepping_batches``).
        warmup_steps: Linear warm-up from 0: a number of optimiser steps, or below 1 a share of
            all steps (0.05 = the first 5%).
        label_smoothing: Cross-entropy label smoothing.
        class_weights: ``none``, ``balanced`` (inverse training-set frequency) or one weight per class.
        loss: ``ce`` (cross-entropy) or ``focal`` (softmax focal loss: easy examples weigh less).
        focal_gamma: Focusing parameter of the focal loss (0 = cross-entropy; 2 is the usual).
        mixup_alpha: Mixup of the utterance embeddings in training (Beta(alpha, alpha) weights,
            the loss mixed alike); 0 = off. For families with ``embed`` and ``head``.
        targets: What the model predicts: ``category`` (the class) and/or dimensions
            (``arousal``, ``valence``, ``dominance``; ``Batch.dims``, [0, 1]), e.g. ``[category]``,
            ``[arousal, valence]`` or ``[category, arousal, valence, dominance]``. Dimensions are
            regression outputs of the head trained with ``1 - CCC`` each; an utterance without a
            rating is masked out of that dimension's loss and metrics.
        target_weights: Multi-task weights of the losses by target name (e.g. ``{category: 1.0,
            arousal: 0.5}``); a target not named weighs 1.
    """

    #: the modalities the model consumes; the DataModule loads only these (:meth:`data_request`)
    inputs: tuple[str, ...] = ("audio",)
    #: the model predicts without a transcript (late fusion): a missing one is not a data problem
    text_optional: bool = False
    #: the split the training loop iterates (a late-fusion second stage: ``val``)
    fit_split: str = "train"

    def __init__(
        self,
        class_names: list[str],
        sample_rate: PositiveInt = 16000,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
        label_smoothing: Fraction = 0.0,
        class_weights: Literal["none", "balanced"] | list[NonNegativeFloat] = "none",
        loss: Literal["ce", "focal"] = "ce",
        focal_gamma: NonNegativeFloat = 2.0,
        mixup_alpha: NonNegativeFloat = 0.0,
        lr_schedule: Literal["constant", "cosine", "linear"] = "constant",
        warmup_steps: NonNegativeFloat = 0,
        targets: list[Target] = ["category"],
        target_weights: dict[str, NonNegativeFloat] | None = None,
    ):
        super().__init__()
        # collects the subclass's init args too; optimiser factories are not picklable hparams
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        from ..errors import ZooUserError

        self.targets, self.target_weights = _check_targets(targets, target_weights)
        #: the dimensions the model predicts, in the order of its outputs
        self.dim_names: list[str] = [t for t in self.targets if t != "category"]
        self.predicts_categories = "category" in self.targets
        if self.predicts_categories and not class_names:
            raise ValueError("class_names must list at least two classes")
        self.class_names = list(class_names or [])
        self.num_classes = len(self.class_names)
        #: class logits among the outputs (0: a dimension-only model; class_names then unused)
        self.num_logits = self.num_classes if self.predicts_categories else 0
        self.sample_rate = sample_rate
        self.optimizer_factory = optimizer
        self.scheduler_factory = lr_scheduler
        self.label_smoothing = label_smoothing
        self.class_weights = class_weights
        if isinstance(class_weights, (list, tuple)) and len(class_weights) != self.num_classes:
            raise ValueError(f"class_weights has {len(class_weights)} values for {self.num_classes} classes")
        self.register_buffer("loss_weight", None, persistent=False)
        if loss not in ("ce", "focal"):
            raise ZooUserError(f"loss must be ce or focal, got {loss!r}")
        if focal_gamma < 0 or mixup_alpha < 0 or warmup_steps < 0:
            raise ZooUserError("focal_gamma, mixup_alpha and warmup_steps must be >= 0")
        if lr_schedule not in ("constant", "cosine", "linear"):
            raise ZooUserError(f"lr_schedule must be constant, cosine or linear, got {lr_schedule!r}")
        if lr_scheduler is not None and (lr_schedule != "constant" or warmup_steps):
            raise ZooUserError("set either lr_scheduler (stepped per epoch) or lr_schedule / "
                               "warmup_steps (stepped per optimiser step), not both")
        self.loss_type, self.focal_gamma, self.mixup_alpha = loss, focal_gamma, mixup_alpha
        self.lr_schedule, self.warmup_steps = lr_schedule, warmup_steps
        if self.predicts_categories:
            metrics = emotion_metrics(self.num_classes)
            self.train_metrics = metrics.clone(prefix="train/")
            self.val_metrics = metrics.clone(prefix="val/")
            self.test_metrics = metrics.clone(prefix="test/")
            self.test_confusion = MulticlassConfusionMatrix(self.num_classes, ignore_index=-1)
        if self.dim_names:
            # dimension metrics hold no persistent state: checkpoints keep their keys
            self.train_dim_metrics = dimension_metrics(self.dim_names)
            self.val_dim_metrics = dimension_metrics(self.dim_names)
            self.test_dim_metrics = dimension_metrics(self.dim_names)
        # val/test loss as a metric: averaged over every rank's utterances under DDP, weighted by
        # batch size, as one process would (Lightning's sync_dist mean miscounts uneven shards)
        from torchmetrics import MeanMetric

        self.eval_loss = torch.nn.ModuleDict({"val": MeanMetric(), "test": MeanMetric()})
        # the training loss likewise: each logged step value is the batch-size-weighted mean over
        # every rank's utterances of that step (synced in forward), the epoch value over the
        # epoch's; NaN kept (a diverged run must show it)
        self.train_loss = MeanMetric(nan_strategy="disable", dist_sync_on_step=True)
        self._by_corpus: dict[str, dict] = {}  # stage -> corpus -> confusion counts (multi-corpus)

    # -- to be provided by a model family -------------------------------------------------------
    def embed(self, batch: Batch) -> torch.Tensor:
        """Utterance embedding (batch, embed_dim): what the head (and late fusion) reads."""
        raise NotImplementedError(f"{type(self).__name__} defines neither embed nor forward")

    def forward(self, batch: Batch) -> torch.Tensor:
        """The outputs (batch, num_logits + len(dim_names)): class logits first, then one value per
        dimension of ``targets`` (split them with :meth:`split_outputs`)."""
        return self.head(self.embed(batch))

    def make_head(self, in_dim: int, hidden: int | None = None, dropout: float = 0.0) -> Head:
        """The shared head (:class:`zoo.nn.heads.Head`) sized for this model's targets."""
        return Head(in_dim, self.num_logits, len(self.dim_names), hidden=hidden, dropout=dropout)

    def split_outputs(self, outputs: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(class logits, dimension predictions) of ``forward``'s outputs; None for a target the
        model does not have."""
        c = self.num_logits
        if outputs.shape[-1] != c + len(self.dim_names):  # a family whose head ignores targets
            from ..errors import ZooUserError

            raise ZooUserError(f"{type(self).__name__} gives {outputs.shape[-1]} outputs, but targets "
                               f"{self.targets} need {c + len(self.dim_names)}: build its head with "
                               "make_head (this family does not support these targets yet)")
        return (outputs[:, :c] if c else None), (outputs[:, c:] if self.dim_names else None)

    @property
    def monitor(self) -> str:
        """The validation metric a best checkpoint is chosen by: val/UA, or val/CCC_mean for a
        dimension-only model."""
        return "val/UA" if self.predicts_categories else "val/CCC_mean"

    # -- export ----------------------------------------------------------------------------------
    #: ``--format hf``: the family has a transformers counterpart (the SSL encoders)
    hf_exportable: bool = False

    def export_graph(self) -> torch.nn.Module:
        """The traceable ``(waveform (B, T), lengths (B,)) -> head outputs`` module ONNX export
        writes; a family that can be exported builds it, the others say why not."""
        from ..errors import ZooUserError

        inputs = tuple(self.inputs)
        if "text" in inputs:
            why = "it reads text (a tokenizer and a transcript)"
        elif {"egemaps", "compare"} & set(inputs):
            why = "its openSMILE features (eGeMAPS / ComParE) are computed outside PyTorch"
        else:
            why = f"it consumes {', '.join(inputs)}" if inputs != ("audio",) else "no export graph is defined for it"
        raise ZooUserError(f"--format onnx exports audio-only models (AudioCNN, SSLClassifier); "
                           f"{type(self).__name__} cannot be exported: {why}")

    # -- corpus statistics and checkpoint extras -------------------------------------------------
    def prepare_stats(self, data) -> None:
        """Corpus statistics the model needs before a stage (e.g. per-speaker normalisation),
        pulled from ``data``, the DataModule's read-only :class:`~zoo.data.contract.DataView`
        (``split(name)``, ``sample_rate``, ``cache_dir``); called at the start of fit, validate,
        test and predict."""

    #: the model standardises each speaker by that speaker's own clips (``normalize: speaker``)
    @property
    def normalizes_per_speaker(self) -> bool:
        return False

    def adapt_speakers(self, clips: dict[str, list]) -> None:
        """Unsupervised speaker adaptation at inference: per-speaker statistics from unlabelled
        clips (``{speaker: [mono float32 waveform at sample_rate, ...]}``), used for the items
        whose ``speaker`` is that name. Families with ``normalize: speaker`` implement it."""
        from ..errors import ZooUserError

        raise ZooUserError(f"{type(self).__name__} does not standardise per speaker "
                           "(normalize: speaker), so there is nothing to adapt")

    def data_request(self):
        """What this model asks of the DataModule (:class:`~zoo.data.contract.DataRequest`): its
        ``inputs``, ``text_optional``, ``fit_split`` and tokenizer."""
        from ..data.contract import DataRequest

        return DataRequest(modalities=tuple(self.inputs), text_optional=bool(self.text_optional),
                           fit_split=self.fit_split, tokenizer=getattr(self, "tokenizer", None))

    def _hand_data_request(self) -> None:
        """Give the trainer's DataModule this model's request (model -> data: the DataModule never
        reads the model). Called in ``setup`` (before the view, and again once the tokenizer
        exists) and when a checkpoint brings another tokenizer."""
        from ..data.datamodule import EmotionDataModule

        trainer = self._trainer
        dm = getattr(trainer, "datamodule", None) if trainer is not None else None
        if isinstance(dm, EmotionDataModule):
            dm.request(self.data_request())

    def data_view(self):
        """The trainer's DataModule as a read-only ``DataView``, or None (no trainer, or a
        DataModule that is not the zoo's). Data flows one way: the model reads it, the DataModule
        never calls the model."""
        trainer = self._trainer
        dm = getattr(trainer, "datamodule", None) if trainer is not None else None
        return dm.view() if dm is not None and hasattr(dm, "view") else None

    def _stats_hook(self) -> None:
        view = self.data_view()
        if view is not None:
            self.prepare_stats(view)

    def ddp_find_unused_parameters(self) -> bool:
        """Whether a training step may leave a parameter that requires grad without a gradient
        (a branch skipped for a batch, LayerDrop, a part trained only later). Under DDP such a model
        needs ``find_unused_parameters=True`` (DDP then marks those parameters ready itself instead
        of waiting for them, which raises "Expected to have finished reduction" at the next step);
        :meth:`setup` sets it on a DDP strategy the user did not set it on. It costs one walk of
        the autograd graph per step, so families whose every trainable parameter always gets a
        gradient leave it off."""
        return False

    def _configure_ddp(self) -> None:
        """Give a DDP strategy what this model needs, before the strategy wraps it (Lightning
        calls ``setup`` first). ``find_unused_parameters`` set by the user
        (``ddp_find_unused_parameters_false``, ``DDPStrategy(find_unused_parameters=...)``) is kept."""
        trainer = self._trainer
        if trainer is None or not self.ddp_find_unused_parameters():
            return
        from lightning.pytorch.strategies import DDPStrategy

        strategy = trainer.strategy
        if not isinstance(strategy, DDPStrategy):
            return
        kwargs = getattr(strategy, "_ddp_kwargs", None)  # the DistributedDataParallel(...) kwargs
        if not isinstance(kwargs, dict):  # a Lightning that keeps them elsewhere
            log.warning("%s may leave parameters unused under DDP: set strategy: "
                        "ddp_find_unused_parameters_true", type(self).__name__)
        elif "find_unused_parameters" not in kwargs:
            kwargs["find_unused_parameters"] = True
            log.debug("%s under DDP: find_unused_parameters=True", type(self).__name__)

    def frozen_modules(self) -> list[torch.nn.Module]:
        """Parts the model keeps fixed (frozen encoders): they stay in eval mode while it trains,
        so no dropout noise and no BatchNorm or running-statistics updates reach them."""
        return []

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.frozen_modules():
            m.eval()
        return self

    def on_fit_start(self):
        # Lightning restores each submodule's captured mode instead of calling train(); going
        # through train() keeps frozen_modules() in eval mode
        self.train()
        self._stats_hook()

    def on_validation_model_train(self) -> None:
        self.train()

    def on_validation_start(self):
        self._stats_hook()

    def on_test_start(self):
        self._stats_hook()

    def on_predict_start(self):
        self._stats_hook()

    def checkpoint_hparams(self, hparams: dict) -> dict:
        """The init args a checkpoint records. A family that loads pretrained weights by name
        replaces the name by the full architecture config here, so the checkpoint rebuilds the
        model without the hub (the weights come from the checkpoint itself)."""
        return hparams

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # the tokenizer travels inside the checkpoint (a from-scratch one exists nowhere else)
        tok = getattr(self, "tokenizer", None)
        if tok is not None and hasattr(tok, "state"):
            checkpoint["zoo_tokenizer"] = tok.state()
        if checkpoint.get("hyper_parameters") is not None:
            hp = self.checkpoint_hparams(dict(checkpoint["hyper_parameters"]))
            # what LightningCLI records, also for models trained outside it: load_module needs it
            hp.setdefault("_class_path", f"{type(self).__module__}.{type(self).__name__}")
            hp.setdefault("_instantiator", "lightning.pytorch.cli.instantiate_module")
            checkpoint["hyper_parameters"] = hp

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Lightning calls this before loading the weights: a class mismatch (a checkpoint tested
        # on another corpus without a label map) is a message here, not a tensor-shape error later
        saved = (checkpoint.get("hyper_parameters") or {}).get("class_names")
        if saved is not None and list(saved) != self.class_names:
            from ..errors import ZooUserError

            raise ZooUserError(
                f"the checkpoint was trained on the classes {list(saved)}, but the data gives "
                f"{self.class_names}. To test it on another corpus, put both on one class set: "
                f"train and test with the same label map (--data.label_map 4class, or a map file "
                f"whose classes are the checkpoint's; see docs/data.md, 'Label maps')")
        if "zoo_tokenizer" in checkpoint and hasattr(self, "set_tokenizer"):
            from ..data.text import TextTokenizer

            self.set_tokenizer(TextTokenizer.from_state(checkpoint["zoo_tokenizer"]))
            self._hand_data_request()  # restored after setup, before the loaders are built

    # -- training logic, once --------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        self._configure_ddp()
        # what to load first: the DataModule validates and splits for these modalities when the
        # view is asked for (Lightning ran its setup before this one, and builds the loaders after)
        self._hand_data_request()
        view = self.data_view()
        if view is not None and "text" in self.inputs and hasattr(self, "prepare_tokenizer"):
            # e.g. a from-scratch text model trains its sentencepiece vocabulary on the training
            # transcripts (never on val/test: that would leak their words into the vocabulary)
            self.prepare_tokenizer(view.texts("train"))
            self._hand_data_request()  # now with the tokenizer the items are encoded with
        if stage == "fit" and self.mixup_alpha > 0 and (type(self).embed is EmotionModule.embed
                                                        or not hasattr(self, "head")):
            from ..errors import ZooUserError

            raise ZooUserError(f"mixup_alpha: {type(self).__name__} has no embed/head to mix between")
        if stage == "fit" and getattr(self, "wave_augment", None) is not None:
            self.wave_augment.check()  # a noise folder without audio fails now, not mid-epoch
        if self.dim_names and view is not None:
            self._check_dims_in_data(view)
        if self.class_weights == "balanced":
            if view is None:
                from ..errors import ZooUserError

                raise ZooUserError("class_weights: balanced needs the training split's class counts: "
                                   "train through the zoo's DataModule (or give one weight per class)")
            counts = torch.tensor(view.train_class_counts, dtype=torch.float)
            w = counts.sum() / (len(counts) * counts.clamp(min=1))
            self.loss_weight = w.to(self.device)
        elif isinstance(self.class_weights, (list, tuple)):
            self.loss_weight = torch.tensor(self.class_weights, dtype=torch.float, device=self.device)

    def _check_dims_in_data(self, view) -> None:
        """Each dimension of ``targets`` must be rated somewhere in the data, or its loss would be
        silently 0 and its metrics NaN."""
        from ..errors import ZooUserError

        utts = view.split("all")
        missing = [d for d in self.dim_names if not any(d in u.dims for u in utts)]
        if missing:
            raise ZooUserError(
                f"model.targets lists {', '.join(missing)}, but no utterance of the corpus has "
                f"{'that rating' if len(missing) == 1 else 'those ratings'} (a corpus with dimensions, or "
                f"manifest columns arousal,valence,dominance in [0, 1]); drop them from targets")

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The weighted sum of the category loss and each dimension's ``1 - CCC``."""
        logits, dims = self.split_outputs(outputs)
        total = outputs.new_zeros((), dtype=torch.float32)
        if logits is not None:
            total = total + self.target_weights.get("category", 1.0) * self.category_loss(logits, batch)
        if dims is not None:
            per_dim = self.dims_loss(dims, batch)
            w = torch.tensor([self.target_weights.get(d, 1.0) for d in self.dim_names], device=per_dim.device)
            total = total + (w * per_dim).sum()
        return total

    def dims_loss(self, dims: torch.Tensor, batch: Batch) -> torch.Tensor:
        """``1 - CCC`` of each predicted dimension over the batch's rated utterances, (D,)."""
        from ..errors import ZooUserError
        from ..nn.losses import ccc_loss

        if batch.dims is None:
            raise ZooUserError(f"model.targets lists {', '.join(self.dim_names)}, but the batches carry no "
                               "dimensional ratings: the corpus has none")
        cols = [DIMENSIONS.index(d) for d in self.dim_names]
        return ccc_loss(dims, batch.dims[:, cols].to(dims.device), batch.dims_mask[:, cols].to(dims.device))

    def category_loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        weight = self.loss_weight.to(logits.device) if self.loss_weight is not None else None
        # the annotator distribution is the target when there is one
        target = batch.soft.to(logits.dtype) if batch.soft is not None else batch.labels
        if batch.soft is None and not bool((target >= 0).any()):  # no labelled utterance in the batch
            return logits.sum() * 0.0
        if self.loss_type == "focal":
            from ..nn.losses import focal_loss

            return focal_loss(logits, target, weight=weight, gamma=self.focal_gamma,
                              label_smoothing=self.label_smoothing, ignore_index=-1)
        if batch.soft is not None:
            return F.cross_entropy(logits, target, weight=weight, label_smoothing=self.label_smoothing)
        return F.cross_entropy(logits, target, weight=weight, ignore_index=-1,
                               label_smoothing=self.label_smoothing)

    def _mixup_step(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of mixed embeddings and the loss mixed with the same weight."""
        import dataclasses

        from ..nn.augment import mixup

        mixed, perm, lam = mixup(self.embed(batch), self.mixup_alpha)
        logits = self.head(mixed)
        other = dataclasses.replace(
            batch, labels=batch.labels[perm], soft=batch.soft[perm] if batch.soft is not None else None,
            dims=batch.dims[perm] if batch.dims is not None else None,
            dims_mask=batch.dims_mask[perm] if batch.dims_mask is not None else None)
        return logits, lam * self.loss(logits, batch) + (1.0 - lam) * self.loss(logits, other)

    def _shared_step(self, batch: Batch | None, stage: str):
        if batch is None or len(batch) == 0:  # every clip of the batch failed to load
            trainer = self._trainer
            if stage == "train" and trainer is not None and trainer.world_size > 1:
                # skipping would leave the other DDP ranks waiting in their gradient all-reduce
                # forever: a zero loss that reaches every trainable parameter keeps them in step
                return sum((p.sum() * 0.0 for p in self.parameters() if p.requires_grad),
                           torch.zeros((), device=self.device))
            return None
        if stage == "train" and self.mixup_alpha > 0 and len(batch) > 1:
            outputs, loss = self._mixup_step(batch)
        else:
            outputs = self(batch)
            loss = self.loss(outputs, batch)
        logits, dims = self.split_outputs(outputs)
        bs = len(batch)
        if stage in self.eval_loss:
            self.eval_loss[stage].update(loss.detach(), weight=bs)
            self.log(f"{stage}/loss", self.eval_loss[stage], batch_size=bs, prog_bar=stage != "test",
                     on_step=False, on_epoch=True)
        else:  # forward, not update: Lightning logs the step value the forward computed (synced)
            # the loss once per utterance rather than weight=bs: torchmetrics 1.9 drops the weights
            # under nan_strategy="disable" (weighs every call 1)
            self.train_loss(loss.detach().expand(bs))
            self.log(f"{stage}/loss", self.train_loss, batch_size=bs, prog_bar=True, on_step=True, on_epoch=True)
        if logits is not None:
            metrics = getattr(self, f"{stage}_metrics")
            metrics.update(logits.detach(), batch.labels)
            self.log_dict(metrics, batch_size=bs, prog_bar=stage == "val", on_step=False, on_epoch=True)
            if stage == "test":
                self.test_confusion.update(logits.detach(), batch.labels)
            if stage != "train" and batch.corpora is not None:  # multi-corpus: per-corpus metrics too
                self._count_by_corpus(stage, logits.detach().argmax(-1).cpu(), batch.labels.cpu(), batch.corpora)
        if dims is not None:
            self._update_dim_metrics(stage, dims.detach(), batch)
        return loss

    def _update_dim_metrics(self, stage: str, dims: torch.Tensor, batch: Batch) -> None:
        mets = getattr(self, f"{stage}_dim_metrics")
        for j, d in enumerate(self.dim_names):
            col = DIMENSIONS.index(d)
            rated = batch.dims_mask[:, col].to(dims.device)
            if rated.any():  # only rated utterances count
                p, t = dims[rated, j].float(), batch.dims[:, col].to(dims.device)[rated].float()
                mets[f"CCC_{d}"].update(p, t)
                mets[f"MAE_{d}"].update(p, t)
        self.log_dict({f"{stage}/{k}": m for k, m in mets.items()}, batch_size=len(batch),
                      prog_bar=stage == "val" and not self.predicts_categories, on_step=False, on_epoch=True)

    def _count_by_corpus(self, stage: str, preds: torch.Tensor, labels: torch.Tensor,
                         corpora: Sequence[str]) -> None:
        """A confusion matrix per corpus (counts: summed across ranks at the epoch's end)."""
        count_by_corpus(self._by_corpus.setdefault(stage, {}), self.num_classes, preds, labels, corpora)

    def _log_by_corpus(self, stage: str) -> None:
        """``{stage}/UA/<corpus>`` and ``{stage}/WA/<corpus>`` for a multi-corpus DataModule
        (:func:`zoo.models.metrics.corpus_scores`)."""
        scores = corpus_scores(self._by_corpus.pop(stage, {}), self.num_classes, self._trainer, self.device)
        for name, (ua, wa) in scores.items():
            self.log(f"{stage}/UA/{name}", ua, on_epoch=True)
            self.log(f"{stage}/WA/{name}", wa, on_epoch=True)

    def on_validation_epoch_end(self) -> None:
        self._log_by_corpus("val")

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx):
        return self._shared_step(batch, "test")

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """``probs`` (B, num_logits) and ``preds`` (empty for a dimension-only model), and ``dims``
        (B, D) when the model predicts dimensions."""
        if batch is None:
            out = {"ids": [], "probs": torch.empty(0, self.num_logits), "preds": torch.empty(0, dtype=torch.long),
                   "labels": torch.empty(0, dtype=torch.long)}
            if self.dim_names:
                out["dims"] = torch.empty(0, len(self.dim_names))
            return out
        logits, dims = self.split_outputs(self(batch).float())
        probs = logits.softmax(-1) if logits is not None else torch.empty(len(batch), 0)
        out = {"ids": list(batch.ids), "probs": probs.cpu(),
               "preds": probs.argmax(-1).cpu() if logits is not None else torch.empty(0, dtype=torch.long),
               "labels": batch.labels.cpu()}
        if dims is not None:
            out["dims"] = dims.cpu()
        return out

    def on_test_epoch_end(self) -> None:
        self._log_by_corpus("test")
        if not self.predicts_categories:
            return
        cm = self.test_confusion.compute().cpu()
        self.test_confusion.reset()
        if self.trainer.is_global_zero:
            save_confusion_matrix(cm, self.class_names, self.trainer, stage="test")

    # -- optimisation ---------------------------------------------------------------------------
    def parameter_groups(self) -> list[dict] | Sequence[torch.nn.Parameter]:
        """Trainable parameters; a family may return groups with their own lr."""
        return [p for p in self.parameters() if p.requires_grad]

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameter_groups())
        if self.lr_schedule != "constant" or self.warmup_steps:
            return {"optimizer": optimizer,
                    "lr_scheduler": {"scheduler": self._step_schedule(optimizer), "interval": "step"}}
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": self.monitor, "interval": "epoch"}}

    def _step_schedule(self, optimizer):
        """Warm-up then constant / cosine / linear decay over the run's optimiser steps."""
        import math

        import transformers

        from ..errors import ZooUserError

        trainer = self._trainer  # None outside a Trainer (self.trainer would raise)
        total = trainer.estimated_stepping_batches if trainer is not None else math.inf
        if not math.isfinite(total):
            raise ZooUserError("lr_schedule / warmup_steps need a known run length: set "
                               "trainer.max_epochs or trainer.max_steps")
        total = max(1, int(total))
        warm = int(round(self.warmup_steps * total)) if self.warmup_steps < 1 else int(self.warmup_steps)
        if self.lr_schedule == "cosine":
            return transformers.get_cosine_schedule_with_warmup(optimizer, warm, total)
        if self.lr_schedule == "linear":
            return transformers.get_linear_schedule_with_warmup(optimizer, warm, total)
        return transformers.get_constant_schedule_with_warmup(optimizer, warm)

    def _record_hparam(self, name: str, value) -> None:
        """Record an init arg in plain types (a checkpoint loads with ``weights_only``)."""
        self.hparams[name] = value
        if name in getattr(self, "_hparams_initial", {}):
            self._hparams_initial[name] = value


def _check_targets(targets, weights) -> tuple[list[str], dict[str, float]]:
    from ..errors import ZooUserError

    targets = list(targets or [])
    known = ("category", *DIMENSIONS)
    bad = [t for t in targets if t not in known]
    if not targets or bad or len(set(targets)) != len(targets):
        raise ZooUserError(f"targets must name each of {', '.join(known)} at most once (at least one), "
                           f"got {targets}")
    weights = dict(weights or {})
    extra = sorted(set(weights) - set(targets))
    if extra or any(not isinstance(v, (int, float)) or v < 0 for v in weights.values()):
        raise ZooUserError(f"target_weights: one weight >= 0 per name in targets {targets}, got {weights}")
    return targets, {k: float(v) for k, v in weights.items()}
