import torch

from interp import encode, load_model
from interp.patching import ablated, added, clean_resid_pre, last_logits, mean_diff_directions


def test_directions_ablation_and_addition(tiny_gemma_dir):
    model = load_model(str(tiny_gemma_dir), device="cpu")
    tok = model.tokenizer
    a = encode(tok, ["the fox sat", "a red fox ran", "the fox is red"])
    b = encode(tok, ["we go home", "a cat sat", "it is late now"])
    dirs = mean_diff_directions(model, a, b, exclude_massive=None)
    assert dirs.shape == (model.cfg.n_layers, model.cfg.d_model)
    before = last_logits(model, a)
    r = dirs[1] / dirs[1].norm()
    with ablated(model, dirs[1]):
        resid = clean_resid_pre(model, a)
        changed = last_logits(model, a)
    real = a.attention_mask.bool().clone()
    real[torch.arange(3), a.n_pad] = False  # the first token is left alone
    assert (resid[1][real] @ r).abs().max().item() <= 1e-4  # the direction is gone after the first token
    assert (changed - before).abs().max().item() > 1e-4
    assert torch.equal(last_logits(model, a), before)  # hooks removed, wrappers back
    with added(model, dirs[1], 1, scale=3.0):
        resid_add = clean_resid_pre(model, a)
    plain = clean_resid_pre(model, a)
    delta = (resid_add[1] - plain[1])[real]
    assert torch.allclose(delta, (3.0 * dirs[1]).expand_as(delta), atol=1e-4)
    assert type(model.original_model.model.layers[0]).__name__ == "BlockBridge"


def test_massive_dimensions_are_excluded(tiny_gemma_dir):
    model = load_model(str(tiny_gemma_dir), device="cpu")
    tok = model.tokenizer
    a = encode(tok, ["the fox sat", "a red fox ran"])
    b = encode(tok, ["we go home", "a cat sat"])
    full = mean_diff_directions(model, a, b, exclude_massive=None)
    masked = mean_diff_directions(model, a, b, exclude_massive=1.0)  # everything above the median is "massive"
    assert (masked == 0).sum() > (full == 0).sum()


def test_weight_orthogonalisation_equals_ablation_on_llama(tiny_llama_dir):
    from interp.patching import orthogonalize_weights_inplace

    model = load_model(str(tiny_llama_dir), device="cpu")
    edited = load_model(str(tiny_llama_dir), device="cpu")
    batch = encode(model.tokenizer, ["hello world", "a quiet fox"])
    direction = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    with ablated(model, direction, skip_first=False):
        want = last_logits(model, batch)
    orthogonalize_weights_inplace(edited, direction)
    got = last_logits(edited, batch)
    assert (got - want).abs().max().item() <= 1e-4
    assert (got - last_logits(model, batch)).abs().max().item() > 1e-4


def test_weight_orthogonalisation_refuses_post_norm_models(tiny_gemma_dir):
    import pytest

    from interp.patching import orthogonalize_weights_inplace

    model = load_model(str(tiny_gemma_dir), device="cpu")
    with pytest.raises(NotImplementedError, match="use the ablated"):
        orthogonalize_weights_inplace(model, torch.ones(model.cfg.d_model))
