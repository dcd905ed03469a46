"""The classic hand-crafted baselines: openSMILE functionals (eGeMAPS v02: 88 per utterance,
ComParE 2016: 6,373) -> MLP or a linear classifier."""
from __future__ import annotations

import logging
from typing import Literal

import torch
from torch import nn

from ..data.batch import Batch
from ..data.features import FEATURE_SETS, Functionals, set_dim
from ..ranges import Fraction, PositiveInt
from .base import MIN_SPEAKER_UTTERANCES, EmotionModule

log = logging.getLogger("zoo")

#: floor of a standard deviation (features constant over the statistics' utterances)
STD_FLOOR = 1e-4


def _mean_std(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.mean(0), x.std(0, unbiased=False).clamp_min(STD_FLOOR)


class EGeMAPSMLP(EmotionModule):
    """openSMILE functionals (eGeMAPS v02: 88 per utterance, or ComParE 2016: 6,373; cached on
    disk) -> standardisation -> MLP. Needs ``pip install 'zoo[egemaps]'``. No audio reaches the
    model: the DataModule computes the features from the audio file and batches them as
    ``Batch.features``.

    Args:
        feature_set: ``eGeMAPSv02`` (the minimalistic set, the default) or ``ComParE_2016`` (the
            brute-force challenge set; with ``hidden: []`` and per-speaker standardisation the
            best from-scratch EmoDB recipe here, docs/results.md).
        hidden: Sizes of the hidden layers (Linear + ReLU + dropout each); ``[]`` is a linear
            classifier (multinomial logistic regression) on the standardised features.
        dropout: Dropout after each hidden layer.
        normalize: Feature standardisation: ``global`` (mean/std of the training split's
            features, computed once at fit start and saved in the checkpoint), ``speaker``
            (each speaker's own mean/std over all of that speaker's utterances, every split,
            labels unused: transductive unsupervised speaker adaptation; unknown speakers fall
            back to global) or ``none`` (raw features; their scales differ by 10^4).
    """

    inputs = ("egemaps",)

    def __init__(self, hidden: list[PositiveInt] = [128, 64], dropout: Fraction = 0.3,
                 normalize: Literal["global", "speaker", "none"] = "global",
                 feature_set: Literal["eGeMAPSv02", "ComParE_2016"] = "eGeMAPSv02", **kwargs):
        super().__init__(**kwargs)
        if normalize not in ("global", "speaker", "none"):
            raise ValueError(f"normalize must be global, speaker or none, got {normalize!r}")
        self.normalize = normalize
        self.feature_set = feature_set
        self.in_dim = set_dim(feature_set)
        # the modality the DataModule computes for this model (egemaps / compare)
        self.inputs = tuple(m for m, (name, _) in FEATURE_SETS.items() if name == feature_set)
        layers: list[nn.Module] = []
        d = self.in_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU(), nn.Dropout(dropout)]
            d = h
        self.mlp = nn.Sequential(*layers)
        self.embed_dim = d
        self.head = self.make_head(d)  # no dropout: the hidden layers have theirs
        # global statistics travel with the checkpoint; initialised = computed from a corpus
        self.register_buffer("feat_mean", torch.zeros(self.in_dim))
        self.register_buffer("feat_std", torch.ones(self.in_dim))
        self.register_buffer("stats_initialised", torch.tensor(False))
        #: speaker -> (mean, std); recomputed from the corpus at each stage (not checkpointed)
        self.speaker_stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._warned_no_stats = False

    # -- statistics -----------------------------------------------------------------------------
    @torch.no_grad()
    def set_feature_stats(self, features: torch.Tensor) -> None:
        """Global mean/std from a (N, in_dim) tensor of (training) features."""
        if features.ndim != 2 or features.shape[0] < 2:
            raise ValueError(f"need at least two feature vectors for statistics, got {tuple(features.shape)}")
        mean, std = _mean_std(features.float())
        self.feat_mean.copy_(mean)
        self.feat_std.copy_(std)
        self.stats_initialised.fill_(True)

    @torch.no_grad()
    def set_speaker_stats(self, features_by_speaker: dict[str, torch.Tensor]) -> None:
        """Per-speaker mean/std from each speaker's (N_s, in_dim) features (no labels used)."""
        self.speaker_stats = {spk: _mean_std(f.float()) for spk, f in features_by_speaker.items()
                              if f.shape[0] >= MIN_SPEAKER_UTTERANCES}

    def prepare_stats(self, data) -> None:
        """Statistics from the data (the DataModule's read-only view): global from the train split (when still missing: a
        resumed or restored model has them from its checkpoint), per speaker from every utterance
        (``normalize: speaker``). Called by the base class at the start of every stage."""
        if self.normalize == "none":
            return
        need_global = not bool(self.stats_initialised)
        need_speaker = self.normalize == "speaker" and not self.speaker_stats
        if not (need_global or need_speaker):
            return
        feats = Functionals(data.cache_dir, self.feature_set)

        def stack(utts) -> tuple[list, torch.Tensor | None]:
            kept, rows = [], []
            for u in utts:
                try:
                    rows.append(feats(u.audio))
                    kept.append(u)
                except Exception as e:  # the dataset skips the same clip (and logs it)
                    log.debug("no eGeMAPS statistics from %s: %s", u.id, e)
            return kept, torch.stack(rows) if rows else None

        if need_global:
            _, x = stack(data.split("train"))
            if x is None or x.shape[0] < 2:
                raise RuntimeError("EGeMAPSMLP: the training split has too few usable clips for "
                                   "feature statistics")
            self.set_feature_stats(x)
            log.info("%s: global feature statistics from %d training utterances", self.feature_set, x.shape[0])
        if need_speaker:
            kept, x = stack([u for u in data.split("all") if u.speaker])
            by_spk: dict[str, list[torch.Tensor]] = {}
            for u, row in zip(kept, x if x is not None else []):
                by_spk.setdefault(u.speaker, []).append(row)
            self.set_speaker_stats({s: torch.stack(r) for s, r in by_spk.items()})
            log.info("%s: per-speaker feature statistics for %d speakers (all splits, no labels)",
                     self.feature_set, len(self.speaker_stats))

    @property
    def normalizes_per_speaker(self) -> bool:
        return self.normalize == "speaker"

    def adapt_speakers(self, clips: dict[str, list]) -> None:
        """Per-speaker statistics from unlabelled waveforms at ``sample_rate`` (inference)."""
        if not self.normalizes_per_speaker:
            super().adapt_speakers(clips)
        feats = Functionals(None, self.feature_set)
        stats = {spk: torch.stack([torch.tensor(feats.compute_signal(w, self.sample_rate)) for w in ws])
                 for spk, ws in clips.items()}
        self.speaker_stats.update({s: _mean_std(f.float()) for s, f in stats.items()
                                   if f.shape[0] >= MIN_SPEAKER_UTTERANCES})

    # -- forward --------------------------------------------------------------------------------
    def standardize(self, features: torch.Tensor, speakers: list[str | None] | None = None) -> torch.Tensor:
        """Standardised (B, in_dim) features as the MLP sees them."""
        x = features.float()
        if self.normalize == "none":
            return x
        if not bool(self.stats_initialised) and not self._warned_no_stats:
            self._warned_no_stats = True
            log.warning("EGeMAPSMLP: no feature statistics yet (they come from the DataModule's "
                        "training split at fit start, or set_feature_stats); features are not "
                        "standardised")
        mean = self.feat_mean.expand_as(x)
        std = self.feat_std.expand_as(x)
        if self.normalize == "speaker" and speakers and self.speaker_stats:
            rows_m, rows_s = [], []
            for i, spk in enumerate(speakers):
                stats = self.speaker_stats.get(spk) if spk is not None else None
                if stats is None:
                    rows_m.append(mean[i])
                    rows_s.append(std[i])
                else:  # statistics may have been computed before the model moved device
                    rows_m.append(stats[0].to(x.device))
                    rows_s.append(stats[1].to(x.device))
            mean, std = torch.stack(rows_m), torch.stack(rows_s)
        return (x - mean) / std

    def embed(self, batch: Batch) -> torch.Tensor:
        """Utterance embedding (the last hidden layer, ``embed_dim`` wide; used by late fusion)."""
        if batch.features is None:
            raise ValueError(f"EGeMAPSMLP needs Batch.features ({self.feature_set} functionals): load "
                             f"the data with modalities including {self.inputs[0]!r} (the default for this model)")
        return self.mlp(self.standardize(batch.features, batch.speakers))
