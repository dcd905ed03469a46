"""EmotionDataset: the items of one split, as the DataModule's loaders serve them."""
from __future__ import annotations

import logging
import math
from typing import Sequence

import torch
from torch.utils.data import Dataset

from .audio import AudioLoader
from .batch import make_item
from .labels import soft_label
from .utterance import DIMENSIONS, Utterance

log = logging.getLogger("zoo")


class EmotionDataset(Dataset):
    """Items for one split. A clip that fails to decode yields None (dropped by collate, logged)."""

    def __init__(self, utts: Sequence[Utterance], class_names: Sequence[str], *,
                 audio: AudioLoader | None, text: bool, soft: bool, max_samples: int | None,
                 random_crop: bool, tokenizer=None, features=None, dims: bool = False):
        self.utts = list(utts)
        self.index = {c: i for i, c in enumerate(class_names)}
        self.class_names = list(class_names)
        self.audio = audio
        self.text = text
        self.soft = soft
        self.max_samples = max_samples
        self.random_crop = random_crop
        self.tokenizer = tokenizer  # has encode(text) -> ids; runs here, i.e. in the workers
        self.features = features  # callable(audio path) -> 1-D tensor (cached utterance features)
        self.dims = dims  # add the dimensional ratings (NaN where an utterance has none)

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int) -> dict | None:
        u = self.utts[i]
        soft = dims = wav = features = None
        if self.soft:
            soft = torch.tensor(soft_label(u, self.class_names, ignore_unknown=True), dtype=torch.float32)
        if self.dims:
            dims = torch.tensor([u.dims.get(d, math.nan) for d in DIMENSIONS], dtype=torch.float32)
        if self.audio is not None:
            try:
                wav = torch.from_numpy(self.audio(u.audio))
            except Exception as e:  # one bad file must not end an epoch hours in
                log.warning("skipping %s (%s): cannot decode audio: %s", u.id, u.audio, e)
                return None
            if wav.numel() == 0:
                log.warning("skipping %s (%s): zero-length audio", u.id, u.audio)
                return None
            if self.max_samples and wav.shape[0] > self.max_samples:
                extra = wav.shape[0] - self.max_samples
                start = int(torch.randint(0, extra + 1, ())) if self.random_crop else extra // 2
                wav = wav[start : start + self.max_samples]
        if self.features is not None:
            try:
                features = self.features(u.audio)
            except Exception as e:
                log.warning("skipping %s (%s): cannot compute features: %s", u.id, u.audio, e)
                return None
        # the corpus of each utterance of a multi-corpus corpus: per-corpus metrics
        return make_item(u.id, self.index.get(u.label, -1), speaker=u.speaker, audio=wav, features=features,
                         text=u.text, with_text=self.text, tokenizer=self.tokenizer, soft=soft, dims=dims,
                         corpus=u.meta.get("corpus"))
