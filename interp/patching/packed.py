"""The ``resid_pre`` sweep that recomputes only what a patch can change.

Patching position ``p`` entering layer ``l`` changes nothing at positions before ``p`` (attention
is causal), at any layer; and nothing after the last metric position ``E`` is read. So a cell
needs layers ``l ..`` at positions ``P .. E`` only (``P``: the first position it patches), with
the keys and values of positions ``< P`` taken from the clean run.

Layout of one forward pass (one per layer, or a few under the token budget): one row per prompt;
along the sequence axis the cells of the layer are packed one after another, each contributing
its segment ``P_c .. E``. The clean run's keys/values of every position sit in a ``DynamicCache``,
and a 4-D mask per layer lets each packed token see the clean prefix of its own cell (positions
``< P_c``), the earlier tokens of its own segment, and nothing else (padding and sliding windows
honoured as the model defines them). Every token-wise operation (projections, MLP, norms) runs
once over all cells' tokens; for 16 positions that is 136 token-positions per prompt instead of
16 x 16 = 256, and a single pass instead of one per cell.

Used by :func:`interp.patching.resid_pre_sweep` when the model's attention is ``eager`` or
``sdpa`` and its layers are full or sliding-window attention (:func:`packable`); otherwise the
sweep replicates whole prompts along the batch.
"""

import torch
from torch import Tensor
from transformers import DynamicCache

from interp.runtime import Arch, layer_input, with_layer_arg, with_layer_input
from interp.runtime.conventions import cache_kwargs

__all__ = ["packable", "windows_for", "clean_state", "packed_layer"]

#: Most attention-score elements (rows x heads x queries x keys) one packed pass may hold.
ATTENTION_BUDGET = 2 ** 27


def packable(arch: Arch) -> list[int | None] | None:
    """Per layer, the sliding window (``None``: full attention) if the packed sweep can run on
    this model, else ``None``."""
    cfg, n_layers = arch.config, arch.n_layers
    if getattr(cfg, "_attn_implementation", None) not in ("eager", "sdpa"):
        return None
    window = getattr(cfg, "sliding_window", None)
    types = getattr(cfg, "layer_types", None)
    if types is None:
        return [None] * n_layers if window is None else None
    windows: list[int | None] = []
    for t in types[:n_layers]:
        if t == "full_attention":
            windows.append(None)
        elif t == "sliding_attention" and window:
            windows.append(int(window))
        else:
            return None
    return windows if len(windows) == n_layers else None


def windows_for(arch: Arch, packed: bool | None) -> list[int | None] | None:
    """:func:`packable` as a sweep's ``packed`` argument asks: ``None`` for ``packed=False`` or a
    model that cannot be packed, a ``ValueError`` naming why for ``packed=True`` on such a model."""
    windows = packable(arch) if packed is not False else None
    if packed and windows is None:
        raise ValueError("packed=True needs eager or sdpa attention and full or sliding-window attention layers; "
                         f"this model has {getattr(arch.config, '_attn_implementation', '?')!r} attention "
                         f"and layer types {getattr(arch.config, 'layer_types', None)}; use packed=None or False")
    return windows


def clean_state(arch: Arch, input_ids: Tensor, attention_mask: Tensor,
                position_ids: Tensor, *, keys_values: bool = True) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """One clean pass: ``resid_pre`` of every layer ``[layers, batch, pos, d]`` and every layer's
    keys and values ``[batch, kv_heads, pos, d_head]`` (all positions, sliding layers included;
    empty lists with ``keys_values=False``)."""
    layers = arch.layers
    resid: list[Tensor] = [None] * len(layers)  # type: ignore[list-item]
    handles = [layer.register_forward_pre_hook(
        lambda mod, args, kwargs, i=i: resid.__setitem__(i, layer_input(args, kwargs)), with_kwargs=True)
        for i, layer in enumerate(layers)]
    cache = DynamicCache() if keys_values else None  # no config: every layer keeps all positions
    try:
        arch.body(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                  use_cache=keys_values, **cache_kwargs(cache))
    finally:
        for h in handles:
            h.remove()
    resid = [r.to(input_ids.device) for r in resid]  # layers spread over GPUs: kept where the inputs are
    if cache is None:
        return torch.stack(resid), [], []
    return torch.stack(resid), [layer.keys for layer in cache.layers], [layer.values for layer in cache.layers]


def segments(starts: list[int], end: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Packed axis of cells with segments ``starts[c] .. end``: (position of each packed token,
    cell of each packed token)."""
    pos = torch.cat([torch.arange(s, end + 1, device=device) for s in starts])
    cell = torch.cat([torch.full((end + 1 - s,), c, device=device) for c, s in enumerate(starts)])
    return pos, cell


def _mask(pad: Tensor, starts: Tensor, pos: Tensor, cell: Tensor, window: int | None, dtype: torch.dtype,
          additive: bool) -> Tensor:
    """``[batch, 1, Q, T + Q]``: packed token q sees clean position j < its cell's start, and
    packed tokens of its own cell at or before its position (within ``window``, not padding)."""
    T, Q = pad.shape[1], pos.shape[0]
    j = torch.arange(T, device=pos.device)
    to_prefix = j[None, :] < starts[cell][:, None]
    gap_prefix = pos[:, None] - j[None, :]
    gap_own = pos[:, None] - pos[None, :]
    to_own = (cell[:, None] == cell[None, :]) & (gap_own >= 0)
    if window is not None:
        to_prefix &= gap_prefix < window
        to_own &= gap_own < window
    seen = torch.cat([to_prefix, to_own], 1)[None] & torch.cat([pad, pad[:, pos]], 1)[:, None, :]
    q = torch.arange(Q, device=pos.device)
    seen[:, q, T + q] = True  # a padding token sees itself (no empty softmax rows); no real token sees it
    seen = seen[:, None]
    if not additive:
        return seen
    return torch.zeros(seen.shape, dtype=dtype, device=seen.device).masked_fill_(~seen, torch.finfo(dtype).min)


def packed_layer(arch: Arch, windows: list[int | None], layer: int, *,
                 input_ids: Tensor, attention_mask: Tensor, position_ids: Tensor, clean: Tensor,
                 keys: list[Tensor], values: list[Tensor], starts: list[int], end: int,
                 patch_at: Tensor, patch_values: Tensor, additive: bool) -> Tensor:
    """One packed pass from ``layer`` up: returns the final-normed hidden states ``[batch, Q, d]``
    of the packed tokens (see :func:`segments` for the layout).

    ``patch_at`` ``[batch, cells]``: the packed index each cell patches in each row (``-1``: none);
    ``patch_values`` ``[batch, cells, d]``: what it writes there. The layers below ``layer`` must
    already be pass-through modules (the caller swaps them).
    """
    device = input_ids.device
    pos, cell = segments(starts, end, device)
    hidden = clean[layer][:, pos].clone()
    r, c = torch.nonzero(patch_at >= 0, as_tuple=True)
    hidden[r, patch_at[r, c]] = patch_values.to(hidden.device, hidden.dtype)[r, c]  # may come from another GPU
    pad = attention_mask.bool()
    start_t = torch.tensor(starts, device=device)
    masks = {w: _mask(pad, start_t, pos, cell, w, hidden.dtype, additive) for w in set(windows[layer:])}
    cache = DynamicCache(ddp_cache_data=[(None, None)] * layer + list(zip(keys[layer:], values[layer:])))

    layers = arch.layers

    def enter(module, args, kwargs, i: int):
        args, kwargs = with_layer_arg(module, args, kwargs, "attention_mask", masks[windows[i]])
        return with_layer_input(args, kwargs, hidden) if i == layer else (args, kwargs)

    handles = [layers[i].register_forward_pre_hook(lambda m, a, k, i=i: enter(m, a, k, i), with_kwargs=True)
               for i in range(layer, len(layers))]
    try:
        out = arch.body(input_ids=input_ids[:, pos], attention_mask=masks[windows[layer]],
                   position_ids=position_ids[:, pos], use_cache=True, **cache_kwargs(cache)).last_hidden_state
        out = out.to(device)
    finally:
        for h in handles:
            h.remove()
    return out
