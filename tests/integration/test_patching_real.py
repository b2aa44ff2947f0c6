"""Batched patching on the real default base equals transformer_lens.patching."""

import pytest
import torch
from transformer_lens import patching as tl_patching

from interp.patching import clean_resid_pre, logit_diff, resid_pre_sweep
from interp.prompts import PromptBatch

pytestmark = pytest.mark.integration


def test_sweep_equals_transformer_lens_on_the_real_base(base):
    model = base
    tok = model.tokenizer
    clean = tok(["The Eiffel Tower is in", "The Colosseum is in"], return_tensors="pt").input_ids  # 6 tokens each
    corrupt = tok(["The Eiffel Tower is in", "The Colosseum is in"][::-1], return_tensors="pt").input_ids
    assert clean.shape == corrupt.shape
    paris, rome = tok(" Paris", add_special_tokens=False).input_ids[0], tok(" Rome", add_special_tokens=False).input_ids[0]
    with torch.inference_mode():
        _, cache = model.run_with_cache(clean)
    ref = tl_patching.get_act_patch_resid_pre(model, corrupt, cache, lambda lg: (lg[:, -1, paris] - lg[:, -1, rome]).mean())
    B, T = clean.shape
    mask = torch.ones_like(clean)
    last = {"last": torch.full((B,), T - 1)}
    args = (PromptBatch(corrupt, mask, last, [""] * B), clean_resid_pre(model, PromptBatch(clean, mask, dict(last), [""] * B)),
            logit_diff([paris] * B, [rome] * B))
    for packed in (None, False):  # default (packed: only the positions a patch changes) and replicated prompts
        ours = resid_pre_sweep(model, *args, packed=packed)
        assert ours.shape == ref.shape == (model.cfg.n_layers, T)
        assert (ours - ref).abs().max().item() <= 1e-4


def test_hook_and_head_sweeps_with_the_runs_own_values_leave_the_metric_unchanged(base):
    """Patching a left-padded batch with its own activations is a no-op: every cell must give the
    unpatched metric of a plain forward pass (this fails if a sweep unembeds anything but the
    final norm's output: the real base's norm weights are not 1)."""
    from interp.patching import clean_activations, head_sweep, hook_sweep, logits_at
    from interp.prompts import encode

    model = base
    tok = model.tokenizer
    batch = encode(tok, ["The Eiffel Tower is located in the city of", "The chemical symbol for gold is"])
    assert batch.attention_mask.min() == 0  # left padding in play
    paris, au = tok(" Paris", add_special_tokens=False).input_ids[0], tok(" Au", add_special_tokens=False).input_ids[0]
    metric = logit_diff([paris, au], [au, paris])
    unpatched = float(metric(logits_at(model, batch)[None])[0])
    assert unpatched > 5  # both answers are the models' top choice
    positions = torch.stack([batch.position("last"), batch.position("last") - 2])
    for kind in ("resid_mid", "attn_out", "mlp_out"):
        grid = hook_sweep(model, batch, clean_activations(model, batch, kind), metric, kind=kind, layers=[0, 9, 17],
                          positions=positions)
        assert (grid - unpatched).abs().max().item() <= 1e-3, kind
    heads = head_sweep(model, batch, clean_activations(model, batch, "z"), metric, layers=[17])
    assert (heads - unpatched).abs().max().item() <= 1e-3
