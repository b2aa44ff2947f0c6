"""Tiny random-initialised models of every decoder-only family the conformance matrix covers.

Each is written with transformers' own config class (2 layers, width 64, no downloads), wrapped as
a bridge with the tiny Llama's tokenizer. Norm weights are randomised so that a path reading a
norm's input, or its unscaled output, instead of its output shows up as a difference.
"""

import torch
import transformers as T

from tests import tiny

V = len(tiny.TOKENS)
_COMMON = dict(vocab_size=V, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
               max_position_embeddings=128, bos_token_id=1, eos_token_id=2, pad_token_id=3)

#: family -> (config class, model class, config overrides); ``None`` overrides: GPT-2's own names.
FAMILIES = {
    "llama": (T.LlamaConfig, T.LlamaForCausalLM, dict(num_key_value_heads=2)),
    "mistral": (T.MistralConfig, T.MistralForCausalLM, dict(num_key_value_heads=2, sliding_window=None)),
    "gemma": (T.GemmaConfig, T.GemmaForCausalLM, dict(num_key_value_heads=1, head_dim=16)),
    "gemma2": (T.Gemma2Config, T.Gemma2ForCausalLM,
               dict(num_key_value_heads=2, head_dim=16, sliding_window=4, query_pre_attn_scalar=16,
                    final_logit_softcapping=5.0, attn_logit_softcapping=None)),
    "gemma3": (T.Gemma3TextConfig, T.Gemma3ForCausalLM,
               dict(num_key_value_heads=1, head_dim=16, sliding_window=4, query_pre_attn_scalar=16,
                    layer_types=["sliding_attention", "full_attention"])),
    "qwen2": (T.Qwen2Config, T.Qwen2ForCausalLM, dict(num_key_value_heads=2, tie_word_embeddings=True)),
    "qwen3": (T.Qwen3Config, T.Qwen3ForCausalLM, dict(num_key_value_heads=2, head_dim=16)),
    "olmo2": (T.Olmo2Config, T.Olmo2ForCausalLM, dict(num_key_value_heads=2)),
    "phi3": (T.Phi3Config, T.Phi3ForCausalLM, dict(num_key_value_heads=2)),
    "gpt_neox": (T.GPTNeoXConfig, T.GPTNeoXForCausalLM, dict(rotary_pct=0.5)),
    "gpt2": (T.GPT2Config, T.GPT2LMHeadModel, None),
}


def hf_model(family: str, seed: int = 0):
    """The family's tiny HF causal LM (eager attention, eval mode, random norm weights)."""
    cfg_cls, model_cls, overrides = FAMILIES[family]
    torch.manual_seed(seed)
    if overrides is None:
        cfg = cfg_cls(vocab_size=V, n_embd=64, n_layer=2, n_head=4, n_positions=128, bos_token_id=1, eos_token_id=2)
    else:
        cfg = cfg_cls(**{**_COMMON, **overrides})
    cfg._attn_implementation = "eager"
    model = model_cls(cfg).eval()
    g = torch.Generator().manual_seed(seed + 7)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or ".ln_" in name or name.endswith(("ln_f.weight", "ln_f.bias")):
                p.copy_(p + torch.randn(p.shape, generator=g) * 0.3)
    return model


def bridge(family: str, tokenizer, seed: int = 0):
    """The family's tiny model as a TransformerBridge (through interp's own loader path)."""
    from interp.models.load import bridge_from_hf
    from interp.models.spec import ModelSpec

    return bridge_from_hf(hf_model(family, seed), tokenizer, ModelSpec("tiny-" + family))
