"""Uncertainty for the rates interp reports: Wilson score intervals (scipy's implementation).

Example::

    rate_ci(12, 16)                        # (0.5, 0.89...): 95% Wilson interval of 12 of 16
    with_rate_ci(frame)                    # adds ci_low / ci_high to rows whose value is a rate of n
"""

import math

import pandas as pd
from scipy.stats import binomtest

__all__ = ["rate_ci", "with_rate_ci"]


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
