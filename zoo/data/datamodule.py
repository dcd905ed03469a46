"""EmotionDataModule: the one LightningDataModule every model of the zoo uses.

A corpus (``zoo.data.corpora``, passed as ``corpus=``) only says how to read its files; labels,
validation, splits, audio loading, batching and leakage reports are shared here.

The model hands the DataModule a :class:`~zoo.data.contract.DataRequest` and reads the splits
through a :class:`~zoo.data.contract.DataView` (the contract: :mod:`zoo.data.contract`).
Lightning runs the DataModule's ``setup`` before the model's, so under a trainer the work that
depends on the request (validating the requested modalities, splitting) waits until the request
has come (the model's ``setup`` asks for the view right after handing it) or a loader is asked for;
without a trainer ``setup`` does it at once, for ``modalities`` or audio and text.

Longer than 500 lines because it is one class whose setup stages (validate, split, leave out,
filter, report) and loaders share its state; what needs no state lives in contract, dataset,
labelling, probe and report.
"""
from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from functools import partial
from typing import Literal

import lightning as L
import torch
from torch.utils.data import DataLoader

from ..errors import CorpusError, OnError, ProblemLog, ZooUserError
from ..ranges import ClosedUnitInterval, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Seed
from .audio import AudioLoader, default_cache_dir, file_digest
from .batch import BucketBatchSampler, LengthSortedSampler, collate
from .contract import FROM_AUDIO, DataRequest, DataView, Modality
from .corpora.base import Corpus
from .dataset import EmotionDataset
from .labelling import labelled_utterances, problem_source
from .labels import LabelMode, TieBreak, meets_agreement
from .probe import probe_audio
from .report import setup_report
from .rows import read_exclude_list
from .splits import SplitOptions, assign_splits, split_fingerprint
from .utterance import Utterance

log = logging.getLogger("zoo")

__all__ = ["DataRequest", "DataView", "EmotionDataModule", "EmotionDataset"]


class EmotionDataModule(L.LightningDataModule):
    """Shared data pipeline: corpus -> label policy -> validation -> splits -> batches.

    Args:
        corpus: The corpus (``zoo.data.corpora``): ``{class_path: zoo.data.corpora.RAVDESS,
            init_args: {root: ...}}``; its options: ``--data.init_args.corpus.help RAVDESS``.
        class_names: Class order (indices follow it). None: the corpus's own list, or the sorted
            labels found. Rows with other labels are problems (see on_error).
        label_map: Map every corpus label onto a shared class set: a shipped map by name
            (``4class``, ``aihub7``: ``configs/labels/``) or a YAML file; unmapped labels are
            dropped and counted per label. null: the corpus's own labels (a multi-corpus corpus
            brings its own map).
        label_mode: ``majority`` (hard label from the annotators' votes) or ``soft`` (train on the
            annotator distribution with soft-target cross-entropy; metrics use the hard label).
        tie_break: How a tied vote becomes a label: ``intensity`` (higher summed intensity, still
            tied -> dropped), ``first`` (first annotator among the tied, the seed deck's rule),
            ``drop``. Every tie is counted in the setup report.
        min_agreement: Drop rows where fewer than this share of annotators agree (0.6 = 3 of 5).
        min_agreement_scope: Where ``min_agreement`` applies: ``all`` (the rows are dropped before
            the split, so the test set changes with it) or ``train`` (train and val only; the
            split is made on every labelled row, so runs with different ``min_agreement`` are
            tested on the same utterances and their metrics compare).
        split: How train / val / test are made (``mode``, ``group_by``, ``val_fraction``, ...;
            see ``zoo.data.splits.SplitOptions``), e.g. ``split: {mode: kfold, fold: 2}``.
        seed: Seed of the split and of the training batch order.
        sample_rate: Rate the models consume; audio is resampled to it (and cached).
        max_seconds: Crop longer clips (random crop for training, centre crop for evaluation);
            > 0, or null for no crop (0 and negative values are refused).
        batch_size: Training batch size.
        eval_batch_size: Batch size for val/test/predict (null: batch_size).
        bucketing: Batch clips of similar length together for training (less padding).
        balanced_sampling: Draw training utterances with replacement, each class equally often
            in expectation (an epoch keeps its size); with or instead of ``class_weights``.
        num_workers: DataLoader worker processes (kept alive across epochs).
        pin_memory: Page-locked batches for fast host-to-GPU copies; null: on when the trainer
            runs on CUDA, off otherwise.
        prefetch_factor: Batches each worker loads ahead (null: PyTorch's default, 2).
        cache_dir: Disk cache of resampled audio; ``auto`` = $ZOO_CACHE_DIR or ~/.cache/zoo/audio;
            null disables it.
        on_error: ``raise`` lists every bad row/file and stops before training; ``skip`` drops
            them and reports how many and why.
        validate_audio: Open every audio file at setup (header only) to find missing, unreadable
            or empty files before the first epoch.
        min_seconds: Refuse clips shorter than this (problems: reported, or skipped and counted
            with on_error: skip); the default 0.02 s (under one 25 ms analysis window) catches
            truncated files and stray clicks.
        modalities: What to load (audio, text, egemaps, compare); null = what the model requests
            (:class:`DataRequest`, handed over in the model's setup).
        predict_split: Which split ``predict`` runs on (``all`` = the whole corpus).
        test_split: Which split ``test`` runs on: ``test``, or ``all`` (the whole corpus: a
            cross-corpus test of a checkpoint trained elsewhere).
        check_leakage: At setup, log how many test transcripts also occur in train and how many
            audio files are byte-identical across splits.
        exclude: A text file of utterances to leave out, one id or audio path a line (``#``
            comments allowed): what ``python -m zoo check --exclude-list FILE`` writes. The rows
            left out are counted in the setup report.
        without_words: Utterances with no words in their transcript (none, empty, or only
            nonverbal tags such as KEMDy's ``l/`` or ``(웃음)``), for a model that needs the
            transcript (text-only, early fusion): ``leave_out`` (they are valid rows: the split is
            made with them, then they are left out of every split and counted in the setup
            report) or ``problem`` (a bad row: listed and refused, or skipped with
            ``on_error: skip``). Late fusion keeps them either way and predicts them from the audio.
    """

    def __init__(
        self,
        corpus: Corpus,
        class_names: list[str] | None = None,
        label_map: str | None = None,
        label_mode: LabelMode = "majority",
        tie_break: TieBreak = "intensity",
        min_agreement: ClosedUnitInterval = 0.0,
        min_agreement_scope: Literal["all", "train"] = "all",
        split: SplitOptions = SplitOptions(),
        seed: Seed = 0,
        sample_rate: PositiveInt = 16000,
        max_seconds: PositiveFloat | None = 10.0,
        min_seconds: NonNegativeFloat = 0.02,
        batch_size: PositiveInt = 16,
        eval_batch_size: PositiveInt | None = None,
        bucketing: bool = True,
        balanced_sampling: bool = False,
        num_workers: NonNegativeInt = 0,
        pin_memory: bool | None = None,
        prefetch_factor: PositiveInt | None = None,
        cache_dir: str | None = "auto",
        on_error: OnError = "raise",
        validate_audio: bool = True,
        modalities: list[Modality] | None = None,
        predict_split: Literal["train", "val", "test", "all"] = "test",
        check_leakage: bool = True,
        test_split: Literal["test", "all"] = "test",
        exclude: str | None = None,
        without_words: Literal["leave_out", "problem"] = "leave_out",
    ):
        super().__init__()
        if not isinstance(corpus, Corpus):
            raise ZooUserError(f"corpus must be a zoo.data.corpora.Corpus (e.g. "
                               f"zoo.data.corpora.RAVDESS(root=...)), got {type(corpus).__name__}")
        if isinstance(split, dict):  # convenience for Python callers: split={"mode": "random"}
            split = SplitOptions(**split)
        if not 0.0 <= min_agreement <= 1.0:
            raise ZooUserError(f"min_agreement must be in [0, 1], got {min_agreement}")
        # the resolved class list is logged by the model (linked from here), not twice; the corpus
        # and split are stored as plain values, so a checkpoint loads with weights_only
        self.save_hyperparameters(ignore=["class_names", "corpus", "split"])
        self.hparams["corpus"] = {"name": corpus.name, **corpus.options()}
        self.hparams["split"] = dataclasses.asdict(split)
        self.corpus = corpus
        self.split_options = split
        self._class_names = list(class_names) if class_names else None
        self.label_mode = label_mode
        self.tie_break = tie_break
        self.min_agreement = min_agreement
        if min_agreement_scope not in ("all", "train"):
            raise ZooUserError(f"min_agreement_scope must be all or train, got {min_agreement_scope!r}")
        self.min_agreement_scope = min_agreement_scope
        self.seed = seed
        self.sample_rate = sample_rate
        self.max_seconds = max_seconds
        self.min_seconds = min_seconds
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.bucketing = bucketing
        self.balanced_sampling = balanced_sampling
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.prefetch_factor = prefetch_factor
        self.cache_dir = str(default_cache_dir() / "audio") if cache_dir == "auto" else cache_dir
        self.on_error = on_error
        self.validate_audio = validate_audio
        self.modalities = modalities
        self.predict_split = predict_split
        self.check_leakage = check_leakage
        self.test_split = test_split
        self.label_map = label_map
        self.exclude = exclude
        if without_words not in ("leave_out", "problem"):
            raise ZooUserError(f"without_words must be leave_out or problem, got {without_words!r}")
        self.without_words = without_words
        self._wordless: dict[str, str] = {}  # utterance id -> why a text model leaves it out
        self._exclude = read_exclude_list(exclude) if exclude else None  # checked before any file is read
        lm = label_map or getattr(corpus, "label_map", None)
        if lm is not None:
            from .label_map import load_label_map

            self._label_map = load_label_map(lm)  # checked here: a bad map fails before any file is read
        else:
            self._label_map = None
        self._utts: list[Utterance] | None = None
        self._dropped: Counter = Counter()
        self._splits: dict[str, list[Utterance]] | None = None
        self._durations: dict[str, float] = {}
        self._validated: set[tuple[str, str]] = set()  # (utterance id, modality) found usable
        self._bad: set[str] = set()
        self.report: dict = {}
        #: text tokenizer (``encode(text) -> ids``, ``pad_id``); None: the request's
        self.tokenizer = None
        self._request: DataRequest | None = None  # handed over by the model (request())
        self._set_up = False  # setup() has run: the modality-dependent work may be done
        self._prepared_for = None  # (modalities, text_optional) the splits were validated for

    # -- corpus --------------------------------------------------------------------------------
    @property
    def corpus_name(self) -> str:
        return self.corpus.title

    def prepare_data(self) -> None:
        self.corpus.prepare()  # e.g. the synthetic corpus generates itself (once, cached)

    def utterances(self) -> list[Utterance]:
        """Corpus with the label policy applied (cached; cheap: no audio is opened)."""
        if self._utts is None:
            whole = self.min_agreement if self.min_agreement_scope == "all" else 0.0
            kept, names, self._dropped, n_read = labelled_utterances(
                self.corpus, ProblemLog(self.on_error), tie_break=self.tie_break, min_agreement=whole,
                label_map=self._label_map, class_names=self._class_names, exclude=self._exclude,
                exclude_file=self.exclude)
            self._class_names = names
            if not kept:
                raise CorpusError(
                    f"{self.corpus_name}: no utterances left after filtering ({n_read} read; "
                    f"dropped: {dict(self._dropped) or 'none'}). Check the path, class_names, "
                    "min_agreement and tie_break.")
            self._utts = kept
        return self._utts

    @property
    def class_names(self) -> list[str]:
        if self._class_names is None:
            self.utterances()
        return list(self._class_names)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    # -- the model's request ---------------------------------------------------------------------
    def request(self, request: DataRequest) -> None:
        """Take the model's :class:`DataRequest` (the model calls this from its ``setup``, again
        when its tokenizer changes). The splits are validated for its modalities when next used."""
        if not isinstance(request, DataRequest):
            raise TypeError(f"request() takes a zoo.data.DataRequest, got {type(request).__name__}")
        self._request = request

    def _requested(self) -> DataRequest:
        return self._request or DataRequest()

    def _wanted(self) -> set[str]:
        if self.modalities is not None:
            return set(self.modalities)
        return set(self._requested().modalities)

    def _tokenizer(self):
        if self.tokenizer is not None:
            return self.tokenizer
        return self._requested().tokenizer

    # -- setup ---------------------------------------------------------------------------------

    def _validate(self, utts: list[Utterance], wanted: set[str]) -> list[Utterance]:
        """Find missing/unreadable/empty audio and missing text before the first step.

        Each (utterance, modality) is checked once; a later stage that needs another modality
        (e.g. a test run of a fusion model) checks only what is new, and rows found bad stay out.
        """
        problems = ProblemLog(self.on_error)
        if wanted & FROM_AUDIO:  # features are computed from the audio file
            todo = [u for u in utts if (u.id, "audio") not in self._validated and u.id not in self._bad]
            for u, err, dur in probe_audio(todo, read_header=self.validate_audio, min_seconds=self.min_seconds):
                if err:
                    problems.add(u.audio or problem_source(u), err, row=u.meta.get("row"))
                    self._bad.add(u.id)
                else:
                    self._validated.add((u.id, "audio"))
                    if dur is not None:
                        self._durations[u.id] = dur
        # a model that predicts without a transcript (late fusion) does not need one per row
        if "text" in wanted and not self._requested().text_optional:
            for u in utts:
                if (u.id, "text") in self._validated or u.id in self._bad or u.id in self._wordless:
                    continue
                if (u.text or "").strip():
                    self._validated.add((u.id, "text"))
                elif self.without_words == "leave_out":  # a valid row (laughter, a sigh): no words
                    self._wordless[u.id] = ("transcript without words (nonverbal tags only)"
                                            if (u.meta.get("raw_text") or "").strip() else "no transcript")
                else:
                    problems.add(problem_source(u),
                                 "empty transcript", row=u.meta.get("row"), column="text")
                    self._bad.add(u.id)
        problems.check(f"{self.corpus_name} (modalities: {', '.join(sorted(wanted))})")
        self._dropped.update(problems.counts())
        return [u for u in utts if u.id not in self._bad]

    def setup(self, stage: str | None = None) -> None:
        """Validate and split now when used on its own; under a trainer (which runs the model's
        setup, and so its request, only after this) when the request has come or a loader is
        built, still before the first step."""
        self._set_up = True
        if self.trainer is None:
            self._prepare()

    def _ensure_prepared(self) -> None:
        """Validate and split for the current request if that has not been done for it."""
        if self._set_up and self._prepared_for != self._request_key():
            self._prepare()

    def _request_key(self):
        return frozenset(self._wanted()), self._requested().text_optional

    def _prepare(self) -> None:
        utts = self._validate(self.utterances(), self._wanted())
        if not utts:
            raise CorpusError(f"{self.corpus_name}: no usable utterances after validation")
        if self._splits is None:
            self._splits = self._split(utts)
            if self.min_agreement_scope == "train" and self.min_agreement > 0:
                self._filter_training_agreement()
            self._leave_out_wordless()
            self._log_report([u for u in utts if u.id not in self._wordless])
        else:  # a later stage may need a modality the first one did not validate
            ok = {u.id for u in utts}
            self._splits = {s: [u for u in us if u.id in ok] for s, us in self._splits.items()}
            self._leave_out_wordless()
        self.report["dropped"] = dict(self._dropped)
        self._prepared_for = self._request_key()

    def view(self) -> DataView:
        """The splits as a read-only :class:`DataView` (after ``setup``), for the model's setup."""
        self._ensure_prepared()
        if self._splits is None:
            raise RuntimeError("call setup() first")
        return DataView({s: tuple(self._splits[s]) for s in ("train", "val", "test")},
                        tuple(self.class_names), self.sample_rate, self.cache_dir)

    def _split(self, utts: list[Utterance]) -> dict[str, list[Utterance]]:
        splits = self._make_split(utts)
        # which utterances are tested, in 12 hex digits: saved with the run (hparams.yaml, the
        # checkpoint) so two runs can be compared at a glance (python -m zoo check prints it too)
        fp = self.report["split_fingerprint"] = self.hparams["split_fingerprint"] = \
            split_fingerprint(u.id for u in splits["test"])
        for logger in getattr(self.trainer, "loggers", None) or []:
            logger.log_hyperparams({"split_fingerprint": fp})
        return splits

    def _make_split(self, utts: list[Utterance]) -> dict[str, list[Utterance]]:
        with_split = [u for u in utts if u.split]
        o = self.split_options
        if o.use_split_column and with_split:
            if len(with_split) != len(utts):
                missing = next(u for u in utts if not u.split)
                raise CorpusError(f"{self.corpus_name}: the split column is set for {len(with_split)} of "
                                  f"{len(utts)} rows (e.g. {missing.id!r} has none); fill it for every row "
                                  "or set split.use_split_column: false")
            self.report["split_source"] = "column"
            return {s: [u for u in utts if u.split == s] for s in ("train", "val", "test")}
        idx = assign_splits(utts, o, seed=self.seed)
        self.report["split_source"] = o.mode
        return {s: [utts[i] for i in ix] for s, ix in idx.items()}

    def _leave_out_wordless(self) -> None:
        """Utterances without words leave every split (a text model's request), counted once per
        reason. After the split, so a text model and an audio model on the same data config get
        the same speakers in each split (the two branches of a late fusion must)."""
        for s, us in self._splits.items():
            gone = [u for u in us if u.id in self._wordless]
            if gone:
                self._splits[s] = [u for u in us if u.id not in self._wordless]
                for u in gone:
                    self._dropped[f"{self._wordless[u.id]}: left out for a text model"] += 1
        if self._wordless and not any(self._splits.values()):
            raise CorpusError(f"{self.corpus_name}: none of the utterances has words in its transcript, so a "
                              "model that reads text has nothing to train on (use an audio or late-fusion "
                              "model, or a corpus with transcripts)")

    def _filter_training_agreement(self) -> None:
        """min_agreement on train and val only; the test split keeps every labelled row."""
        for s in ("train", "val"):
            keep = [u for u in self._splits[s] if meets_agreement(u.meta.get("agreement"), self.min_agreement)]
            n = len(self._splits[s]) - len(keep)
            if n:
                self._dropped[f"below min_agreement ({s})"] += n
            self._splits[s] = keep
        if not self._splits["train"]:
            raise CorpusError(f"{self.corpus_name}: min_agreement {self.min_agreement} leaves no training rows")

    def _log_report(self, utts: list[Utterance]) -> None:
        lines, entries = setup_report(
            self.corpus_name, utts, self._splits, self.class_names, split_source=self.report["split_source"],
            dropped=self._dropped, max_seconds=self.max_seconds, durations=self._durations,
            check_leakage=self.check_leakage, digest=file_digest if self._wanted() & FROM_AUDIO else None)
        self.report.update(entries)
        lines.append(f"  split fingerprint (sorted test ids): {self.report['split_fingerprint']}")
        log.info("\n".join(lines))

    # -- loaders -------------------------------------------------------------------------------
    def split(self, name: str) -> list[Utterance]:
        self._ensure_prepared()
        if self._splits is None:
            raise RuntimeError("call setup() first")
        if name == "all":
            return [u for s in ("train", "val", "test") for u in self._splits[s]]
        return self._splits[name]

    @property
    def train_class_counts(self) -> list[int]:
        c = Counter(u.label for u in self.split("train"))
        return [c.get(k, 0) for k in self.class_names]

    def _dataset(self, utts: list[Utterance], train: bool) -> EmotionDataset:
        wanted = self._wanted()
        audio = AudioLoader(self.sample_rate, self.cache_dir) if "audio" in wanted else None
        max_samples = int(self.max_seconds * self.sample_rate) if self.max_seconds else None
        features = None
        feature_sets = sorted(wanted & (FROM_AUDIO - {"audio"}))
        if len(feature_sets) > 1:
            raise ValueError(f"one openSMILE feature set per model, got {feature_sets}")
        if feature_sets:
            from .features import functionals_for

            features = functionals_for(feature_sets[0], self.cache_dir)
        return EmotionDataset(utts, self.class_names, audio=audio, text="text" in wanted,
                              soft=self.label_mode == "soft", max_samples=max_samples,
                              random_crop=train, tokenizer=self._tokenizer() if "text" in wanted else None,
                              features=features, dims=self.has_dims)

    @property
    def has_dims(self) -> bool:
        """Whether any utterance carries dimensional ratings (then batches have ``dims``)."""
        return any(u.dims for u in self.utterances())

    def _collate(self):
        tok = self._tokenizer() if "text" in self._wanted() else None
        return partial(collate, pad_id=getattr(tok, "pad_id", 0))

    def _loader(self, name: str, train: bool) -> DataLoader:
        utts = self.split(name)
        if not utts:
            raise CorpusError(f"{self.corpus_name}: the {name} split is empty "
                              "(check split.val_fraction/split.test_fraction or the split column)")
        ds = self._dataset(utts, train)
        bs = self.batch_size if train else self.eval_batch_size
        world = getattr(self.trainer, "world_size", 1) if self.trainer is not None else 1
        rank = getattr(self.trainer, "global_rank", 0) if self.trainer is not None else 0
        common = self._loader_options()
        weights = self._balanced_weights(utts) if train and self.balanced_sampling else None
        if self.bucketing and "audio" in self._wanted():
            durations = [self._durations.get(u.id, 0.0) for u in utts]
            sampler = BucketBatchSampler(durations, bs, shuffle=train, seed=self.seed,
                                         num_replicas=world, rank=rank, weights=weights)
            return DataLoader(ds, batch_sampler=sampler, **common)
        gen = torch.Generator().manual_seed(self.seed)
        if weights is not None:  # Lightning shards it under DDP (DistributedSamplerWrapper)
            sampler = torch.utils.data.WeightedRandomSampler(weights, len(utts), generator=gen)
            return DataLoader(ds, batch_size=bs, sampler=sampler, **common)
        return DataLoader(ds, batch_size=bs, shuffle=train, generator=gen if train else None, **common)

    def _loader_options(self) -> dict:
        """DataLoader settings: workers kept alive, pinned memory on CUDA, prefetch."""
        pin = self.pin_memory
        if pin is None:
            acc = getattr(self.trainer, "accelerator", None) if self.trainer is not None else None
            pin = type(acc).__name__ == "CUDAAccelerator"
        opts = dict(collate_fn=self._collate(), num_workers=self.num_workers,
                    persistent_workers=self.num_workers > 0, pin_memory=bool(pin))
        if self.num_workers > 0 and self.prefetch_factor is not None:
            opts["prefetch_factor"] = self.prefetch_factor
        return opts

    @staticmethod
    def _balanced_weights(utts: list[Utterance]) -> list[float]:
        """Inverse class frequency per utterance: every class drawn equally often."""
        counts = Counter(u.label for u in utts)
        return [1.0 / counts[u.label] for u in utts]

    def train_dataloader(self):
        # a model may be fitted on another split: a late-fusion second stage on frozen branches
        # learns from their held-out (validation) outputs, not the ones they memorised
        split = self._requested().fit_split
        if split != "train":
            log.info("%s: the model is fitted on the %s split (%d utterances), as it requests (fit_split)",
                     self.corpus_name, split, len(self.split(split)))
        return self._loader(split, train=True)

    def val_dataloader(self):
        if not self.split("val") and self.split_options.val_fraction == 0:
            # asked for (split.val_fraction: 0, e.g. a final model on every speaker): no validation;
            # epochs only train and the last checkpoint is the model
            log.info("no validation split (split.val_fraction: 0): the last epoch's checkpoint is the model")
            return []
        return self._loader("val", train=False)

    def test_dataloader(self):
        return self._loader("all" if self.test_split == "all" else "test", train=False)

    def predict_dataloader(self):
        utts = self.split(self.predict_split)
        durations = [self._durations.get(u.id, 0.0) for u in utts]
        opts = self._loader_options()
        opts["persistent_workers"] = False  # predict runs once
        return DataLoader(self._dataset(utts, False), batch_size=self.eval_batch_size,
                          sampler=LengthSortedSampler(durations), **opts)
