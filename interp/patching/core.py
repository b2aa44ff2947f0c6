"""Batched residual-stream patching: many (layer, position) cells per forward pass.

For a cell (layer ``l``, position ``p``) the destination run's residual stream entering block
``l`` (``resid_pre``) is replaced at ``p`` by a source value, and the forward pass continues. The
sweep:

- runs the clean destination pass once and keeps its ``resid_pre`` at every layer (and its keys
  and values);
- for the cells of one layer, starts *at* that layer from the kept residual (the blocks below are
  swapped for pass-through modules for the call), so earlier layers are never recomputed;
- by default recomputes, per cell, only the positions from the first patched one to the metric
  position, the cells of a layer packed along the sequence axis and the earlier positions' keys
  and values taken from the clean run (:mod:`interp.patching.packed`; ``packed=False``, or a model
  whose attention it cannot mask, e.g. flash attention: the prompts are replicated along the
  batch, one copy per cell, up to ``max_batch`` rows a pass);
- applies the final norm and unembedding only at the positions the metric reads, and for a
  :class:`~interp.patching.metrics.TokenMetric` (e.g. :func:`~interp.patching.logit_diff`) only
  for the tokens it reads.

It runs the bridge's own modules with their hook wrappers taken off (see
:mod:`interp.runtime.forward`); values equal ``transformer_lens.patching`` (tests and benchmark).
"""

from collections.abc import Callable, Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformer_lens.model_bridge import TransformerBridge

from interp import distributed
from interp.patching import packed as packed_mod
from interp.patching.metrics import TokenMetric
from interp.prompts import PromptBatch
from interp.runtime.forward import cell_layout
from interp.runtime import (
    input_device,
    Arch, arch_of, body_forward, check_layers, final_logits, layer_streams, logits_at, position_ids, skip_below, unwrapped, use_fast,
    with_layer_input,
)

__all__ = ["Metric", "metric_of", "resid_pre_sweep", "clean_resid_pre", "clean_resid_post", "final_logits", "logits_at"]

#: ``metric(logits)`` with logits ``[cells, batch, vocab]`` at the metric position -> ``[cells]``.
Metric = Callable[[Tensor], Tensor]


def metric_of(hf: "nn.Module | Arch", hidden: Float[Tensor, "cells batch d_model"], metric: Metric) -> Float[Tensor, " cells"]:
    """``metric`` of the logits of already-normed hidden states at the metric position. A
    :class:`~interp.patching.metrics.TokenMetric` gets only the logits of its tokens (rows of the
    unembedding gathered per prompt); any other metric gets the full vocabulary."""
    arch = hf if isinstance(hf, Arch) else arch_of(hf)
    head = arch.unembed
    if not (isinstance(metric, TokenMetric) and isinstance(head, nn.Linear)):
        return metric(final_logits(arch, hidden).float())
    ids = metric.tokens.to(hidden.device)
    if ids.shape[0] != hidden.shape[1]:
        raise ValueError(f"the metric has token ids for {ids.shape[0]} prompts, the batch has {hidden.shape[1]}")
    ids = ids.to(head.weight.device)
    rows = head.weight[ids].float()  # [batch, k, d]; metrics in fp32 even for a bf16 model
    logits = torch.einsum("cbd,bkd->cbk", hidden.to(rows.device, torch.float32), rows)
    if head.bias is not None:
        logits = logits + head.bias[ids].float()
    cap = arch.softcap
    return metric.reduce(torch.tanh(logits / cap) * cap if cap else logits).to(hidden.device)


def clean_resid_pre(model: TransformerBridge, batch: PromptBatch, *,
                    fast: bool | None = None) -> Float[Tensor, "layers batch pos d_model"]:
    """``resid_pre`` of every layer on ``batch`` (one forward pass, no unembedding)."""
    b = batch.to(input_device(model))
    return torch.stack(layer_streams(model, b.input_ids, b.attention_mask, post=False, fast=fast))


def clean_resid_post(model: TransformerBridge, batch: PromptBatch, *,
                     fast: bool | None = None) -> Float[Tensor, "layers batch pos d_model"]:
    """``resid_post`` of every layer on ``batch`` (one forward pass, no unembedding)."""
    b = batch.to(input_device(model))
    return torch.stack(layer_streams(model, b.input_ids, b.attention_mask, post=True, fast=fast))


def cell_setup(model: TransformerBridge, batch: PromptBatch, positions: Tensor | None, value_positions: Tensor | None,
               metric_position: "str | Tensor") -> tuple[PromptBatch, Tensor, Tensor, Tensor]:
    """Shared by the sweeps: ``(batch on the model's device, positions [cells, batch] (default:
    every position), value_positions (default: the same), metric positions [batch])``."""
    device = input_device(model)
    b = batch.to(device)
    B, T = b.input_ids.shape
    positions = (torch.arange(T).unsqueeze(1).expand(T, B) if positions is None else positions).to(device)
    value_positions = positions if value_positions is None else value_positions.to(device)
    mpos = (b.position(metric_position) if isinstance(metric_position, str) else metric_position).to(device)
    return b, positions, value_positions, mpos


@cell_layout
def resid_pre_sweep(
    model: TransformerBridge,
    batch: PromptBatch,
    values: Float[Tensor, "layers batch pos d_model"],
    metric: Metric,
    *,
    layers: Sequence[int] | None = None,
    positions: Int[Tensor, "cells batch"] | None = None,
    value_positions: Int[Tensor, "cells batch"] | None = None,
    metric_position: str | Int[Tensor, " batch"] = "last",
    max_batch: int = 256,
    packed: bool | None = None,
) -> Float[Tensor, "swept_layers cells"]:
    """Patch ``values`` into ``model``'s ``resid_pre`` on ``batch``, one (layer, cell) at a time,
    batched; returns ``metric`` per layer and cell.

    Args:
        values: source residuals ``[layers, batch, src_pos, d]`` (e.g. a clean run's resid_pre, or
            the other model's, see :func:`interp.patching.cross_model_sweep`).
        positions: per cell, the destination position in each row (``[cells, batch]``); default:
            every position of the padded batch (cell ``p`` = index ``p``), as TransformerLens does.
        value_positions: per cell, where in ``values`` to read (default: same as ``positions``).
        metric_position: a marked position name of ``batch`` or a ``[batch]`` index tensor.
        max_batch: work per forward pass, in prompt copies of the full sequence (cells x prompts
            when prompts are replicated; ``max_batch x seq`` packed tokens otherwise).
        packed: recompute only the positions a patch can change, with the clean keys/values of the
            earlier positions (:mod:`interp.patching.packed`); ``None`` (default): whenever the
            model supports it, ``False``: replicate whole prompts, ``True``: required.

    Example::

        clean = clean_resid_pre(model, clean_batch)
        grid = resid_pre_sweep(model, corrupt_batch, clean, logit_diff(answers, others))  # [layers, positions]
    """
    n_layers = int(model.cfg.n_layers)
    layers = check_layers(layers, n_layers)
    if distributed.active():  # under torchrun: this rank's cells, gathered (identical to one process)
        _, pos, vpos, _ = cell_setup(model, batch, positions, value_positions, metric_position)
        return distributed.split_cells(
            lambda **part: resid_pre_sweep(model, batch, values, metric, metric_position=metric_position,
                                           max_batch=max_batch, packed=packed, **part), pos, vpos, layers)
    if not use_fast(model, True if packed else None, "resid_pre_sweep"):
        from interp.patching.hooked import hook_sweep  # the bridge's hook points (TransformerLens semantics)

        return hook_sweep(model, batch, values, metric, kind="resid_pre", layers=layers, positions=positions,
                          value_positions=value_positions, metric_position=metric_position, max_batch=max_batch,
                          packed=False)
    b, positions, value_positions, mpos = cell_setup(model, batch, positions, value_positions, metric_position)
    with torch.inference_mode(), unwrapped(model):
        arch = arch_of(model)
        windows = packed_mod.windows_for(arch, packed)
        if windows is None:
            return _replicated_sweep(arch, b, values, metric, layers, positions, value_positions, mpos, max_batch)
        sweep = PackedCells(arch, windows, b, positions, mpos, max_batch, int(model.cfg.n_heads))
        values = values.to(b.input_ids.device, sweep.clean.dtype)
        rows = torch.arange(len(b), device=b.input_ids.device).unsqueeze(0)
        result = torch.empty(len(layers), positions.shape[0], device=b.input_ids.device)
        for li, layer in enumerate(layers):
            result[li] = sweep.metric(layer, values[layer, rows, value_positions], metric)
        return result


def _replicated_sweep(arch: Arch, b, values, metric, layers, positions, value_positions, mpos, max_batch) -> Tensor:
    """Each cell a copy of the whole prompts along the batch, starting at the patched layer."""
    device, B, n_cells = b.input_ids.device, len(b), positions.shape[0]
    pid = position_ids(b.attention_mask)
    clean = packed_mod.clean_state(arch, b.input_ids, b.attention_mask, pid, keys_values=False)[0]
    values = values.to(device, clean.dtype)
    rows = torch.arange(B, device=device)
    per_pass = max(1, max_batch // B)
    result = torch.empty(len(layers), n_cells, device=device)
    for li, layer in enumerate(layers):
        with skip_below(arch, layer):
            for start in range(0, n_cells, per_pass):
                k = min(per_pass, n_cells - start)
                resid = clean[layer].repeat(k, 1, 1)  # [k*B, T, d]; copy j holds cell start + j
                resid[torch.arange(k * B, device=device), positions[start: start + k].reshape(-1)] = (
                    values[layer, rows.repeat(k), value_positions[start: start + k].reshape(-1)])
                hook = arch.layer_list[layer].register_forward_pre_hook(
                    lambda mod, args, kwargs, resid=resid: with_layer_input(args, kwargs, resid), with_kwargs=True)
                try:
                    hidden = body_forward(arch, b.input_ids.repeat(k, 1), b.attention_mask.repeat(k, 1))
                finally:
                    hook.remove()
                at = hidden[torch.arange(k * B, device=device), mpos.repeat(k)]
                result[li, start: start + k] = metric_of(arch, at.view(k, B, -1), metric)
    return result


class PackedCells:
    """The clean state of ``batch`` (residuals, keys, values) and the packing of a set of cells
    (``positions [cells, batch]``, metric at ``mpos``); :meth:`metric` runs one layer's cells.
    Create and call it inside :func:`~interp.runtime.unwrapped`."""

    def __init__(self, arch: Arch, windows, b: PromptBatch, positions: Tensor, mpos: Tensor, max_batch: int,
                 n_heads: int):
        self.arch, self.windows, self.b = arch, windows, b
        self.positions, self.mpos = positions, mpos
        self.pid = position_ids(b.attention_mask)
        self.clean, self.keys, self.vals = packed_mod.clean_state(arch, b.input_ids, b.attention_mask, self.pid)
        self.additive = getattr(arch.config, "_attn_implementation", "eager") == "eager"
        self.end = int(mpos.max())
        # The first position each cell changes: its patch, or the metric position if that is earlier.
        self.starts = torch.minimum(positions.min(1).values, mpos.min()).tolist()
        B, T = b.input_ids.shape
        self.chunks = _chunks([self.end + 1 - s for s in self.starts], B, T, max_batch, n_heads)

    def metric(self, layer: int, patch_values: Tensor, metric: Metric) -> Tensor:
        """``metric`` per cell when cell ``c`` writes ``patch_values[c, row]`` at ``positions[c, row]``
        of ``resid_pre`` of ``layer``."""
        device = self.b.input_ids.device
        rows = torch.arange(len(self.b), device=device).unsqueeze(1)
        result = torch.empty(self.positions.shape[0], device=device)
        with skip_below(self.arch, layer):
            for chunk in self.chunks:
                first = torch.tensor([self.starts[c] for c in chunk], device=device)
                lengths = self.end + 1 - first
                offset = torch.cumsum(lengths, 0) - lengths  # where each cell's segment begins
                at = self.positions[chunk].T  # [B, k]
                patch_at = torch.where(at <= self.end, offset + at - first, -1)
                out = packed_mod.packed_layer(
                    self.arch, self.windows, layer, input_ids=self.b.input_ids,
                    attention_mask=self.b.attention_mask, position_ids=self.pid, clean=self.clean, keys=self.keys,
                    values=self.vals, starts=first.tolist(), end=self.end, patch_at=patch_at,
                    patch_values=patch_values[chunk].transpose(0, 1), additive=self.additive)
                hidden = out[rows, offset + self.mpos.unsqueeze(1) - first]  # [B, k, d]
                result[chunk] = metric_of(self.arch, hidden.transpose(0, 1), metric)
        return result


def _chunks(lengths: list[int], rows: int, seq: int, max_batch: int, n_heads: int) -> list[list[int]]:
    """Consecutive cells per packed pass: at most ``max_batch * seq`` tokens and
    :data:`~interp.patching.packed.ATTENTION_BUDGET` attention scores (at least one cell)."""
    chunks: list[list[int]] = [[]]
    q = 0
    for c, n in enumerate(lengths):
        grown = q + n
        fits = rows * grown <= max_batch * seq and rows * n_heads * grown * (seq + grown) <= packed_mod.ATTENTION_BUDGET
        if chunks[-1] and not fits:
            chunks.append([])
            grown = n
        chunks[-1].append(c)
        q = grown
    return chunks
