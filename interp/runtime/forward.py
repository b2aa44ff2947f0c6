"""Running a model's layers at HF speed: the shared forward service below every analysis.

A ``TransformerBridge`` wraps every submodule of the HF model in a component that fires hook
points, which costs time even when no hook is attached. For the residual stream between decoder
layers none of that is needed: :func:`unwrapped` puts the original modules back into the HF tree
for the duration of a call and re-wraps them before control returns; the weights are the bridge's
own, so values equal ``run_with_cache`` (the conformance tests check every family).

Everything here goes through :class:`~interp.runtime.arch.Arch`, so it holds for every family
interp knows: :func:`body_forward` (the residual stream leaving the final norm), :func:`layer_streams`
(``resid_pre`` / ``resid_post`` of every layer), :func:`logits_at` (unembedding only where read),
:func:`skip_below` (start a forward pass at a layer), and the argument helpers for a decoder layer's
call (:func:`layer_input`, :func:`with_layer_input`, :func:`with_layer_arg`), which bind to the layer's
signature because families pass the attention mask differently (GPT-2 positionally).

When TransformerLens hooks are active on the bridge (``model.hooks(...)``, ``add_hook``) the fast
path would not see them: :func:`use_fast` decides to run the bridge instead (said once in the log),
or raises if the fast path was required.
"""

import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle
from transformer_lens.model_bridge import TransformerBridge
from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent

from interp.runtime.arch import Arch, arch_of, family_of, original

__all__ = [
    "unwrapped", "position_ids", "body_forward", "layer_streams", "logits_at", "final_logits", "normed_logits",
    "layer_input", "with_layer_input", "with_layer_arg", "layer_output", "with_layer_output", "PassThrough",
    "skip_below", "user_hooks", "use_fast", "FastPathUnavailable", "on_layer_input", "on_layer_output", "input_device",
    "module_hooks", "hooks_active", "cell_layout", "in_cell_layout", "lm_logits",
]

log = logging.getLogger("interp.runtime")
_SAID: set[str] = set()


def _say_once(key: str, message: str) -> None:
    if key not in _SAID:
        _SAID.add(key)
        log.warning(message)


class FastPathUnavailable(RuntimeError):
    """A fast path was required (``fast=True``) where it cannot give the bridge's numbers."""


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
    """Yield the bridge's HF model with its original submodules in place; re-wrap on exit.

    Keep the block short: TransformerLens calls inside it see no hook points. Interventions that
    must compose with TransformerLens hook the HF modules (they fire in both paths) instead."""
    hf = bridge.original_model
    swaps: list[tuple[nn.Module, str, nn.Module]] = []
    try:
        _restore(hf, swaps)
        yield hf
    finally:
        for parent, name, wrapper in reversed(swaps):
            setattr(parent, name, wrapper)


def user_hooks(model: TransformerBridge) -> list[str]:
    """Names of the bridge's hook points that have TransformerLens hooks attached now."""
    names: dict[int, str] = {}  # a hook point can have several names (aliases): report it once
    for name, hp in getattr(model, "hook_dict", {}).items():
        if hp._forward_hooks or hp._forward_pre_hooks or hp._backward_hooks:
            names.setdefault(id(hp), getattr(hp, "name", None) or name)
    return sorted(names.values())


def use_fast(model: TransformerBridge, fast: bool | None, what: str) -> bool:
    """Whether ``what`` may take its fast path: ``False`` if asked, if the model's family has no
    adapter, or if TransformerLens hooks are active (the bridge runs instead, said once in the log);
    ``fast=True`` in those cases raises :class:`FastPathUnavailable`."""
    if fast is False:
        return False
    try:
        family_of(model)
    except NotImplementedError as e:
        if fast:
            raise FastPathUnavailable(f"{what}: fast=True, but {e}") from e
        _say_once(f"family:{type(model.original_model).__name__}", f"{e}; running through the bridge instead")
        return False
    active = user_hooks(model)
    if not active:
        return True
    if fast:
        raise FastPathUnavailable(f"{what}: fast=True, but TransformerLens hooks are active on {', '.join(active[:3])}"
                                  f"{' ...' if len(active) > 3 else ''}; the fast path would not run them. "
                                  "Pass fast=None to run through the bridge, or remove the hooks")
    _say_once(f"hooks:{what}", f"{what}: TransformerLens hooks are active ({active[0]}, ...); running through the "
              "bridge's hook points instead of the fast path")
    return False


def position_ids(mask: Tensor) -> Tensor:
    """Position ids of a left-padded batch (0 at each row's first real token), as the bridge uses."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def layer_input(args: tuple, kwargs: dict[str, Any]) -> Tensor:
    """The residual stream entering a decoder layer (first positional or ``hidden_states``)."""
    if args and isinstance(args[0], torch.Tensor):
        return args[0]
    return kwargs["hidden_states"]


def with_layer_input(args: tuple, kwargs: dict[str, Any], hidden: Tensor) -> tuple[tuple, dict[str, Any]]:
    """``(args, kwargs)`` of a decoder layer call with its input residual stream replaced by
    ``hidden`` (what a forward pre-hook with ``with_kwargs=True`` returns)."""
    if args and isinstance(args[0], torch.Tensor):
        return (hidden,) + tuple(args[1:]), kwargs
    return args, {**kwargs, "hidden_states": hidden}


@functools.lru_cache(maxsize=None)
def _params(cls: type) -> tuple[str, ...]:
    return tuple(inspect.signature(cls.forward).parameters)[1:]  # without self


def with_layer_arg(module: nn.Module, args: tuple, kwargs: dict[str, Any], name: str,
                   value: Any) -> tuple[tuple, dict[str, Any]]:
    """``(args, kwargs)`` of a call of ``module`` with argument ``name`` set to ``value``, wherever
    the caller put it (GPT-2 passes ``attention_mask`` positionally, Llama by keyword)."""
    params = _params(type(module))
    if name in params:
        i = params.index(name)
        if i < len(args):
            return args[:i] + (value,) + args[i + 1:], kwargs
    return args, {**kwargs, name: value}


def layer_output(output: Any) -> Tensor:
    """The residual stream leaving a decoder layer (a tensor or the first element of a tuple)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def with_layer_output(output: Any, hidden: Tensor) -> Any:
    """A decoder layer's ``output`` with its residual stream replaced by ``hidden``."""
    if isinstance(output, tuple):
        return (hidden,) + output[1:]
    if isinstance(output, list):
        return [hidden] + output[1:]
    return hidden


def on_layer_input(arch: Arch, layer: int, fn: Callable[[Tensor, dict], Tensor]) -> list[RemovableHandle]:
    """Edit the residual stream entering ``layer``: ``fn(x, kwargs)`` returns the new stream.

    Applied once per call, by whichever module the model's tree holds at that layer: the bridge's
    block component (so its hook points, ``hook_resid_pre`` included, see the edited stream) or,
    inside :func:`unwrapped`, the HF layer (the fast paths). Remove the returned handles to undo."""
    entry = arch.layer_list[layer]
    modules = {id(m): m for m in (entry, original(entry))}.values()

    def pre(mod, args, kwargs):
        if arch.layer_list[layer] is not mod:  # the other form of this layer is the one in the tree
            return None
        return with_layer_input(args, kwargs, fn(layer_input(args, kwargs), kwargs))

    return [m.register_forward_pre_hook(pre, with_kwargs=True) for m in modules]


def on_layer_output(arch: Arch, layer: int, fn: Callable[[Tensor], Tensor]) -> RemovableHandle:
    """Edit the residual stream leaving ``layer`` (``fn(x)`` returns the new stream), on the HF
    layer, which runs in both paths (the bridge's ``hook_resid_post`` sees the edited stream)."""
    def post(mod, args, output):
        return with_layer_output(output, fn(layer_output(output)))

    return arch.layers[layer].register_forward_hook(post)


class PassThrough(nn.Module):
    """Stands in for a decoder layer below the one a pass starts at: returns its input."""

    def forward(self, hidden_states: Tensor, *args, **kwargs) -> Tensor:
        return hidden_states


@contextmanager
def skip_below(arch: Arch, start: int) -> Iterator[None]:
    """Within the block, layers ``0 .. start-1`` of ``arch`` are pass-through modules (a forward
    pass that replaces the input of layer ``start`` does not compute them)."""
    layers = arch.layer_list
    saved = [layers[i] for i in range(start)]
    try:
        for i in range(start):
            layers[i] = PassThrough()
        yield
    finally:
        for i, module in enumerate(saved):
            layers[i] = module


def final_logits(arch: "Arch | nn.Module", hidden: Tensor) -> Tensor:
    """Unembed already-normed hidden states ``[..., d]`` (with the model's logit soft-cap, if any),
    returned on ``hidden``'s device (the unembedding may sit on another GPU)."""
    arch = arch if isinstance(arch, Arch) else arch_of(arch)
    head = arch.unembed
    logits = head(hidden.to(head.weight.device))
    cap = arch.softcap
    logits = torch.tanh(logits / cap) * cap if cap else logits
    return logits.to(hidden.device)


def normed_logits(arch: Arch, resid: Tensor) -> Tensor:
    """Logits of residual streams ``[..., d]`` through the final norm and the unembedding (the
    logit lens; at the last layer's output this is the model's own output)."""
    norm = arch.final_norm
    weight = getattr(original(norm), "weight", None)
    return final_logits(arch, norm(resid if weight is None else resid.to(weight.device))).to(resid.device)


def body_forward(arch: Arch, input_ids: Tensor, attention_mask: Tensor, **kwargs: Any) -> Tensor:
    """The body's final-normed hidden states ``[batch, pos, d]`` (no unembedding); left padding
    handled with position ids from the mask (``position_ids=None``: the model's own default)."""
    kwargs.setdefault("use_cache", False)
    pid = kwargs.pop("position_ids", position_ids(attention_mask))
    if pid is not None:
        kwargs["position_ids"] = pid
    out = arch.body(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
    return out.last_hidden_state.to(input_ids.device)  # the last layer may sit on another GPU


def input_device(model: nn.Module) -> torch.device:
    """Where a model's inputs go: the device of its token embedding (the first of several when
    the model is spread over GPUs with a ``device_map``; its only device otherwise)."""
    try:
        return arch_of(model).embed.weight.device
    except (NotImplementedError, AttributeError):
        hf = getattr(model, "original_model", model)
        emb = hf.get_input_embeddings() if hasattr(hf, "get_input_embeddings") else None
        return emb.weight.device if emb is not None else next(model.parameters()).device



def logits_at(model: TransformerBridge, batch: Any, position: str = "last", *,
              fast: bool | None = None) -> Float[Tensor, "batch vocab"]:
    """Next-token logits at one marked position of each row, unembedding only there (runs
    through any hooks on the HF modules; through the bridge when TransformerLens hooks are on)."""
    device = input_device(model)
    b = batch.to(device)
    rows = torch.arange(len(b), device=device)
    with torch.inference_mode():
        if not use_fast(model, fast, "logits_at"):
            return model(b.input_ids, attention_mask=b.attention_mask)[rows, b.position(position)]
        with unwrapped(model):
            arch = arch_of(model)
            hidden = body_forward(arch, b.input_ids, b.attention_mask)
            return final_logits(arch, hidden[rows, b.position(position)])


def layer_streams(model: TransformerBridge, input_ids: Tensor, attention_mask: Tensor, *, post: bool,
                  fast: bool | None = None) -> list[Tensor]:
    """The residual stream entering (``post=False``) or leaving each decoder layer, all positions
    (one forward pass through the body, no unembedding)."""
    n = int(model.cfg.n_layers)
    if not use_fast(model, fast, "layer_streams"):
        from interp import hooks

        names = [hooks.name("resid_post" if post else "resid_pre", i) for i in range(n)]
        with torch.inference_mode():
            _, cache = model.run_with_cache(input_ids, attention_mask=attention_mask, names_filter=names)
        return [cache[x].to(input_ids.device) for x in names]
    out: list[Tensor] = [None] * n  # type: ignore[list-item]
    with torch.inference_mode(), unwrapped(model):
        arch = arch_of(model)
        if post:
            handles = [layer.register_forward_hook(lambda mod, a, o, i=i: out.__setitem__(i, layer_output(o)))
                       for i, layer in enumerate(arch.layers)]
        else:
            handles = [layer.register_forward_pre_hook(
                lambda mod, args, kwargs, i=i: out.__setitem__(i, layer_input(args, kwargs)), with_kwargs=True)
                for i, layer in enumerate(arch.layers)]
        try:
            body_forward(arch, input_ids, attention_mask)
        finally:
            for h in handles:
                h.remove()
    return [t.to(input_ids.device) for t in out]  # layers spread over GPUs: gathered where the inputs are


def module_hooks(module: nn.Module) -> list[str]:
    """Names of ``module``'s submodules with PyTorch forward (pre-)hooks attached now (an
    intervention's ``on_layer_input``, a user's ``register_forward_hook``), leaving out
    TransformerLens hook points (see :func:`user_hooks`), the bridge's own capture hooks and
    interp's own keyword adapter
    (:func:`interp.runtime.conventions.bridge_cache_keyword`)."""
    from transformer_lens.hook_points import HookPoint

    from interp.runtime.conventions import is_internal_hook

    out = []
    for name, sub in module.named_modules():
        if isinstance(sub, HookPoint):
            continue
        hooks = list(sub._forward_hooks.values()) + list(sub._forward_pre_hooks.values())
        # The bridge wires capture hooks of its own (on the norms, at the first forward pass); they
        # record, never change, values: only hooks from outside TransformerLens count.
        if any(not is_internal_hook(h) and not getattr(h, "__module__", "").startswith("transformer_lens")
               for h in hooks):
            out.append(name)
    return out


def hooks_active(model: TransformerBridge) -> bool:
    """Whether anything may change this bridge's outputs beyond its weights: TransformerLens hooks
    (:func:`user_hooks`) or PyTorch hooks on its HF modules (:func:`module_hooks`)."""
    return bool(user_hooks(model) or module_hooks(model.original_model))


_CELLS: "ContextVar[bool]" = ContextVar("interp_cell_layout", default=False)


def in_cell_layout() -> bool:
    """True inside a patching sweep, where the rows and columns a layer sees are sweep cells
    (prompt copies, or cells packed along the sequence), not the prompts themselves: there the last
    column is not each prompt's last token, so a position-dependent edit cannot find it."""
    return _CELLS.get()


def cell_layout(fn: Callable) -> Callable:
    """Decorate a sweep so that :func:`in_cell_layout` holds while it runs."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        token = _CELLS.set(True)
        try:
            return fn(*args, **kwargs)
        finally:
            _CELLS.reset(token)

    return run


def lm_logits(hf: nn.Module, input_ids: Tensor, attention_mask: Tensor, *, keep: int = 0) -> Tensor:
    """The causal LM's logits ``[batch, keep or pos, vocab]`` on left-padded rows, with position ids
    from the mask (as generation computes them: each row's first real token at position 0), for the
    last ``keep`` positions only (0: all)."""
    return hf(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask),
              use_cache=False, logits_to_keep=keep).logits
