"""Hugging Face calling conventions, spelled in one place.

transformers changes how its modules are called between releases. 5.24 renamed the KV cache's
keyword of the model, the decoder layers, the attention modules and ``generate`` from
``past_key_values`` to ``cache`` (the old name stays a deprecated alias until 5.40), and the output
field likewise; decoder layers return a tensor where older releases returned a tuple. Every other
module asks this one: :func:`cache_keyword` (the keyword this release takes), :func:`cache_kwargs`,
:func:`cache_in` (the cache a hook's ``kwargs`` carry, whatever its name), :func:`output_cache`,
:func:`is_decoding_step`; the decoder layer's return type is read by
:func:`interp.runtime.forward.layer_output`.

TransformerLens 4.3's attention bridges read the cache from ``past_key_values`` (or ``layer_past``)
only. Under transformers 5.24+ the decoder layer hands it over as ``cache=``, so the bridge never
extends its keys and values: every decoding step attends to itself alone and greedy generation
repeats the first token ("Germany" -> "GermanyGermGerm..."). :func:`bridge_cache_keyword` puts a
forward pre-hook on each attention bridge that passes the cache under the name the bridge reads
(nothing changes where the names already agree); :func:`interp.models.load.bridge_from_hf` installs it
on every bridge it makes.

Example:
    >>> from interp.runtime.conventions import cache_kwargs, cache_in
    >>> cache_in(cache_kwargs("c")) == "c"
    True
"""

import functools
import inspect
from typing import Any

from torch import Tensor, nn

__all__ = [
    "CACHE_NAMES", "cache_keyword", "cache_kwargs", "cache_in", "output_cache", "is_decoding_step",
    "bridge_cache_keyword", "is_internal_hook",
]

# Every name a KV cache has gone by in a module's keyword arguments (newest first).
CACHE_NAMES = ("cache", "past_key_values", "past_key_value", "layer_past")


@functools.lru_cache(maxsize=1)
def cache_keyword() -> str:
    """The keyword this transformers release's models and ``generate`` take the KV cache by:
    ``"cache"`` from 5.24, ``"past_key_values"`` before (read off ``GenerationMixin.generate``'s
    decorated signature and the causal-LM base class, not from the version number)."""
    from transformers import GenerationMixin
    from transformers.modeling_outputs import CausalLMOutputWithPast

    fields = getattr(CausalLMOutputWithPast, "__dataclass_fields__", {})
    if "cache" in fields:
        return "cache"
    if "past_key_values" in fields:
        return "past_key_values"
    params = inspect.signature(GenerationMixin.generate).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_kwargs(cache: Any) -> dict[str, Any]:
    """``{keyword: cache}`` for a model / ``generate`` call of this transformers release."""
    return {cache_keyword(): cache}


def cache_in(kwargs: dict) -> Any:
    """The KV cache a module's keyword arguments carry (under any of :data:`CACHE_NAMES`), or None."""
    for name in CACHE_NAMES:
        value = kwargs.get(name)
        if value is not None:
            return value
    return None


def output_cache(output: Any) -> Any:
    """The KV cache of a model's output (``.cache`` from 5.24, ``.past_key_values`` before)."""
    for name in ("cache", "past_key_values"):
        value = getattr(output, name, None)
        if value is not None:
            return value
    return None


def is_decoding_step(x: Tensor, kwargs: dict) -> bool:
    """True when a decoder layer's call is one generated token read against a KV cache: one
    position in ``x`` ``[batch, pos, d]`` and a non-empty cache in ``kwargs`` under any name. A prompt
    pass (several positions, or a cache that holds nothing yet) is not a decoding step."""
    if x.shape[1] != 1:
        return False
    cache = cache_in(kwargs)
    if cache is None:
        return False
    length = getattr(cache, "get_seq_length", None)
    try:
        return length is None or int(length()) > 0
    except (TypeError, ValueError, IndexError, AttributeError):
        return True


def _rename_cache(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    if kwargs.get("past_key_values") is None and kwargs.get("cache") is not None:
        kwargs = dict(kwargs)
        kwargs["past_key_values"] = kwargs["cache"]
    return args, kwargs


def is_internal_hook(hook: Any) -> bool:
    """True for the hooks :func:`bridge_cache_keyword` installs (they change no value)."""
    return hook is _rename_cache


def bridge_cache_keyword(bridge: nn.Module) -> int:
    """Let every attention bridge of ``bridge`` see the KV cache however the decoder layer names
    it (see the module docstring). Idempotent; returns how many modules were hooked."""
    n = 0
    for module in bridge.modules():
        # An attention bridge: the component that extends the KV cache itself (reading it by the old name).
        if not hasattr(module, "_update_kv_cache") or getattr(module, "_interp_cache_hook", False):
            continue
        module.register_forward_pre_hook(_rename_cache, with_kwargs=True)
        module._interp_cache_hook = True
        n += 1
    return n
