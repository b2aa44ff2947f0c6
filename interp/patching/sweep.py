"""Cross-model patching sweeps (base <-> aligned), with a result object (DataFrame + heatmap)."""

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor

from interp.models import ModelPair
from interp.patching.attribution import attribution_sweep
from interp.patching.core import Metric, clean_resid_pre, logits_at, resid_pre_sweep
from interp.patching.hooked import SWEEP_KINDS, clean_activations, head_sweep, hook_sweep
from interp.prompts import encode, format_prompt
from interp.results import Result
from interp.runtime import check_layers

__all__ = ["PatchResult", "cross_model_sweep", "cross_model_attribution"]


@dataclass(repr=False)
class PatchResult(Result):
    """Metric per (layer, position) cell, with the unpatched and fully-source references."""

    values: Tensor  # [layers, positions]
    layers: list[int]
    positions: list[str]
    clean: float  # metric of the destination run, unpatched
    direction: str
    kind: str = "resid_pre"
    estimate: bool = False  # True: attribution patching (first-order estimate), not an exact sweep
    per_prompt: Tensor | None = None  # [prompts, layers, positions] when swept prompt by prompt

    def bands(self, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[Tensor, Tensor]:
        """``(low, high)`` ``[layers, positions]``: percentile intervals of each cell's mean over
        prompts, resampling prompts (needs ``per_prompt``: sweep with ``per_prompt=True``)."""
        if self.per_prompt is None:
            raise ValueError("no per-prompt values: run the sweep with per_prompt=True to get bands")
        gen = torch.Generator().manual_seed(seed)
        n = self.per_prompt.shape[0]
        idx = torch.randint(0, n, (n_boot, n), generator=gen)
        means = self.per_prompt.double()[idx].mean(1)  # [boot, layers, positions]
        q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
        low, high = torch.quantile(means, q, dim=0)
        return low.float(), high.float()

    def to_frame(self) -> pd.DataFrame:
        """One row per cell; with per-prompt values, ``ci_low`` / ``ci_high`` (95%, prompt bootstrap)
        and ``sd`` (spread over prompts) as well."""
        lo, hi = self.bands() if self.per_prompt is not None else (None, None)
        sd = self.per_prompt.float().std(0) if self.per_prompt is not None and self.per_prompt.shape[0] > 1 else None
        rows = []
        for i, layer in enumerate(self.layers):
            for j, p in enumerate(self.positions):
                row = {"direction": self.direction, "kind": self.kind, "layer": layer, "position": p,
                       "value": float(self.values[i, j]), "clean": self.clean, "estimate": self.estimate}
                if lo is not None:
                    row.update(ci_low=float(lo[i, j]), ci_high=float(hi[i, j]), sd=float(sd[i, j]) if sd is not None else float("nan"))
                rows.append(row)
        return pd.DataFrame(rows)

    def summary(self) -> dict:
        """The clean metric and the cell with the largest value."""
        f = self.to_frame()
        best = f.sort_values("value").iloc[-1]
        out = {"direction": self.direction, "kind": self.kind, "clean": self.clean, "best_layer": int(best.layer),
               "best_position": str(best.position), "best_value": float(best.value), "cells": len(f),
               "estimate": self.estimate}
        if "ci_low" in f:
            out["best_value_ci"] = [float(best.ci_low), float(best.ci_high)]
            out["prompts"] = int(self.per_prompt.shape[0])
        return out

    def figure(self, title: str = "", labels: dict | None = None):
        """A layer x position (or layer x head) heatmap (plotly); ``labels`` maps a position name to
        the token text shown next to it."""
        from interp.plots.figures import patching_heatmap

        what = "attribution estimate" if self.estimate else "patching"
        fig = patching_heatmap(self.to_frame(), labels=labels,
                               title=title or f"{what} {self.direction}, {self.kind} (clean {self.clean:.3f})")
        fig.update_xaxes(title=f"layer ({self.kind})")
        return fig

    def _repr_html_(self) -> str:
        return self.to_frame().pivot(index="position", columns="layer", values="value").round(3).to_html()


def _cross_inputs(pair: ModelPair, texts: Sequence[str], direction: str, spans, positions: Sequence[str], kind: str):
    """Destination batch, source values remapped to destination positions, and the positions."""
    src_side, _, dst_side = direction.partition("->")
    if {src_side, dst_side} != {"base", "aligned"}:
        raise ValueError(f"direction must be 'base->aligned' or 'aligned->base', got {direction!r}")
    if kind not in SWEEP_KINDS + ("head",):
        raise ValueError(f"kind must be one of {', '.join(SWEEP_KINDS + ('head',))}, got {kind!r}")
    if "span_last" in positions and spans is None:
        raise ValueError("position 'span_last' needs spans= (the substring to mark in each prompt)")
    batches = {}
    for side in (src_side, dst_side):
        model = pair.side(side)
        formatted = [format_prompt(t, style=pair.style(side), tokenizer=model.tokenizer) for t in texts]
        batches[side] = encode(model.tokenizer, formatted, spans=spans if "span_last" in positions else None)
    src, dst = batches[src_side], batches[dst_side]
    if kind == "resid_pre":
        values = clean_resid_pre(pair.side(src_side), src)
    else:
        values = clean_activations(pair.side(src_side), src, "z" if kind == "head" else kind)
    dst_pos = torch.stack([dst.position(p) for p in positions])
    src_pos = torch.stack([src.position(p) for p in positions])
    # Source values are read at the source's marked positions, written at the destination's.
    width = dst.input_ids.shape[1]
    remapped = torch.zeros(values.shape[0], values.shape[1], width, *values.shape[3:], dtype=values.dtype, device=values.device)
    rows = torch.arange(len(texts), device=values.device)
    for c in range(len(positions)):
        remapped[:, rows, dst_pos[c].to(values.device)] = values[:, rows, src_pos[c].to(values.device)]
    return pair.side(dst_side), dst, remapped, dst_pos


def cross_model_sweep(
    pair: ModelPair,
    texts: Sequence[str],
    metric: Metric,
    *,
    direction: str = "base->aligned",
    spans: Sequence[str] | None = None,
    positions: Sequence[str] = ("span_last", "last"),
    layers: Sequence[int] | None = None,
    metric_position: str = "last",
    kind: str = "resid_pre",
    max_batch: int = 256,
    per_prompt: bool = False,
) -> PatchResult:
    """Patch one model's activations into the other's, cell by cell (layer x marked position).

    Base and aligned see their own prompt formats (plain vs chat template), so raw indices do not
    line up; positions are matched by *marked positions* (``span_last``: last token of ``spans``
    in each prompt; ``last``: last prompt token). ``direction`` is ``"base->aligned"`` (base
    activations into the aligned run) or ``"aligned->base"``.

    ``kind``: the hook patched — ``resid_pre`` (fast path), ``resid_mid``, ``resid_post``,
    ``attn_out``, ``mlp_out``, or ``"head"``: each attention head's output (``hook_z``) at all the
    marked positions at once; the result's positions are then ``head 0 .. head n-1``.

    ``per_prompt=True`` sweeps prompt by prompt (``metric`` must be a :class:`TokenMetric` that
    averages over prompts, as :func:`answer_vs_token` and :func:`logit_diff` do) and keeps every
    prompt's grid, so the result has 95% prompt-bootstrap bands (:meth:`PatchResult.bands`, and
    ``ci_low`` / ``ci_high`` in its frame); the values are the mean of the prompts' grids.
    """
    if per_prompt:
        return _per_prompt_sweep(pair, texts, metric, direction=direction, spans=spans, positions=positions, layers=layers,
                                 metric_position=metric_position, kind=kind, max_batch=max_batch)
    model, dst, values, dst_pos = _cross_inputs(pair, texts, direction, spans, positions, kind)
    layer_list = check_layers(layers, pair.n_layers)
    if kind == "resid_pre":
        grid = resid_pre_sweep(model, dst, values, metric, layers=layers, positions=dst_pos,
                               metric_position=metric_position, max_batch=max_batch)
        labels = list(positions)
    elif kind == "head":
        grid = head_sweep(model, dst, values, metric, layers=layers, positions=dst_pos, metric_position=metric_position,
                          max_batch=max_batch)
        labels = [f"head {h}" for h in range(int(model.cfg.n_heads))]
    else:
        grid = hook_sweep(model, dst, values, metric, kind=kind, layers=layers, positions=dst_pos,
                          metric_position=metric_position, max_batch=max_batch)
        labels = list(positions)
    return PatchResult(grid.cpu(), layer_list, labels, _clean_metric(model, dst, metric, metric_position), direction, kind)


def _per_prompt_sweep(pair: ModelPair, texts: Sequence[str], metric: Metric, *, spans, **kwargs) -> PatchResult:
    from interp.patching.metrics import TokenMetric

    if not isinstance(metric, TokenMetric):
        raise ValueError("per_prompt=True needs a TokenMetric (answer_vs_token, logit_diff) whose token ids it can split by "
                         "prompt; for another metric, call cross_model_sweep once per prompt")
    if metric.tokens.shape[0] != len(texts):
        raise ValueError(f"the metric has token ids for {metric.tokens.shape[0]} prompts, got {len(texts)} texts")
    parts = [cross_model_sweep(pair, [t], TokenMetric(metric.tokens[i:i + 1], metric.reduce),
                               spans=None if spans is None else [spans[i]], **kwargs) for i, t in enumerate(texts)]
    grids = torch.stack([r.values for r in parts])
    first = parts[0]
    return PatchResult(grids.mean(0), first.layers, first.positions, float(sum(r.clean for r in parts) / len(parts)),
                       first.direction, first.kind, per_prompt=grids)


def cross_model_attribution(
    pair: ModelPair,
    texts: Sequence[str],
    metric: Metric,
    *,
    direction: str = "base->aligned",
    spans: Sequence[str] | None = None,
    positions: Sequence[str] = ("span_last", "last"),
    layers: Sequence[int] | None = None,
    metric_position: str = "last",
    kind: str = "resid_pre",
) -> PatchResult:
    """Attribution patching (first-order estimate) of :func:`cross_model_sweep`'s cells: two
    forward passes and one backward pass. The result's values are ``clean + estimated change``,
    directly comparable with the exact sweep (see :func:`interp.patching.compare_attribution`)."""
    if kind == "head":
        raise ValueError("attribution patching covers the SWEEP_KINDS hooks, not per-head cells; use kind='attn_out'")
    model, dst, values, dst_pos = _cross_inputs(pair, texts, direction, spans, positions, kind)
    est = attribution_sweep(model, dst, values, metric, kind=kind, layers=layers, positions=dst_pos,
                            metric_position=metric_position)
    clean = _clean_metric(model, dst, metric, metric_position)
    layer_list = check_layers(layers, pair.n_layers)
    return PatchResult((est + clean).detach().cpu(), layer_list, list(positions), clean, direction, kind, estimate=True)


def _clean_metric(model, batch, metric: Metric, metric_position: str) -> float:
    """The metric of the destination run, unpatched."""
    return float(metric(logits_at(model, batch, metric_position)[None])[0])
