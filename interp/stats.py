"""Uncertainty a reviewer asks for: Wilson score intervals on rates (scipy's implementation), a
bootstrap that resamples whole clusters (entities) instead of rows, and a max-over-layers
permutation test ("is any layer above chance?") that pays for having looked at every layer.

Example::

    rate_ci(12, 16)                        # (0.5, 0.89...): 95% Wilson interval of 12 of 16
    with_rate_ci(frame)                    # adds ci_low / ci_high to rows whose value is a rate of n
    cluster_bootstrap_ci(accuracy, scores, y, entities)          # rows of one entity move together
    max_over_layers_test(scores_by_layer, y, accuracy)           # p-value of the best layer
"""

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from scipy.stats import binomtest

__all__ = ["rate_ci", "with_rate_ci", "cluster_bootstrap_ci", "max_over_layers_test"]


def rate_ci(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of ``k`` successes in ``n`` trials (``nan`` for ``n == 0``)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n <= 0:
        return math.nan, math.nan
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, n={n}], got {k}")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def with_rate_ci(frame: pd.DataFrame, *, value: str = "value", n: str = "n", is_rate=None,
                 level: float = 0.95) -> pd.DataFrame:
    """``frame`` with ``ci_low`` / ``ci_high``: the Wilson interval of each row whose ``value`` is a
    rate of ``n`` trials (``is_rate(row)`` decides; default: a value in [0, 1] with n > 0); other
    rows get ``nan``."""
    is_rate = is_rate or (lambda r: 0 <= r[value] <= 1 and r[n] > 0)
    lows, highs = [], []
    for _, r in frame.iterrows():
        if is_rate(r):
            lo, hi = rate_ci(round(r[value] * r[n]), int(r[n]), level)
        else:
            lo, hi = math.nan, math.nan
        lows.append(lo)
        highs.append(hi)
    return frame.assign(ci_low=lows, ci_high=highs)


def _clusters(clusters: "Sequence | None", n: int) -> list[np.ndarray]:
    if clusters is None:
        return [np.array([i]) for i in range(n)]
    if len(clusters) != n:
        raise ValueError(f"clusters has {len(clusters)} entries for {n} rows; pass one per row")
    codes, inverse = np.unique(np.asarray(clusters, dtype=str), return_inverse=True)
    return [np.flatnonzero(inverse == c) for c in range(len(codes))]


def cluster_bootstrap_ci(metric: Callable, scores: torch.Tensor, y: torch.Tensor, clusters: "Sequence | None" = None,
                         *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple:
    """Percentile interval of ``metric(scores, y)`` when whole clusters (e.g. the statements of one
    entity) are resampled with replacement; ``clusters=None`` resamples rows. ``scores`` may be
    ``[n]`` or ``[layers, n]`` (then the interval of each layer is returned as two arrays)."""
    y = torch.as_tensor(y)
    groups = _clusters(clusters, len(y))
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        pick = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        idx = torch.as_tensor(pick)
        stats.append(torch.as_tensor(metric(scores[..., idx], y[idx]), dtype=torch.float64))
    s = torch.stack(stats).numpy()
    lo, hi = np.nanquantile(s, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return (float(lo), float(hi)) if np.ndim(lo) == 0 else (lo, hi)


def max_over_layers_test(scores: torch.Tensor, y: torch.Tensor, metric: Callable, *,
                         clusters: "Sequence | None" = None, n_perm: int = 1000, seed: int = 0) -> dict:
    """Is any layer above chance? The observed maximum over layers of ``metric(scores[l], y)``
    against its distribution when the labels are permuted (whole clusters keep one label, as
    entities do), so the p-value accounts for choosing the best of all layers.

    Returns ``{"max": observed max, "layer": its index, "p_value": ..., "null_95": 95th percentile
    of the permuted maxima}``."""
    y = torch.as_tensor(y)
    observed = torch.as_tensor(metric(scores, y), dtype=torch.float64)  # [layers]
    groups = _clusters(clusters, len(y))
    labels = np.array([int(y[g[0]]) for g in groups])
    if clusters is not None and any(len(set(y[g].tolist())) > 1 for g in groups):
        raise ValueError("a cluster holds rows of both labels; permute rows (clusters=None) or pass label-pure clusters")
    group_of = np.empty(len(y), dtype=np.int64)  # row -> its cluster
    for c, g in enumerate(groups):
        group_of[g] = c
    rng = np.random.default_rng(seed)
    maxima = np.empty(n_perm)
    for i in range(n_perm):
        yp = torch.as_tensor(rng.permutation(labels)[group_of], dtype=y.dtype)
        maxima[i] = float(torch.as_tensor(metric(scores, yp)).max())
    best = float(observed.max())
    return {"max": best, "layer": int(observed.argmax()), "p_value": float((1 + (maxima >= best).sum()) / (1 + n_perm)),
            "null_95": float(np.quantile(maxima, 0.95))}
