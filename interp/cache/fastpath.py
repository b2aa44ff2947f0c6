"""Residual-stream capture at HF speed: run the bridge's own modules without the bridge wrappers.

A ``TransformerBridge`` wraps every submodule of the HF model (blocks, attention, MLP, norms) in a
component that fires hook points, which costs time on a GPU even when no hook is attached. For
``resid_pre`` / ``resid_post`` (the input / output of a decoder layer) nothing of that is needed:
:func:`unwrapped` puts the original modules back into the HF tree for the duration of a call, the
capture uses plain PyTorch hooks on the decoder layers, and everything is restored afterwards. The
weights are the bridge's own, so the values equal ``run_with_cache`` (the tests check this).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from transformer_lens.model_bridge import TransformerBridge
from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent

__all__ = ["unwrapped", "decoder_layers", "FAST_HOOKS", "layer_input", "with_layer_input"]

#: Hook kinds the fast path captures (the decoder layer's input and output).
FAST_HOOKS = frozenset({"resid_pre", "resid_post"})


def _restore(module: nn.Module, swaps: list[tuple[nn.Module, str, nn.Module]]) -> None:
    for name, child in list(module.named_children()):
        if isinstance(child, GeneralizedComponent):
            original = getattr(child, "original_component", None)
            if original is None:
                continue
            swaps.append((module, name, child))
            setattr(module, name, original)
            _restore(original, swaps)
        else:
            _restore(child, swaps)


@contextmanager
def unwrapped(bridge: TransformerBridge) -> Iterator[nn.Module]:
    """Yield the bridge's HF model with its original submodules in place; re-wrap on exit."""
    hf = bridge.original_model
    swaps: list[tuple[nn.Module, str, nn.Module]] = []
    try:
        _restore(hf, swaps)
        yield hf
    finally:
        for parent, name, wrapper in reversed(swaps):
            setattr(parent, name, wrapper)


def decoder_layers(hf: nn.Module, n_layers: int) -> tuple[nn.Module, list[nn.Module]]:
    """``(body, layers)``: the HF text model (no LM head) and its decoder layers."""
    for body in (getattr(hf, "model", None), getattr(hf, "transformer", None)):
        if body is None:
            continue
        for attr in ("layers", "h", "blocks"):
            layers = getattr(body, attr, None)
            if isinstance(layers, nn.ModuleList) and len(layers) == n_layers:
                return body, list(layers)
    raise NotImplementedError(f"no decoder-layer list of length {n_layers} found on {type(hf).__name__}")


def layer_input(args: tuple, kwargs: dict[str, Any]) -> torch.Tensor:
    """The residual stream entering a decoder layer (first positional or ``hidden_states``)."""
    if args and isinstance(args[0], torch.Tensor):
        return args[0]
    return kwargs["hidden_states"]


def with_layer_input(args: tuple, kwargs: dict[str, Any], hidden: torch.Tensor) -> tuple[tuple, dict[str, Any]]:
    """``(args, kwargs)`` of a decoder layer call with its input residual stream replaced by
    ``hidden`` (what a forward pre-hook with ``with_kwargs=True`` returns)."""
    if args and isinstance(args[0], torch.Tensor):
        return (hidden,) + tuple(args[1:]), kwargs
    return args, {**kwargs, "hidden_states": hidden}


def layer_output(output: Any) -> torch.Tensor:
    """The residual stream leaving a decoder layer (a tensor or the first element of a tuple)."""
    return output[0] if isinstance(output, (tuple, list)) else output
