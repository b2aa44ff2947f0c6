"""The conformance matrix: every capability interp adds on top of TransformerLens, on a tiny model
of every decoder-only family with public base/chat pairs, against the reference (max abs diff
<= 1e-4). The family x capability table of docs/architectures.md (rendered from benchmarks/results_conformance_cpu.jsonl) states what these tests establish."""

import copy

import pytest
import torch
from transformer_lens import patching as tl_patching

from interp import hooks
from interp.behavior.generate import generate
from interp.cache.capture import capture
from interp.lens import logit_lens
from interp.patching import (
    ablated, clean_activations, clean_resid_pre, head_sweep, hook_sweep, logit_diff, logits_at, orthogonalize_weights_inplace,
    resid_pre_sweep,
)
from interp.prompts import PromptBatch, encode, format_prompt
from interp.runtime import arch_of, family_of, normed_logits
from interp.runtime import original as original_of
from tests import families

FAMILY_NAMES = list(families.FAMILIES)
TOL = 1e-4


@pytest.fixture(scope="module")
def tokenizer(tiny_llama_dir):
    from transformers import AutoTokenizer

    from interp.models.chat_templates import resolve_template

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    tok.chat_template = resolve_template("gemma")
    return tok


@pytest.fixture(scope="module", params=FAMILY_NAMES)
def model(request, tokenizer):
    return families.bridge(request.param, tokenizer)


def _ids(B=2, T=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, families.V, (B, T), generator=g)
    ids[:, 0] = 1
    return ids


def _padded(seed=0) -> PromptBatch:
    ids = _ids(B=3, T=8, seed=seed)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    mask[2, :5] = 0
    ids = ids.masked_fill(mask == 0, 3)
    for r, n in ((1, 3), (2, 5)):
        ids[r, n] = 1
    return PromptBatch(ids, mask, {"last": torch.full((3,), 7)}, [""] * 3)


def _plain(ids) -> PromptBatch:
    B, T = ids.shape
    return PromptBatch(ids, torch.ones_like(ids), {"last": torch.full((B,), T - 1)}, [""] * B)


def test_family_is_known(model):
    assert family_of(model).name in FAMILY_NAMES
    assert arch_of(model).n_layers == model.cfg.n_layers == 2


def test_store_equals_run_with_cache_on_left_padded_rows(model):
    b = _padded()
    with torch.inference_mode():
        _, cache = model.run_with_cache(b.input_ids, attention_mask=b.attention_mask)
    real = b.attention_mask.bool()
    for fast in (True, False):
        got = capture(model, b, [("resid_pre", 0), ("resid_post", 1), ("resid_pre", 1)], ["last", "all"], fast=fast)
        for kind, layer in (("resid_pre", 0), ("resid_pre", 1), ("resid_post", 1)):
            ref = cache[hooks.name(kind, layer)]
            assert (got[(kind, layer, "all")] - ref[real]).abs().max() <= TOL
            assert (got[(kind, layer, "last")] - ref[:, -1]).abs().max() <= TOL
    streams = clean_resid_pre(model, b)
    assert (streams[1][real] - cache[hooks.resid_pre(1)][real]).abs().max() <= TOL


def _tl_metric(a=10, b=20):
    return lambda lg: (lg[:, -1, a] - lg[:, -1, b]).mean()


@pytest.mark.parametrize("packed", [None, False])
def test_resid_pre_sweep_equals_transformer_lens(model, packed):
    clean, corrupt = _ids(seed=1), _ids(seed=1)
    corrupt[:, 3] = _ids(seed=2)[:, 3]
    with torch.inference_mode():
        _, cache = model.run_with_cache(clean)
    ref = tl_patching.get_act_patch_resid_pre(model, corrupt, cache, _tl_metric())
    ours = resid_pre_sweep(model, _plain(corrupt), clean_resid_pre(model, _plain(clean)),
                           logit_diff([10, 10], [20, 20]), packed=packed, max_batch=4)
    assert ours.shape == ref.shape and (ours - ref).abs().max() <= TOL


_TL_KINDS = {"resid_mid": "resid_mid", "attn_out": "attn_out", "mlp_out": "mlp_out", "resid_post": "resid_post"}


@pytest.mark.parametrize("kind", ["resid_mid", "attn_out", "mlp_out", "resid_post"])
def test_hook_sweep_equals_transformer_lens(model, kind):
    clean, corrupt = _ids(seed=3), _ids(seed=3)
    corrupt[:, 2] = _ids(seed=4)[:, 2]
    with torch.inference_mode():
        _, cache = model.run_with_cache(clean)
    if hooks.name(kind, 0) not in cache:
        with pytest.raises(ValueError, match="has no resid_mid hook point .* run in parallel"):
            clean_activations(model, _plain(clean), kind)
        with pytest.raises(ValueError, match="has no resid_mid hook point"):
            hook_sweep(model, _plain(corrupt), torch.zeros(2, 2, 7, 64), logit_diff([1, 1], [2, 2]), kind=kind)
        pytest.skip(f"{family_of(model).name} has no {kind} hook (parallel attention and MLP)")
    # TransformerLens's setter writes in place; under inference mode that write reaches the skip
    # connection for resid_mid too (the stream is patched, as HookedTransformer defines it); with
    # autograd on, the bridge hands the hook a copy and only the MLP input changes.
    with torch.inference_mode():
        ref = tl_patching.generic_activation_patch(
            model, corrupt, cache, _tl_metric(), tl_patching.layer_pos_patch_setter, kind, ["layer", "pos"])
    values = clean_activations(model, _plain(clean), kind)
    for packed in (None, False):
        ours = hook_sweep(model, _plain(corrupt), values, logit_diff([10, 10], [20, 20]), kind=kind, packed=packed,
                          max_batch=4)
        assert (ours - ref).abs().max() <= TOL, packed


def test_resid_mid_patch_replaces_the_stream_not_only_the_mlp_input(tokenizer):
    """Independent of TransformerLens: patching resid_mid of the last layer at the last position
    with v gives logits of final_norm(v + mlp(norm2(v)))."""
    model = families.bridge("llama", tokenizer)
    clean, corrupt = _ids(seed=11), _ids(seed=12)
    values = clean_activations(model, _plain(clean), "resid_mid")
    T = clean.shape[1]
    ours = hook_sweep(model, _plain(corrupt), values, logit_diff([10, 10], [20, 20]), kind="resid_mid", layers=[1],
                      positions=torch.full((1, 2), T - 1))
    layer = arch_of(model).layers[1]
    with torch.inference_mode():
        v = values[1, :, -1]
        mlp_in = original_of(layer.post_attention_layernorm)(v)
        logits = normed_logits(arch_of(model), v + original_of(layer.mlp)(mlp_in))
    expected = (logits[:, 10] - logits[:, 20]).mean()
    assert abs(float(ours[0, 0]) - float(expected)) <= TOL


def test_head_sweep_equals_transformer_lens(model):
    clean, corrupt = _ids(seed=5), _ids(seed=5)
    corrupt[:, 4] = _ids(seed=6)[:, 4]
    with torch.inference_mode():
        _, cache = model.run_with_cache(clean)
    ref = tl_patching.get_act_patch_attn_head_out_all_pos(model, corrupt, cache, _tl_metric())
    ours = head_sweep(model, _plain(corrupt), clean_activations(model, _plain(clean), "z"),
                      logit_diff([10, 10], [20, 20]), max_batch=8)
    assert ours.shape == ref.shape and (ours - ref).abs().max() <= TOL


def test_logit_lens_at_the_last_layer_equals_the_models_logits(model):
    b = _padded(seed=7)
    with torch.inference_mode():
        logits = model(b.input_ids, attention_mask=b.attention_mask)[:, -1]
        acts = capture(model, b, [("resid_post", 1)], ["last"])
        lens = normed_logits(arch_of(model), acts[("resid_post", 1, "last")])
    assert (lens - logits).abs().max() <= TOL
    assert (logits_at(model, b) - logits).abs().max() <= TOL
    answer = logits.argmax(-1).tolist()
    frame = logit_lens(model, b, answer)
    assert (frame[frame.layer == 1]["rank"] == 1).all()


@pytest.mark.parametrize("skip_first", [True, False])
def test_ablation_inside_run_with_cache_equals_the_fast_path(model, skip_first):
    b = _padded(seed=8)
    d = torch.randn(2, model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        before = model(b.input_ids, attention_mask=b.attention_mask)[:, -1]
        with ablated(model, d, skip_first=skip_first):
            hooked, cache = model.run_with_cache(b.input_ids, attention_mask=b.attention_mask)
            fast = logits_at(model, b)
            streams = clean_resid_pre(model, b)
    assert (hooked[:, -1] - fast).abs().max() <= TOL
    assert (hooked[:, -1] - before).abs().max() > 1e-3  # the ablation did something
    real = b.attention_mask.bool()
    assert (cache[hooks.resid_pre(1)][real] - streams[1][real]).abs().max() <= TOL
    q, _ = torch.linalg.qr(d.T)
    assert (cache[hooks.resid_pre(1)][:, -1] @ q).abs().max() <= 1e-3  # projected out of the stream


def test_weight_orthogonalisation_equals_ablation(model, tokenizer):
    fam = family_of(model)
    fresh = families.bridge(fam.name, tokenizer)  # edited in place: a copy of the same weights
    b = _padded(seed=9)
    d = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(1))
    if fam.post_norm:
        with pytest.raises(NotImplementedError, match="normalises attention and MLP outputs"):
            orthogonalize_weights_inplace(fresh, d)
        return
    arch = arch_of(fresh)
    tied = arch.tied
    unembed = arch.unembed.weight.detach().clone()
    with torch.inference_mode(), ablated(model, d, skip_first=False):
        ref = model(b.input_ids, attention_mask=b.attention_mask)[:, -1]
    orthogonalize_weights_inplace(fresh, d)
    with torch.inference_mode():
        got = fresh(b.input_ids, attention_mask=b.attention_mask)[:, -1]
    assert (got - ref).abs().max() <= TOL
    assert torch.equal(arch_of(fresh).unembed.weight, unembed), "the unembedding must not be edited"
    assert tied == (fam.name in ("gemma", "qwen2", "gpt2"))


def test_generation_with_a_chat_template(model, tokenizer):
    prompts = [format_prompt(q, style="chat", tokenizer=tokenizer) for q in ("a b c?", "where is the fox?")]
    ids = generate(model, prompts, max_new_tokens=3, return_ids=True)
    assert len(ids) == 2 and all(1 <= len(x) <= 3 for x in ids)
    b = encode(tokenizer, prompts)
    assert (b.input_ids == tokenizer.bos_token_id).sum(1).tolist() == [1, 1]


@pytest.mark.parametrize("bos", [True, False])
def test_response_scoring_with_and_without_bos(model, tokenizer, bos):
    from interp.diffing.shallow import response_shift
    from interp.models import ModelPair, ModelSpec

    tok = copy.deepcopy(tokenizer)
    tok.chat_template = tokenizer.chat_template
    if not bos:
        tok.bos_token = None
        assert tok.bos_token_id is None
    model.tokenizer, saved = tok, model.tokenizer
    model.tokenizer.chat_template = tokenizer.chat_template  # the bridge may re-create a tokenizer with a BOS
    try:
        chat = ModelSpec("tiny", prompt_style="chat")
        pair = ModelPair(model, model, base_spec=chat, aligned_spec=chat)
        result = response_shift(pair, ["a b c?"], max_new_tokens=3, progress=False)
    finally:
        model.tokenizer = saved
    frame = result.to_frame()
    assert len(frame) >= 1 and (frame.kl.abs() <= 1e-4).all()  # the same model on both sides
