import json

import pytest
import torch

from interp import load_model
from interp.models import gguf as gguf_mod


def test_tiny_llama_gguf_loads_and_matches_hf(tiny_gguf, use_tiny_cache):
    path, ref = tiny_gguf
    model = load_model(str(path), device="cpu")
    assert model.cfg.architecture == "LlamaForCausalLM"
    assert not model.training
    assert model.cfg.dtype == torch.float32
    ids = model.tokenizer(["hello world", "a quiet fox"], return_tensors="pt", padding=True)
    with torch.inference_mode():
        ours = model(ids.input_ids, attention_mask=ids.attention_mask)
        theirs = ref(ids.input_ids, attention_mask=ids.attention_mask).logits
    assert (ours - theirs).abs().max().item() <= 1e-4


def test_conversion_is_cached_and_marked(tiny_gguf, use_tiny_cache, monkeypatch):
    path, _ = tiny_gguf
    first = gguf_mod.convert_gguf(path)
    meta = json.loads((first / gguf_mod.MARKER).read_text())
    assert meta["sha256"] == gguf_mod.sha256_file(path) == first.name
    assert (first / "model.safetensors").is_file() and (first / "tokenizer.json").is_file()

    def boom(*a, **k):
        raise AssertionError("a warm call must not convert again")

    monkeypatch.setattr(gguf_mod, "_convert", boom)
    assert gguf_mod.convert_gguf(path) == first


def test_interrupted_conversion_leaves_nothing_a_later_call_trusts(tiny_gguf, tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path))
    path, _ = tiny_gguf
    from transformers import PreTrainedModel

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(PreTrainedModel, "save_pretrained", interrupted)
        with pytest.raises(KeyboardInterrupt):
            gguf_mod.convert_gguf(path)
    root = tmp_path / "hf-from-gguf"
    leftovers = [p.name for p in root.iterdir() if p.is_dir()]
    assert leftovers == []
    digest = gguf_mod.sha256_file(path)
    assert gguf_mod.converted_dir(digest) is None
    # A later call converts from scratch and succeeds.
    done = gguf_mod.convert_gguf(path)
    assert done.name == digest and (done / gguf_mod.MARKER).is_file()


def test_missing_gguf_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="GGUF file not found: .*nope.gguf"):
        load_model(str(tmp_path / "nope.gguf"))
