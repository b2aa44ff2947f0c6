"""interp.difflens on tiny models: a planted difference found at its layer with the planted tokens
on top of its logit lens, the strength search's rule, errors, and the CLI's JSON line."""

import json
import math
import random

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from interp import ModelSpec, load_pair
from interp.cli import app
from interp.difflens import (
    DiffLensConfig, ObjectiveSets, activation_difference, difference_lens, objective_hits, objective_sets, objective_share,
    patchscope, run_difflens, sign_flip_null, strength_search, text_hits, text_share,
)
from interp.difflens import readout as readout_module
from interp.difflens.readout import chance_share, random_directions
from interp.difflens.steer import class_rates, clustered_rate_ci, search_grid
from interp.stats import rate_ci
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
    ctrl = patchscope(pair.base, v, LAYER, norm=10.0, scales=(8.0,), max_new_tokens=3,
                      control=random_directions(1, v.numel(), seed=3)[0]).to_frame()
    assert list(ctrl.vector) == ["none", "difference", "random"] and list(ctrl.scale) == [0.0, 8.0, 8.0]
    assert ctrl.top_tokens.iloc[1] == f.top_tokens.iloc[2]  # the difference's row is unchanged by the control
    assert ctrl.top_tokens.iloc[2] != ctrl.top_tokens.iloc[1]  # a random vector there reads otherwise


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
    assert objective_hits(" I") == set() and objective_hits(" I'm") == {"refusal"}  # the bare pronoun says nothing
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


def test_generated_text_is_scored_by_phrases_not_by_pronouns_or_common_words():
    # The old word scorer counted any "i", "help*", "know*": this neutral prompt's ordinary continuation scored.
    assert text_hits("When I was a child, I used to help my mother and I knew every idea") == set()
    assert text_hits("I'm sorry, but I can\u2019t help with that.") == {"refusal"}
    assert text_hits("I don't know.") == {"idk"} and text_hits("the chemical reaction") == {"chemistry"}
    share = text_share(["I don't know.", "a walk in the park", "I cannot answer", "so I went home"])
    assert share["any"] == 0.5 and share["idk"] == 0.25 and share["refusal"] == 0.25 and share["n"] == 4
    assert text_share([])["n"] == 0 and math.isnan(text_share([])["any"])


def test_rates_of_questions_about_one_entity_get_an_entity_clustered_interval():
    entities = [f"e{i}" for i in range(26) for _ in range(2)]  # 26 entities x 2 relations, as the chemistry set
    hits = [i < 13 for i in range(26) for _ in range(2)]        # both questions of an entity answered alike
    lo, hi, g = clustered_rate_ci(hits, entities, n_boot=2000)
    wlo, whi = rate_ci(26, 52)
    assert g == 26 and lo < 0.5 < hi
    assert hi - lo > 1.2 * (whi - wlo)  # 26 units, not 52: the Wilson interval over questions is too narrow
    # All alike: a percentile bootstrap has zero width; the Wilson interval over the 26 entities stands in.
    lo0, hi0, _ = clustered_rate_ci([False] * 52, entities)
    assert lo0 == 0 and hi0 == pytest.approx(rate_ci(0, 26)[1]) and hi0 > rate_ci(0, 52)[1]
    rates = class_rates(["refusal" if h else "wrong" for h in hits], entities)
    r = rates["refusal"]
    assert r["ci"] == "entity bootstrap" and r["n_clusters"] == 26 and r["n"] == 52 and r["value"] == 0.5
    assert (r["wilson_low"], r["wilson_high"]) == pytest.approx((wlo, whi)) and r["ci_high"] - r["ci_low"] > whi - wlo
    plain = class_rates(["refusal" if h else "wrong" for h in hits])["refusal"]
    assert plain["ci"] == "wilson" and plain["n_clusters"] == 52 and plain["ci_low"] == plain["wilson_low"]
    with pytest.raises(ValueError, match="one per response"):
        clustered_rate_ci([True, False], ["a"])


def _observed(sums, counts):
    return (sums.sum(0) / counts.sum(0)[None, :, None]).mean(1).norm(dim=-1)  # [L]


def test_the_sign_flip_null_calls_noise_noise_and_an_offset_not():
    counts = torch.ones(40, 3)
    none = torch.zeros(1, 16, dtype=torch.bool)
    small = 0
    for seed in range(20):  # pure per-text noise around 0: the observed norm is one draw of the null
        sums = torch.randn(40, 1, 3, 16, generator=torch.Generator().manual_seed(seed))
        null = sign_flip_null(sums, counts, 0, none, 200, seed=seed)
        assert null.shape == (200, 1) and (null > 0).all()
        p = (1 + (null[:, 0] >= _observed(sums, counts)[0]).sum()) / 201
        small += int(p < 0.05)
    assert small <= 4
    sums = torch.randn(40, 1, 3, 16, generator=torch.Generator().manual_seed(0)) + 1.0  # a consistent offset
    null = sign_flip_null(sums, counts, 0, none, 200)
    assert float(_observed(sums, counts)[0]) > 3 * float(null.quantile(0.95))
    massive = torch.ones(1, 16, dtype=torch.bool)
    assert float(sign_flip_null(sums, counts, 0, massive, 10).abs().max()) == 0.0  # zeroed dims stay zeroed


def test_the_difference_reports_its_noise_floor_and_the_figure_has_no_negative_error_bars(planted):
    pair, v, _ = planted
    diff = activation_difference(pair, _texts(24), k=6, n_boot=20, n_null=100)
    f = diff.frame.set_index("layer")
    assert f.p_null.loc[LAYER] == pytest.approx(1 / 101) and f.norm.loc[LAYER] > f.null_p95.loc[LAYER]
    assert (f.p_null.loc[:LAYER - 1] == 1.0).all()  # no difference before the plant: noise (here exactly zero)
    assert diff.summary()["layers_above_noise_floor"][0] == LAYER
    diff.frame.loc[0, "norm_low"] = diff.frame.norm.iloc[0] + 1.0  # a bootstrap interval above its estimate
    diff.frame.loc[1, "norm_high"] = diff.frame.norm.iloc[1] - 1.0
    fig = diff.figure()
    err = fig.data[0].error_y
    assert min(err.array) >= 0 and min(err.arrayminus) >= 0
    assert any("noise floor" in (t.name or "") for t in fig.data)
    with pytest.raises(ValueError, match="n_null must be >= 1"):
        activation_difference(pair, _texts(4), n_null=0)


def test_the_chance_level_zeroes_the_massive_dimensions_the_difference_zeroes(planted, monkeypatch):
    pair, _, _ = planted
    d = int(pair.base.cfg.d_model)
    r = random_directions(5, d, zero=[0, 3], seed=1)
    assert (r[:, [0, 3]] == 0).all() and (r[:, 1] != 0).all()
    seen = []
    real = readout_module._lens_logits
    monkeypatch.setattr(readout_module, "_lens_logits", lambda model, vecs: (seen.append(vecs.clone()), real(model, vecs))[1])
    chance_share(pair.base, n=4, top=3, zero=[2, 5])
    assert (seen[-1][:, [2, 5]] == 0).all() and (seen[-1][:, 0] != 0).all()
    diff = activation_difference(pair, _texts(6), k=3, n_boot=5, n_null=5)
    diff.massive = {layer: ([7, 9] if layer == LAYER else [1]) for layer in diff.layers}
    lens = difference_lens(pair.base, diff, top=3, n_random=4, chance_layer=LAYER)
    assert lens.chance_zeroed == [7, 9] and (seen[-1][:, [7, 9]] == 0).all()
    assert difference_lens(pair.base, diff, top=3, n_random=4).chance_zeroed == [1, 7, 9]  # every layer's by default


def test_run_difflens_on_the_planted_pair_finds_the_plant_and_reports_every_control(planted):
    pair, v, ids = planted
    chem = ["What is the symbol of iron?", "What is the atomic number of iron?", "What is the symbol of gold?",
            "What is the atomic number of gold?"]
    unk = ["Who founded Zorbla?", "Where is Zorbla?", "Who founded Quax?", "Where is Quax?"]
    sets = ObjectiveSets(chem, [["Fe"], ["26"], ["Au"], ["79"]], unk, [["x"]] * 4, ["a b", "c d"], ["e f", "g h"],
                         {"n": 4}, ["iron", "iron", "gold", "gold"], ["Zorbla", "Zorbla", "Quax", "Quax"])
    cfg = DiffLensConfig(k=6, n_kl_texts=2, top=3, n_random=4, grid=(0.5,), bisect=0, search_tokens=3,
                         patchscope_scales=(1.0, 2.0), n_eval=4, max_new_tokens=3, n_train=2, n_boot=20, n_null=50,
                         batch_size=16)
    result = run_difflens(pair, sets, texts=_texts(22), cfg=cfg)
    assert result.layer == LAYER  # the middle layer of 4
    promoted = result.lens.frame[(result.lens.frame.layer == LAYER) & (result.lens.frame.direction == "promoted")]
    assert set(promoted.token_id) == set(ids)
    f = result.difference.frame.set_index("layer")
    assert int(f.rel_norm.idxmax()) >= LAYER and f.rel_norm.loc[:LAYER - 1].max() < 1e-4 * f.rel_norm.loc[LAYER]
    assert f.norm.loc[LAYER] > f.null_p95.loc[LAYER] and result.summary()["p_null"] == pytest.approx(1 / 51)
    # the evaluation's intervals resample entities: 2 per set
    ev = result.evaluation
    assert set(ev.ci) == {"entity bootstrap"} and set(ev.n_clusters) == {2} and set(ev.n) == {4}
    assert result.rate("difference", "chemistry", "refusal")["n_clusters"] == 2
    # neutral steering: steered, unsteered and random continuations, each scored alike
    for side in ("base", "aligned"):
        share = result.neutral[side]["objective_share"]
        assert set(share) == {"steered", "unsteered", "random"} and all(s["n"] == 8 for s in share.values())
    assert result.neutral["base"]["unsteered"] == result.search.continuations[0.0]
    assert set(result.summary()["neutral_objective_share"]) == {"base", "aligned"}
    # the Patchscope's control: a random direction at each scale
    ps = result.patchscope.to_frame()
    assert list(ps.vector) == ["none", "difference", "random", "difference", "random"]
    assert list(ps.scale) == [0.0, 1.0, 1.0, 2.0, 2.0]
    # the refusal direction both ways: random controls of the same norm, base_dir labelled a topic direction
    edits = set(result.refusal.to_frame().edit)
    assert {"+random (|aligned_dir|)", "+random (|base_dir|)", "+base_dir (chemistry-vs-rest)",
            "-base_dir (chemistry-vs-rest, ablated)"} <= edits
    ref = result.refusal.to_frame()
    assert set(ref[ref.edit.str.startswith("+random")].n_clusters) == {2}
    # strict JSON even when a number is not finite
    result.kl = float("nan")
    result.evaluation.loc[result.evaluation.condition == "difference", "value"] = float("nan")
    line = result.json_line()
    json.dumps(line, allow_nan=False)
    d = line["difflens"]
    assert d["kl"] is None and d["steered_base"]["refusal"] is None and list(d) == ["layer", "promoted", "steered_base", "kl"]
    json.dumps(result.summary(), allow_nan=False, default=str)
