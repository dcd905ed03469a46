"""Late fusion (the seed deck's architecture): an audio model and a text model each produce an
utterance embedding; a fusion block turns the pair into logits.

Two-stage recipe: train an audio-only and a text-only model, then point ``audio_checkpoint`` /
``text_checkpoint`` at their checkpoints and set ``freeze_encoders: true``: only the fusion
classifier trains, and by default on the validation split. The branches have (nearly) memorised
their training utterances, so their outputs there say nothing about how far to trust each on new
speakers; on held-out utterances they do (stacking's rule: fit the combiner on out-of-sample
predictions).

Cross-fitted (``cross_fit: K``, with ``fusion: probs``): the training split's speakers (or
sessions, or conversations) are dealt into K folds, each branch's own recipe is trained again on
K-1 of them and predicts the held-out one (:mod:`zoo.crossfit`, run by ``python -m zoo fit``
before training), and the second stage is chosen on those honest outputs of every training
utterance among the best branch alone, an equal average, learned weights and a small stacker,
preferring the simpler within noise (:mod:`zoo.models.stage2`). The deployed branches stay the
checkpoints, trained on the whole training split.
"""
from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Literal

import torch
from torch import nn

from ..data.batch import Batch
from ..errors import ZooUserError
from ..nn.fusion import FUSIONS, DecisionFusion
from ..ranges import Fraction, NonNegativeInt, PositiveInt
from .audio import AudioCNN
from .base import EmotionModule
from .loading import load_module, module_spec
from .fusion_branch import ModelSpec, build_branch
from .stage2 import CANDIDATES
from .text import TextBERT, TextBranchMixin

log = logging.getLogger("zoo")


class LateFusion(TextBranchMixin, EmotionModule):
    """Audio model embedding + text model embedding -> fusion -> classifier.

    Args:
        audio_branch: The audio model (class_path + init_args), e.g. AudioCNN, EGeMAPSMLP or
            SSLClassifier (any wav2vec2 / HuBERT / WavLM / data2vec / Whisper encoder); its
            options: ``--model.init_args.audio_branch.help CLASS``. Ignored when audio_checkpoint
            is set.
        text_branch: The text model (class_path + init_args), e.g. TextBERT or TextTfidf; its
            options: ``--model.init_args.text_branch.help CLASS``. Ignored when text_checkpoint
            is set.
        audio_checkpoint: A zoo checkpoint of a trained audio model: its encoder is used.
        text_checkpoint: A zoo checkpoint of a trained text model: its encoder and tokenizer are used.
        freeze_encoders: Keep both branches fixed and train only the fusion classifier (stage 2;
            with a decision-level fusion only the two mixing weights train).
        fusion: ``concat`` (concatenation -> MLP), ``gated`` (learned per-dimension gate),
            ``attention`` (the two embeddings attend to each other); decision level, on the
            branches' own classifiers: ``logits`` (learned weighted average of their logits) or
            ``probs`` (learned weighted average of their class probabilities).
        fusion_hidden: Width of the fusion MLP.
        dropout: Dropout in the fusion block.
        modality_dropout: Probability, per training utterance, of hiding its transcript, so the
            model learns to predict from audio alone when no transcript is given.
        fit_on: Which split the training loop iterates: ``train``, ``val`` (held-out outputs of
            the branches: the right data for a second stage on frozen, trained branches), or
            ``auto`` (``val`` for a decision-level fusion whose branches both come frozen from
            checkpoints, else ``train``). Fitting on val makes val metrics in-sample: compare
            runs on test.
        calibrate: Decision-level fusions: fit a temperature per branch (temperature scaling) on
            the data the fusion is fitted on, before their outputs are mixed.
        cross_fit: Folds (K) of the training split's speakers, sessions or conversations for
            out-of-fold branch outputs (stacking): each branch's recipe is trained again on K-1
            folds and predicts the held-out one, and the second stage is picked on those outputs
            of every training utterance (``select``). Needs ``fusion: probs`` and both
            checkpoints (the deployed branches, trained on the whole training split);
            ``python -m zoo fit`` runs the folds first, into ``<run>/crossfit/``. 0: off (the
            stage is fitted on ``fit_on``).
        audio_recipe: The fit config that trained ``audio_checkpoint`` (the branch's recipe,
            rerun per fold); null: the ``config.yaml`` of the checkpoint's run folder
            (``<run>/checkpoints/x.ckpt`` -> ``<run>/config.yaml``).
        text_recipe: Likewise for ``text_checkpoint``.
        select: With ``cross_fit``: ``auto`` picks by out-of-fold UA, preferring the simpler
            within one standard error of the best (``audio`` or ``text`` alone, then
            ``average``, ``weights``, ``stacker``); a name forces that candidate. A checkpoint
            records the one picked.
        stacker_min_per_class: ``auto`` considers the stacker (a logistic regression on both
            branches' calibrated log-probabilities) only when every class has at least this
            many out-of-fold utterances with a transcript.
        stage2: What the cross-fitted second stage picked and why (written by fit, kept in the
            checkpoint and shown on model cards); leave it unset.
    """

    inputs = ("audio", "text")
    #: an utterance without a transcript is predicted from audio (not a data problem)
    text_optional = True

    def __init__(self, audio_branch: ModelSpec = AudioCNN, text_branch: ModelSpec = TextBERT,
                 audio_checkpoint: str | None = None, text_checkpoint: str | None = None,
                 freeze_encoders: bool = False,
                 fusion: Literal["concat", "gated", "attention", "logits", "probs"] = "concat",
                 fusion_hidden: PositiveInt = 128, dropout: Fraction = 0.2, modality_dropout: Fraction = 0.1,
                 fit_on: Literal["auto", "train", "val"] = "auto", calibrate: bool = True,
                 cross_fit: NonNegativeInt = 0, audio_recipe: str | None = None, text_recipe: str | None = None,
                 select: Literal["auto", "audio", "text", "average", "weights", "stacker"] = "auto",
                 stacker_min_per_class: PositiveInt = 50, stage2: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        if cross_fit < 0 or cross_fit == 1:
            raise ZooUserError(f"cross_fit must be 0 (off) or at least 2 folds, got {cross_fit}")
        if select != "auto" and select not in CANDIDATES:
            raise ZooUserError(f"select must be auto or one of {', '.join(CANDIDATES)}, got {select!r}")
        self.cross_fit, self.select, self.stacker_min_per_class = cross_fit, select, stacker_min_per_class
        self.recipes = {"audio": (audio_recipe, audio_checkpoint), "text": (text_recipe, text_checkpoint)}
        self.stage2 = stage2  # set once the second stage is fitted (or loaded from a checkpoint)
        if cross_fit and stage2 is None:
            if fusion != "probs":
                raise ZooUserError(f"cross_fit picks among averages of the branches' probabilities: set "
                                   f"fusion: probs (got {fusion!r})")
            if not (audio_checkpoint and text_checkpoint):
                raise ZooUserError("cross_fit needs both branches as checkpoints (audio_checkpoint and "
                                   "text_checkpoint: the deployed branches, trained on the whole training "
                                   "split); their recipes are rerun per fold")
            freeze_encoders = True  # the deployed branches are the checkpoints, as they are
        self.audio = self._branch(audio_branch, audio_checkpoint, "audio")
        self.text = self._branch(text_branch, text_checkpoint, "text")
        if "text" not in self.text.inputs or "text" in self.audio.inputs:
            raise ZooUserError(f"late fusion needs an audio model and a text model, got "
                               f"{type(self.audio).__name__} and {type(self.text).__name__}")
        self.inputs = tuple(dict.fromkeys((*self.audio.inputs, "text")))
        self.fusion_kind = fusion
        self.freeze_encoders = freeze_encoders
        self.modality_dropout = modality_dropout
        self.decision_level = fusion in ("logits", "probs")
        if fit_on not in ("auto", "train", "val"):
            raise ZooUserError(f"fit_on must be auto, train or val, got {fit_on!r}")
        self.fit_on = fit_on
        if fit_on == "auto":
            # an MLP fusion has too many parameters for a validation split (measured: concat on
            # val 0.29 test UA, on train 0.46); the decision-level ones have four
            held_out = freeze_encoders and audio_checkpoint and text_checkpoint and self.decision_level
            self.fit_on = "val" if held_out else "train"
        if self.cross_fit:  # the loop only validates (the stage is fitted before it); val may be empty
            self.fit_on = "train"
        self.calibrate = calibrate and self.decision_level
        self._branch_logits = None
        if self.decision_level and self.dim_names:
            raise ZooUserError(f"fusion {fusion!r} mixes the branches' class probabilities; with dimensional "
                               "targets use a feature-level fusion (concat, gated or attention)")
        if self.decision_level:
            self.fusion = DecisionFusion(fusion)
            self.fusion.log_temperature.requires_grad_(self.calibrate)
        else:
            self.fusion = FUSIONS[fusion](self.audio.embed_dim, self.text.embed_dim, fusion_hidden,
                                          self.num_logits + len(self.dim_names), dropout)
            for b in (self.audio, self.text):  # unused: no gradient (DDP would complain)
                b.head.requires_grad_(False)
        self.missing_text = nn.Parameter(torch.zeros(self.text.embed_dim))
        if self.decision_level:  # only the feature-level fusions read it: no gradient (DDP would complain)
            self.missing_text.requires_grad_(False)
        if freeze_encoders:
            self.audio.requires_grad_(False)
            self.text.requires_grad_(False)
        if self.cross_fit:  # fitted once on the out-of-fold outputs (zoo.crossfit), never by gradient
            self.stacker = nn.Linear(2 * self.num_logits, self.num_logits)
            nn.init.zeros_(self.stacker.weight)
            nn.init.zeros_(self.stacker.bias)
            self.requires_grad_(False)

    def _branch(self, spec: ModelSpec | dict, checkpoint: str | None, kind: str) -> EmotionModule:
        if checkpoint:
            model = load_module(checkpoint)
            if list(model.class_names) != self.class_names:
                raise ZooUserError(
                    f"{kind}_checkpoint {checkpoint} predicts {model.class_names}, but the data has "
                    f"{self.class_names}: train both branches on the same label set")
            if "audio" in model.inputs and model.sample_rate != self.sample_rate:
                raise ZooUserError(f"{kind}_checkpoint {checkpoint} expects {model.sample_rate} Hz audio, "
                                   f"the data gives {self.sample_rate} Hz")
            log.info("late fusion: %s branch %s loaded from %s", kind, type(model).__name__, checkpoint)
            if not isinstance(spec, dict):  # hyper-parameters hold plain values, not a class
                self._record_hparam(f"{kind}_branch", module_spec(model))
            return model
        return build_branch(self, f"{kind}_branch", spec)

    # -- the cross-fitted second stage ------------------------------------------------------------
    def branch_recipe(self, kind: str) -> str:
        """The fit config that trained the ``kind`` (audio / text) checkpoint: ``<kind>_recipe``, or
        the ``config.yaml`` of the checkpoint's run folder."""
        from pathlib import Path

        recipe, ckpt = self.recipes[kind]
        path = Path(recipe) if recipe else (Path(ckpt).resolve().parent.parent / "config.yaml" if ckpt else None)
        if path is None or not path.is_file():
            raise ZooUserError(
                f"cross_fit reruns the {kind} branch's recipe per fold, but "
                + (f"{kind}_recipe {recipe} does not exist" if recipe else
                   f"no config.yaml was found beside its checkpoint's run ({path}); give the fit config "
                   f"that trained it as {kind}_recipe"))
        return str(path)

    def fit_stage2(self, la: torch.Tensor, lt: torch.Tensor, present: torch.Tensor, labels: torch.Tensor,
                   folds: torch.Tensor, unit: str = "groups") -> None:
        """Pick and fit the second stage on out-of-fold branch outputs (logits (N, C) of the audio
        and text branches, ``present``: the row has a transcript, ``folds``: the fold each row was
        held out in), as :func:`zoo.models.stage2.select` says; logged and recorded in the
        hyper-parameters (so in the checkpoint and on a model card)."""
        from .stage2 import select

        sel = select(la, lt, present, labels, folds, self.num_logits, choice=self.select,
                     stacker_min_per_class=self.stacker_min_per_class, unit=unit)
        with torch.no_grad():
            self.fusion.log_temperature.copy_(sel.params.log_t)
            self.fusion.weights.copy_(sel.params.weights)
            if sel.params.stacker_weight is not None:
                self.stacker.weight.copy_(sel.params.stacker_weight)
                self.stacker.bias.copy_(sel.params.stacker_bias)
        self.select, self.stage2 = sel.choice, sel.report
        self._record_hparam("select", sel.choice)
        self._record_hparam("stage2", sel.report)
        log.info("late fusion, cross-fitted second stage: %s", sel.reason)

    def configure_optimizers(self):
        if self.cross_fit:  # nothing learns by gradient: the stage was fitted on the out-of-fold outputs
            return None
        return super().configure_optimizers()

    def training_step(self, batch, batch_idx):
        if self.cross_fit:
            return None
        return super().training_step(batch, batch_idx)

    def on_train_epoch_end(self) -> None:
        if self.cross_fit:  # one epoch: its validation scores the fitted stage and checkpoints it
            self.trainer.should_stop = True

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.cross_fit and self.stage2 is None:
            raise ZooUserError(
                "cross_fit: the second stage is fitted on out-of-fold branch outputs before training; "
                "python -m zoo fit makes them (or call zoo.crossfit.cross_fit(model, datamodule, trainer) "
                "before trainer.fit)")
        super().setup(stage)

    @property
    def fit_split(self) -> str:
        """The split the DataModule's training loader serves this model."""
        return self.fit_on

    def frozen_modules(self) -> list[nn.Module]:
        return [self.audio, self.text] if self.freeze_encoders else []

    def parameter_groups(self) -> list[dict] | list[nn.Parameter]:
        """Branches trained with the fusion keep their own parameter groups (an SSL backbone or a
        text encoder at its ``encoder_lr``; an SSL backbone that unfreezes later is in its group
        from the start); everything else (fusion, the other branch parameters) at the
        optimizer's lr."""
        if self.freeze_encoders:
            return super().parameter_groups()
        own = []
        for kind, branch in (("audio", self.audio), ("text", self.text)):
            groups = branch.parameter_groups()
            if groups and isinstance(groups[0], dict):
                own += [{**g, "name": f"{kind}_{g.get('name', i)}"} for i, g in enumerate(groups) if g["params"]]
        taken = {id(p) for g in own for p in g["params"]}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in taken]
        return [{"params": rest, "name": "fusion"}] + own

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        if not self.freeze_encoders:  # a branch's unfreeze_after_steps
            self.audio.on_train_batch_start(batch, batch_idx)
            self.text.on_train_batch_start(batch, batch_idx)

    def ddp_find_unused_parameters(self) -> bool:
        # trained branches: a batch without transcripts (or all hidden by modality_dropout) skips
        # the text branch, and an SSL audio branch may drop layers (LayerDrop). Frozen branches:
        # every trainable parameter (fusion, temperatures, missing_text) gets a gradient each step
        return not self.freeze_encoders

    def prepare_stats(self, data) -> None:
        self.audio.prepare_stats(data)
        self.text.prepare_stats(data)

    @property
    def normalizes_per_speaker(self) -> bool:
        """The audio branch standardises each speaker by their own clips (ComParE / eGeMAPS with
        ``normalize: speaker``): the fusion adapts to a speaker through it."""
        return self.audio.normalizes_per_speaker

    def adapt_speakers(self, clips: dict[str, list]) -> None:
        self.audio.adapt_speakers(clips)

    @staticmethod
    def has_text(batch: Batch) -> torch.Tensor:
        """(B,) bool: which utterances come with a transcript."""
        if batch.input_ids is None:
            return torch.zeros(len(batch), dtype=torch.bool)
        if batch.texts is not None:
            return torch.tensor([bool(t and t.strip()) for t in batch.texts])
        return batch.attention_mask.sum(1) > 2  # more than [CLS] [SEP]

    def forward(self, batch: Batch) -> torch.Tensor:
        if self.cross_fit:
            return self._stage2_forward(batch)
        frozen = torch.no_grad() if self.freeze_encoders else nullcontext()
        with frozen:
            ea = self.audio.embed(batch)
        present = self.has_text(batch).to(ea.device)
        if self.training and self.modality_dropout > 0:
            present &= torch.rand(len(present), device=ea.device) >= self.modality_dropout
        if present.any():
            with frozen:
                et = self.text.embed(batch)
        else:
            et = ea.new_zeros(len(batch), self.text.embed_dim)
        if self.decision_level:
            la, lt = self.audio.head(ea), self.text.head(et)
            if self.training and self.calibrate:
                self._branch_logits = (la, lt, present)
            t = self.fusion.temperatures.detach().to(la.dtype)
            return torch.where(present[:, None], self.fusion(la, lt), la / t[0])
        et = torch.where(present[:, None], et, self.missing_text.to(et.dtype).expand_as(et))
        return self.fusion(ea, et)

    def _stage2_forward(self, batch: Batch) -> torch.Tensor:
        """The cross-fitted stage: the picked candidate's log-probabilities (a valid logit vector)."""
        from .stage2 import combine

        if self.select == "auto":
            raise ZooUserError("cross_fit: this model's second stage has not been fitted yet (fit_stage2)")
        with torch.no_grad():
            la = self.audio.head(self.audio.embed(batch))
            present = self.has_text(batch).to(la.device)
            lt = self.text.head(self.text.embed(batch)) if present.any() and self.select != "audio" \
                else torch.zeros_like(la)
        return combine(self.select, la, lt, present, self.fusion.log_temperature, self.fusion.weights,
                       self.stacker.weight, self.stacker.bias)

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        loss = super().loss(logits, batch)
        if self._branch_logits is not None:
            la, lt, present = self._branch_logits
            self._branch_logits = None
            loss = loss + self.fusion.calibration_loss(la, lt, batch.labels.to(la.device), present)
        return loss

    def checkpoint_hparams(self, hp: dict) -> dict:
        # self-contained: the branches are rebuilt from their specs, weights come from this file
        hp["audio_branch"], hp["audio_checkpoint"] = module_spec(self.audio), None
        hp["text_branch"], hp["text_checkpoint"] = module_spec(self.text), None
        hp["fit_on"] = self.fit_on  # "auto" would resolve differently without the checkpoints
        if self.cross_fit:  # the recipes were for fitting; the fitted stage is in the file
            hp["audio_recipe"] = hp["text_recipe"] = None
            hp["select"], hp["stage2"] = self.select, self.stage2
        return hp
