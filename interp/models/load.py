"""Load one checkpoint as a TransformerLens ``TransformerBridge``.

``load_model(spec)`` accepts a packaged model name (``"gemma-3-270m"``), a Hugging Face hub id, a
local HF directory, a ``.gguf`` file, or a :class:`~interp.models.spec.ModelSpec` (which can add a
LoRA adapter and a chat template). The bridge runs in raw HF numerics (no weight folding), in eval
mode, fp32 on CPU and bf16 on GPU unless told otherwise.
"""

import logging
import os
import re
import weakref
from pathlib import Path
from typing import Any

import torch
from transformer_lens.model_bridge import TransformerBridge

from interp.models.chat_templates import resolve_template
from interp.models.gguf import convert_gguf
from interp.models.packaged import PACKAGED, materialize
from interp.models.spec import ModelSpec, as_spec
from interp.runtime.conventions import bridge_cache_keyword

# bitsandbytes (the [quant] extra), imported by transformers whenever it is installed, logs at import
# that an optional CPU 4-bit kernel package is absent; its own fallback is used. Not the user's concern.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

__all__ = [
    "load_model",
    "load_hf",
    "resolve_source",
    "default_device",
    "default_dtype",
    "spec_of",
    "bridge_from_hf",
    "weights_fingerprint",
]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SPECS: "weakref.WeakKeyDictionary[TransformerBridge, ModelSpec]" = weakref.WeakKeyDictionary()


def default_device() -> torch.device:
    """CUDA if available (under ``torchrun``, the rank's own GPU, ``cuda:$LOCAL_RANK``), else CPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def default_dtype(device: "str | torch.device") -> torch.dtype:
    """fp32 on CPU, bf16 on an accelerator."""
    return torch.float32 if torch.device(device).type == "cpu" else torch.bfloat16


def resolve_source(spec: ModelSpec) -> str:
    """A local HF directory or a hub id for ``spec.source``; converts GGUF files on first use."""
    source = spec.source
    if source in PACKAGED:
        return str(materialize(source))
    path = Path(source).expanduser()
    if source.endswith(".gguf"):
        if not path.is_file():
            raise FileNotFoundError(f"GGUF file not found: {source}; pass the path of an existing .gguf file")
        return str(convert_gguf(path))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(
                f"{source} is a directory without config.json; pass a Hugging Face model folder "
                "(config.json + weights + tokenizer files)"
            )
        return str(path)
    if path.exists():
        raise ValueError(f"{source} is a file but not a .gguf; pass a .gguf file or an HF model folder")
    if _HUB_ID.match(source):
        return source
    raise ValueError(
        f"cannot resolve model spec {source!r}: not a packaged model ({', '.join(PACKAGED)}), "
        "not an existing HF directory or .gguf file, and not a hub id of the form 'org/name'"
    )


def _load_tokenizer(spec: ModelSpec, source: str, like: Any = None) -> Any:
    """The tokenizer of ``source`` configured for ``spec`` (BOS prepended, the spec's chat template).

    ``like``: a tokenizer already loaded from the same ``source`` and configured without a chat
    template of its own spec (the base side of an adapter pair): the new one is a shallow copy of it
    with its own attributes and containers, sharing the read-only vocabulary (Rust) object, instead
    of a second parse of the files (Gemma's 262k-token vocabulary: about 5 s on 2 CPU cores). Adding
    tokens to one side's tokenizer would then show in the other's: interp never does."""
    if like is not None:
        tokenizer = _copy_tokenizer(like)
    else:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source)
        _add_bos(tokenizer)
    if spec.chat_template is not None:
        tokenizer.chat_template = resolve_template(spec.chat_template)
    if spec.prompt_style == "chat" and not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"{spec.label}: prompt_style='chat' but its tokenizer has no chat template; "
            "pass chat_template='gemma' (or a Jinja string) in the ModelSpec"
        )
    return tokenizer


def _copy_tokenizer(tokenizer: Any) -> Any:
    """A shallow copy of ``tokenizer`` whose attribute containers (special tokens, init kwargs, ...)
    are its own, so setting a chat template, padding side or pad token on it leaves ``tokenizer``
    as it was."""
    import copy

    out = copy.copy(tokenizer)
    for name, value in list(vars(out).items()):
        if isinstance(value, (dict, list, set)):
            setattr(out, name, copy.copy(value))
    return out


def _add_bos(tokenizer: Any) -> None:
    """Make ``tokenizer`` prepend its BOS token, as TransformerLens's bridge requires, in place.

    The bridge otherwise loads the tokenizer a second time with ``add_bos_token=True`` (2.5 s for
    Gemma's 262k vocabulary, twice per pair). Kept only when the result starts with BOS; otherwise
    the tokenizer is left as it was and the bridge does what it always did."""
    if tokenizer.bos_token is None or tokenizer.init_kwargs.get("add_bos_token"):
        return
    before = getattr(tokenizer, "add_bos_token", None)
    try:
        tokenizer.add_bos_token = True
        ok = tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id]
    except (AttributeError, ValueError, TypeError):
        ok = False
    if ok:
        tokenizer.init_kwargs["add_bos_token"] = True
    elif before is not None:
        tokenizer.add_bos_token = before


def load_hf(
    spec: "str | os.PathLike[str] | ModelSpec",
    *,
    device: "str | torch.device | None" = None,
    dtype: torch.dtype | None = None,
    device_map: "str | dict | None" = None,
    quantize: str | None = None,
) -> tuple[Any, Any]:
    """The plain Hugging Face model (eager attention, eval mode) and tokenizer for ``spec``.

    ``device_map`` (``"auto"``, ``"balanced"`` or a dict, as in transformers / Accelerate) spreads
    the layers over several GPUs instead of putting the model on ``device``. ``quantize``
    (``"8bit"`` or ``"4bit"``, bitsandbytes; CPU or GPU) stores the linear layers' weights in 8 or
    4 bits, for a side that is only read (the frozen base); not with an adapter.

    Used as the reference implementation in tests and benchmarks, and by :func:`load_model`.
    """
    from transformers import AutoModelForCausalLM

    spec = as_spec(spec)
    if device_map is not None and device is not None:
        raise ValueError("pass device= (one device) or device_map= (several), not both")
    device = torch.device(device) if device is not None else default_device()
    dtype = dtype or default_dtype(device)
    source = resolve_source(spec)
    tokenizer = _load_tokenizer(spec, source)
    kwargs = {"device_map": device_map} if device_map is not None else {}
    if quantize is not None:
        kwargs |= {"quantization_config": _quantization(quantize, dtype, spec),
                   "device_map": device_map if device_map is not None else {"": str(device)}}
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, attn_implementation="eager", **kwargs)
    if spec.adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, spec.adapter).merge_and_unload()
    return (model if "device_map" in kwargs else model.to(device)).eval(), tokenizer


QUANTIZE = ("8bit", "4bit")


def _quantization(quantize: str, dtype: torch.dtype, spec: ModelSpec) -> Any:
    """The bitsandbytes config for ``quantize``, with clear errors for what cannot work."""
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {QUANTIZE} (or None), got {quantize!r}")
    if spec.adapter is not None:
        raise ValueError(f"{spec.label}: quantize= is for a side without an adapter (the frozen base); merging a LoRA "
                         "adapter into quantized weights would round it away. Load the adapted side unquantized")
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        raise ImportError("quantize= needs bitsandbytes: pip install 'interp[quant]' (or pip install bitsandbytes)")
    from transformers import BitsAndBytesConfig

    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=dtype, bnb_4bit_quant_type="nf4")


def is_quantized(model: Any) -> bool:
    """True for a model (bridge or HF) loaded with ``quantize=``."""
    hf = getattr(model, "original_model", model)
    return getattr(hf, "hf_quantizer", None) is not None or getattr(hf.config, "quantization_config", None) is not None


def bridge_from_hf(model: Any, tokenizer: Any, spec: ModelSpec) -> TransformerBridge:
    """Wrap an already-loaded HF causal LM as a bridge (the model is modified in place)."""
    param = next(model.parameters())
    if not getattr(model.config, "architectures", None):  # models built in memory have none
        model.config.architectures = [type(model).__name__]
    # A name TransformerLens will not mistake for one of its hub aliases.
    bridge = TransformerBridge.boot_transformers(
        f"interp/{spec.label}", hf_model=model, tokenizer=tokenizer, device=param.device, dtype=param.dtype
    )
    bridge.eval()
    bridge_cache_keyword(bridge)  # TransformerLens 4.3 reads the KV cache by its pre-5.24 name only
    # The bridge may re-create the tokenizer (to force BOS); keep the attached chat template.
    if spec.chat_template is not None and bridge.tokenizer is not None:
        bridge.tokenizer.chat_template = resolve_template(spec.chat_template)
    _SPECS[bridge] = spec
    return bridge


def load_model(
    spec: "str | os.PathLike[str] | ModelSpec",
    *,
    device: "str | torch.device | None" = None,
    dtype: torch.dtype | None = None,
    device_map: "str | dict | None" = None,
    quantize: str | None = None,
) -> TransformerBridge:
    """Load a checkpoint as a ``TransformerBridge`` ready for ``torch.inference_mode()``.

    Args:
        spec: ``"gemma-3-270m"`` (packaged, offline), a hub id (``"google/gemma-3-270m-it"``),
            a local HF folder, a ``.gguf`` file, or a :class:`ModelSpec`.
        device: defaults to CUDA when available, else CPU.
        dtype: defaults to fp32 on CPU, bf16 on GPU.
        device_map: spread the model over several GPUs (``"auto"``, ``"balanced"``, or a dict of
            module name -> device); inputs then go to the embedding's GPU and every analysis
            gathers per-layer tensors there (:func:`interp.runtime.input_device`).
        quantize: ``"8bit"`` or ``"4bit"`` weights (bitsandbytes, ``pip install 'interp[quant]'``)
            for a side that is only read; see :func:`load_hf`.

    Example:
        >>> import torch
        >>> from interp import load_model, hooks
        >>> model = load_model("gemma-3-270m")                        # doctest: +SKIP
        >>> with torch.inference_mode():                              # doctest: +SKIP
        ...     _, cache = model.run_with_cache("The Eiffel Tower is in",
        ...                                     names_filter=hooks.resid_post(5))
    """
    spec = as_spec(spec)
    model, tokenizer = load_hf(spec, device=device, dtype=dtype, device_map=device_map, quantize=quantize)
    return bridge_from_hf(model, tokenizer, spec)


def weights_fingerprint(model: Any) -> str:
    """A hash of a model's weights as loaded (adapter merged, GGUF de-quantized): every parameter's
    name, shape, dtype, sum and a strided sample of its values. Two loads of the same checkpoint give
    the same fingerprint; different weights (another adapter, a fine-tune) give another.

    Example:
        >>> weights_fingerprint(load_model("gemma-3-270m"))    # doctest: +SKIP
        '3f2a9c0d51e7b8a4'
    """
    import hashlib

    digest = hashlib.sha256()
    hf = getattr(model, "original_model", model)
    with torch.no_grad():
        for name, p in sorted(hf.named_parameters(remove_duplicate=True)):
            flat = p.detach().reshape(-1)  # no fp32/fp64 copy of the parameter (4-8 GB for a 70B embedding)
            sample = flat[:: max(1, flat.numel() // 4096)][:4096].float().cpu()
            digest.update(f"{name}:{tuple(p.shape)}:{p.dtype}:{float(flat.sum(dtype=torch.float64)):.8e}".encode())
            digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:16]


def spec_of(model: TransformerBridge) -> ModelSpec | None:
    """The :class:`ModelSpec` a bridge was loaded from (None for bridges made elsewhere)."""
    return _SPECS.get(model)
