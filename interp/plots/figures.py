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


#: Grey shades and dashes of the controls, the same in every panel.
_CONTROLS = {"control_task": ("#8c8c8c", "dashdot"), "random_direction": ("#5f5f5f", "longdash"),
             "majority_class": ("#b3b3b3", "dot")}


def probe_accuracy_by_layer(frame: pd.DataFrame, *, metric: str = "accuracy", probe: str = "logistic",
                            title: str = "") -> go.Figure:
    """Probe ``metric`` by layer, one panel per model's activations (base, aligned), with CI bands.

    Each panel draws the probe fitted on that model (coloured, with its band), the probe transferred
    from the other model onto these activations (``aligned->base`` in the base panel,
    ``base->aligned`` in the aligned one; dashed) and that model's controls in grey (control task on
    held-out rows of seen entities, random direction, majority class; no bands), so no panel holds
    more than five lines.

    ``frame``: the tidy frame of :func:`interp.probes.evaluate_probes` / :func:`probe_store` (test
    rows, and the control task on held-out rows of seen entities; validation rows are not drawn)."""
    from plotly.subplots import make_subplots

    f = frame[(frame.metric == metric) & (frame.split != "val")] if "split" in frame else frame[frame.metric == metric]
    panels = [m for m in ("base", "aligned") if (f.model == m).any()] or sorted(set(f.model))[:1]
    into = {"aligned->base": "base", "base->aligned": "aligned"}
    fig = make_subplots(rows=1, cols=max(1, len(panels)), shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=[f"{m} activations" for m in panels])
    shown: set[str] = set()
    for col, panel in enumerate(panels, start=1):
        series = [(panel, probe)] + [(m, probe) for m, target in into.items() if target == panel]
        series += [(panel, kind) for kind in _CONTROLS]
        for model, kind in series:
            part = f[(f.model == model) & (f.probe == kind)].sort_values("layer")
            if part.empty:
                continue
            control = kind != probe
            name = (kind.replace("_", " ") + (" (seen entities)" if kind == "control_task" else "")) if control else model
            color, dash = _CONTROLS[kind] if control else (COLORS.get(model, COLORS["other"]), DASHES.get(model, "solid"))
            if not control and part["ci_low"].notna().all():
                fig.add_trace(go.Scatter(x=list(part.layer) + list(part.layer[::-1]),
                                         y=list(part.ci_high) + list(part.ci_low[::-1]), fill="toself", fillcolor=color,
                                         opacity=0.15, line=dict(width=0), showlegend=False, hoverinfo="skip"),
                              row=1, col=col)
            fig.add_trace(go.Scatter(x=part.layer, y=part.value, name=name, legendgroup=name, showlegend=name not in shown,
                                     mode="lines+markers", line=dict(color=color, dash=dash, width=1.2 if control else 2),
                                     marker=dict(size=3 if control else 4, symbol="circle" if model == "base" else "square")),
                          row=1, col=col)
            shown.add(name)
        fig.update_xaxes(title_text="layer", row=1, col=col)
    fig.update_layout(**LAYOUT, title=title)
    fig.update_layout(margin=dict(LAYOUT["margin"], t=70 if title else 40))  # room for the title above the panel titles
    fig.update_yaxes(title_text=f"{probe} probe {metric}", row=1, col=1)
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
