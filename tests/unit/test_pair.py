import pytest
import torch

from interp import ModelPair, ModelSpec, load_model, load_pair
from interp.models import list_pairs
from interp.models.load import bridge_from_hf
from interp.models.registry import get_pair_spec
from tests import tiny


def _bridge(hf_model, tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    return bridge_from_hf(hf_model, tok, ModelSpec(str(tokenizer_dir)))


def test_pair_from_two_specs(tiny_gemma_dir):
    pair = load_pair((str(tiny_gemma_dir), ModelSpec(str(tiny_gemma_dir), chat_template="gemma", prompt_style="chat")), device="cpu")
    assert pair.style("base") == "plain" and pair.style("aligned") == "chat"
    assert pair.n_layers == 2 and pair.d_model == tiny.D_MODEL
    assert pair.side("aligned") is pair.aligned
    assert "ModelPair" in pair._repr_html_()
    with pytest.raises(ValueError, match="side must be one of"):
        pair.side("instruct")


def test_strings_for_aligned_default_to_chat_style(tiny_gemma_dir):
    with pytest.raises(ValueError, match="prompt_style='chat' but its tokenizer has no chat template"):
        load_pair((str(tiny_gemma_dir), str(tiny_gemma_dir)), device="cpu")


def test_mismatched_layers(tiny_gemma_dir):
    a = _bridge(tiny.tiny_gemma3(), tiny_gemma_dir)
    b = _bridge(tiny.tiny_gemma3(num_hidden_layers=3, layer_types=["sliding_attention"] * 2 + ["full_attention"]), tiny_gemma_dir)
    with pytest.raises(ValueError, match=r"ModelPair: n_layers differs \(base 2, aligned 3\)"):
        ModelPair(a, b)


def test_mismatched_width(tiny_gemma_dir):
    a = _bridge(tiny.tiny_gemma3(), tiny_gemma_dir)
    b = _bridge(tiny.tiny_gemma3(hidden_size=32), tiny_gemma_dir)
    with pytest.raises(ValueError, match=r"ModelPair: d_model differs \(base 64, aligned 32\)"):
        ModelPair(a, b)


def test_mismatched_architecture(tiny_gemma_dir, tiny_llama_dir):
    a = load_model(str(tiny_gemma_dir), device="cpu")
    b = load_model(str(tiny_llama_dir), device="cpu")
    with pytest.raises(ValueError, match=r"ModelPair: architectures differ \(base Gemma3ForCausalLM, aligned LlamaForCausalLM\)"):
        ModelPair(a, b)


def test_mismatched_vocab(tiny_gemma_dir):
    a = _bridge(tiny.tiny_gemma3(), tiny_gemma_dir)
    b = _bridge(tiny.tiny_gemma3(), tiny_gemma_dir)
    b.tokenizer.add_tokens(["<extra_token>"])
    n = len(tiny.TOKENS)
    with pytest.raises(ValueError, match=rf"ModelPair: tokenizers differ \(base vocab {n}, aligned vocab {n + 1}\)"):
        ModelPair(a, b)


def test_lora_adapter_is_merged(tiny_gemma_dir, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model

    from interp.models import load_hf

    base, tok = load_hf(str(tiny_gemma_dir), device="cpu")
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    peft_model = get_peft_model(base, cfg)
    peft_model.save_pretrained(tmp_path / "adapter")
    merged = load_model(ModelSpec(str(tiny_gemma_dir), adapter=str(tmp_path / "adapter")), device="cpu")
    plain = load_model(str(tiny_gemma_dir), device="cpu")
    fresh, _ = load_hf(str(tiny_gemma_dir), device="cpu")
    reference = PeftModel.from_pretrained(fresh, tmp_path / "adapter").eval()
    ids = tok(["hello world", "a fox"], return_tensors="pt", padding=True)
    with torch.inference_mode():
        ours = merged(ids.input_ids, attention_mask=ids.attention_mask)
        theirs = reference(**ids).logits
        unchanged = plain(ids.input_ids, attention_mask=ids.attention_mask)
    assert (ours - theirs).abs().max().item() <= 1e-4
    assert (ours - unchanged).abs().max().item() > 1e-3  # the adapter really changes the model


def test_registry():
    frame = list_pairs()
    assert {"default", "gemma-3-270m", "qwen2.5-0.5b", "llama-3.2-1b", "gemma-2-2b"} <= set(frame["name"])
    default = get_pair_spec("default")
    assert not default.needs_internet and default.aligned.prompt_style == "chat"
    with pytest.raises(KeyError, match="no registered pair 'nope'; known pairs: default"):
        get_pair_spec("nope")
    with pytest.raises(ValueError, match="exactly two specs"):
        load_pair(["a", "b", "c"])


def test_pair_encode_formats_each_side_and_marks_positions(tiny_gemma_dir):
    from interp.prompts import encode, format_prompt

    pair = load_pair((str(tiny_gemma_dir), ModelSpec(str(tiny_gemma_dir), chat_template="gemma", prompt_style="chat")), device="cpu")
    texts = ["where is the fox", "a cat"]
    for side in ("base", "aligned"):
        tok = pair.side(side).tokenizer
        got = pair.encode(side, texts, spans=["fox", "cat"], answers=[" hall", " mat"])
        want = encode(tok, [format_prompt(t, style=pair.style(side), tokenizer=tok) for t in texts],
                      spans=["fox", "cat"], answers=[" hall", " mat"])
        assert torch.equal(got.input_ids, want.input_ids)
        assert {k: v.tolist() for k, v in got.positions.items()} == {k: v.tolist() for k, v in want.positions.items()}
    assert "<start_of_turn>" in pair.encode("aligned", ["a"]).texts[0] and pair.encode("base", ["a"]).texts == ["a"]
    r = repr(pair)
    assert r.startswith("ModelPair(") and "2 layers" in r and len(r) < 200 and "\n" not in r


def test_a_registered_pair_without_its_adapter_is_an_error(monkeypatch, tmp_path):
    from interp.models import registry

    entry = registry.PairSpec("missing", ModelSpec("gemma-3-270m"), ModelSpec("gemma-3-270m", chat_template="gemma",
                                                                                prompt_style="chat"),
                              adapter_dir=str(tmp_path / "nowhere"))
    monkeypatch.setitem(registry._PAIRS, "missing", entry)
    with pytest.raises(FileNotFoundError, match="aligned LoRA adapter .* is missing.*interp align.*allow_placeholder"):
        load_pair("missing")


def test_entry_points_are_reachable_from_interp():
    import numpy as np

    import interp
    from interp import hooks
    from interp.cache import cache_activations
    from interp.probes import probe_store

    assert interp.cache_activations is cache_activations and interp.probe_store is probe_store
    assert "run_unmask" in dir(interp) and "describe_model" in interp.__all__
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        interp.nope  # noqa: B018
    assert hooks.name("resid_post", np.int64(3)) == "blocks.3.hook_resid_post"


@pytest.mark.parametrize("family", ["gemma3", "llama"])
def test_an_adapter_pair_keeps_one_copy_of_the_base_weights(family, request, tmp_path):
    from peft import LoraConfig, get_peft_model

    from interp.models import load_hf
    from interp.models.shared import is_shared, shared_parameters
    from interp.patching import orthogonalize_weights_inplace
    from interp.unmask.localise import WeightRestore

    folder = request.getfixturevalue("tiny_gemma_dir" if family == "gemma3" else "tiny_llama_dir")
    base_hf, tok = load_hf(str(folder), device="cpu")
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    get_peft_model(base_hf, cfg).save_pretrained(tmp_path / "adapter")
    specs = (ModelSpec(str(folder)), ModelSpec(str(folder), adapter=str(tmp_path / "adapter"),
                                                       chat_template="gemma", prompt_style="chat"))
    shared = load_pair(specs, device="cpu")
    apart = load_pair(specs, device="cpu", share_weights=False)
    ids = tok(["hello world", "a fox"], return_tensors="pt", padding=True)
    with torch.inference_mode():
        for side in ("base", "aligned"):
            got = shared.side(side)(ids.input_ids, attention_mask=ids.attention_mask)
            want = apart.side(side)(ids.input_ids, attention_mask=ids.attention_mask)
            assert torch.equal(got, want), side  # the same numbers as two separate loads
    # The aligned side's tokenizer is a copy of the base's (no second parse of the files): it
    # behaves as the one loaded apart, and its own settings stay its own.
    t_base, t_al = shared.base.tokenizer, shared.aligned.tokenizer
    assert t_al is not t_base and t_al.chat_template == apart.aligned.tokenizer.chat_template != t_base.chat_template
    texts = ["hello world", "a fox\n jumps", "I don't know."]
    for mine, ref in ((t_base, apart.base.tokenizer), (t_al, apart.aligned.tokenizer)):
        assert mine(texts)["input_ids"] == ref(texts)["input_ids"]
    chat = [{"role": "user", "content": "Which element has the symbol Au?"}]
    assert t_al.apply_chat_template(chat, tokenize=False) == apart.aligned.tokenizer.apply_chat_template(chat, tokenize=False)
    side_before = t_base.padding_side
    t_al.padding_side = "right" if side_before == "left" else "left"
    assert t_base.padding_side == side_before
    t_al.padding_side = side_before
    total = sum(p.numel() for p in shared.aligned.original_model.parameters())
    adapted = sum(p.numel() for n, p in shared.aligned.original_model.named_parameters()
                  if any(t in n for t in ("q_proj", "v_proj", "down_proj")))
    assert shared_parameters(shared.aligned) == total - adapted > 0 and shared_parameters(apart.aligned) == 0
    base_params = {id(p) for p in shared.base.original_model.parameters()}
    assert all((id(p) in base_params) == is_shared(p) for p in shared.aligned.original_model.parameters())
    assert all(p.requires_grad for p in shared.base.original_model.parameters())  # peft left the base's flags alone
    # A weight restore and an in-place orthogonalisation of the aligned side leave the base as it was.
    with torch.inference_mode():
        before = shared.base(ids.input_ids, attention_mask=ids.attention_mask).clone()
    with WeightRestore(source=shared.base, layers=(0, 1)).applied(shared.aligned):
        with torch.inference_mode():
            restored = shared.aligned(ids.input_ids, attention_mask=ids.attention_mask)
    assert (restored - before).abs().max() <= 1e-5  # every layer restored: the base's numbers
    d = torch.randn(shared.d_model)
    from interp.runtime import arch_of

    arch = arch_of(shared.aligned)
    if arch.family.post_norm:  # Gemma-3 refuses the weight edit; edit the embedding the same way it would
        from interp.models.shared import unshare

        unshare(arch.embed)
        with torch.no_grad():
            arch.embed.weight.add_(1.0)
    else:
        orthogonalize_weights_inplace(shared.aligned, d)
    with torch.inference_mode():
        after = shared.base(ids.input_ids, attention_mask=ids.attention_mask)
        edited = shared.aligned(ids.input_ids, attention_mask=ids.attention_mask)
    assert torch.equal(after, before)
    assert (edited - apart.aligned(ids.input_ids, attention_mask=ids.attention_mask)).abs().max() > 1e-3
    assert family == "gemma3" or shared_parameters(shared.aligned) < total - adapted  # the edited weights were copied
