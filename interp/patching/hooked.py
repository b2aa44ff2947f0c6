"""Batched patching at any hook (resid_post, attn_out, mlp_out, resid_mid, per attention head).

:func:`interp.patching.resid_pre_sweep` is the fast path for ``resid_pre`` (it starts each layer
from the kept clean residual and recomputes only the positions a patch can change). This module
covers the other hooks through the bridge's own hook
points, so the semantics are TransformerLens's (``blocks.L.hook_attn_out`` is what TransformerLens
calls the attention output of that architecture); it still patches many cells per forward pass
(prompts replicated along the batch), honours attention masks, and stops at the final norm so
the unembedding runs only at the metric position.

Per head (:func:`head_sweep`), a cell is (layer, head): the head's output ``hook_z`` is patched at
the given positions (every position for same-model patching, as
``transformer_lens.patching.get_act_patch_attn_head_out_all_pos`` does).
"""

from collections.abc import Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from interp import distributed, hooks
from interp.patching.core import Metric, PackedCells, cell_setup, clean_resid_pre, metric_of
from interp.patching.packed import windows_for
from interp.prompts import PromptBatch
from interp.runtime.forward import cell_layout
from interp.runtime import input_device, arch_of, check_layers, skip_below, unwrapped, use_fast, with_layer_input

__all__ = ["clean_activations", "hook_sweep", "head_sweep", "SWEEP_KINDS"]

#: Hook kinds a sweep can patch (``resid_pre`` also has the fast path).
SWEEP_KINDS = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out")


class _Stop(Exception):
    pass


def _hook_name(kind: str, layer: int) -> str:
    return hooks.head_z(layer) if kind == "z" else hooks.name(kind, layer)


def clean_activations(model: TransformerBridge, batch: PromptBatch, kind: str,
                      layers: Sequence[int] | None = None) -> Tensor:
    """``[layers, batch, pos, ...]`` activations of ``kind`` (a :data:`SWEEP_KINDS` entry or
    ``"z"``, the per-head attention output ``[.., n_heads, d_head]``) on ``batch``."""
    layers = check_layers(layers, int(model.cfg.n_layers))
    if kind != "z":
        _check_kind(kind)
    _check_hook(model, _hook_name(kind, layers[0]), kind)
    names = [_hook_name(kind, layer) for layer in layers]
    device = input_device(model)
    b = batch.to(device)
    with torch.inference_mode():
        _, cache = model.run_with_cache(b.input_ids, attention_mask=b.attention_mask, names_filter=names,
                                        stop_at_layer=max(layers) + 1)
    return torch.stack([cache[n] for n in names])


def _run(model: TransformerBridge, ids: Tensor, mask: Tensor, fwd_hooks: list, mpos: Tensor) -> Tensor:
    """Forward with ``fwd_hooks``; returns the final-normed hidden state at ``mpos`` only."""
    grabbed: list[Tensor] = []

    def grab(act: Tensor, hook) -> None:
        grabbed.append(act[torch.arange(act.shape[0], device=act.device), mpos.to(act.device)])
        raise _Stop

    try:
        model.run_with_hooks(ids, attention_mask=mask, fwd_hooks=fwd_hooks + [(hooks.FINAL_NORM, grab)])
    except _Stop:
        pass
    return grabbed[0]


def _writable(act: Tensor, kind: str) -> Tensor:
    """The activation a patch writes into. ``resid_mid`` is the residual stream between attention
    and MLP: the bridge's hook point for it is the MLP-side norm's input, which is the very tensor
    the block's skip connection adds, so the patch writes in place and reaches both (as in
    TransformerLens's ``HookedTransformer``, where ``hook_resid_mid`` feeds both); a copy would
    patch only what the MLP reads. Every other kind is written into a copy."""
    return act if kind == "resid_mid" else act.clone()


def _check_kind(kind: str, model: TransformerBridge | None = None) -> None:
    if kind not in SWEEP_KINDS:
        raise ValueError(f"kind must be one of {', '.join(SWEEP_KINDS)}, got {kind!r}")
    if model is not None:
        _check_hook(model, hooks.name(kind, 0), kind)


def _check_hook(model: TransformerBridge, name: str, kind: str) -> None:
    if name not in model.hook_dict:
        have = [k for k in (*SWEEP_KINDS, "z") if _hook_name(k, 0) in model.hook_dict]
        why = " (attention and MLP run in parallel: there is no stream between them)" if kind == "resid_mid" else ""
        raise ValueError(f"{type(model.original_model).__name__} has no {kind} hook point ({name}){why}; "
                         f"this model has {', '.join(have)}")


@cell_layout
def hook_sweep(
    model: TransformerBridge,
    batch: PromptBatch,
    values: Float[Tensor, "layers batch src_pos d"],
    metric: Metric,
    *,
    kind: str,
    layers: Sequence[int] | None = None,
    positions: Int[Tensor, "cells batch"] | None = None,
    value_positions: Int[Tensor, "cells batch"] | None = None,
    metric_position: str | Int[Tensor, " batch"] = "last",
    max_batch: int = 128,
    packed: bool | None = None,
) -> Float[Tensor, "swept_layers cells"]:
    """Like :func:`interp.patching.resid_pre_sweep` for any hook ``kind`` of :data:`SWEEP_KINDS`:
    patch ``values[layer]`` into ``model`` at one (layer, cell); ``metric`` per cell.

    ``packed`` (default: whenever the model supports it, see :mod:`interp.patching.packed`): a
    patch inside layer ``l`` at position ``p`` changes only position ``p`` within that layer (the
    other positions' attention reads the unchanged input of ``l``), so the sweep runs layer ``l``
    alone on copies of the prompts, with the patch applied through the bridge's hook point
    (TransformerLens semantics), and hands each cell's ``resid_post`` at ``p`` to the packed
    ``resid_pre`` sweep of layer ``l + 1``. ``packed=False``: every cell runs the whole model
    through the bridge's hooks.
    """
    _check_kind(kind, model)
    layers = check_layers(layers, int(model.cfg.n_layers))
    b, positions, value_positions, mpos = cell_setup(model, batch, positions, value_positions, metric_position)
    if distributed.active():  # under torchrun: this rank's cells, gathered (identical to one process)
        return distributed.split_cells(
            lambda **part: hook_sweep(model, batch, values, metric, kind=kind, metric_position=metric_position,
                                      max_batch=max_batch, packed=packed, **part), positions, value_positions, layers)
    result = _packed_hook_sweep(model, b, values, metric, kind, layers, positions, value_positions, mpos, max_batch,
                                packed)
    if result is not None:
        return result
    device, B, n_cells = b.input_ids.device, len(b), positions.shape[0]
    values = values.to(device)
    rows = torch.arange(B, device=device)
    per_pass = max(1, max_batch // B)
    result = torch.empty(len(layers), n_cells, device=device)
    with torch.inference_mode():
        for li, layer in enumerate(layers):
            for start in range(0, n_cells, per_pass):
                k = min(per_pass, n_cells - start)
                dst = positions[start: start + k].reshape(-1)
                src = value_positions[start: start + k].reshape(-1)

                def patch(act: Tensor, hook, layer=layer, dst=dst, src=src, k=k) -> Tensor:
                    act = _writable(act, kind)
                    act[torch.arange(k * B, device=act.device), dst.to(act.device)] = (
                        values[layer, rows.repeat(k), src].to(act.device, act.dtype))
                    return act

                hidden = _run(model, b.input_ids.repeat(k, 1), b.attention_mask.repeat(k, 1),
                              [(hooks.name(kind, layer), patch)], mpos.repeat(k))
                result[li, start: start + k] = metric_of(arch_of(model), hidden.view(k, B, -1), metric)
    return result


def _packed_hook_sweep(model: TransformerBridge, b: PromptBatch, values: Tensor, metric: Metric, kind: str,
                       layers: list[int], positions: Tensor, value_positions: Tensor, mpos: Tensor,
                       max_batch: int, packed: bool | None) -> Tensor | None:
    """:func:`hook_sweep` through :class:`~interp.patching.core.PackedCells`; ``None`` for
    ``packed=False`` or a model that cannot be packed."""
    n = int(model.cfg.n_layers)
    if not use_fast(model, True if packed else None, "hook_sweep"):
        return None
    with torch.inference_mode(), unwrapped(model):
        arch = arch_of(model)
        windows = windows_for(arch, packed)
        if windows is None:
            return None
        sweep = PackedCells(arch, windows, b, positions, mpos, max_batch, int(model.cfg.n_heads))
    device = b.input_ids.device
    values = values.to(device, sweep.clean.dtype)
    rows = torch.arange(len(b), device=device).unsqueeze(0)
    result = torch.empty(len(layers), positions.shape[0], device=device)
    for li, layer in enumerate(layers):
        written = values[layer, rows, value_positions]  # [cells, B, d]: what each cell writes at its position
        if kind == "resid_pre":
            entering, patch = layer, written
        elif kind == "resid_post" and layer < n - 1:
            entering, patch = layer + 1, written
        elif layer == n - 1:  # the last layer: run it (and the final norm) on copies, no packed layer follows
            result[li] = _last_layer(model, b, sweep.clean[layer], kind, layer, written, positions, mpos, metric,
                                     max_batch)
            continue
        else:
            entering, patch = layer + 1, _layer_alone(model, b, sweep.clean[layer], kind, layer, written, positions,
                                                      max_batch)
        with torch.inference_mode(), unwrapped(model):
            result[li] = sweep.metric(entering, patch, metric)
    return result


def _from_layer(model: TransformerBridge, b: PromptBatch, resid: Tensor, layer: int, n_cells: int, patch_for,
                max_batch: int, grab_hook: str, at) -> Tensor:
    """Copies of the prompts, one per cell, run from ``layer`` (its input set to ``resid``, the
    layers below skipped) through the bridge's hooks: ``patch_for(start, k)`` gives the
    ``(hook name, function)`` that patches copies ``0..k-1`` as cells ``start..start+k-1``;
    ``at(activation, k, start)`` reads the activation of ``grab_hook`` (then the run stops).
    Returns the reads, concatenated over cells."""
    arch = arch_of(model)
    module_list = arch.layer_list
    per_pass = max(1, max_batch // len(b))
    out = []
    with torch.inference_mode(), skip_below(arch, layer):
        for start in range(0, n_cells, per_pass):
            k = min(per_pass, n_cells - start)

            def grab(act: Tensor, hook, k=k, start=start) -> None:
                out.append(at(act, k, start))
                raise _Stop

            enter = module_list[layer].register_forward_pre_hook(
                lambda mod, args, kwargs, r=resid.repeat(k, 1, 1): with_layer_input(args, kwargs, r), with_kwargs=True)
            try:
                model.run_with_hooks(b.input_ids.repeat(k, 1), attention_mask=b.attention_mask.repeat(k, 1),
                                     fwd_hooks=[patch_for(start, k), (grab_hook, grab)])
            except _Stop:
                pass
            finally:
                enter.remove()
    return torch.cat(out)


def _cell_patch(kind: str, layer: int, written: Tensor, positions: Tensor, B: int):
    """``patch_for`` of :func:`_from_layer`: cell ``c`` writes ``written[c]`` at ``positions[c]``."""
    def patch_for(start: int, k: int):
        copies = torch.arange(k * B, device=positions.device)
        dst = positions[start: start + k].reshape(-1)
        src = written[start: start + k].reshape(k * B, -1)

        def patch(act: Tensor, hook) -> Tensor:  # indices on the layer's device (device_map splits)
            act = _writable(act, kind)
            act[copies.to(act.device), dst.to(act.device)] = src.to(act.device, act.dtype)
            return act

        return hooks.name(kind, layer), patch

    return patch_for


def _metric_at(model: TransformerBridge, mpos: Tensor, metric: Metric, B: int):
    """``at`` of :func:`_from_layer` for the final norm: ``metric`` of each copy group at ``mpos``."""
    def at(act: Tensor, k: int, start: int) -> Tensor:
        hidden = act[torch.arange(k * B, device=act.device), mpos.repeat(k).to(act.device)].view(k, B, -1)
        return metric_of(arch_of(model), hidden, metric)

    return at


def _layer_alone(model, b, resid, kind, layer, written, positions, max_batch) -> Tensor:
    """``resid_post`` of ``layer`` at each cell's position ``[cells, B, d]`` with the cell's patch."""
    B = len(b)

    def at(act: Tensor, k: int, start: int) -> Tensor:
        pos = positions[start: start + k].reshape(-1).to(act.device)
        return act[torch.arange(k * B, device=act.device), pos].view(k, B, -1)

    return _from_layer(model, b, resid, layer, positions.shape[0], _cell_patch(kind, layer, written, positions, B),
                       max_batch, hooks.resid_post(layer), at)


def _last_layer(model, b, resid, kind, layer, written, positions, mpos, metric, max_batch) -> Tensor:
    """``metric`` per cell for patches in the last layer (run on copies, unembedded at ``mpos``)."""
    B = len(b)
    return _from_layer(model, b, resid, layer, positions.shape[0], _cell_patch(kind, layer, written, positions, B),
                       max_batch, hooks.FINAL_NORM, _metric_at(model, mpos, metric, B))


@cell_layout
def head_sweep(
    model: TransformerBridge,
    batch: PromptBatch,
    values: Float[Tensor, "layers batch src_pos n_heads d_head"],
    metric: Metric,
    *,
    layers: Sequence[int] | None = None,
    positions: Int[Tensor, "n_pos batch"] | None = None,
    value_positions: Int[Tensor, "n_pos batch"] | None = None,
    metric_position: str | Int[Tensor, " batch"] = "last",
    max_batch: int = 128,
) -> Float[Tensor, "swept_layers n_heads"]:
    """Patch each attention head's output (``hook_z``) at ``positions`` (all of them at once; default
    every position) with ``values`` (from :func:`clean_activations` with ``kind="z"``); ``metric``
    per (layer, head). One prompt copy per head, through the bridge's hook points, each layer's
    copies starting at that layer from the clean ``resid_pre`` (the layers below are skipped)."""
    n_heads = int(model.cfg.n_heads)
    layers = check_layers(layers, int(model.cfg.n_layers))
    b, positions, value_positions, mpos = cell_setup(model, batch, positions, value_positions, metric_position)
    if distributed.active():  # under torchrun: this rank's layers, gathered
        return distributed.split_layers(
            lambda part: head_sweep(model, batch, values, metric, layers=part, positions=positions,
                                    value_positions=value_positions, metric_position=metric_position,
                                    max_batch=max_batch), layers, b.input_ids.device)
    device, B, n_pos = b.input_ids.device, len(b), positions.shape[0]
    values = values.to(device)
    rows = torch.arange(B, device=device)
    clean = clean_resid_pre(model, b)  # each layer's runs start there: the layers below are skipped
    result = torch.empty(len(layers), n_heads, device=device)
    for li, layer in enumerate(layers):

        def patch_for(start: int, k: int, layer=layer):
            # Copy j patches head start + j of every row at every given position: flat indices
            # over (copy, position, row).
            copy = torch.arange(k, device=device).view(k, 1, 1).expand(k, n_pos, B)
            heads = (start + copy).reshape(-1)
            dst_rows = (copy * B + rows.view(1, 1, B)).reshape(-1)
            src_rows = rows.view(1, 1, B).expand(k, n_pos, B).reshape(-1)
            dst_pos = positions.unsqueeze(0).expand(k, n_pos, B).reshape(-1)
            src_pos = value_positions.unsqueeze(0).expand(k, n_pos, B).reshape(-1)
            src = values[layer, src_rows, src_pos, heads]

            def patch(act: Tensor, hook) -> Tensor:
                act = act.clone()  # [k*B, T, n_heads, d_head]
                at = act.device  # the layer's GPU under a device_map split
                act[dst_rows.to(at), dst_pos.to(at), heads.to(at)] = src.to(at, act.dtype)
                return act

            return hooks.head_z(layer), patch

        result[li] = _from_layer(model, b, clean[layer], layer, n_heads, patch_for, max_batch, hooks.FINAL_NORM,
                                 _metric_at(model, mpos, metric, B))
    return result
