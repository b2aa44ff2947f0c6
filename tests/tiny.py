"""Tiny random-initialised models for the unit tier (no network, no default model).

``write_tiny_llama_gguf`` writes a real GGUF file (with one Q8_0-quantized tensor) of a 2-layer
Llama with a small sentencepiece vocabulary, and returns the HF model holding the same
(de-quantized) weights, so a test can compare interp's GGUF path against plain transformers.
"""

import shutil
from pathlib import Path

import gguf
import numpy as np
import torch
from transformers import Gemma3TextConfig, Gemma3ForCausalLM, LlamaConfig, LlamaForCausalLM

LETTERS = list("abcdefghijklmnopqrstuvwxyz")
TOKENS = (
    ["<unk>", "<s>", "</s>", "<pad>", "\u2581"]
    + LETTERS
    + ["\u2581" + c for c in LETTERS]
    + [".", ",", "?", ":", "\n", "<start_of_turn>", "<end_of_turn>"]
    + [f"<0x{i:02X}>" for i in range(256)]
)
D_MODEL, N_LAYERS, N_HEADS, N_KV, D_MLP = 64, 2, 4, 2, 128

_HF_TO_GGUF = [
    ("input_layernorm", "attn_norm"),
    ("self_attn.q_proj", "attn_q"),
    ("self_attn.k_proj", "attn_k"),
    ("self_attn.v_proj", "attn_v"),
    ("self_attn.o_proj", "attn_output"),
    ("post_attention_layernorm", "ffn_norm"),
    ("mlp.gate_proj", "ffn_gate"),
    ("mlp.up_proj", "ffn_up"),
    ("mlp.down_proj", "ffn_down"),
]


def _token_types() -> list[int]:
    types = []
    for tok in TOKENS:
        if tok.startswith("<0x"):
            types.append(6)  # byte
        elif tok in ("<unk>",):
            types.append(2)
        elif tok.startswith("<"):
            types.append(3)  # control
        else:
            types.append(1)
    return types


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's rotary permutation of q/k rows (transformers undoes it on load)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(TOKENS), hidden_size=D_MODEL, intermediate_size=D_MLP,
        num_hidden_layers=N_LAYERS, num_attention_heads=N_HEADS, num_key_value_heads=N_KV,
        max_position_embeddings=128, rms_norm_eps=1e-5, rope_theta=10000.0,
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=3,
    )
    return LlamaForCausalLM(cfg).eval()


def write_tiny_llama_gguf(path: Path, seed: int = 0) -> LlamaForCausalLM:
    """Write a tiny Llama GGUF to ``path``; return the HF model with identical weights."""
    model = tiny_llama(seed)
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name("tiny-llama")
    writer.add_block_count(N_LAYERS)
    writer.add_context_length(128)
    writer.add_embedding_length(D_MODEL)
    writer.add_feed_forward_length(D_MLP)
    writer.add_head_count(N_HEADS)
    writer.add_head_count_kv(N_KV)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(D_MODEL // N_HEADS)
    writer.add_vocab_size(len(TOKENS))
    writer.add_tokenizer_model("llama")
    writer.add_token_list(TOKENS)
    writer.add_token_scores([-1.0 - (len(t) == 1) if not t.startswith("<") else 0.0 for t in TOKENS])
    writer.add_token_types(_token_types())
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_pad_token_id(3)
    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    for i in range(N_LAYERS):
        for hf, gg in _HF_TO_GGUF:
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{gg}.weight"
    for hf, gg in names.items():
        arr = sd[hf]
        if gg.endswith("attn_q.weight"):
            arr = _permute(arr, N_HEADS)
        elif gg.endswith("attn_k.weight"):
            arr = _permute(arr, N_KV)
        if "ffn_up" in gg:  # exercise real de-quantization on one tensor kind
            q = gguf.quants.quantize(arr, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(gg, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            sd[hf] = gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(gg, arr)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()})
    return model


def tiny_gemma3(seed: int = 0, **overrides) -> Gemma3ForCausalLM:
    torch.manual_seed(seed)
    kwargs = dict(
        vocab_size=len(TOKENS), hidden_size=D_MODEL, intermediate_size=D_MLP,
        num_hidden_layers=N_LAYERS, num_attention_heads=N_HEADS, num_key_value_heads=1,
        head_dim=16, max_position_embeddings=128, sliding_window=8, query_pre_attn_scalar=16,
        bos_token_id=1, eos_token_id=2, pad_token_id=3,
        layer_types=["sliding_attention", "full_attention"],
    )
    kwargs.update(overrides)
    return Gemma3ForCausalLM(Gemma3TextConfig(**kwargs)).eval()


def save_hf_dir(model, tokenizer_dir: Path, out: Path) -> Path:
    """Save ``model`` with the tokenizer files of ``tokenizer_dir`` into ``out``."""
    model.save_pretrained(out)
    for f in tokenizer_dir.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(f, out / f.name)
    return out


def tiny_gemma3_multimodal(seed: int = 0):
    """A tiny Gemma-3 built from the multimodal config class (what gemma-3-4b and up load as):
    ``Gemma3ForConditionalGeneration``, its decoder layers under ``model.language_model``."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, SiglipVisionConfig

    torch.manual_seed(seed)
    text = tiny_gemma3(seed).config.to_dict()
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                image_size=28, patch_size=14).to_dict()
    return Gemma3ForConditionalGeneration(Gemma3Config(text_config=text, vision_config=vision,
                                                       mm_tokens_per_image=4)).eval()
