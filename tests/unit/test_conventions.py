"""Calling conventions through real calls: the KV cache reaches the bridge's attention under this
transformers' keyword, a last-prompt-token edit is not applied to generated tokens, and the
self-check catches a model whose cached generation disagrees with its forward pass."""

import pytest
import torch

from interp import ModelSpec, load_model
from interp.behavior import generate
from interp.behavior.selfcheck import GenerationMismatch, check_generation
from interp.prompts import encode
from interp.runtime import arch_of, on_layer_input
from interp.runtime.conventions import cache_in, cache_keyword, cache_kwargs, is_decoding_step
from interp.unmask import Steering

PROMPTS = ["the fox sat", "a red fox ran far away"]


@pytest.fixture(scope="module")
def model(tiny_gemma_dir):
    return load_model(ModelSpec(str(tiny_gemma_dir)), device="cpu")


def _uncached_logits(model, prompt: str, new: list[int], hook=None) -> torch.Tensor:
    """Logits at each generated position from one forward pass without a cache (no padding)."""
    head = encode(model.tokenizer, [prompt]).input_ids
    full = torch.cat([head, torch.tensor([new])], 1)
    handles = hook(head.shape[1]) if hook else []
    try:
        with torch.inference_mode():
            logits = model.original_model(input_ids=full, use_cache=False).logits[0]
    finally:
        for h in handles:
            h.remove()
    return logits[head.shape[1] - 1: head.shape[1] - 1 + len(new)]


def _agrees(logits: torch.Tensor, new: list[int], tol: float = 1e-4) -> bool:
    return all(float(row[t]) >= float(row.max()) - tol for row, t in zip(logits, new))


def test_the_decoder_layers_get_the_cache_under_this_releases_keyword(model):
    seen = []
    arch = arch_of(model)
    h = arch.layers[0].register_forward_pre_hook(lambda m, a, k: seen.append(sorted(k)), with_kwargs=True)
    try:
        generate(model, PROMPTS[:1], max_new_tokens=2, selfcheck=False)
    finally:
        h.remove()
    assert any(cache_keyword() in keys for keys in seen), seen
    assert cache_in(cache_kwargs("c")) == "c" and cache_in({"past_key_values": "p"}) == "p"


def test_cached_left_padded_generation_equals_the_uncached_forward_pass(model):
    new = generate(model, PROMPTS, max_new_tokens=6, return_ids=True, selfcheck=False)
    assert all(len(n) == 6 for n in new)  # the tiny vocabulary has no stop token in 6 steps here
    for prompt, ids in zip(PROMPTS, new):
        assert _agrees(_uncached_logits(model, prompt, ids), ids), prompt
    assert check_generation(model)["ok"]


def test_a_last_token_edit_is_applied_at_the_last_prompt_token_only(model):
    """The edit under real cached generation equals the vector added by hand at the last prompt
    position of an uncached pass, and differs from adding it at every position from there on (so
    the comparison can fail)."""
    torch.manual_seed(3)
    v = 8 * torch.randn(model.cfg.d_model)
    arch = arch_of(model)

    def at(cols):
        def install(n_prompt):
            def add(x, kwargs):
                x = x.clone()
                for c in cols(n_prompt, x.shape[1]):
                    x[:, c] += v
                return x
            return on_layer_input(arch, 1, add)
        return install

    only_last = at(lambda n, t: [n - 1])
    from_last_on = at(lambda n, t: range(n - 1, t))
    with Steering(vector=v, layer=1, positions="last").applied(model):
        new = generate(model, PROMPTS, max_new_tokens=6, return_ids=True, selfcheck=False)
    differs = 0
    for prompt, ids in zip(PROMPTS, new):
        assert _agrees(_uncached_logits(model, prompt, ids, only_last), ids), prompt
        differs += not _agrees(_uncached_logits(model, prompt, ids, from_last_on), ids)
    assert differs >= 1  # had the edit leaked into the generated tokens, the first check would fail


def test_is_decoding_step_needs_one_position_and_a_filled_cache():
    from transformers import DynamicCache

    x1, x5 = torch.zeros(2, 1, 4), torch.zeros(2, 5, 4)
    empty = DynamicCache()
    assert not is_decoding_step(x5, {cache_keyword(): object()})
    assert not is_decoding_step(x1, {})
    assert not is_decoding_step(x1, {"cache": empty})  # a one-token prompt against an empty cache
    empty.update(torch.zeros(2, 1, 3, 4), torch.zeros(2, 1, 3, 4), 0)
    assert is_decoding_step(x1, {"cache": empty}) and is_decoding_step(x1, {"past_key_values": empty})


def test_the_self_check_names_the_versions_when_cached_generation_is_wrong(tiny_gemma_dir):
    """The 5.24 breakage, made on purpose on any release: the attention bridges never see the cache."""
    from interp.runtime.conventions import CACHE_NAMES

    broken = load_model(ModelSpec(str(tiny_gemma_dir)), device="cpu")

    def drop(module, args, kwargs):
        return args, {k: v for k, v in kwargs.items() if k not in CACHE_NAMES}

    for module in broken.modules():
        if hasattr(module, "_update_kv_cache"):
            module.register_forward_pre_hook(drop, with_kwargs=True)
    with pytest.raises(GenerationMismatch, match=r"transformers \d+\.\d+.*Install the tested versions"):
        check_generation(broken, n_tokens=6)
