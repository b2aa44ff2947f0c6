"""Uncertainty a reviewer asks for: Wilson score intervals on rates (scipy's implementation), a
bootstrap that resamples whole clusters (entities) instead of rows, and a max-over-layers
permutation test ("is any layer above chance?") that pays for having looked at every layer.

Example::

    rate_ci(12, 16)                        # (0.5, 0.89...): 95% Wilson interval of 12 of 16
    with_rate_ci(frame)                    # adds ci_low / ci_high to rows whose value is a rate of n
    cluster_bootstrap_ci(accuracy, scores, y, entities)          # rows of one entity move together
    frame_bootstrap_ci(lambda t: {"rate": t.x.mean()}, tokens, "prompt")   # any statistics of a frame
    correlation_ci(0.93, 36)                                     # Fisher-z interval of a Pearson r
    max_over_layers_test(scores_by_layer, y, accuracy)           # p-value of the best layer
"""

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from scipy.stats import binomtest

__all__ = ["rate_ci", "with_rate_ci", "cluster_bootstrap_ci", "frame_bootstrap_ci", "correlation_ci", "max_over_layers_test"]


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
    lo, hi = _nanquantile(s, [(1 - level) / 2, (1 + level) / 2])
    return (float(lo), float(hi)) if np.ndim(lo) == 0 else (lo, hi)


def frame_bootstrap_ci(stat: Callable[[pd.DataFrame], dict], frame: pd.DataFrame, cluster: str, *, n_boot: int = 500,
                       level: float = 0.95, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Percentile intervals of each statistic ``stat(frame)`` returns (a dict of floats) when the
    groups of ``cluster`` (e.g. the tokens of one response) are resampled whole."""
    if cluster not in frame:
        raise ValueError(f"frame has no column {cluster!r} to resample by; columns: {list(frame.columns)}")
    groups = [np.asarray(ix) for ix in frame.groupby(cluster, sort=False).indices.values()]
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(n_boot):
        pick = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        for k, v in stat(frame.iloc[pick]).items():
            draws.setdefault(k, []).append(float(v))
    q = [(1 - level) / 2, (1 + level) / 2]
    return {k: tuple(float(x) for x in _nanquantile(np.asarray(v), q)) for k, v in draws.items()}


def _nanquantile(draws: np.ndarray, q: list[float]) -> np.ndarray:
    """Quantiles over axis 0 ignoring ``nan`` draws (a resample with one class has no AUROC);
    ``nan`` where every draw is ``nan``, without numpy's all-NaN warning."""
    draws = np.asarray(draws, dtype=float)
    out = np.full((len(q),) + draws.shape[1:], np.nan)
    ok = ~np.isnan(draws).all(axis=0)
    if np.ndim(ok) == 0:
        return np.nanquantile(draws, q, axis=0) if ok else out
    if ok.any():
        out[:, ok] = np.nanquantile(draws[:, ok], q, axis=0)
    return out


def correlation_ci(r: float, n: int, *, level: float = 0.95, spearman: bool = False) -> tuple[float, float]:
    """Interval of a correlation of ``n`` pairs by Fisher's z (Pearson: standard error
    ``1/sqrt(n-3)``; Spearman: Fieller et al.'s ``sqrt(1.06/(n-3))``); ``nan`` for ``n < 4``."""
    from scipy.stats import norm

    if n < 4 or not np.isfinite(r):
        return math.nan, math.nan
    se = math.sqrt((1.06 if spearman else 1.0) / (n - 3))
    z, half = math.atanh(max(min(r, 1 - 1e-12), -1 + 1e-12)), norm.ppf((1 + level) / 2) * se
    return math.tanh(z - half), math.tanh(z + half)


def max_over_layers_test(scores: torch.Tensor, y: torch.Tensor, metric: Callable, *,
                         clusters: "Sequence | None" = None, n_perm: int = 1000, seed: int = 0) -> dict:
    """Is any layer above chance? The observed maximum over layers of ``metric(scores[l], y)``
    against its distribution when the labels are permuted, so the p-value accounts for choosing
    the best of all layers. With ``clusters``: when every cluster holds one label (an entity with
    one property), whole clusters swap labels; when clusters mix labels (true and false statements
    about one entity), labels are permuted within each cluster, so each entity keeps its mix.

    Returns ``{"max": observed max, "layer": its index, "p_value": ..., "null_95": 95th percentile
    of the permuted maxima, "permutation": "rows" | "clusters" | "within clusters"}``."""
    y = torch.as_tensor(y)
    observed = torch.as_tensor(metric(scores, y), dtype=torch.float64)  # [layers]
    groups = _clusters(clusters, len(y))
    y_np = y.numpy()
    pure = all(len(set(y_np[g].tolist())) == 1 for g in groups)
    mode = "rows" if clusters is None else ("clusters" if pure else "within clusters")
    rng = np.random.default_rng(seed)
    if mode == "within clusters":
        def permuted() -> np.ndarray:
            out = y_np.copy()
            for g in groups:
                if len(g) > 1:
                    out[g] = y_np[rng.permutation(g)]
            return out
    else:
        labels = np.array([int(y_np[g[0]]) for g in groups])
        group_of = np.empty(len(y), dtype=np.int64)  # row -> its cluster
        for c, g in enumerate(groups):
            group_of[g] = c

        def permuted() -> np.ndarray:
            return rng.permutation(labels)[group_of]
    maxima = np.empty(n_perm)
    for i in range(n_perm):
        maxima[i] = float(torch.as_tensor(metric(scores, torch.as_tensor(permuted(), dtype=y.dtype))).max())
    best = float(observed.max())
    return {"max": best, "layer": int(observed.argmax()), "p_value": float((1 + (maxima >= best).sum()) / (1 + n_perm)),
            "null_95": float(np.quantile(maxima, 0.95)), "permutation": mode}
