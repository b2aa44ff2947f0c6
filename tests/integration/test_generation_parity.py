"""Generation on the real default pair, in whatever environment runs it (the locked tier in CI, the
newest releases in range under `make test-compat`): cached greedy generation equals generation
without a KV cache, a left-padded batch equals single prompts, and a last-token edit is applied at
the last prompt token only."""

import pytest
import torch

from interp.behavior import generate
from interp.behavior.selfcheck import check_generation
from interp.prompts import encode, format_prompt
from interp.runtime import arch_of, on_layer_input
from interp.unmask import Steering

pytestmark = pytest.mark.integration

QUESTIONS = ["What is the capital of France?", "What is the chemical symbol for gold?",
             "Which planet is known as the red planet?"]


@pytest.fixture(scope="module")
def pair():
    import interp

    return interp.load_pair("default", device="cpu")


def _uncached(model, prompt, n):
    """Greedy tokens without a KV cache: one full forward pass per new token."""
    ids = encode(model.tokenizer, [prompt]).input_ids
    out = []
    with torch.inference_mode():
        for _ in range(n):
            t = int(model.original_model(input_ids=ids, use_cache=False).logits[0, -1].argmax())
            out.append(t)
            ids = torch.cat([ids, torch.tensor([[t]])], 1)
    return out


@pytest.mark.parametrize("side", ["base", "aligned"])
def test_cached_and_batched_generation_equal_uncached_single_prompts(pair, side):
    model = pair.side(side)
    prompts = [format_prompt(q, style=pair.style(side), tokenizer=model.tokenizer) for q in QUESTIONS]
    batched = generate(model, prompts, max_new_tokens=6, return_ids=True)
    for prompt, ids in zip(prompts, batched):
        assert ids == _uncached(model, prompt, len(ids)), prompt
    assert check_generation(model)["ok"]
    if side == "base":
        assert generate(model, ["Berlin is the capital of"], max_new_tokens=4)[0].startswith(" Germany.")


def test_a_last_token_edit_is_not_applied_to_generated_tokens(pair):
    model = pair.aligned
    prompt = format_prompt(QUESTIONS[1], style="chat", tokenizer=model.tokenizer)
    from interp.patching import clean_resid_pre

    batch = encode(model.tokenizer, [prompt])
    scale = float(clean_resid_pre(model, batch)[6][0, -1].norm())  # the stream's own size at that layer
    torch.manual_seed(0)
    v = torch.randn(model.cfg.d_model)
    v = 2 * scale * v / v.norm()
    with Steering(vector=v, layer=6, positions="last").applied(model):
        edited = generate(model, [prompt], max_new_tokens=5, return_ids=True)[0]
    n = encode(model.tokenizer, [prompt]).input_ids.shape[1]

    def by_hand(cols):
        ids = encode(model.tokenizer, [prompt]).input_ids
        out = []
        handles = on_layer_input(arch_of(model), 6, lambda x, kw: _add(x, v, cols(x.shape[1])))
        try:
            with torch.inference_mode():
                for _ in range(len(edited)):
                    t = int(model.original_model(input_ids=ids, use_cache=False).logits[0, -1].argmax())
                    out.append(t)
                    ids = torch.cat([ids, torch.tensor([[t]])], 1)
        finally:
            for h in handles:
                h.remove()
        return out

    assert edited == by_hand(lambda t: [n - 1])
    assert edited != by_hand(lambda t: range(n - 1, t))  # the check can tell the two apart


def _add(x, v, cols):
    x = x.clone()
    for c in cols:
        x[:, c] += v.to(x.dtype)
    return x
