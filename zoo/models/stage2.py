"""The cross-fitted second stage of late fusion: candidates compared on honest branch outputs.

Stacking done as the literature does it (Wolpert 1992; Breiman 1996; "super learner", van der
Laan et al. 2007): each branch's *out-of-fold* log-probabilities over the training split (every
utterance predicted by a copy of the branch trained without its speaker, session or
conversation; :mod:`zoo.crossfit` makes them) are what the second stage learns from and is
judged on. The candidates, simplest first:

* ``audio``, ``text``: one branch alone (``text`` falls back on the audio branch where an
  utterance has no transcript);
* ``average``: the equal-weight average of the two branches' calibrated probabilities;
* ``weights``: a learned weight per branch (one free parameter: the weights sum to 1);
* ``stacker``: a multinomial logistic regression on the two branches' calibrated
  log-probabilities (``2C x C + C`` parameters), considered only with enough data.

Every candidate has a temperature per branch (temperature scaling, fitted by likelihood), so its
probabilities are calibrated. Each candidate is scored by nested cross-validation over the same
folds: fitted on all folds but one, its UA measured on the held-out fold. The pick
(:data:`RULE`): the simplest candidate whose mean out-of-fold UA is within one standard error of
the best candidate's, the standard error of their paired per-fold differences (the
one-standard-error rule of Hastie, Tibshirani & Friedman, *The Elements of Statistical
Learning*, 7.10). A second stage picked this way cannot be worse than its best branch on the
training speakers by more than noise, and it picks a fusion only when the fusion's gain is
larger than the noise.

Only torch, numpy and scikit-learn (for the stacker) are used; no Lightning.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ZooUserError

#: the candidates, and how many things each fits besides the two temperatures (the pick prefers
#: the lower count within noise; the two branches alone tie at 0)
CANDIDATES: dict[str, int] = {"audio": 0, "text": 0, "average": 1, "weights": 2, "stacker": 3}
RULE = ("the simplest candidate whose mean out-of-fold UA is within one standard error (of the "
        "paired per-fold differences) of the best candidate's (one-standard-error rule)")


@dataclass
class Params:
    """A fitted candidate: per-branch log temperatures, the two mixing weights (log-softmaxed),
    and the stacker's linear layer (``C x 2C`` weight, ``C`` bias) when it is the stacker."""

    log_t: torch.Tensor
    weights: torch.Tensor
    stacker_weight: torch.Tensor | None = None
    stacker_bias: torch.Tensor | None = None


@dataclass
class Selection:
    """What :func:`select` found: the pick, its parameters fitted on every out-of-fold utterance,
    per candidate the per-fold UAs, and the reason in words."""

    choice: str
    params: Params
    fold_ua: dict[str, list[float]]
    reason: str
    best: str
    num_folds: int
    n: int
    report: dict = field(default_factory=dict)


# -- the candidates ---------------------------------------------------------------------------------
def _calibrated(la: torch.Tensor, lt: torch.Tensor, log_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    t = log_t.detach().to(la.dtype).exp()
    return (la / t[0]).log_softmax(-1), (lt / t[1]).log_softmax(-1)


def combine(choice: str, la: torch.Tensor, lt: torch.Tensor, present: torch.Tensor, log_t: torch.Tensor,
            weights: torch.Tensor, stacker_weight: torch.Tensor | None = None,
            stacker_bias: torch.Tensor | None = None) -> torch.Tensor:
    """The candidate ``choice``'s log-probabilities (B, C) from the branches' logits (B, C): the
    one function the selection scores and the deployed model runs. Rows where ``present`` is
    False (no transcript) get the calibrated audio branch."""
    pa, pt = _calibrated(la, lt, log_t)
    if choice == "audio":
        return pa
    if choice == "text":
        fused = pt
    elif choice == "average":
        fused = torch.logsumexp(torch.stack([pa, pt]), 0) - math.log(2.0)
    elif choice == "weights":
        w = weights.detach().to(pa.dtype).log_softmax(0)
        fused = torch.logsumexp(torch.stack([w[0] + pa, w[1] + pt]), 0)
    elif choice == "stacker":
        if stacker_weight is None or stacker_bias is None:
            raise ZooUserError("the stacker candidate needs its fitted linear layer")
        x = torch.cat([pa, pt], -1)
        fused = F.linear(x, stacker_weight.detach().to(x.dtype), stacker_bias.detach().to(x.dtype)).log_softmax(-1)
    else:
        raise ZooUserError(f"unknown second-stage candidate {choice!r}; one of {', '.join(CANDIDATES)}")
    return torch.where(present[:, None].to(fused.device), fused, pa)


def _temperature(scores: torch.Tensor, labels: torch.Tensor) -> float:
    from .tfidf import Temperature

    t = Temperature()
    return math.log(t.fit(scores, labels)) if len(labels) else 0.0


def fit_params(choice: str, la: torch.Tensor, lt: torch.Tensor, present: torch.Tensor,
               labels: torch.Tensor, num_classes: int) -> Params:
    """Fit ``choice`` on these rows: the temperatures (each branch's own likelihood), then the
    mixing weight (the mixture's likelihood) or the stacker (L2-regularised logistic regression,
    classes weighted equally, as UA weighs them)."""
    la, lt, labels = la.float(), lt.float(), labels.long()
    log_t = torch.tensor([_temperature(la, labels),
                          _temperature(lt[present], labels[present]) if present.any() else 0.0])
    weights = torch.zeros(2)
    params = Params(log_t, weights)
    if choice == "weights" and present.any():
        pa, pt = _calibrated(la[present], lt[present], log_t)
        y = labels[present]
        with torch.inference_mode(False), torch.enable_grad():
            v = torch.zeros(1, requires_grad=True)  # the audio weight's logit; text's is 0
            opt = torch.optim.LBFGS([v], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                w = torch.cat([v, torch.zeros(1)]).log_softmax(0)
                mix = torch.logsumexp(torch.stack([w[0] + pa, w[1] + pt]), 0)
                loss = F.nll_loss(mix, y)
                loss.backward()
                return loss

            opt.step(closure)
        params.weights = torch.cat([v.detach().clamp(-20, 20), torch.zeros(1)])
    elif choice == "stacker":
        from sklearn.linear_model import LogisticRegression

        pa, pt = _calibrated(la[present], lt[present], log_t)
        x = torch.cat([pa, pt], -1).numpy()
        y = labels[present].numpy()
        w = torch.zeros(num_classes, 2 * num_classes)
        b = torch.full((num_classes,), -30.0)  # a class never seen here is never predicted
        if len(set(y.tolist())) < 2:
            b[int(y[0])] = 0.0
        else:
            lr = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(x, y)
            coef, icpt = np.asarray(lr.coef_), np.asarray(lr.intercept_)
            if len(lr.classes_) == 2:  # scikit-learn's binary form: one row for the second class
                coef, icpt = np.stack([np.zeros_like(coef[0]), coef[0]]), np.array([0.0, icpt[0]])
            for row, c in enumerate(lr.classes_):
                w[int(c)] = torch.from_numpy(coef[row]).float()
                b[int(c)] = float(icpt[row])
        params.stacker_weight, params.stacker_bias = w, b
    return params


def unweighted_accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    """UA: the mean recall over the classes present in ``labels``."""
    recalls = [float((pred[labels == c] == c).float().mean()) for c in labels.unique().tolist()]
    return sum(recalls) / len(recalls) if recalls else float("nan")


def available(present: torch.Tensor, labels: torch.Tensor, num_classes: int,
              stacker_min_per_class: int) -> list[str]:
    """The candidates the data allows: no text, no fusion; the stacker only when every class has
    at least ``stacker_min_per_class`` utterances with both branches' outputs."""
    if not present.any():
        return ["audio"]
    out = ["audio", "text", "average", "weights"]
    counts = torch.bincount(labels[present], minlength=num_classes)
    if stacker_min_per_class >= 0 and int(counts.min()) >= stacker_min_per_class:
        out.append("stacker")
    return out


# -- the selection ----------------------------------------------------------------------------------
def _mean_se(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs, dtype=float)
    if len(a) < 2:
        return float(a.mean()) if len(a) else float("nan"), float("nan")
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a)))


def select(la: torch.Tensor, lt: torch.Tensor, present: torch.Tensor, labels: torch.Tensor,
           folds: torch.Tensor, num_classes: int, *, choice: str = "auto",
           stacker_min_per_class: int = 50, unit: str = "groups") -> Selection:
    """Score every available candidate by nested cross-validation over ``folds`` and pick one.

    Args:
        la, lt: The audio and text branches' out-of-fold logits (N, C); ``lt`` rows without a
            transcript are ignored (``present`` False).
        present: (N,) bool: the utterance has a transcript (a text branch output).
        labels: (N,) class indices.
        folds: (N,) the fold each utterance was held out in (its branch outputs come from the
            copies trained on the other folds).
        choice: ``auto`` (:data:`RULE`) or a candidate to use whatever the scores say.
        stacker_min_per_class: See :func:`available`.
        unit: What the folds are made of, for the reason (``speakers``, ``sessions``, ...).
    """
    labels, folds, present = labels.long(), folds.long(), present.bool()
    cands = available(present, labels, num_classes, stacker_min_per_class)
    if choice != "auto" and choice not in cands:
        raise ZooUserError(f"select: {choice!r} is not possible here (the data allows {', '.join(cands)}; "
                           "text needs transcripts, the stacker enough utterances per class: "
                           "stacker_min_per_class)")
    ks = sorted(folds.unique().tolist())
    if len(ks) < 2:
        raise ZooUserError("the second stage needs out-of-fold outputs from at least two folds")
    fold_ua: dict[str, list[float]] = {c: [] for c in cands}
    for k in ks:
        fit, held = folds != k, folds == k
        for c in cands:
            p = fit_params(c, la[fit], lt[fit], present[fit], labels[fit], num_classes)
            out = combine(c, la[held], lt[held], present[held], p.log_t, p.weights, p.stacker_weight, p.stacker_bias)
            fold_ua[c].append(unweighted_accuracy(out.argmax(-1), labels[held]))
    stats = {c: _mean_se(v) for c, v in fold_ua.items()}
    order = sorted(cands, key=lambda c: (CANDIDATES[c], -stats[c][0]))  # simplest first, better first
    best = max(order, key=lambda c: (stats[c][0], -CANDIDATES[c]))
    diffs = {c: [a - b for a, b in zip(fold_ua[c], fold_ua[best])] for c in cands}
    within = {c: _mean_se(diffs[c]) for c in cands}
    pick = choice
    if choice == "auto":
        pick = next(c for c in order if c == best or within[c][0] >= -(0 if math.isnan(within[c][1]) else within[c][1]))
    table = ", ".join(f"{c} {stats[c][0]:.3f} ± {stats[c][1]:.3f}" for c in cands)
    head = (f"out-of-fold UA over {len(ks)} folds of the training split's {unit} ({len(labels)} utterances; "
            f"mean ± standard error): {table}")
    if choice != "auto":
        why = f"{pick} was asked for (select: {pick}); by the scores the rule would weigh {best} as the best"
    elif pick == best:
        simpler = [c for c in order if CANDIDATES[c] < CANDIDATES[best]]
        why = (f"{pick} is the best" + (f", and no simpler candidate ({', '.join(simpler)}) comes within one "
                                        "standard error of it" if simpler else ""))
    else:
        m, se = within[pick]
        why = (f"{pick} is the simplest within one standard error of the best, {best} (paired difference "
               f"{m:+.3f} ± {se:.3f} over the folds)")
    reason = f"{head}. Picked {pick}: {why}."
    params = fit_params(pick, la, lt, present, labels, num_classes)
    report = {"choice": pick, "best": best, "rule": RULE if choice == "auto" else f"select: {pick}",
              "folds": len(ks), "unit": unit, "utterances": int(len(labels)),
              "with_text": int(present.sum()), "reason": reason,
              "candidates": {c: {"ua": round(stats[c][0], 4), "se": round(stats[c][1], 4),
                                 "fold_ua": [round(x, 4) for x in fold_ua[c]]} for c in cands}}
    return Selection(pick, params, fold_ua, reason, best, len(ks), int(len(labels)), report)
