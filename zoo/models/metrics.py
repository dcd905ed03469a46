"""The metrics every zoo model logs, as the SER literature defines them:

- WA (weighted accuracy) = overall accuracy, every utterance counts once (micro average);
- UA (unweighted accuracy) = mean of the per-class recalls over the classes present in the
  references (balanced accuracy), every class counts once; a class absent from a split (one EmoDB
  actor has no Disgust) is left out, not counted as recall 0 because it was predicted;
- macro-F1 = mean of the per-class F1 scores.
They are logged as ``{stage}/WA``, ``{stage}/UA``, ``{stage}/macro_F1`` (stage = train, val, test).
A model with dimensional targets (``targets: [arousal, valence]``) also logs, per dimension,
``{stage}/CCC_<dim>`` (Lin's concordance correlation coefficient) and ``{stage}/MAE_<dim>``, and
``{stage}/CCC_mean`` over its dimensions; torchmetrics syncs all of them across DDP ranks.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MulticlassRecall
from torchmetrics.regression import ConcordanceCorrCoef, MeanAbsoluteError


class UnweightedAccuracy(MulticlassRecall):
    """UA: the mean recall over the classes that occur in the references (scikit-learn's
    ``balanced_accuracy_score``). torchmetrics' macro recall keeps a class with no references
    but some predictions as recall 0, which lowers UA on any split that lacks a class (a
    per-speaker fold); per-class counts are synced under DDP as by the parent."""

    def __init__(self, num_classes: int, **kw):
        super().__init__(num_classes=num_classes, average="none", **kw)

    def compute(self) -> torch.Tensor:
        tp, fp, tn, fn = self._final_state()
        support = tp + fn
        present = support > 0
        if not bool(present.any()):
            return torch.tensor(0.0, device=tp.device)
        return (tp[present].float() / support[present].float()).mean()


def emotion_metrics(num_classes: int) -> MetricCollection:
    """WA, UA and macro-F1 as SER papers define them (labels of -1 are ignored)."""
    kw = dict(num_classes=num_classes, ignore_index=-1)
    return MetricCollection({
        "WA": MulticlassAccuracy(average="micro", **kw),
        "UA": UnweightedAccuracy(**kw),
        "macro_F1": MulticlassF1Score(average="macro", **kw),
    })


def dimension_metrics(dims: Sequence[str]) -> torch.nn.ModuleDict:
    """``CCC_<dim>`` and ``MAE_<dim>`` per dimension, and ``CCC_mean`` (their mean, computed from
    the per-dimension metrics, so it is always their exact average)."""
    out = {}
    for d in dims:
        out[f"CCC_{d}"] = ConcordanceCorrCoef()
        out[f"MAE_{d}"] = MeanAbsoluteError()
    total = None
    for d in dims:
        total = out[f"CCC_{d}"] if total is None else total + out[f"CCC_{d}"]
    out["CCC_mean"] = total / len(dims)  # a CompositionalMetric: computed from the children's states
    return torch.nn.ModuleDict(out)


def count_by_corpus(store: dict[str, torch.Tensor], num_classes: int, preds: torch.Tensor,
                    labels: torch.Tensor, corpora: Sequence[str]) -> None:
    """Add a batch to ``store``, a confusion matrix (counts) per corpus of a multi-corpus
    DataModule; utterances without a label (-1) are left out."""
    for name in set(corpora):
        sel = torch.tensor([c == name for c in corpora]) & (labels >= 0)
        cm = store.setdefault(name, torch.zeros(num_classes, num_classes, dtype=torch.long))
        y, p = labels[sel], preds[sel]
        cm.index_put_((y, p), torch.ones_like(y), accumulate=True)


def corpus_scores(store: dict[str, torch.Tensor], num_classes: int, trainer,
                  device: torch.device) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(UA, WA) per corpus, by name, from the counts of :func:`count_by_corpus` (UA: the mean
    recall over the classes present in that corpus's split); a corpus without utterances is left
    out. Under DDP the counts of every rank are summed first, so each utterance counts once
    wherever it ran (every rank must call this)."""
    world = trainer.world_size if trainer is not None else 1
    names = set(store)
    if world > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        every: list = [None] * world  # a rank may have seen none of a corpus's utterances
        torch.distributed.all_gather_object(every, sorted(names))
        names = set().union(*every)
    out = {}
    for name in sorted(names):
        cm = store.get(name, torch.zeros(num_classes, num_classes, dtype=torch.long))
        if world > 1:
            cm = trainer.strategy.reduce(cm.to(device), reduce_op="sum").cpu()
        cm = cm.double()
        total, seen = cm.sum(), cm.sum(1) > 0
        if total == 0:
            continue
        recalls = cm.diagonal()[seen] / cm.sum(1)[seen]
        out[name] = recalls.mean().float(), (cm.diagonal().sum() / total).float()
    return out
