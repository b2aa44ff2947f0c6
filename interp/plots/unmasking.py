"""Figures of the unmasking measure (:mod:`interp.unmask`): gap recovered against KL for every
method, and the dose-response curves (subspace dimension, weights restored)."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from interp.plots.theme import LAYOUT

__all__ = ["unmask_gap_vs_kl", "unmask_dose_response", "METHOD_STYLE"]

#: colour and marker per method (Okabe-Ito; markers keep them apart in greyscale).
METHOD_STYLE = {
    "none": ("#000000", "circle-open"), "direction": ("#D55E00", "square"), "subspace": ("#E69F00", "diamond"),
    "steering": ("#0072B2", "circle"), "lowrank": ("#56B4E9", "triangle-up"), "weights": ("#009E73", "cross"),
    "patch": ("#CC79A7", "x"), "prefill": ("#999999", "star"), "few_shot": ("#555555", "hexagon"),
}


def unmask_gap_vs_kl(frame: pd.DataFrame, *, mask: str, kl_max: float = 0.2, title: str = "") -> go.Figure:
    """Gap recovered (with its 95% CI) against next-token KL on the guard prompts, one marker per
    (method, setting) on ``mask``; methods that change the prompt (no KL) sit at KL = 0 with an
    open marker. The target region (KL <= ``kl_max``, gap >= 0.8) is shaded."""
    f = frame[frame["mask"] == mask]
    fig = go.Figure()
    fig.add_shape(type="rect", x0=1e-4, x1=kl_max, y0=0.8, y1=1.05, fillcolor="#009E73", opacity=0.08, line_width=0)
    floor = 1e-3  # a log axis: KL below this (the unchanged model, prompt baselines) is drawn at it
    for method, part in f.groupby("method", sort=False):
        color, symbol = METHOD_STYLE.get(method, ("#E69F00", "circle"))
        no_kl = part.kl.isna()
        fig.add_trace(go.Scatter(
            x=part.kl.fillna(0.0).clip(lower=floor), y=part.gap_recovered, mode="markers", name=method,
            marker=dict(color=color, symbol=[symbol + "-open" if n and "-open" not in symbol else symbol for n in no_kl], size=9),
            error_y=dict(type="data", symmetric=False, array=part.ci_high - part.gap_recovered,
                         arrayminus=part.gap_recovered - part.ci_low, thickness=1, width=2),
            text=[f"{s}<br>guard drop {d:+.2f}" for s, d in zip(part.setting, part.guard_accuracy_drop)],
            hovertemplate="%{text}<br>KL %{x:.3f}<br>gap %{y:.2f}<extra>" + method + "</extra>"))
    fig.update_layout(**LAYOUT, title=title or f"unmasking '{mask}': gap recovered vs KL",
                      xaxis_title=f"next-token KL(aligned || intervened), guard prompts (nats; < {floor:g} drawn at {floor:g})",
                      yaxis_title="share of the base-aligned gap recovered")
    top = max(float(f.kl.max()) if f.kl.notna().any() else 1.0, 1.0)
    fig.update_xaxes(type="log", range=[np.log10(floor) - 0.2, np.log10(top) + 0.2])
    fig.update_yaxes(range=[-0.1, 1.05])
    return fig


def unmask_dose_response(frame: pd.DataFrame, *, mask: str, title: str = "") -> go.Figure:
    """Gap recovered (95% CI band) and guard accuracy as the dose grows: the ablated subspace's
    dimension k, and the number of layers whose base weights are restored."""
    f = frame[frame["mask"] == mask]
    fig = go.Figure()
    own = f.setting.fillna("").str.startswith(f"{mask}: ")  # the families selected for this mask
    series = [("subspace", f[own & f.method.isin(["direction", "subspace"]) & f.setting.str.contains("k=")]),
              ("weights", f[own & (f.method == "weights") & f.setting.str.contains(": top ")])]
    for name, part in series:
        if part.empty:
            continue
        x = part["dose"] if "dose" in part else part.index
        order = x.argsort()
        part, x = part.iloc[order], x.iloc[order]
        color, symbol = METHOD_STYLE[name]
        fig.add_trace(go.Scatter(x=list(x) + list(x)[::-1], y=list(part.ci_high) + list(part.ci_low)[::-1], fill="toself", mode="lines",
                                 fillcolor=color, opacity=0.15, line=dict(width=0), showlegend=False, hoverinfo="skip"))
        label = "subspace ablated (k directions)" if name == "subspace" else "base weights restored (top layers)"
        fig.add_trace(go.Scatter(x=x, y=part.gap_recovered, name=f"{label}: gap", mode="lines+markers",
                                 line=dict(color=color), marker=dict(symbol=symbol)))
        fig.add_trace(go.Scatter(x=x, y=part.guard_accuracy, name=f"{label}: guard accuracy", mode="lines+markers",
                                 line=dict(color=color, dash="dot"), marker=dict(symbol=symbol)))
    fig.update_layout(**LAYOUT, title=title or f"unmasking '{mask}': dose-response", xaxis_title="dose (k, or layers restored)",
                      yaxis_title="share")
    fig.update_yaxes(range=[-0.1, 1.05])
    return fig
