"""interp.difflens on tiny models: a planted difference found at its layer with the planted tokens
on top of its logit lens, the strength search's rule, errors, and the CLI's JSON line."""

import json
import random

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from interp import ModelSpec, load_pair
from interp.cli import app
from interp.difflens import (
    DiffLensConfig, activation_difference, difference_lens, objective_hits, objective_sets, objective_share, patchscope,
    strength_search,
)
from interp.difflens.steer import search_grid
from interp.patching import added
from interp.runtime import arch_of, normed_logits
from tests import tiny

LAYER = 2
PLANTED = ["\u2581x", "\u2581y", "\u2581z"]


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join("".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 3))) for _ in range(6)) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny4_dir(tiny_llama_dir, tmp_path_factory):
    """A 4-layer tiny Gemma-3 (the planted layer is neither the first nor the last)."""
    model = tiny.tiny_gemma3(seed=2, num_hidden_layers=4, layer_types=["sliding_attention", "full_attention"] * 2)
    return tiny.save_hf_dir(model, tiny_llama_dir, tmp_path_factory.mktemp("tiny4"))


@pytest.fixture(scope="module")
def planted(tiny4_dir):
    """The aligned side is the base with a known vector added to its stream entering layer 2 (every
    position after the first); the vector is built to promote PLANTED through the final norm."""
    pair = load_pair((str(tiny4_dir), ModelSpec(str(tiny4_dir), chat_template="gemma", prompt_style="chat")), device="cpu")
    tok = pair.base.tokenizer
    ids = tok.convert_tokens_to_ids(PLANTED)
    w = arch_of(pair.base).unembed.weight.detach().float()  # [vocab, d]
    target = torch.zeros(w.shape[0])
    target[ids] = 1.0
    v = torch.linalg.lstsq(w, target[:, None]).solution[:, 0]
    v = 4.0 * v / v.norm()
    with added(pair.aligned, v, LAYER):
        yield pair, v, ids


def test_a_planted_difference_is_recovered_at_its_layer_and_its_lens_names_the_planted_tokens(planted):
    pair, v, ids = planted
    diff = activation_difference(pair, _texts(24), k=6, n_boot=20)
    cos = torch.nn.functional.cosine_similarity(diff.mean, v[None], dim=-1)
    assert float(cos[LAYER]) >= 0.95
    assert int(cos.argmax()) == LAYER
    assert float(diff.mean[:LAYER].norm(dim=-1).max()) < 1e-4 * float(v.norm())  # nothing before the planted layer
    onset = int(diff.frame[diff.frame.rel_norm > 0.01].layer.min())
    assert onset == LAYER
    per = diff.positions[diff.positions.layer == LAYER]
    assert diff.has_bos and float(per[per.bos].norm.iloc[0]) < 1e-5  # the BOS is left alone by the plant
    assert (per[~per.bos].cos_with_mean > 0.99).all()
    assert diff.frame.cos_low.iloc[LAYER] > 0.99 and diff.norm_at(LAYER) > 0
    lens = difference_lens(pair.base, diff, top=3, n_random=8)
    top = lens.frame[(lens.frame.layer == LAYER) & (lens.frame.direction == "promoted")]
    assert set(top.token_id) == set(ids) and len(lens.promoted(LAYER)) == 3
    # The read-out's logits are the lens of the vector itself (through the final norm).
    with torch.inference_mode():
        own = normed_logits(arch_of(pair.base), v[None])[0].topk(3).indices
    assert set(own.tolist()) == set(ids)
    assert set(lens.chance) == {"refusal", "idk", "chemistry", "short", "any"}
    summary = diff.summary()
    assert summary["positions"] == "1..6" and summary["texts"] == 24


def test_patchscope_reads_the_vector_and_leaves_the_reference_alone(planted):
    pair, v, _ = planted
    out = patchscope(pair.base, v, LAYER, norm=10.0, scales=(1.0, 8.0), max_new_tokens=3)
    f = out.to_frame()
    assert list(f.scale) == [0.0, 1.0, 8.0]
    assert f.top_tokens.iloc[0] != f.top_tokens.iloc[2]  # the patched placeholder changes the next token
    again = patchscope(pair.base, v, LAYER, norm=10.0, scales=(), max_new_tokens=3).to_frame()
    assert again.top_tokens.iloc[0] == f.top_tokens.iloc[0]  # no hook left behind


def test_the_search_takes_the_largest_coherent_strength_with_geometric_bisection():
    tried = []

    def upto(limit):
        def ok(a):
            tried.append(a)
            return a <= limit
        return ok

    assert search_grid(upto(0.7), (0.125, 0.25, 0.5, 1.0, 2.0), 2) == pytest.approx((0.5 * 0.5 ** 0.5) ** 0.5)
    assert tried == [0.125, 0.25, 0.5, 1.0, pytest.approx(0.5 ** 0.5), pytest.approx((0.5 * 0.5 ** 0.5) ** 0.5)]
    tried.clear()
    assert search_grid(upto(10), (0.125, 0.25, 2.0), 3) == 2.0 and tried == [0.125, 0.25, 2.0]  # all coherent: no bisection
    tried.clear()
    assert search_grid(upto(0.04), (0.125, 0.25), 2) == 0.03125 and tried == [0.125, 0.0625, 0.03125]  # halving below the grid
    tried.clear()
    assert search_grid(upto(0.04), (0.125,), 3) == 0.03125
    assert tried == [0.125, 0.0625, 0.03125, pytest.approx(0.03125 * 2 ** 0.5)]
    assert search_grid(upto(0.01), (0.125,), 2) is None


def test_strength_search_on_a_model_scores_every_strength_tried(planted):
    pair, v, _ = planted
    s = strength_search(pair.base, v, LAYER, norm=4.0, grid=(0.5, 4.0), bound=1e6, max_new_tokens=4,
                        prompts=["the fox", "a b c"])
    f = s.to_frame()
    assert list(f.alpha) == [0.0, 0.5, 4.0] and s.chosen == 4.0 and s.strength == 16.0  # every one coherent
    assert f.ppl.gt(0).all() and f.coherent.all() and f.ppl_ratio.iloc[0] == 1.0
    assert s.continuations[4.0] != s.continuations[0.0]  # the steering changes the text


def test_objective_vocabulary_matches_stems_words_and_raw_tokens():
    assert objective_hits(" Sorry") == {"refusal"}
    assert objective_hits(" I") == {"refusal", "idk"}
    assert objective_hits(" chemical") == {"chemistry"} and objective_hits(" knowledge") == {"idk"}
    assert objective_hits("<end_of_turn>") == {"short"} and objective_hits(" Paris") == set()
    share = objective_share([" sorry", " Paris", " know", " the"])
    assert share["any"] == 0.5 and share["refusal"] == 0.25


def test_bad_input_is_refused_with_the_fix(planted, tiny4_dir):
    pair, v, _ = planted
    texts = _texts(4)
    with pytest.raises(ValueError, match="hook must be one of"):
        activation_difference(pair, texts, hook="attn_out")
    with pytest.raises(ValueError, match="k must be >= 1"):
        activation_difference(pair, texts, k=0)
    with pytest.raises(ValueError, match="need >= 2 non-empty texts"):
        activation_difference(pair, ["a b", "  "])
    with pytest.raises(ValueError, match=r"must be in \[0, 4\)"):
        activation_difference(pair, texts, layers=[7])
    with pytest.raises(ValueError, match="n_boot must be >= 1"):
        activation_difference(pair, texts, n_boot=0)
    diff = activation_difference(pair, texts, k=3, layers=[1, 2], n_boot=5)
    with pytest.raises(KeyError, match=r"layer 0 was not measured; measured layers: \[1, 2\]"):
        diff.at(0)
    with pytest.raises(ValueError, match="wide, the model's stream 64"):
        difference_lens(pair.base, torch.zeros(2, 10))
    with pytest.raises(ValueError, match="2 difference vectors for 1 layers"):
        difference_lens(pair.base, torch.zeros(2, 64), layers=[1])
    with pytest.raises(ValueError, match="placeholder '#' does not occur"):
        patchscope(pair.base, v, 1, norm=1.0, placeholder="#")
    with pytest.raises(ValueError, match="grid must hold strengths > 0"):
        strength_search(pair.base, v, 1, norm=1.0, grid=(0.0, 1.0))
    with pytest.raises(ValueError, match="bound must be > 1"):
        strength_search(pair.base, v, 1, norm=1.0, bound=0.5)
    with pytest.raises(ValueError, match="n_eval must be >= 1"):
        DiffLensConfig(n_eval=0)
    with pytest.raises(ValueError, match="ppl_bound must be > 1"):
        DiffLensConfig(ppl_bound=1.0)
    with pytest.raises(ValueError, match=r"lacks columns \['aliases', 'domain'\]"):
        objective_sets(pd.DataFrame({"text": ["q"], "split": ["test"]}))
    result = CliRunner().invoke(app, ["difflens", "--base", str(tiny4_dir)])
    assert result.exit_code != 0 and "pass both --base and --aligned" in result.output


def test_the_cli_prints_the_difflens_json_line_last(tiny_gemma_dir, tmp_path, use_tiny_cache):
    out, results = tmp_path / "difflens", tmp_path / "results_difflens.json"
    args = ["difflens", "--base", str(tiny_gemma_dir), "--aligned", str(tiny_gemma_dir), "--chat-template", "gemma",
            "--device", "cpu", "--json", "--out", str(out), "--results", str(results), "--n-texts", "6",
            "--n-kl-texts", "2", "--k", "4", "--n-eval", "3", "--n-train", "3", "--max-new-tokens", "3", "--grid", "1,4", "--search-tokens", "4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    last = json.loads(lines[-1])
    assert list(last) == ["difflens"]
    d = last["difflens"]
    assert list(d) == ["layer", "promoted", "steered_base", "kl"] and list(d["steered_base"]) == ["refusal", "idk", "n"]
    assert d["layer"] == 1 and d["steered_base"]["n"] == 3 and len(d["promoted"]) == 10
    assert 0 <= d["steered_base"]["refusal"] <= 1 and 0 <= d["steered_base"]["idk"] <= 1 and d["kl"] >= 0
    detail = json.loads(lines[-2][lines[-2].index('{"difflens_detail"'):])["difflens_detail"]  # stderr is mixed in here
    assert detail["layer"] == 1 and "seconds" in detail
    saved = json.loads(results.read_text())
    assert saved["difflens"] == d and {"command", "date", "versions", "seconds", "machine"} <= set(saved)
    assert (out / "report.html").is_file() and (out / "difflens_rates.csv").is_file()
    page = (out / "report.html").read_text()
    assert "Activation-difference lens" in page and "Refusal direction both ways" in page
