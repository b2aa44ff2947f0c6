"""The runtime layer's contracts: TransformerLens hooks are honoured (fast paths fall back), an
unknown family falls back to the bridge, and every public function that takes layers checks them."""

import logging

import pytest
import torch

from interp import hooks
from interp.cache.capture import capture
from interp.lens import logit_lens
from interp.patching import (
    added, clean_activations, clean_resid_pre, head_sweep, hook_sweep, logit_diff, logits_at, resid_pre_sweep,
)
from interp.prompts import PromptBatch
from interp.runtime import FastPathUnavailable, arch, check_layers, user_hooks
from interp.runtime import forward as rt_forward
from tests import families


@pytest.fixture(scope="module")
def tokenizer(tiny_llama_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama_dir)


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def model(request, tokenizer):
    return families.bridge(request.param, tokenizer)


def _batch(seed=0) -> PromptBatch:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, families.V, (2, 6), generator=g)
    ids[:, 0] = 1
    mask = torch.ones_like(ids)
    mask[1, :2] = 0
    ids[1, 2] = 1
    return PromptBatch(ids, mask, {"last": torch.full((2,), 5)}, ["", ""])


def test_transformer_lens_hooks_are_honoured_by_every_fast_path(model, caplog, monkeypatch):
    monkeypatch.setattr(rt_forward, "_SAID", set())  # the fallback is said once per process
    b = _batch()
    shift = torch.full((model.cfg.d_model,), 0.5)

    def steer(act, hook):
        return act + shift

    with torch.inference_mode():
        plain = clean_resid_pre(model, b)
        with model.hooks(fwd_hooks=[(hooks.resid_pre(1), steer)]):
            assert len(user_hooks(model)) == 1  # one hook point (TransformerLens gives it several names)
            ref_logits, ref = model.run_with_cache(b.input_ids, attention_mask=b.attention_mask)
            with caplog.at_level(logging.WARNING, logger="interp.runtime"):
                streams = clean_resid_pre(model, b)
                got = capture(model, b, [("resid_post", 0), ("resid_post", 1)], ["last"])
                last = logits_at(model, b)
            with pytest.raises(FastPathUnavailable, match="TransformerLens hooks are active"):
                logits_at(model, b, fast=True)
            sweep = resid_pre_sweep(model, b, plain, logit_diff([5, 5], [6, 6]), layers=[0],
                                    positions=torch.tensor([[5, 5]]))
        assert user_hooks(model) == []
    assert (streams[1] - ref[hooks.resid_pre(1)]).abs().max() <= 1e-4  # the steered stream, not the plain one
    assert (streams[1] - plain[1]).abs().max() > 0.1
    assert (got[("resid_post", 1, "last")] - ref[hooks.resid_post(1)][:, -1]).abs().max() <= 1e-4
    assert (last - ref_logits[:, -1]).abs().max() <= 1e-4
    clean_metric = ref_logits[:, -1, 5] - ref_logits[:, -1, 6]
    assert torch.allclose(sweep[0, 0], clean_metric.mean(), atol=1e-4)  # patching in its own clean values
    assert "running through the bridge's hook points" in caplog.text


def test_interventions_compose_with_transformer_lens(model):
    """``added`` inside ``run_with_cache``: the cache shows the steered stream at the hook point."""
    b = _batch(1)
    d = torch.randn(model.cfg.d_model)
    with torch.inference_mode():
        _, before = model.run_with_cache(b.input_ids, attention_mask=b.attention_mask)
        with added(model, d, layer=1, scale=2.0):
            _, cache = model.run_with_cache(b.input_ids, attention_mask=b.attention_mask)
            fast = clean_resid_pre(model, b)
    diff = cache[hooks.resid_pre(1)] - before[hooks.resid_pre(1)]
    assert (diff[0, 1:] - 2.0 * d).abs().max() <= 1e-4 and diff[0, 0].abs().max() <= 1e-5  # added once, BOS kept
    assert (fast[1][0] - cache[hooks.resid_pre(1)][0]).abs().max() <= 1e-4


def test_an_unknown_family_falls_back_to_the_bridge(tokenizer, monkeypatch, caplog):
    model = families.bridge("llama", tokenizer)
    b = _batch(2)
    with torch.inference_mode():
        _, ref = model.run_with_cache(b.input_ids, attention_mask=b.attention_mask)
    monkeypatch.setattr(arch, "_BY_TYPE", {k: v for k, v in arch._BY_TYPE.items() if k != "llama"})
    monkeypatch.setattr(rt_forward, "_SAID", set())
    with caplog.at_level(logging.WARNING, logger="interp.runtime"):
        got = capture(model, b, [("resid_pre", 1)], ["last"])
        again = clean_resid_pre(model, b)
    assert (got[("resid_pre", 1, "last")] - ref[hooks.resid_pre(1)][:, -1]).abs().max() <= 1e-4
    assert (again[1] - ref[hooks.resid_pre(1)]).abs().max() <= 1e-4
    assert caplog.text.count("no architecture adapter for model_type 'llama'") == 1  # said once
    with pytest.raises(FastPathUnavailable, match="no architecture adapter"):
        logits_at(model, b, fast=True)


@pytest.mark.parametrize("bad", [-1, 2, 7, True])
def test_every_function_that_takes_layers_checks_them(model, bad):
    b = _batch(3)
    values = clean_resid_pre(model, b)
    metric = logit_diff([5, 5], [6, 6])
    calls = [
        lambda: resid_pre_sweep(model, b, values, metric, layers=[bad]),
        lambda: hook_sweep(model, b, values, metric, kind="resid_post", layers=[bad]),
        lambda: head_sweep(model, b, clean_activations(model, b, "z"), metric, layers=[bad]),
        lambda: clean_activations(model, b, "attn_out", layers=[bad]),
        lambda: logit_lens(model, b, [5, 5], layers=[bad]),
        lambda: capture(model, b, [("resid_pre", bad)], ["last"]),
        lambda: added(model, torch.zeros(model.cfg.d_model), layer=bad).__enter__(),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"must be (an int|in \[0, 2\))"):
            call()


def test_check_layers_messages():
    assert check_layers(None, 3) == [0, 1, 2]
    with pytest.raises(ValueError, match="negative indices are not accepted"):
        check_layers([-1], 3)
    with pytest.raises(ValueError, match="is empty"):
        check_layers([], 3)
    with pytest.raises(ValueError, match=r"pass \[1\]"):
        check_layers(1, 3)


def test_describe_model_states_each_capability(tokenizer):
    from interp.runtime.describe import CAPABILITIES, describe_model

    neox = describe_model(families.bridge("gpt_neox", tokenizer)).set_index("fact").value
    assert neox["family"] == "gpt_neox" and neox["parallel attention + MLP"] == "True"
    assert neox["capability: resid_mid sweep"].startswith("n/a")
    assert neox["capability: weight orthogonalisation"] == "yes"
    assert neox["chat format"] == "none"
    assert all(f"capability: {c}" in neox.index for c in CAPABILITIES)
    gpt2 = describe_model(families.bridge("gpt2", tokenizer)).set_index("fact").value
    assert gpt2["tied embeddings"] == "True" and gpt2["capability: store"] == "fast path"


def test_a_multimodal_gemma3_is_read_through_its_language_model():
    """Gemma-3 4B+ checkpoints are Gemma3ForConditionalGeneration: the adapter finds the layers under
    model.language_model and the body's output is the model's own last hidden state."""
    import torch

    from interp.runtime import arch_of, body_forward
    from tests import tiny

    model = tiny.tiny_gemma3_multimodal()
    arch = arch_of(model)
    assert arch.family.name == "gemma3_multimodal" and arch.n_layers == 2
    assert arch.layers[0] is model.model.language_model.layers[0]
    ids = torch.randint(5, 60, (2, 7))
    mask = torch.ones_like(ids)
    mask[0, :2] = 0
    with torch.inference_mode():
        from interp.runtime import position_ids

        ref = model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask), output_hidden_states=True)
        out = body_forward(arch, ids, mask)
    assert torch.allclose(out, ref.hidden_states[-1], atol=1e-5)
