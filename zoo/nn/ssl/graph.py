"""The ONNX graph of an SSL classifier: its encoder and head as they are (traceable, padding masked)."""
from __future__ import annotations

import copy

import torch
from torch import nn


class SSLGraph(nn.Module):
    """``(waveform (B, T), lengths (B,)) -> head outputs`` of an :class:`SSLEncoder` and a head.

    Copies: the model itself stays as it was (and a LightningModule copy would drag its Trainer
    along). The copy has no embedding cache: a trace must run the encoder, never a cache lookup."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder = copy.deepcopy(encoder)
        self.encoder.cache_dir = None
        self.head = copy.deepcopy(head)
        self.pad = self.encoder.min_samples - 1

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # trailing zeros are masked like any padding, and no clip is shorter than the CNN's
        # receptive field
        waveform = nn.functional.pad(waveform, (0, self.pad))
        return self.head(self.encoder(waveform, lengths, cache=False))  # SSLClassifier.forward
