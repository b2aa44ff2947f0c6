import pytest
import torch

from interp import ModelSpec, load_hf, load_model
from interp.models.load import resolve_source, spec_of


def test_local_dir_matches_hf_eager(tiny_gemma_dir):
    model = load_model(str(tiny_gemma_dir), device="cpu")
    ref, tok = load_hf(str(tiny_gemma_dir), device="cpu")
    assert model.cfg.architecture == "Gemma3ForCausalLM"
    assert not model.training and model.cfg.dtype == torch.float32
    ids = tok(["hello world", "fox"], return_tensors="pt", padding=True)
    with torch.inference_mode():
        diff = (model(ids.input_ids, attention_mask=ids.attention_mask) - ref(**ids).logits).abs().max()
    assert diff.item() <= 1e-4
    assert spec_of(model).source == str(tiny_gemma_dir)


def test_explicit_dtype(tiny_gemma_dir):
    model = load_model(ModelSpec(str(tiny_gemma_dir)), device="cpu", dtype=torch.bfloat16)
    assert next(model.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize(
    "source, error, match",
    [
        ("no-such-model", ValueError, "cannot resolve model spec 'no-such-model': not a packaged model"),
        ("missing.gguf", FileNotFoundError, "GGUF file not found"),
    ],
)
def test_unresolvable_specs(source, error, match):
    with pytest.raises(error, match=match):
        resolve_source(ModelSpec(source))


def test_dir_without_config(tmp_path):
    with pytest.raises(ValueError, match="directory without config.json"):
        resolve_source(ModelSpec(str(tmp_path)))


def test_hub_ids_are_passed_through_untouched():
    assert resolve_source(ModelSpec("google/gemma-3-270m-it")) == "google/gemma-3-270m-it"


def test_spec_validation(tmp_path):
    with pytest.raises(ValueError, match="prompt_style is 'fancy'"):
        ModelSpec("x", prompt_style="fancy")
    with pytest.raises(ValueError, match="adapter .* is not a directory"):
        ModelSpec("x", adapter=str(tmp_path / "none"))
    with pytest.raises(ValueError, match="non-empty string"):
        ModelSpec("")


def test_chat_style_without_template_is_refused(tiny_gemma_dir):
    with pytest.raises(ValueError, match="has no chat template; pass chat_template='gemma'"):
        load_model(ModelSpec(str(tiny_gemma_dir), prompt_style="chat"), device="cpu")
    model = load_model(ModelSpec(str(tiny_gemma_dir), prompt_style="chat", chat_template="gemma"), device="cpu")
    assert "<start_of_turn>" in model.tokenizer.chat_template
