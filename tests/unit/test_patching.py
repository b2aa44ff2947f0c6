import numpy as np
import pytest
import torch
from transformer_lens import patching as tl_patching

from interp import ModelSpec, load_model, load_pair
from interp.patching import (
    attribution_sweep,
    clean_activations,
    TokenMetric,
    clean_resid_pre,
    compare_attribution,
    cross_model_attribution,
    cross_model_sweep,
    final_logits,
    head_sweep,
    hook_sweep,
    logit_diff,
    logits_at,
    resid_pre_sweep,
)
from interp.workflows import steering_sweep
from interp.patching.core import _chunks, metric_of
from interp.prompts import PromptBatch
from tests.figures import assert_plots


@pytest.fixture(scope="module")
def model(tiny_gemma_dir):
    """The tiny Gemma-3 with random norm weights: Gemma initialises them to zero (scale 1), which
    would hide a sweep reading a norm's input or its unscaled output instead of its output."""
    model = load_model(str(tiny_gemma_dir), device="cpu")
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, param in model.original_model.named_parameters():
            if "norm" in name:
                param.copy_(torch.randn(param.shape, generator=g) * 0.5)
    return model


def _batches(B=3, T=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    clean = torch.randint(5, 60, (B, T), generator=g)
    clean[:, 0] = 1
    corrupt = clean.clone()
    corrupt[:, 2] = torch.randint(5, 60, (B,), generator=g)
    mask = torch.ones_like(clean)
    last = {"last": torch.full((B,), T - 1)}
    return PromptBatch(clean, mask, last, [""] * B), PromptBatch(corrupt, mask, dict(last), [""] * B)


def test_sweep_equals_transformer_lens(model):
    clean, corrupt = _batches()
    a, b = 10, 20
    with torch.inference_mode():
        _, cache = model.run_with_cache(clean.input_ids)
    ref = tl_patching.get_act_patch_resid_pre(model, corrupt.input_ids, cache,
                                             lambda lg: (lg[:, -1, a] - lg[:, -1, b]).mean())
    ours = resid_pre_sweep(model, corrupt, clean_resid_pre(model, clean), logit_diff([a] * 3, [b] * 3), max_batch=8)
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max().item() <= 1e-4


def test_packed_sweep_equals_transformer_lens_past_the_sliding_window(model):
    """14 tokens with a sliding window of 8: the packed sweep's masks must apply the window to the
    clean prefix and to each cell's own segment."""
    assert model.original_model.config.sliding_window == 8
    clean, corrupt = _batches(B=2, T=14)
    with torch.inference_mode():
        _, cache = model.run_with_cache(clean.input_ids)
    ref = tl_patching.get_act_patch_resid_pre(model, corrupt.input_ids, cache,
                                             lambda lg: (lg[:, -1, 10] - lg[:, -1, 20]).mean())
    values, metric = clean_resid_pre(model, clean), logit_diff([10] * 2, [20] * 2)
    packed = resid_pre_sweep(model, corrupt, values, metric, packed=True)
    assert (packed - ref).abs().max().item() <= 1e-4
    # A small budget splits each layer's cells over several packed passes: same values.
    split = resid_pre_sweep(model, corrupt, values, metric, packed=True, max_batch=2)
    assert (split - packed).abs().max().item() <= 1e-5
    assert _chunks([14 - p for p in range(14)], 2, 14, 2, 4) != [list(range(14))]


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_packed_sweep_equals_replicated_on_left_padded_rows_and_marked_positions(tiny_gemma_dir, attention):
    """Rows of different lengths (left padding), per-row patch positions, a per-row metric position
    before the end, patches after it: packed == whole prompts replicated (eager: additive float
    masks, sdpa: boolean masks)."""
    model = load_model(str(tiny_gemma_dir), device="cpu")
    model.original_model.set_attn_implementation(attention)
    clean, corrupt = _batches(B=3, T=12, seed=3)
    mask = torch.ones_like(clean.input_ids)
    mask[1, :4] = 0
    mask[2, :9] = 0
    clean = PromptBatch(clean.input_ids, mask, clean.positions, clean.texts)
    corrupt = PromptBatch(corrupt.input_ids, mask, corrupt.positions, corrupt.texts)
    positions = torch.tensor([[2, 5, 10], [7, 4, 11], [11, 11, 11], [0, 0, 0]])
    metric_position = torch.tensor([10, 11, 11])
    values, metric = clean_resid_pre(model, clean), logit_diff([10] * 3, [20] * 3)
    kw = dict(positions=positions, metric_position=metric_position, value_positions=positions.flip(0))
    packed = resid_pre_sweep(model, corrupt, values, metric, packed=True, **kw)
    replicated = resid_pre_sweep(model, corrupt, values, metric, packed=False, **kw)
    assert torch.isfinite(packed).all() and (packed - replicated).abs().max().item() <= 1e-4


@pytest.mark.parametrize("kind", ["resid_mid", "attn_out", "mlp_out", "resid_post"])
def test_packed_hook_sweep_equals_replicated_on_left_padded_rows(model, kind):
    """Patches inside a layer: that layer alone on copies, then the packed sweep from the next one
    (the last layer on copies to the end) == every cell through the whole model."""
    clean, corrupt = _batches(B=3, T=12, seed=4)
    mask = torch.ones_like(clean.input_ids)
    mask[1, :4] = 0
    clean = PromptBatch(clean.input_ids, mask, clean.positions, clean.texts)
    corrupt = PromptBatch(corrupt.input_ids, mask, corrupt.positions, corrupt.texts)
    positions = torch.tensor([[2, 5, 10], [7, 4, 11], [11, 11, 11]])
    values, metric = clean_activations(model, clean, kind), logit_diff([10] * 3, [20] * 3)
    kw = dict(kind=kind, positions=positions, metric_position=torch.tensor([10, 11, 11]), max_batch=6)
    packed = hook_sweep(model, corrupt, values, metric, packed=True, **kw)
    replicated = hook_sweep(model, corrupt, values, metric, packed=False, **kw)
    assert packed.shape == (model.cfg.n_layers, 3)
    assert (packed - replicated).abs().max().item() <= 1e-4 and (packed - packed[:, :1]).abs().max() > 1e-4


def test_packed_is_required_only_when_asked(model, monkeypatch):
    import interp.patching.packed as packed_mod

    clean, corrupt = _batches()
    values, metric = clean_resid_pre(model, clean), logit_diff([10] * 3, [20] * 3)
    expected = resid_pre_sweep(model, corrupt, values, metric, layers=[1])
    monkeypatch.setattr(packed_mod, "packable", lambda arch: None)  # e.g. flash attention
    assert (resid_pre_sweep(model, corrupt, values, metric, layers=[1]) - expected).abs().max().item() <= 1e-4
    with pytest.raises(ValueError, match="packed=True needs eager or sdpa attention"):
        resid_pre_sweep(model, corrupt, values, metric, layers=[1], packed=True)
    with pytest.raises(ValueError, match="packed=True needs eager or sdpa attention"):
        hook_sweep(model, corrupt, clean_activations(model, clean, "attn_out"), metric, kind="attn_out", packed=True)


def test_token_metric_reads_only_its_tokens_and_equals_the_full_logits(model):
    clean, _ = _batches()
    metric = logit_diff([10, 11, 12], [20, 21, 22])
    assert isinstance(metric, TokenMetric) and metric.tokens.tolist() == [[10, 20], [11, 21], [12, 22]]
    with torch.inference_mode():
        hf = model.original_model
        hidden = hf.model(input_ids=clean.input_ids).last_hidden_state[:, -1]
        full = final_logits(hf, hidden)
        expected = (full[[0, 1, 2], [10, 11, 12]] - full[[0, 1, 2], [20, 21, 22]]).mean()
        assert abs(metric_of(hf, hidden[None], metric).item() - expected.item()) <= 1e-5
        assert abs(metric(full[None]).item() - expected.item()) <= 1e-5
    with pytest.raises(ValueError, match="one answer and one other id per prompt"):
        logit_diff([1, 2], [3])
    with pytest.raises(ValueError, match="token ids for 3 prompts"):
        metric(full[None, :2])


def test_clean_resid_pre_equals_run_with_cache(model):
    clean, _ = _batches()
    ours = clean_resid_pre(model, clean)
    with torch.inference_mode():
        _, cache = model.run_with_cache(clean.input_ids)
    for layer in range(model.cfg.n_layers):
        assert (ours[layer] - cache[f"blocks.{layer}.hook_resid_pre"]).abs().max().item() <= 1e-5


def test_patching_with_the_clean_run_reproduces_it(model):
    """Patching the one corrupted position (2) at layer 0 with the clean value restores the clean metric."""
    clean, corrupt = _batches()
    values = clean_resid_pre(model, clean)
    metric = logit_diff([3] * 3, [4] * 3)
    out = resid_pre_sweep(model, corrupt, values, metric, layers=[0], positions=torch.full((1, 3), 2))
    with torch.inference_mode():
        full = model(clean.input_ids)[:, -1]
    clean_metric = (full[:, 3] - full[:, 4]).mean().item()
    assert abs(out[0, 0].item() - clean_metric) <= 1e-4  # position 2 is the only corrupted one


def test_cross_model_sweep_runs_and_padding_is_honoured(tiny_gemma_dir):
    pair = load_pair((str(tiny_gemma_dir), ModelSpec(str(tiny_gemma_dir), chat_template="gemma", prompt_style="chat")),
                     device="cpu")
    texts = ["the fox sat", "a big red fox ran far"]
    result = cross_model_sweep(pair, texts, logit_diff([5, 5], [6, 6]), spans=["fox", "red"], max_batch=4)
    frame = result.to_frame()
    assert set(frame["position"]) == {"span_last", "last"} and len(frame) == 2 * pair.n_layers
    # Padding honoured: the two prompts of different lengths, swept together (left-padded), give
    # the mean of each prompt swept alone (no padding).
    alone = [cross_model_sweep(pair, [t], logit_diff([5], [6]), spans=[s], max_batch=4)
             for t, s in zip(texts, ["fox", "red"])]
    assert (result.values - (alone[0].values + alone[1].values) / 2).abs().max() <= 1e-4
    assert abs(result.clean - (alone[0].clean + alone[1].clean) / 2) <= 1e-4
    assert_plots(result.figure(), result.values.numpy())
    with pytest.raises(ValueError, match="direction must be"):
        cross_model_sweep(pair, texts, logit_diff([5, 5], [6, 6]), spans=["fox", "red"], direction="up->down")
    with pytest.raises(ValueError, match="needs spans="):
        cross_model_sweep(pair, texts, logit_diff([5, 5], [6, 6]))
    # Prompt by prompt: the same mean grid, each prompt's grid kept, and prompt-bootstrap bands.
    each = cross_model_sweep(pair, texts, logit_diff([5, 5], [6, 6]), spans=["fox", "red"], max_batch=4, per_prompt=True)
    assert torch.allclose(each.per_prompt[0], alone[0].values) and torch.allclose(each.per_prompt[1], alone[1].values)
    assert (each.values - result.values).abs().max() <= 1e-4
    lo, hi = each.bands(n_boot=200)
    low_p, high_p = each.per_prompt.min(0).values, each.per_prompt.max(0).values
    assert (lo >= low_p - 1e-5).all() and (hi <= high_p + 1e-5).all() and (lo <= each.values + 1e-5).all()
    f = each.to_frame()
    assert {"ci_low", "ci_high", "sd"} <= set(f.columns) and "best_value_ci" in each.summary()
    assert "95% CI" in each.figure().data[0].hovertemplate
    with pytest.raises(ValueError, match="per-prompt values"):
        result.bands()


@pytest.mark.parametrize("kind,reference", [("resid_mid", "get_act_patch_resid_mid"), ("attn_out", "get_act_patch_attn_out"),
                                            ("mlp_out", "get_act_patch_mlp_out")])
def test_hook_sweep_equals_transformer_lens(model, kind, reference):
    clean, corrupt = _batches()
    a, b = 10, 20
    with torch.inference_mode():
        _, cache = model.run_with_cache(clean.input_ids)
        # inference mode: TransformerLens's in-place setter then patches resid_mid as a stream
        # (skip connection included); see interp.patching.hooked._writable
        ref = getattr(tl_patching, reference)(model, corrupt.input_ids, cache,
                                              lambda lg: (lg[:, -1, a] - lg[:, -1, b]).mean())
    ours = hook_sweep(model, corrupt, clean_activations(model, clean, kind), logit_diff([a] * 3, [b] * 3), kind=kind,
                      max_batch=8)
    assert ours.shape == ref.shape and (ours - ref).abs().max().item() <= 1e-4


def test_head_sweep_equals_transformer_lens(model):
    clean, corrupt = _batches()
    with torch.inference_mode():
        _, cache = model.run_with_cache(clean.input_ids)
    ref = tl_patching.get_act_patch_attn_head_out_all_pos(model, corrupt.input_ids, cache,
                                                         lambda lg: (lg[:, -1, 10] - lg[:, -1, 20]).mean())
    ours = head_sweep(model, corrupt, clean_activations(model, clean, "z"), logit_diff([10] * 3, [20] * 3), max_batch=8)
    assert ours.shape == (model.cfg.n_layers, model.cfg.n_heads) and (ours - ref).abs().max().item() <= 1e-4


def test_resid_post_of_a_layer_is_resid_pre_of_the_next(model):
    clean, corrupt = _batches()
    metric = logit_diff([10] * 3, [20] * 3)
    post = hook_sweep(model, corrupt, clean_activations(model, clean, "resid_post"), metric, kind="resid_post", layers=[0])
    pre = resid_pre_sweep(model, corrupt, clean_resid_pre(model, clean), metric, layers=[1])
    assert (post - pre).abs().max().item() <= 1e-4
    with pytest.raises(ValueError, match="kind must be one of"):
        hook_sweep(model, corrupt, clean_resid_pre(model, clean), metric, kind="embed")


@pytest.mark.parametrize("kind", ["resid_pre", "attn_out", "mlp_out", "resid_post"])
def test_attribution_is_the_first_order_term_of_the_exact_sweep(model, kind):
    """For a small patch (clean value + 1e-3 noise) the estimate equals the exact change to first order."""
    _, corrupt = _batches()
    metric = logit_diff([10] * 3, [20] * 3)
    values = clean_activations(model, corrupt, kind)
    values = values + 1e-3 * torch.randn_like(values) * values.abs().mean()
    exact = hook_sweep(model, corrupt, values, metric, kind=kind)
    clean = float(metric(logits_at(model, corrupt)[None])[0])
    estimate = attribution_sweep(model, corrupt, values, metric, kind=kind)
    change = exact - clean
    assert ((change - estimate).abs().max() / change.abs().max()).item() < 0.05
    stats = compare_attribution(exact, clean, estimate)
    assert stats["pearson"] > 0.99 and stats["same_top_cell"]


def test_cross_model_attribution_and_other_kinds(tiny_gemma_dir):
    pair = load_pair((str(tiny_gemma_dir), ModelSpec(str(tiny_gemma_dir), chat_template="gemma", prompt_style="chat")),
                     device="cpu")
    texts, spans = ["the fox sat", "a big red fox ran far"], ["fox", "red"]
    metric = logit_diff([5, 5], [6, 6])
    exact = cross_model_sweep(pair, texts, metric, spans=spans, kind="mlp_out")
    est = cross_model_attribution(pair, texts, metric, spans=spans, kind="mlp_out")
    assert exact.values.shape == est.values.shape == (pair.n_layers, 2) and est.estimate and est.clean == exact.clean
    heads = cross_model_sweep(pair, texts, metric, spans=spans, kind="head")
    assert heads.positions == [f"head {h}" for h in range(pair.base.cfg.n_heads)]
    assert set(est.to_frame().kind) == {"mlp_out"}
    assert_plots(est.figure(), est.values.numpy())
    with pytest.raises(ValueError, match="kind must be one of"):
        cross_model_sweep(pair, texts, metric, spans=spans, kind="logits")


def test_steering_sweep_reports_rates_per_scale(model):
    d = torch.randn(model.cfg.d_model)
    result = steering_sweep(model, ["the fox", "a cat"], d, layer=1, scales=[5.0], style="plain", max_new_tokens=3,
                            progress=False)
    frame = result.to_frame()
    assert sorted(frame.scale.unique()) == [0.0, 5.0]  # scale 0 is always there
    rates = frame[frame.measure != "kl"].groupby("scale").value.sum()
    assert np.allclose(rates, 1.0)
    kl = frame[frame.measure == "kl"].set_index("scale").value
    assert kl[0.0] == 0.0 and kl[5.0] > 0
    assert_plots(result.figure(), frame[frame.measure != "kl"].value.to_numpy())
    with pytest.raises(ValueError, match="direction must have shape"):
        steering_sweep(model, ["x"], torch.randn(3), layer=0, scales=[1.0])


@pytest.mark.parametrize("packed", [True, False])
def test_a_last_token_edit_is_refused_inside_a_sweep(model, packed):
    """Inside a sweep the rows are cells, not prompts: an edit at the last prompt token cannot find
    it there and says so; an edit at every position composes with the sweep."""
    from interp.unmask import Steering

    clean, corrupt = _batches()
    values, metric = clean_resid_pre(model, clean), logit_diff([10] * 3, [20] * 3)
    v = torch.randn(model.cfg.d_model)
    with Steering(vector=v, layer=1, positions="last").applied(model):
        with pytest.raises(ValueError, match="inside a patching sweep"):
            resid_pre_sweep(model, corrupt, values, metric, packed=packed)
    with Steering(vector=v, layer=1, positions="all").applied(model):
        assert torch.isfinite(resid_pre_sweep(model, corrupt, values, metric, packed=packed)).all()
