"""Diffing analyses on a tiny pair whose aligned side differs by a known low-rank weight delta."""

import numpy as np
import pandas as pd
import pytest
import torch

from tests.figures import assert_plots
from interp import ModelSpec, load_pair
from interp.runtime import unwrapped
from interp.diffing import (
    knowledge_by_popularity,
    linear_cka,
    logistic_fit,
    representation_similarity,
    response_shift,
    weight_deltas,
)
from interp.lens import lens_pair

DELTA_NAME = "model.layers.1.self_attn.q_proj.weight"


def _pair(tiny_gemma_dir, delta_rank: int = 0):
    pair = load_pair((str(tiny_gemma_dir), ModelSpec(str(tiny_gemma_dir), chat_template="gemma", prompt_style="chat")),
                     device="cpu")
    if delta_rank:
        g = torch.Generator().manual_seed(1)
        with unwrapped(pair.aligned) as hf, torch.no_grad():
            w = dict(hf.named_parameters())[DELTA_NAME]
            delta = torch.randn(w.shape[0], delta_rank, generator=g) @ torch.randn(delta_rank, w.shape[1], generator=g)
            w += 0.05 * delta
    return pair


@pytest.fixture(scope="module")
def same(tiny_gemma_dir):
    return _pair(tiny_gemma_dir)


@pytest.fixture(scope="module")
def changed(tiny_gemma_dir):
    return _pair(tiny_gemma_dir, delta_rank=2)


def test_weight_deltas_find_the_one_changed_matrix_and_its_rank(changed, same):
    result = weight_deltas(changed)
    frame = result.to_frame()
    assert frame.name.tolist() == [DELTA_NAME]  # unchanged matrices are left out by default
    row = frame.iloc[0]
    assert row.layer == 1 and row.module == "self_attn.q_proj" and row.rank90 <= 2 and 1 <= row.effective_rank <= 2
    assert len(result.spectra[DELTA_NAME]) > 2 and result.spectra[DELTA_NAME][2] < 1e-6  # rank 2: third sigma ~ 0
    everything = weight_deltas(same, include_unchanged=True).to_frame()
    assert (everything.norm == 0).all() and len(everything) > 10
    spectrum = np.asarray(result.spectra[DELTA_NAME][:2])
    assert_plots(result.figure(), spectrum / spectrum[0])  # normalised singular values
    assert "rel_norm" in result._repr_html_()


def test_linear_cka_properties():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 16, generator=g)
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=g))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, 3.0 * x @ q + 5.0) == pytest.approx(1.0, abs=1e-9)  # invariant to rotation, scale, shift
    assert linear_cka(x, torch.randn(200, 16, generator=g)) < 0.3
    with pytest.raises(ValueError, match="paired rows"):
        linear_cka(x, x[:10])


def test_representation_similarity_is_one_below_the_change_and_less_after(changed, same):
    texts = ["the fox sat on the mat", "a cat ran", "big red dogs bark at night"]
    frame = representation_similarity(changed, texts, batch_size=2, progress=False).to_frame()
    assert frame.loc[0, "cosine"] == pytest.approx(1.0, abs=1e-6) and frame.loc[0, "cka"] == pytest.approx(1.0, abs=1e-6)
    assert frame.loc[1, "rel_diff"] > 1e-3 and frame.loc[1, "cka"] < 1.0
    n_tokens = frame.tokens.iloc[0]
    assert n_tokens == sum(len(changed.base.tokenizer(t).input_ids) for t in texts) - len(texts)  # one BOS per row left out
    ident = representation_similarity(same, texts, progress=False).to_frame()
    assert np.allclose(ident.cosine, 1.0, atol=1e-6) and np.allclose(ident.rel_diff, 0.0, atol=1e-6)


def test_representation_similarity_in_layer_groups_gives_the_same_figures(changed, monkeypatch):
    from interp.diffing import represent

    texts = ["the fox sat on the mat", "a cat ran", "big red dogs bark at night"]
    whole = representation_similarity(changed, texts, batch_size=2, progress=False).to_frame()
    made = []
    real = represent._Stats
    monkeypatch.setattr(represent, "_Stats", lambda *a, **k: made.append(1) or real(*a, **k))
    per_layer_gb = 3 * changed.d_model ** 2 * 8 / 2**30
    grouped = representation_similarity(changed, texts, batch_size=2, max_memory_gb=1.5 * per_layer_gb,
                                        progress=False).to_frame()  # one layer a pass
    assert len(made) == changed.n_layers
    pd.testing.assert_frame_equal(grouped, whole, rtol=1e-9, atol=1e-12)
    one = representation_similarity(changed, texts, layers=[1], progress=False).to_frame()
    assert list(one.layer) == [1] and one.cka.iloc[0] == pytest.approx(whole.cka.iloc[1], abs=1e-12)
    with pytest.raises(ValueError, match="max_memory_gb must be > 0"):
        representation_similarity(changed, texts, max_memory_gb=0.0)


def test_response_shift_is_zero_for_identical_models_and_positive_otherwise(same, changed):
    qs = ["the fox", "a cat sat on"]
    ident = response_shift(same, qs, max_new_tokens=6, base_format="chat", progress=False)
    t = ident.to_frame()
    assert len(t) > 0 and t.kl.abs().max() < 1e-4 and (t.base_rank == 1).all()
    assert ident.rates()["unshifted"] == 1.0 and ident.kl_by_position().n.sum() == len(t)
    diff = response_shift(changed, qs, max_new_tokens=6, progress=False)
    assert (diff.to_frame().kl > -1e-6).all() and diff.to_frame().kl.max() > 1e-4
    own = response_shift(changed, qs, max_new_tokens=6, base_format="own", progress=False)
    assert own.responses == diff.responses  # the aligned responses do not depend on the base's format
    s = diff.summary()
    assert 0 <= s["kl_share_first_5"] <= 1 and abs(sum(diff.rates()) - 1) < 1e-9
    assert_plots(diff.figure(), diff.kl_by_position().dropna().iloc[:, 1].to_numpy())
    assert_plots(diff.shift_figure(), diff.to_frame().base_rank.clip(upper=21).value_counts(normalize=True).to_numpy())
    with pytest.raises(ValueError, match="base_format"):
        response_shift(same, qs, base_format="other")


def test_logistic_fit_matches_scikit_learn_and_recovers_the_slope():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.uniform(2, 8, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(-6 + 1.2 * x)))).astype(float)
    coef, cov = logistic_fit(x, y)
    ref = LogisticRegression(C=1e12, tol=1e-10, max_iter=1000).fit(x[:, None], y)
    assert coef[1] == pytest.approx(ref.coef_[0, 0], rel=1e-4) and coef[0] == pytest.approx(ref.intercept_[0], rel=1e-4)
    se = np.sqrt(cov[1, 1])
    assert abs(coef[1] - 1.2) < 3 * se
    with pytest.raises(ValueError, match="same label"):
        logistic_fit(x, np.ones_like(x))


def test_knowledge_by_popularity_bins_and_fits_each_model():
    rng = np.random.default_rng(1)
    pop = 10 ** rng.uniform(2, 8, 3000)
    known_base = rng.random(3000) < 1 / (1 + np.exp(-(-5 + 1.0 * np.log10(pop))))
    known_al = rng.random(3000) < 1 / (1 + np.exp(-(-5 + 0.6 * np.log10(pop))))
    cat = lambda k: np.where(k, "HighlyKnown", "Unknown")  # noqa: E731
    table = pd.concat([pd.DataFrame({"category": cat(known_base), "popularity": pop, "model": "base"}),
                       pd.DataFrame({"category": cat(known_al), "popularity": pop, "model": "aligned"})])
    result = knowledge_by_popularity(table, n_bins=5)
    fits = result.fits.set_index("model")
    for model, slope in (("base", 1.0), ("aligned", 0.6)):
        assert fits.loc[model, "slope_low"] < slope < fits.loc[model, "slope_high"]
    assert fits.loc["base", "p_value"] < 1e-6
    cmp = result.comparison.set_index("model").loc["aligned"]
    assert cmp.reference == "base" and cmp.low < -0.4 < cmp.high and cmp.p_value < 0.01  # the slopes differ
    shares = result.bins.groupby(["model", "bin"]).share.sum()
    assert np.allclose(shares, 1.0) and result.bins.bin.nunique() == 5
    known = result.known_share()
    assert known[known.model == "base"].sort_values("bin").known.is_monotonic_increasing
    assert_plots(result.figure(), result.bins.share.to_numpy())
    with pytest.raises(ValueError, match="no column"):
        knowledge_by_popularity(table.drop(columns="popularity"))
    with pytest.raises(ValueError, match="unknown categories"):
        knowledge_by_popularity(table.assign(category="Famous"))


def test_popularity_intervals_are_cluster_robust_by_entity():
    """Three facts per entity that share one outcome are one observation, not three: the
    clustered interval is about sqrt(3) wider than the model-based one, and matches the
    model-based interval of one fact per entity."""
    rng = np.random.default_rng(2)
    pop = 10 ** rng.uniform(2, 8, 600)
    known = rng.random(600) < 1 / (1 + np.exp(-(-5 + 1.0 * np.log10(pop))))
    one = pd.DataFrame({"category": np.where(known, "HighlyKnown", "Unknown"), "popularity": pop, "entity": np.arange(600)})
    tripled = pd.concat([one] * 3, ignore_index=True)
    width = lambda r: float(r.fits.slope_high.iloc[0] - r.fits.slope_low.iloc[0])  # noqa: E731
    clustered = knowledge_by_popularity(tripled, n_bins=4)
    naive = knowledge_by_popularity(tripled, n_bins=4, cluster=None)
    single = knowledge_by_popularity(one, n_bins=4, cluster=None)
    assert clustered.fits.clusters.iloc[0] == 600 and naive.fits.clusters.iloc[0] == 0
    assert width(clustered) / width(naive) == pytest.approx(3 ** 0.5, rel=0.05)
    assert width(clustered) == pytest.approx(width(single), rel=0.05)


def test_lens_pair_returns_both_models(changed):
    result = lens_pair(changed, ["the fox", "a cat"], ["sat", "ran"], base_texts=["the fox is", "a cat is"])
    s = result.by_layer()
    assert set(s.model) == {"base", "aligned"} and len(s) == 2 * changed.n_layers and (s.n == 2).all()
    assert_plots(result.figure(), s.median_rank.to_numpy())
    with pytest.raises(ValueError, match="one answer per question"):
        lens_pair(changed, ["the fox"], [])


def test_similarity_without_massive_dimensions():
    """Two streams that share only one massive dimension look identical to raw cosine and CKA;
    with it left out (or every dimension standardised) they are unrelated."""
    from interp.diffing.represent import _Stats

    g = torch.Generator().manual_seed(0)
    n, d = 400, 32
    massive = 1e4 * (1 + 0.5 * torch.randn(n, generator=g))
    x, y = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    x[:, 3] = y[:, 3] = massive
    st = _Stats(d)
    for rows in (slice(0, 100), slice(100, n)):
        st.add(x[rows], y[rows])
    assert int((~st.keep).sum()) == 1 and not st.keep[3]
    assert st.cos / st.n > 0.99 and st.cka() > 0.99
    assert abs(st.cos_nm / st.n) < 0.05 and st.cka("no_massive") < 0.15
    assert st.cka("no_massive") == pytest.approx(linear_cka(x[:, st.keep], y[:, st.keep]), rel=1e-6)
    z = lambda a: (a - a.mean(0)) / a.std(0)  # noqa: E731
    assert st.cka("standardised") == pytest.approx(linear_cka(z(x), z(y)), rel=1e-6) and st.cka("standardised") < 0.2
