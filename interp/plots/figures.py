"""Figure functions. Each takes a result frame and returns a ``plotly.graph_objects.Figure``."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from interp.plots.theme import COLORS, DASHES, LAYOUT

from interp.plots.analyses import (  # noqa: E402,F401  (one namespace for every figure kind)
    dose_response,
    kl_by_position,
    causal_closure_bars,
    latent_class_histogram,
    measure_bars,
    knowledge_by_popularity,
    logit_lens_curves,
    popularity_curves,
    similarity_by_layer,
    token_shift_histogram,
    weight_delta_spectra,
)

__all__ = ["probe_accuracy_by_layer", "patching_heatmap", "logit_lens_curves", "knowledge_by_popularity", "popularity_curves",
           "kl_by_position", "token_shift_histogram", "similarity_by_layer", "weight_delta_spectra", "dose_response", "measure_bars", "latent_class_histogram", "causal_closure_bars"]


def probe_accuracy_by_layer(frame: pd.DataFrame, *, metric: str = "accuracy", probe: str = "logistic",
                            title: str = "") -> go.Figure:
    """Probe ``metric`` by layer for base, aligned, transfer and the controls, with CI bands.

    ``frame``: the tidy frame of :func:`interp.probes.evaluate_probes` / :func:`probe_store` (test
    rows, and the control task on held-out rows of seen entities; validation rows are not drawn)."""
    fig = go.Figure()
    f = frame[(frame.metric == metric) & (frame.split != "val")] if "split" in frame else frame[frame.metric == metric]
    series = [(m, probe) for m in ("base", "aligned", "base->aligned", "aligned->base")]
    series += [(m, p) for m in ("base", "aligned") for p in ("control_task", "random_direction", "majority_class")]
    for model, kind in series:
        part = f[(f.model == model) & (f.probe == kind)].sort_values("layer")
        if part.empty:
            continue
        name = model if kind == probe else f"{model} {kind.replace('_', ' ')}" + (" (seen entities)" if kind == "control_task" else "")
        color = COLORS.get(model if kind == probe else kind, COLORS["other"])
        if part["ci_low"].notna().all():
            fig.add_trace(go.Scatter(x=list(part.layer) + list(part.layer[::-1]), y=list(part.ci_high) + list(part.ci_low[::-1]),
                                     fill="toself", fillcolor=color, opacity=0.15, line=dict(width=0), showlegend=False,
                                     hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=part.layer, y=part.value, name=name, mode="lines+markers",
                                 line=dict(color=color, dash=DASHES.get(model if kind == probe else kind, "solid")),
                                 marker=dict(size=4, symbol="circle" if model == "base" else "square")))
    fig.update_layout(**LAYOUT, title=title, xaxis_title="layer", yaxis_title=f"{probe} probe {metric}")
    fig.update_yaxes(range=[0.3, 1.02] if metric in ("accuracy", "auroc") else None)
    return fig


def patching_heatmap(frame: pd.DataFrame, *, value: str = "value", title: str = "", labels: dict | None = None) -> go.Figure:
    """Layer x position heatmap of a patching sweep (:meth:`interp.patching.PatchResult.to_frame`);
    ``labels`` maps a position name to the token text shown on the axis. Where the frame has
    ``ci_low`` / ``ci_high`` (a per-prompt sweep), each cell's hover shows its 95% interval."""
    grid = frame.pivot_table(index="position", columns="layer", values=value, sort=False)
    y = [f"{p} ({labels[p]})" if labels and p in labels else str(p) for p in grid.index]
    extra = {}
    if "ci_low" in frame and frame["ci_low"].notna().any():
        lo = frame.pivot_table(index="position", columns="layer", values="ci_low", sort=False).reindex_like(grid)
        hi = frame.pivot_table(index="position", columns="layer", values="ci_high", sort=False).reindex_like(grid)
        extra = dict(customdata=np.stack([lo.values, hi.values], -1),
                     hovertemplate="layer %{x}<br>%{y}<br>%{z:.3f} (95% CI %{customdata[0]:.3f} to %{customdata[1]:.3f})"
                                   "<extra></extra>")
    fig = go.Figure(go.Heatmap(z=grid.values, x=list(grid.columns), y=y, colorscale="Cividis", colorbar=dict(title=value), **extra))
    fig.update_layout(**LAYOUT, title=title, xaxis_title="layer", yaxis_title="position")
    return fig
