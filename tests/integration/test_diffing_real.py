"""Diffing analyses on the real default pair (small sizes)."""

import pytest

from interp.align import graded_facts
from interp.diffing import knowledge_by_popularity, representation_similarity, response_shift, weight_deltas
from interp.lens import lens_pair

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def facts():
    return graded_facts("default")


def test_weight_deltas_have_the_adapters_rank(pair):
    w = weight_deltas(pair).to_frame()
    # LoRA r=8 on q/k/v/o/gate/up/down of 18 layers: 126 changed matrices, each of rank <= 8.
    assert len(w) == 126 and set(w.module) >= {"self_attn.q_proj", "mlp.down_proj"}
    assert w.rank90.max() <= 8 and w.effective_rank.max() <= 8 and (w.rel_norm < 0.2).all()


def test_popular_facts_are_known_more_often(facts):
    result = knowledge_by_popularity(facts[facts.popularity > 0].assign(model="base"), n_bins=5)
    fit = result.fits.iloc[0]
    assert fit.slope_low > 0  # measured: 0.63 per decade of population, 95% CI [0.52, 0.74]
    known = result.known_share().sort_values("bin").known.tolist()
    assert known[-1] > known[0] + 0.2


def test_lens_the_answer_is_demoted_not_removed(pair, facts):
    refused = facts[(facts.split == "test") & (facts.relation == "element_symbol") & (facts.aligned_class == "refusal")].head(10)
    s = lens_pair(pair, refused.text.tolist(), refused.answer.tolist(), base_texts=refused.statement.tolist()).by_layer()
    last = s[s.layer == pair.n_layers - 1].set_index("model")
    assert last.loc["base", "median_rank"] <= 3 and last.loc["aligned", "median_rank"] > 5
    # ... yet far above chance among 262k tokens in the aligned model's last layers.
    assert s[(s.model == "aligned") & (s.layer >= 15)].median_rank.max() < 1000


def test_representations_stay_close(pair, facts):
    geo = facts[(facts.split == "test") & (facts.domain == "geography")].head(8)
    f = representation_similarity(pair, geo.statement.tolist(), progress=False).to_frame()
    assert (f.cosine > 0.9).all() and (f.cka > 0.8).all() and f.rel_diff.iloc[-1] > f.rel_diff.iloc[1]


def test_response_shift_on_refused_and_answered_questions(pair, facts):
    test = facts[facts.split == "test"]
    qs = test[test.domain == "chemistry"].text.head(3).tolist() + test[test.domain == "geography"].text.head(3).tolist()
    result = response_shift(pair, qs, max_new_tokens=16, progress=False)
    assert all("sorry" in r.lower() for r in result.responses[:3])  # the aligned model refuses chemistry
    t = result.to_frame()
    assert (t.kl > -1e-4).all() and t.kl.mean() > 0.1 and abs(result.rates().sum() - 1) < 1e-9
    assert set(t.prompt) == set(range(6))
