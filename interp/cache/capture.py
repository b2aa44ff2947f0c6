"""Capture chosen hooks at chosen positions in one forward pass that stops as early as it can.

Only the requested hooks fire into Python, each keeps only the marked positions (``[batch, d]``
instead of ``[batch, pos, d]``), and the pass is aborted right after the deepest requested hook has
fired, so later blocks and the unembedding are never computed.
"""

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge
from transformer_lens.model_bridge.exceptions import StopAtLayerException

from interp import hooks as hk
from interp.prompts import PromptBatch
from interp.runtime import FastPathUnavailable, input_device, arch_of, body_forward, check_layer, layer_input, layer_output, unwrapped, use_fast

__all__ = ["capture", "POSITIONS", "hook_order", "FAST_HOOKS"]

#: Hook kinds the fast path captures (the decoder layer's input and output).
FAST_HOOKS = frozenset({"resid_pre", "resid_post"})

#: Positions :func:`capture` can read: the marked ones, or ``"all"`` real (non-padding) tokens.
POSITIONS: tuple[str, ...] = ("last", "span_last", "answer_first", "answer_last", "all")

# Within one block the hooks fire in this order.
_ORDER = {"resid_pre": 0, "attn_out": 1, "resid_mid": 2, "mlp_out": 3, "resid_post": 4}


def hook_order(kind: str, layer: int) -> tuple[int, int]:
    """Sort key: the order in which hooks fire during a forward pass."""
    return layer, _ORDER[kind]


class _Done(StopAtLayerException):
    """Raised by the deepest hook once it has been captured: the rest of the pass is skipped."""


def capture(
    model: TransformerBridge,
    batch: PromptBatch,
    sites: Sequence[tuple[str, int]],
    positions: Sequence[str],
    *,
    fast: bool | None = None,
) -> dict[tuple[str, int, str], Float[Tensor, "rows d_model"]]:
    """Run ``model`` on ``batch`` and return ``{(hook kind, layer, position): [rows, d_model]}``.

    ``rows`` is the batch size for marked positions, the number of real tokens for ``"all"``
    (row-major over the batch; see :attr:`PromptBatch.attention_mask`).

    When every site is ``resid_pre`` / ``resid_post``, the pass runs the bridge's modules without
    their wrappers (:mod:`interp.runtime.forward`); other hooks, ``fast=False``, or TransformerLens
    hooks active on the bridge go through the bridge's hook points (``fast=None``, the default).
    ``fast=True`` requires the fast path: where it cannot run (TransformerLens hooks active, a hook
    kind it does not capture, a family without an adapter) it raises
    :class:`~interp.runtime.FastPathUnavailable`, as the sweeps do. Both stop right after the
    deepest site.
    """
    for p in positions:
        if p not in POSITIONS:
            raise ValueError(f"unknown position {p!r}; expected one of {POSITIONS}")
    sites = sorted(set(sites), key=lambda s: hook_order(*s))
    if not sites:
        raise ValueError("capture needs at least one (hook, layer) site")
    for kind, layer in sites:
        check_layer(layer, int(model.cfg.n_layers), what=f"{kind} layer")
    device = input_device(model)
    batch = batch.to(device)
    rows = torch.arange(len(batch), device=device)
    index = {p: batch.position(p) for p in positions if p != "all"}
    real = batch.attention_mask.bool()
    out: dict[tuple[str, int, str], Tensor] = {}
    deepest = sites[-1]

    def make_hook(kind: str, layer: int):
        def fn(act: Tensor, hook) -> Tensor:
            at = act.device  # a layer on another GPU than the embedding (device_map)
            for p in positions:
                out[(kind, layer, p)] = act[real.to(at)] if p == "all" else act[rows.to(at), index[p].to(at)]
            if (kind, layer) == deepest:
                raise _Done(act)
            return act

        return fn

    kinds_ok = all(kind in FAST_HOOKS for kind, _ in sites)
    if fast and not kinds_ok:
        raise FastPathUnavailable(f"capture: fast=True, but the fast path captures {sorted(FAST_HOOKS)} only, got "
                                  f"{sorted({k for k, _ in sites} - set(FAST_HOOKS))}; pass fast=None to run through "
                                  "the bridge")
    if fast is not False and kinds_ok and use_fast(model, fast, "capture"):
        _capture_fast(model, batch, sites, make_hook)
        return _checked(out, sites, positions)
    fwd = [(hk.name(kind, layer), make_hook(kind, layer)) for kind, layer in sites]
    with torch.inference_mode():
        try:
            model.run_with_hooks(batch.input_ids, attention_mask=batch.attention_mask, fwd_hooks=fwd, return_type=None)
        except _Done:
            pass
    return _checked(out, sites, positions)


def _checked(out: dict, sites: Sequence[tuple[str, int]], positions: Sequence[str]) -> dict:
    missing = [s for s in sites if (s[0], s[1], positions[0]) not in out]
    if missing:
        raise RuntimeError(f"hooks did not fire: {missing}")
    return out


def _capture_fast(model: TransformerBridge, batch: PromptBatch, sites, make_hook) -> None:
    """PyTorch hooks on the original decoder layers; position ids from the mask as the bridge does."""
    handles = []
    with torch.inference_mode(), unwrapped(model):
        arch = arch_of(model)
        layers = arch.layers
        try:
            for kind, layer in sites:
                fn = make_hook(kind, layer)
                if kind == "resid_pre":
                    def pre(mod, args, kwargs, fn=fn):
                        fn(layer_input(args, kwargs), None)

                    handles.append(layers[layer].register_forward_pre_hook(pre, with_kwargs=True))
                else:
                    def post(mod, args, output, fn=fn):
                        fn(layer_output(output), None)

                    handles.append(layers[layer].register_forward_hook(post))
            body_forward(arch, batch.input_ids, batch.attention_mask)
        except _Done:
            pass
        finally:
            for h in handles:
                h.remove()
