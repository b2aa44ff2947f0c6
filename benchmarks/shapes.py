"""Configs of real architectures and sizes, for random-initialised speed measurements (no hub)."""

from typing import Any

import torch


def _tokenizer(vocab: int) -> Any:
    """A minimal fast tokenizer (the bridge needs one; benchmarks feed token ids directly)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab_map = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3}
    vocab_map.update({f"t{i}": i for i in range(4, 512)})
    tok = Tokenizer(models.WordLevel(vocab_map, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>")
    # What the bridge reads to decide whether to reload the tokenizer from the hub: nothing to reload.
    fast.init_kwargs.update(name_or_path="interp-benchmark", add_bos_token=True)
    return fast


def config(name: str) -> Any:
    from transformers import Gemma3TextConfig, LlamaConfig, Qwen2Config

    if name == "gemma-3-270m":
        pattern = (["sliding_attention"] * 5 + ["full_attention"]) * 3
        return Gemma3TextConfig(
            vocab_size=262144, hidden_size=640, intermediate_size=2048, num_hidden_layers=18, num_attention_heads=4,
            num_key_value_heads=1, head_dim=256, query_pre_attn_scalar=256, sliding_window=512, layer_types=pattern,
            max_position_embeddings=32768, rms_norm_eps=1e-6, tie_word_embeddings=True, hidden_activation="gelu_pytorch_tanh",
            rope_parameters={"full_attention": {"rope_theta": 1e6, "rope_type": "default"},
                             "sliding_attention": {"rope_theta": 1e4, "rope_type": "default"}},
            bos_token_id=2, eos_token_id=1, pad_token_id=0,
        )
    if name == "qwen2.5-0.5b":
        return Qwen2Config(
            vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
            num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-6, rope_theta=1e6, tie_word_embeddings=True,
            bos_token_id=2, eos_token_id=1, pad_token_id=0,
        )
    if name == "llama-3.2-1b":
        return LlamaConfig(
            vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
            num_key_value_heads=8, head_dim=64, max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
            rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 8192},
            tie_word_embeddings=True, bos_token_id=2, eos_token_id=1, pad_token_id=0,
        )
    if name in ("llama-3.1-8b", "llama-3.1-70b"):
        big = name.endswith("70b")
        return LlamaConfig(
            vocab_size=128256, hidden_size=8192 if big else 4096, intermediate_size=28672 if big else 14336,
            num_hidden_layers=80 if big else 32, num_attention_heads=64 if big else 32, num_key_value_heads=8,
            head_dim=128, max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 8192},
            tie_word_embeddings=False, bos_token_id=2, eos_token_id=1, pad_token_id=0,
        )
    if name == "tiny-llama":  # for checking the benchmarks' own logic on the CPU
        return LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                           bos_token_id=2, eos_token_id=1, pad_token_id=0)
    raise ValueError(f"unknown shape {name!r}; known: gemma-3-270m, qwen2.5-0.5b, llama-3.2-1b, llama-3.1-8b, "
                     "llama-3.1-70b, tiny-llama")


def random_model(name: str, device: str, dtype: torch.dtype, seed: int = 0) -> Any:
    """A random-initialised HF causal LM of the named shape, eager attention, eval mode."""
    from transformers import AutoModelForCausalLM

    cfg = config(name)
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    return model.to(device).eval()


def random_bridge(name: str, device: str, dtype: torch.dtype, seed: int = 0) -> Any:
    """The same random model (same seed) wrapped as a TransformerBridge."""
    from interp.models import ModelSpec
    from interp.models.load import bridge_from_hf

    return bridge_from_hf(random_model(name, device, dtype, seed), _tokenizer(config(name).vocab_size), ModelSpec(name))


def meta_random_model(name: str, placement: "str | dict[str, Any]", dtype: torch.dtype, seed: int = 0) -> Any:
    """A random-initialised HF model of the named shape built on the meta device and materialised
    where ``placement`` says: one device (``"cuda:0"``), or a device map ``{module name: device}``
    (then dispatched with Accelerate, as ``from_pretrained(device_map=...)`` does). Nothing is ever
    allocated on the CPU, so a 70B shape costs seconds. Linear and embedding weights N(0, 0.02),
    norms 1, rotary tables recomputed on their device."""
    from transformers import AutoModelForCausalLM

    cfg = config(name)
    cfg._attn_implementation = "eager"
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    where = {"": placement} if isinstance(placement, str) else dict(placement)
    for prefix, dev in where.items():
        dev = torch.device("cuda", dev) if isinstance(dev, int) else torch.device(dev)
        (model.get_submodule(prefix) if prefix else model).to_empty(device=dev)
    torch.manual_seed(seed)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            p.fill_(1.0) if p.dim() == 1 else p.normal_(0.0, 0.02)
    rotary = model.model.rotary_emb
    with torch.device(model.model.embed_tokens.weight.device):
        model.model.rotary_emb = type(rotary)(config=cfg)
    if not isinstance(placement, str):
        from accelerate import dispatch_model

        model = dispatch_model(model, device_map=where)
    return model.eval()


def flops_per_token(name: str, seq: int, *, lm_head: bool = False) -> float:
    """Forward FLOPs per token: 2 x the block matmul weights (+ the unembedding if run) + the
    attention scores and mixing, 2 x layers x seq x (query heads x head_dim) (Kaplan et al. 2020)."""
    c = config(name)
    hd = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    attn = c.hidden_size * hd * (2 * c.num_attention_heads + 2 * c.num_key_value_heads)
    mlp = 3 * c.hidden_size * c.intermediate_size
    n = c.num_hidden_layers * (attn + mlp) + (c.hidden_size * c.vocab_size if lm_head else 0)
    return 2.0 * n + 2.0 * c.num_hidden_layers * seq * c.num_attention_heads * hd
