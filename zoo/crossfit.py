"""Cross-fitting: out-of-fold branch outputs for the late-fusion second stage (stacking).

``LateFusion(cross_fit=K)`` learns how to combine its two frozen branches from honest outputs of
every training utterance, not from the validation split alone. Before it trains (``python -m zoo
fit`` calls :func:`cross_fit` from the CLI's ``before_fit``):

1. the training split's speakers (else conversations, else sessions) are dealt into K folds of
   whole groups (:func:`group_folds`);
2. for each branch and each fold, the branch's own recipe (the fit config that trained its
   checkpoint: model, optimiser, epochs, callbacks, data options) is run again by the zoo's own
   CLI code on the training split without that fold, validated on the same validation split as
   the deployed branch (its best epoch by val/UA, its calibration), and predicts the held-out fold;
3. the model picks and fits its second stage on those out-of-fold outputs
   (:meth:`zoo.models.LateFusion.fit_stage2`, :mod:`zoo.models.stage2`).

The deployed branches stay the checkpoints (trained on the whole training split). Each fold run
writes its config, metrics and predictions under ``<run>/crossfit/<branch>/fold<k>/`` (its
checkpoints are deleted once it has predicted), and ``<run>/crossfit/out_of_fold.csv`` holds every
training utterance's out-of-fold probabilities.

This sits beside the CLI (it builds models from fit configs with it), above the models layer.
"""
from __future__ import annotations

import csv
import dataclasses
import logging
import shutil
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from .data.corpora.base import Corpus
from .errors import ZooUserError

log = logging.getLogger("zoo")

#: the fit config's keys that belong to the ``fit`` subcommand only (not to a parser without one)
_FIT_ONLY = ("ckpt_path", "weights_only")
#: the recipe's DataModule options that the fold's DataModule keeps (the rest: corpus, split,
#: labels and filters are the outer DataModule's, already applied)
_DATA_OPTIONS = ("label_mode", "seed", "sample_rate", "max_seconds", "min_seconds", "batch_size",
                 "eval_batch_size", "bucketing", "balanced_sampling", "num_workers", "pin_memory",
                 "prefetch_factor", "cache_dir", "on_error", "validate_audio", "modalities", "without_words")


def group_folds(keys: list[str], k: int) -> list[int]:
    """The fold (0..k-1) of each item: whole groups (same key) dealt largest first, each to the
    fold with the fewest items so far (ties: the lower fold), in a fixed order: the folds depend
    on the keys alone."""
    sizes = Counter(keys)
    fill = [0] * k
    fold_of: dict[str, int] = {}
    for key in sorted(sizes, key=lambda g: (-sizes[g], str(g))):
        f = min(range(k), key=lambda i: (fill[i], i))
        fold_of[key] = f
        fill[f] += sizes[key]
    return [fold_of[g] for g in keys]


def _groups(utts) -> tuple[list[str], str]:
    for attr, unit in (("speaker", "speakers"), ("group", "conversations"), ("session", "sessions")):
        if all(getattr(u, attr) for u in utts):
            return [str(getattr(u, attr)) for u in utts], unit
    log.warning("cross_fit: the training split names no speakers, conversations or sessions: the folds "
                "are made of single utterances (a speaker may then be in two folds)")
    return [u.id for u in utts], "utterances"


class FoldCorpus(Corpus):  # no name: not registered (a corpus in memory, for one fold's run)
    """The utterances of one fold's run, each with its split set."""

    def __init__(self, utterances: list):
        self._utts = list(utterances)

    def load(self, problems):
        return list(self._utts)

    def options(self) -> dict:  # plain values for hyper-parameters and checkpoints
        return {"utterances": len(self._utts)}

    @property
    def title(self) -> str:
        return "cross-fitting fold"


def _fold_utterances(train, folds, k, val, class_names) -> list:
    """The outer split's utterances as the fold's run sees them: train without fold k, the same
    validation split, fold k as its test split; labels as resolved outside (votes become the
    distribution they gave, so no label policy runs twice)."""
    from .data.labels import soft_label

    def as_split(u, split):
        soft = None
        if u.votes or u.soft:
            soft = dict(zip(class_names, soft_label(u, class_names, ignore_unknown=True)))
        return dataclasses.replace(u, split=split, votes=(), intensities=(), soft=soft)

    return ([as_split(u, "train") for u, f in zip(train, folds) if f != k] + [as_split(u, "val") for u in val]
            + [as_split(u, "test") for u, f in zip(train, folds) if f == k])


def _recipe(path: str, out: Path, class_names: list[str]) -> dict:
    import yaml

    try:
        cfg = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ZooUserError(f"cross_fit: cannot read the branch recipe {path}: {e}") from None
    if not isinstance(cfg, dict) or "model" not in cfg:
        raise ZooUserError(f"cross_fit: {path} is not a fit config (it has no model section)")
    for key in _FIT_ONLY:
        cfg.pop(key, None)
    trainer = dict(cfg.get("trainer") or {})
    trainer.update(default_root_dir=str(out), enable_progress_bar=False, enable_model_summary=False,
                   logger={"class_path": "lightning.pytorch.loggers.CSVLogger",
                           "init_args": {"save_dir": str(out.parent), "name": "", "version": out.name}})
    cfg["trainer"] = trainer
    data = cfg.get("data")
    if isinstance(data, dict) and isinstance(data.get("init_args"), dict):  # the fold's own DataModule
        data["init_args"]["class_names"] = list(class_names)                # serves the data: no reading
    for key in ("checkpoint", "last_checkpoint"):
        if isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], "dirpath": None}
    cfg["checkpoint"] = {**(cfg.get("checkpoint") or {}), "filename": "best"}
    cfg["predictions"] = {"path": None}
    cfg["test_after_fit"] = False
    return cfg


def _run_fold(recipe: str, utts: list, class_names: list[str], out: Path) -> dict[str, list[float]]:
    """Train the recipe on the fold's train split (validated on its val split) and predict its test
    split: utterance id -> class probabilities."""
    import torch

    from .cli import build_cli
    from .data.datamodule import EmotionDataModule
    from .data.splits import SplitOptions

    with warnings.catch_warnings():  # "args and sys.argv both given": the outer fit's argv, by design
        warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within Python.*")
        cli = build_cli(_recipe(recipe, out, class_names), run=False)
    recipe_dm = cli.datamodule
    hp = dict(getattr(recipe_dm, "hparams", {}) or {})
    options = {k: hp[k] for k in _DATA_OPTIONS if k in hp}
    dm = EmotionDataModule(corpus=FoldCorpus(utts), class_names=class_names,
                           # no validation split (a final model): val_fraction 0 says it is meant
                           split=SplitOptions(use_split_column=True, val_fraction=0.1 if any(
                               u.split == "val" for u in utts) else 0.0), predict_split="test",
                           check_leakage=False, **options)
    if list(cli.model.class_names) != list(class_names):
        raise ZooUserError(f"cross_fit: the recipe {recipe} builds a model for {cli.model.class_names}, "
                           f"the data has {class_names}")
    trainer = cli.trainer
    trainer.fit(cli.model, datamodule=dm)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    batches = trainer.predict(cli.model, datamodule=dm, ckpt_path=best or None)
    probs: dict[str, list[float]] = {}
    for b in batches or []:
        for uid, p in zip(b["ids"], b["probs"]):
            probs[uid] = [float(x) for x in torch.as_tensor(p)]
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # its held-out predictions are all it was for
    return probs


def cross_fit(model, datamodule, trainer=None, workdir: str | Path | None = None) -> None:
    """Out-of-fold outputs of both branches over the training split, then ``model.fit_stage2``.
    ``workdir``: where the fold runs go (default: ``<trainer's run folder>/crossfit``)."""
    import torch

    if not getattr(model, "cross_fit", 0) or model.stage2 is not None:
        return
    if trainer is not None and getattr(trainer, "world_size", 1) > 1:
        raise ZooUserError("cross_fit runs its folds in one process: fit the second stage with "
                           "--trainer.devices 1 (it is small; only the branches were big)")
    if workdir is None:
        base = Path(trainer.log_dir) if trainer is not None and trainer.log_dir else Path("runs")
        workdir = base / "crossfit"
    workdir = Path(workdir)
    dm = datamodule
    dm.prepare_data()
    dm.request(model.data_request())
    dm.setup("fit")
    train, val = list(dm.split("train")), list(dm.split("val"))
    keys, unit = _groups(train)
    k = min(model.cross_fit, len(set(keys)))
    if k < 2:
        raise ZooUserError(f"cross_fit needs at least two {unit} in the training split to make folds of")
    if k < model.cross_fit:
        log.info("cross_fit: %d %s in the training split, so %d folds (one each)", k, unit, k)
    folds = group_folds(keys, k)
    class_names = list(dm.class_names)
    recipes = {kind: model.branch_recipe(kind) for kind in ("audio", "text")}
    log.info("cross_fit: %d folds of the training split's %s (%s utterances each); rerunning %s and %s per fold",
             k, unit, "/".join(str(Counter(folds)[i]) for i in range(k)), recipes["audio"], recipes["text"])
    oof: dict[str, dict[str, list[float]]] = {"audio": {}, "text": {}}
    for kind in ("audio", "text"):
        for f in range(k):
            log.info("cross_fit: %s branch, fold %d of %d", kind, f + 1, k)
            got = _run_fold(recipes[kind], _fold_utterances(train, folds, f, val, class_names), class_names,
                            workdir / kind / f"fold{f}")
            oof[kind].update(got)
    rows = [i for i, u in enumerate(train) if u.id in oof["audio"]]
    if len(rows) < len(train):
        log.warning("cross_fit: %d training utterance(s) got no audio-branch prediction (unreadable?); "
                    "the second stage is fitted without them", len(train) - len(rows))
    index = {c: i for i, c in enumerate(class_names)}
    eps = 1e-12
    la = torch.tensor([oof["audio"][train[i].id] for i in rows]).clamp_min(eps).log()
    present = torch.tensor([train[i].id in oof["text"] for i in rows])
    lt = torch.tensor([oof["text"].get(train[i].id, [1.0 / len(class_names)] * len(class_names)) for i in rows])
    lt = lt.clamp_min(eps).log()
    labels = torch.tensor([index[train[i].label] for i in rows])
    fold_t = torch.tensor([folds[i] for i in rows])
    _write_oof(workdir / "out_of_fold.csv", [train[i] for i in rows], [folds[i] for i in rows], oof, class_names)
    model.fit_stage2(la, lt, present, labels, fold_t, unit=unit)


def _write_oof(path: Path, utts, folds, oof: dict[str, Any], class_names: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "speaker", "label", "fold", *(f"{b}_{c}" for b in ("audio", "text") for c in class_names)])
        for u, fold in zip(utts, folds):
            text = oof["text"].get(u.id)
            w.writerow([u.id, u.speaker or "", u.label, fold,
                        *(f"{x:.6f}" for x in oof["audio"][u.id]),
                        *((f"{x:.6f}" for x in text) if text else [""] * len(class_names))])
