"""Accuracy and AUROC per layer, with bootstrap confidence intervals (vectorised)."""

import torch
from jaxtyping import Float, Int
from torch import Tensor

__all__ = ["accuracy", "balanced_accuracy", "auroc", "bootstrap_ci"]


def accuracy(scores: Float[Tensor, "layers n"], y: Int[Tensor, " n"]) -> Float[Tensor, " layers"]:
    """Share of ``(scores > 0) == y`` per layer."""
    return ((scores > 0).long() == y.to(scores.device)).float().mean(-1)


def balanced_accuracy(scores: Float[Tensor, "layers n"], y: Int[Tensor, " n"]) -> Float[Tensor, " layers"]:
    """Mean of the true-positive and true-negative rates per layer (0.5 for any constant guess,
    whatever the class balance); ``nan`` when ``y`` has one class."""
    y = y.to(scores.device).bool()
    if bool(y.all()) or not bool(y.any()):
        return torch.full((scores.shape[0],), float("nan"), device=scores.device)
    pred = scores > 0
    return 0.5 * (pred[:, y].float().mean(-1) + (~pred[:, ~y]).float().mean(-1))


def auroc(scores: Float[Tensor, "layers n"], y: Int[Tensor, " n"]) -> Float[Tensor, " layers"]:
    """Area under the ROC curve per layer (Mann-Whitney U with average ranks for ties)."""
    y = y.to(scores.device).bool()
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return torch.full((scores.shape[0],), float("nan"), device=scores.device)
    order = scores.argsort(-1)
    ranks = torch.empty_like(scores)
    ar = torch.arange(1, scores.shape[-1] + 1, dtype=scores.dtype, device=scores.device).expand_as(scores)
    ranks.scatter_(-1, order, ar)
    # average ranks of ties
    sorted_s = scores.gather(-1, order)
    for layer in range(scores.shape[0]):
        uniq, inverse, counts = torch.unique_consecutive(sorted_s[layer], return_inverse=True, return_counts=True)
        if len(uniq) < scores.shape[-1]:
            sums = torch.zeros(len(uniq), dtype=scores.dtype, device=scores.device).index_add_(0, inverse, ar[layer])
            ranks[layer].scatter_(0, order[layer], (sums / counts)[inverse])
    return (ranks[:, y].sum(-1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def bootstrap_ci(
    metric, scores: Float[Tensor, "layers n"], y: Int[Tensor, " n"], *, n_boot: int = 200, alpha: float = 0.05, seed: int = 0
) -> tuple[Float[Tensor, " layers"], Float[Tensor, " layers"]]:
    """Percentile bootstrap CI of ``metric(scores, y)`` per layer over resampled examples."""
    gen = torch.Generator().manual_seed(seed)
    n = scores.shape[-1]
    vals = []
    for _ in range(n_boot):
        idx = torch.randint(0, n, (n,), generator=gen).to(scores.device)
        vals.append(metric(scores[:, idx], y.to(scores.device)[idx]))
    stacked = torch.stack(vals)  # [boot, layers]
    lo = torch.nanquantile(stacked, alpha / 2, dim=0)
    hi = torch.nanquantile(stacked, 1 - alpha / 2, dim=0)
    return lo, hi
