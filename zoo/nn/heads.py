"""The one output head every model family puts on its utterance embedding.

One linear output layer serves both kinds of target: its first ``num_classes`` outputs are the
class logits, the next ``num_dims`` the dimensional predictions (arousal, valence, dominance, in
the order the model's ``targets`` list them, on the [0, 1] scale of ``Utterance.dims``; linear,
not squashed, so the CCC loss sees their scale). A model with categories only has exactly the
head the zoo always had (``Dropout -> Linear``, state-dict keys ``1.weight`` / ``1.bias``).
"""
from __future__ import annotations

import torch
from torch import nn


class Head(nn.Sequential):
    """``Dropout -> [Linear -> ReLU -> Dropout ->] Linear`` to ``num_classes + num_dims`` outputs.

    Args:
        in_dim: Width of the utterance embedding.
        num_classes: Class logits (0: a dimension-only model).
        num_dims: Regression outputs, one per dimension.
        hidden: Width of a hidden ReLU layer; None: one linear layer.
        dropout: Dropout before each linear layer.
    """

    def __init__(self, in_dim: int, num_classes: int, num_dims: int = 0, hidden: int | None = None,
                 dropout: float = 0.0):
        if num_classes < 0 or num_dims < 0 or num_classes + num_dims < 1:
            raise ValueError(f"a head needs at least one output, got {num_classes} classes and {num_dims} dimensions")
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        d = in_dim
        if hidden:
            layers += [nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout)]
            d = hidden
        layers.append(nn.Linear(d, num_classes + num_dims))
        super().__init__(*layers)
        self.in_dim, self.num_classes, self.num_dims = in_dim, num_classes, num_dims

    @property
    def out_dim(self) -> int:
        return self.num_classes + self.num_dims

    @property
    def linear_layers(self) -> list[nn.Linear]:
        return [m for m in self if isinstance(m, nn.Linear)]

    def split(self, out: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(logits, dims) of the head's output; None for a kind of target the head lacks."""
        c = self.num_classes
        return (out[..., :c] if c else None), (out[..., c:] if self.num_dims else None)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints whose head was a bare nn.Linear (eGeMAPS MLP before the shared head):
        # ``head.weight`` is this head's last linear layer
        last = f"{prefix}{len(self) - 1}."
        for k in ("weight", "bias"):
            if prefix + k in state_dict and last + k not in state_dict:
                state_dict[last + k] = state_dict.pop(prefix + k)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
