"""The frozen side in 8 or 4 bits (bitsandbytes, on the CPU here): close to the full-precision
model, smaller, usable by the analyses that only read it, refused by the ones that edit weights."""

import pytest
import torch

from interp import ModelSpec, load_model, load_pair
from interp.cache.capture import capture
from interp.models.load import is_quantized
from interp.patching import clean_resid_pre, logit_diff, orthogonalize_weights_inplace, resid_pre_sweep
from interp.prompts import encode

pytest.importorskip("bitsandbytes", reason="quantize= needs bitsandbytes (the [quant] extra, installed by make)")

TEXTS = ["the fox sat on the mat", "a cat ran", "big red dogs bark"]


@pytest.fixture(scope="module")
def full(tiny_llama_dir):
    return load_model(str(tiny_llama_dir), device="cpu", dtype=torch.float32)


@pytest.mark.parametrize("bits, tol", [("8bit", 0.05), ("4bit", 0.25)])
def test_a_quantized_model_is_close_smaller_and_every_read_path_runs(tiny_llama_dir, full, bits, tol):
    model = load_model(str(tiny_llama_dir), device="cpu", dtype=torch.float32, quantize=bits)
    assert is_quantized(model) and not is_quantized(full)
    batch = encode(full.tokenizer, TEXTS)
    with torch.inference_mode():
        a = full(batch.input_ids, attention_mask=batch.attention_mask)
        b = model(batch.input_ids, attention_mask=batch.attention_mask)
    rel = float((a - b).norm() / a.norm())
    assert 0 < rel < tol, rel  # rounded weights: close, not equal
    def linear_bytes(m):
        return sum(p.numel() * p.element_size() for n, p in m.original_model.named_parameters() if "layers." in n and "norm" not in n)
    assert linear_bytes(model) <= (0.3 if bits == "8bit" else 0.2) * linear_bytes(full)
    sites = [("resid_post", 0), ("resid_post", 1)]
    got, want = capture(model, batch, sites, ["last"]), capture(full, batch, sites, ["last"])
    for key in want:
        assert float((got[key] - want[key]).norm() / want[key].norm()) < tol
    values = clean_resid_pre(full, batch)
    grid = resid_pre_sweep(model, batch, values, logit_diff([5, 6, 7], [8, 9, 10]))
    assert torch.isfinite(grid).all() and grid.shape == (2, batch.input_ids.shape[1])


def test_a_pair_with_a_quantized_base_refuses_weight_edits(tiny_llama_dir):
    from interp.unmask.localise import WeightRestore

    spec = ModelSpec(str(tiny_llama_dir))
    pair = load_pair((spec, spec.with_(chat_template="gemma", prompt_style="chat")), device="cpu", dtype=torch.float32,
                     quantize={"base": "8bit"})
    assert is_quantized(pair.base) and not is_quantized(pair.aligned)
    with pytest.raises(ValueError, match="quantize="):
        with WeightRestore(source=pair.base, layers=(0,)).applied(pair.aligned):
            pass
    with pytest.raises(ValueError, match="quantize="):
        orthogonalize_weights_inplace(pair.base, torch.randn(pair.d_model))
    with pytest.raises(ValueError, match="quantize takes the sides"):
        load_pair((spec, spec), quantize={"frozen": "8bit"})
    with pytest.raises(ValueError, match="quantize must be one of"):
        load_model(str(tiny_llama_dir), device="cpu", quantize="3bit")
    with pytest.raises(ValueError, match="without an adapter"):
        load_model(ModelSpec(str(tiny_llama_dir), adapter=str(tiny_llama_dir)), device="cpu", quantize="8bit")
