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


def test_cluster_bootstrap_is_wider_when_rows_repeat_within_clusters():
    import torch

    from interp.probes.metrics import accuracy
    from interp.stats import cluster_bootstrap_ci

    g = torch.Generator().manual_seed(0)
    y_ent = torch.randint(0, 2, (40,), generator=g)
    s_ent = torch.where(torch.rand(40, generator=g) < 0.75, y_ent * 2 - 1, 1 - y_ent * 2).float()
    y, scores = y_ent.repeat_interleave(5), s_ent.repeat_interleave(5)[None]  # 5 rows per entity
    entities = [str(i // 5) for i in range(200)]
    rows = cluster_bootstrap_ci(accuracy, scores, y, None, n_boot=400)
    clustered = cluster_bootstrap_ci(accuracy, scores, y, entities, n_boot=400)
    width = lambda ci: float(ci[1][0] - ci[0][0])  # noqa: E731
    assert width(clustered) > 1.7 * width(rows)  # ~sqrt(5) wider: 40 independent entities, not 200 rows
    with pytest.raises(ValueError, match="one per row"):
        cluster_bootstrap_ci(accuracy, scores, y, entities[:10])


def test_max_over_layers_test_accounts_for_picking_the_best_layer():
    import torch

    from scipy.stats import binomtest

    from interp.probes.metrics import accuracy
    from interp.stats import max_over_layers_test

    g = torch.Generator().manual_seed(1)
    # 18 layers of chance, 30 replicates: the best layer looks good on its own (one-layer binomial
    # p < 0.05 in most replicates), the max-over-layers test rejects at about its nominal 5%.
    p_values, naive = [], []
    for _ in range(30):
        y = torch.randint(0, 2, (120,), generator=g)
        null = max_over_layers_test(torch.randn(18, 120, generator=g), y, accuracy, n_perm=200)
        p_values.append(null["p_value"])
        naive.append(binomtest(round(null["max"] * 120), 120, 0.5, alternative="greater").pvalue)
    assert sum(p < 0.05 for p in p_values) <= 5 and sum(p < 0.05 for p in naive) >= 10
    y = torch.randint(0, 2, (120,), generator=g)
    noise = torch.randn(18, 120, generator=g)
    signal = noise.clone()
    signal[7] += 1.5 * (y * 2 - 1)
    real = max_over_layers_test(signal, y, accuracy, n_perm=300)
    assert real["layer"] == 7 and real["p_value"] < 0.01 and real["max"] > real["null_95"]


def test_correlation_ci_matches_scipy_and_frame_bootstrap_resamples_groups():
    import numpy as np
    import pandas as pd
    from scipy.stats import pearsonr

    from interp.stats import correlation_ci, frame_bootstrap_ci

    rng = np.random.default_rng(0)
    x = rng.normal(size=36)
    y = x + rng.normal(size=36)
    ref = pearsonr(x, y).confidence_interval(0.95)
    lo, hi = correlation_ci(float(np.corrcoef(x, y)[0, 1]), 36)
    assert lo == pytest.approx(ref.low, abs=1e-9) and hi == pytest.approx(ref.high, abs=1e-9)
    assert all(math.isnan(v) for v in correlation_ci(0.5, 3))  # too few pairs
    slo, shi = correlation_ci(0.5, 36, spearman=True)
    plo, phi = correlation_ci(0.5, 36)
    assert shi - slo > phi - plo  # the Spearman interval is wider than Pearson's at the same r
    # 20 responses of 10 tokens; a response's tokens share one outcome, so the interval of the rate
    # is that of 20 draws, not 200.
    tokens = pd.DataFrame({"prompt": np.repeat(np.arange(20), 10), "x": np.repeat(rng.random(20) < 0.5, 10)})
    ci = frame_bootstrap_ci(lambda t: {"rate": t.x.mean()}, tokens, "prompt", n_boot=400)["rate"]
    row_ci = frame_bootstrap_ci(lambda t: {"rate": t.x.mean()}, tokens.assign(row=np.arange(200)), "row", n_boot=400)["rate"]
    assert (ci[1] - ci[0]) > 2.5 * (row_ci[1] - row_ci[0])
    with pytest.raises(ValueError, match="no column 'response'"):
        frame_bootstrap_ci(lambda t: {}, tokens, "response")
