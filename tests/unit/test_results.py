"""Every result class follows one protocol: to_frame() (DataFrame), summary() (JSON-ready dict),
figure() (a plotly figure that plots the numbers), a one-line __repr__ and an HTML view."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from interp.align.recipe import RecipeResult
from interp.diffing import knowledge_by_popularity
from interp.diffing.represent import SimilarityResult
from interp.diffing.shallow import ShiftResult
from interp.diffing.weights import WeightDeltaResult
from interp.lens import LensResult
from interp.patching.sweep import PatchResult
from interp.probes import ProbeResult, evaluate_probes
from interp.results import Result
from interp.workflows import RefusalResult, SteeringResult


def _lens():
    rows = [{"model": m, "example": e, "layer": L, "rank": r, "prob": 1 / r, "logit": 0.0}
            for m, base in (("base", 1), ("aligned", 5)) for e in range(2) for L, r in ((0, 50), (1, base))]
    return LensResult(pd.DataFrame(rows))


def _probes():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(2, 40, 8, generator=g), torch.arange(40) % 2
    X[:, y == 1, 0] += 2.0
    frame, probes = evaluate_probes(X[:, :30], y[:30], X[:, 30:], y[30:], model="base", layers=[0, 1], n_boot=10)
    return ProbeResult(frame, {"base": probes})


def _popularity():
    rng = np.random.default_rng(0)
    pop = 10 ** rng.uniform(2, 8, 400)
    known = rng.random(400) < 1 / (1 + np.exp(-(-5 + np.log10(pop))))
    return knowledge_by_popularity(pd.DataFrame({"category": np.where(known, "HighlyKnown", "Unknown"),
                                                 "popularity": pop, "model": "base"}), n_bins=4)


CASES = {
    "lens": _lens,
    "patch": lambda: PatchResult(torch.tensor([[0.1, 0.5], [0.2, 0.9]]), [0, 1], ["span_last", "last"], 0.05,
                                 "base->aligned"),
    "steering": lambda: SteeringResult(pd.DataFrame({"scale": [0.0, 0.0, 2.0, 2.0], "measure": ["refusal", "kl"] * 2,
                                                     "value": [0.1, 0.0, 0.8, 0.4], "n": [10] * 4}), layer=3),
    "refusal": lambda: RefusalResult(4, torch.zeros(6, 8), pd.DataFrame({"layer": [3, 4], "refusal_rate_ablated": [0.5, 0.1],
                                                                          "kl": [0.1, 0.05]}),
                                     pd.DataFrame({"measure": ["refusal_ablated", "refusal_induced"], "value": [0.12, 0.75],
                                                   "n": [16, 16]})),
    "similarity": lambda: SimilarityResult(pd.DataFrame({"layer": [0, 1, 2], "cosine": [0.99, 0.95, 0.9],
                                                         "cka": [0.98, 0.91, 0.93], "rel_diff": [0.01, 0.1, 0.2],
                                                         "tokens": [30] * 3})),
    "popularity": _popularity,
    "weights": lambda: WeightDeltaResult(pd.DataFrame({"name": ["a", "b"], "layer": [0, 1], "module": ["q", "o"],
                                                       "shape": ["(4, 4)"] * 2, "norm": [1.0, 0.5], "rel_norm": [0.1, 0.05],
                                                       "effective_rank": [2.0, 1.5], "rank90": [2, 1]}),
                                         {"a": np.array([1.0, 0.5, 0.01]), "b": np.array([1.0, 0.1, 0.0])}),
    "shift": lambda: ShiftResult(pd.DataFrame({"prompt": [0, 0, 1], "position": [0, 1, 0], "token": [5, 6, 5],
                                               "token_text": ["I", ".", "I"], "kl": [2.0, 0.5, 1.5], "base_rank": [40, 1, 2],
                                               "base_prob": [0.01, 0.9, 0.3], "aligned_prob": [0.9, 0.9, 0.8],
                                               "shift_class": ["shifted", "unshifted", "marginal"],
                                               "is_stop": [False, True, False]}), ["I.", "I"]),
    "recipe": lambda: RecipeResult(Path("adapter"), pd.DataFrame({"measure": ["refuses chemistry", "says I don't know"],
                                                                  "value": [0.95, 0.8], "n": [20, 30],
                                                                  "target": [">= 0.90", ">= 0.70"]}), {}),
    "probes": _probes,
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_result_follows_the_protocol(name):
    result = CASES[name]()
    assert isinstance(result, Result)
    frame = result.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) > 0
    summary = result.summary()
    assert isinstance(summary, dict) and summary
    json.dumps(summary)  # JSON-ready
    fig = result.figure()
    assert len(fig.data) > 0
    r = repr(result)
    assert r.startswith(type(result).__name__ + "(") and "\n" not in r and len(r) < 400
    assert "<" in result._repr_html_()


def test_summaries_hold_the_headline_numbers():
    assert CASES["patch"]().summary()["best_value"] == pytest.approx(0.9)
    assert CASES["patch"]().summary()["best_layer"] == 1
    lens = CASES["lens"]().summary()
    assert lens["base_median_rank_last_layer"] == 1 and lens["aligned_median_rank_last_layer"] == 5
    assert CASES["similarity"]().summary()["min_cka_layer"] == 1
    assert CASES["refusal"]().summary() == {"layer": 4, "refusal_ablated": 0.12, "refusal_induced": 0.75}
    frame, probes = CASES["probes"]()  # unpacks like the tuple it replaced
    assert isinstance(frame, pd.DataFrame) and "base" in probes
