import math

import pandas as pd
import pytest

from interp.stats import rate_ci, with_rate_ci


def _wilson(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(0, 16), (3, 16), (12, 16), (16, 16), (50, 52), (1, 1)])
def test_rate_ci_is_the_wilson_interval(k, n):
    lo, hi = rate_ci(k, n)
    assert (lo, hi) == pytest.approx(_wilson(k, n), abs=1e-9)
    assert 0 <= lo <= k / n <= hi <= 1


def test_with_rate_ci_marks_only_rates_and_names_bad_input():
    frame = pd.DataFrame({"measure": ["refuses", "KL"], "value": [0.75, 0.4], "n": [16, 16]})
    out = with_rate_ci(frame, is_rate=lambda r: r.measure != "KL")
    assert out.ci_low[0] == pytest.approx(_wilson(12, 16)[0]) and math.isnan(out.ci_low[1])
    assert math.isnan(rate_ci(0, 0)[0])
    with pytest.raises(ValueError, match="k must be in"):
        rate_ci(5, 4)
