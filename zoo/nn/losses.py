"""Classification losses beyond what torch ships (plain functions, usable without Lightning)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
               gamma: float = 2.0, label_smoothing: float = 0.0, ignore_index: int = -100) -> torch.Tensor:
    """Softmax focal loss (Lin et al., 2017): cross-entropy with each class's log-probability
    scaled by ``(1 - p)^gamma``, so well-classified (easy) examples weigh less.

    Same conventions as ``F.cross_entropy`` (class indices or class probabilities as ``target``,
    per-class ``weight``, ``label_smoothing``, ``ignore_index``, mean reduction), and equal to it
    at ``gamma = 0``. torch and torchvision ship only the binary (sigmoid) focal loss.
    """
    logp = F.log_softmax(logits.float(), dim=-1)
    mod = (1.0 - logp.exp()).clamp(min=0.0).pow(gamma) * logp
    k = logits.shape[-1]
    w = weight.to(mod) if weight is not None else None
    if target.is_floating_point():  # class probabilities (soft labels)
        q = target.to(mod)
        if label_smoothing:
            q = q * (1.0 - label_smoothing) + label_smoothing / k
        return -((q * mod) * (w if w is not None else 1.0)).sum(-1).mean()
    nll = F.nll_loss(mod, target, weight=w, ignore_index=ignore_index)
    if not label_smoothing:
        return nll
    valid = target != ignore_index
    ww = w if w is not None else torch.ones(k, device=mod.device, dtype=mod.dtype)
    smooth = -(mod[valid] * ww).sum()
    denom = ww[target[valid]].sum()  # torch's weighted mean divides by the targets' weights
    return (1.0 - label_smoothing) * nll + label_smoothing / k * smooth / denom
