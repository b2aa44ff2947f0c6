"""Figure functions. Each takes a result frame and returns a ``plotly.graph_objects.Figure``."""

import pandas as pd
import plotly.graph_objects as go

from interp.plots.theme import COLORS, DASHES, LAYOUT

__all__ = ["probe_accuracy_by_layer"]


def probe_accuracy_by_layer(frame: pd.DataFrame, *, metric: str = "accuracy", probe: str = "logistic",
                            title: str = "") -> go.Figure:
    """Probe ``metric`` by layer for base, aligned, transfer and the controls, with CI bands.

    ``frame``: the tidy frame of :func:`interp.probes.evaluate_probes` / :func:`probe_store`."""
    fig = go.Figure()
    f = frame[frame.metric == metric]
    series = [(m, probe) for m in ("base", "aligned", "base->aligned", "aligned->base")]
    series += [(m, p) for m in ("base", "aligned") for p in ("control_task", "random_direction")]
    for model, kind in series:
        part = f[(f.model == model) & (f.probe == kind)].sort_values("layer")
        if part.empty:
            continue
        name = model if kind == probe else f"{model} {kind.replace('_', ' ')}"
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
