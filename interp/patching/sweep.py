"""Cross-model patching sweeps (base <-> aligned), with a result object (DataFrame + heatmap)."""

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor

from interp.models import ModelPair
from interp.patching.core import Metric, clean_resid_pre, logits_at, resid_pre_sweep
from interp.prompts import encode, format_prompt

__all__ = ["PatchResult", "cross_model_sweep"]


@dataclass
class PatchResult:
    """Metric per (layer, position) cell, with the unpatched and fully-source references."""

    values: Tensor  # [layers, positions]
    layers: list[int]
    positions: list[str]
    clean: float  # metric of the destination run, unpatched
    direction: str

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"direction": self.direction, "layer": layer, "position": p,
                              "value": float(self.values[i, j]), "clean": self.clean}
                             for i, layer in enumerate(self.layers) for j, p in enumerate(self.positions)])

    def figure(self, title: str = ""):
        """A layer x position heatmap (plotly)."""
        import plotly.graph_objects as go

        from interp.plots.theme import LAYOUT

        fig = go.Figure(go.Heatmap(z=self.values.T.cpu().numpy(), x=self.layers, y=self.positions, colorscale="Cividis",
                                   colorbar=dict(title="metric")))
        fig.update_layout(**LAYOUT, title=title or f"patching {self.direction} (clean {self.clean:.3f})",
                          xaxis_title="layer (resid_pre)", yaxis_title="position")
        return fig

    def _repr_html_(self) -> str:
        return self.to_frame().pivot(index="position", columns="layer", values="value").round(3).to_html()


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
    max_batch: int = 256,
) -> PatchResult:
    """Patch one model's ``resid_pre`` into the other's, cell by cell (layer x marked position).

    Base and aligned see their own prompt formats (plain vs chat template), so raw indices do not
    line up; positions are matched by *marked positions* (``span_last``: last token of ``spans``
    in each prompt; ``last``: last prompt token). ``direction`` is ``"base->aligned"`` (base
    activations into the aligned run) or ``"aligned->base"``.
    """
    src_side, _, dst_side = direction.partition("->")
    if {src_side, dst_side} != {"base", "aligned"}:
        raise ValueError(f"direction must be 'base->aligned' or 'aligned->base', got {direction!r}")
    if "span_last" in positions and spans is None:
        raise ValueError("position 'span_last' needs spans= (the substring to mark in each prompt)")
    batches = {}
    for side in (src_side, dst_side):
        model = pair.side(side)
        formatted = [format_prompt(t, style=pair.style(side), tokenizer=model.tokenizer) for t in texts]
        batches[side] = encode(model.tokenizer, formatted, spans=spans if "span_last" in positions else None)
    src, dst = batches[src_side], batches[dst_side]
    values = clean_resid_pre(pair.side(src_side), src)
    dst_pos = torch.stack([dst.position(p) for p in positions])
    src_pos = torch.stack([src.position(p) for p in positions])
    # Source values are read at the source's marked positions, written at the destination's.
    width = dst.input_ids.shape[1]
    remapped = torch.zeros(values.shape[0], values.shape[1], width, values.shape[-1], dtype=values.dtype, device=values.device)
    rows = torch.arange(len(texts), device=values.device)
    for c in range(len(positions)):
        remapped[:, rows, dst_pos[c].to(values.device)] = values[:, rows, src_pos[c].to(values.device)]
    grid = resid_pre_sweep(pair.side(dst_side), dst, remapped, metric, layers=layers, positions=dst_pos,
                           metric_position=metric_position, max_batch=max_batch)
    clean = float(metric(logits_at(pair.side(dst_side), dst, metric_position)[None])[0])
    return PatchResult(grid.cpu(), list(layers) if layers is not None else list(range(pair.n_layers)), list(positions),
                       clean, direction)
