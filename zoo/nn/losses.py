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


def ccc(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Lin's concordance correlation coefficient of two 1-D tensors (at least two values):
    ``2 cov / (var_p + var_t + (mean_p - mean_t)^2)``; 1 = identical, 0 = unrelated. Variances and
    covariance with ``n - 1``, the estimator of torchmetrics' ``concordance_corrcoef`` (what the
    metrics report), differentiable."""
    p, t = pred.float(), target.float()
    mp, mt = p.mean(), t.mean()
    n1 = max(p.numel() - 1, 1)
    vp, vt = (p - mp).pow(2).sum() / n1, (t - mt).pow(2).sum() / n1
    cov = ((p - mp) * (t - mt)).sum() / n1
    return 2 * cov / (vp + vt + (mp - mt).pow(2)).clamp_min(1e-8)


def ccc_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``1 - CCC`` per column of (B, D) predictions over the rows where ``mask`` is set, as a (D,)
    tensor. A column with fewer than two rated rows in the batch has no CCC: its loss is 0 (and
    carries no gradient), so an unrated utterance never pulls its prediction anywhere."""
    out = []
    for j in range(pred.shape[1]):
        m = mask[:, j]
        if int(m.sum()) < 2:
            out.append(pred[:, j].sum() * 0.0)
        else:
            out.append(1.0 - ccc(pred[m, j], target[m, j]))
    return torch.stack(out)
