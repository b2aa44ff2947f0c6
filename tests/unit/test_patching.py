import pytest
import torch
from transformer_lens import patching as tl_patching

from interp import ModelSpec, load_model, load_pair
from interp.patching import clean_resid_pre, cross_model_sweep, logit_diff, resid_pre_sweep
from interp.prompts import PromptBatch


@pytest.fixture(scope="module")
def model(tiny_gemma_dir):
    return load_model(str(tiny_gemma_dir), device="cpu")


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
    # Identical weights on both sides: patching the last token at layer 0 with the other side's
    # value changes the run (different prompt formats), but the clean metric is finite.
    assert torch.isfinite(result.values).all() and result.figure() is not None
    with pytest.raises(ValueError, match="direction must be"):
        cross_model_sweep(pair, texts, logit_diff([5, 5], [6, 6]), spans=["fox", "red"], direction="up->down")
    with pytest.raises(ValueError, match="needs spans="):
        cross_model_sweep(pair, texts, logit_diff([5, 5], [6, 6]))
