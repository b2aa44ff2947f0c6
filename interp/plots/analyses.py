"""Figures for the diffing, lens and intervention analyses (one function per figure kind).

Each takes a result object or its frame and returns a ``plotly.graph_objects.Figure`` in the one
theme (:mod:`interp.plots.theme`): Okabe-Ito colours, base solid / aligned dashed so the lines
stay apart in greyscale.
"""

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from interp.plots.theme import COLORS, LAYOUT

__all__ = ["logit_lens_curves", "knowledge_by_popularity", "kl_by_position", "token_shift_histogram",
           "similarity_by_layer", "weight_delta_spectra", "dose_response", "causal_closure_bars"]

CATEGORY_COLORS = {"HighlyKnown": "#0072B2", "MaybeKnown": "#56B4E9", "WeaklyKnown": "#F0E442", "Unknown": "#999999"}
CATEGORY_PATTERNS = {"HighlyKnown": "", "MaybeKnown": "/", "WeaklyKnown": ".", "Unknown": "x"}
_MODEL_DASH = {"base": "solid", "aligned": "dash"}


def _band(fig: go.Figure, x, low, high, color: str) -> None:
    fig.add_trace(go.Scatter(x=list(x) + list(x)[::-1], y=list(high) + list(low)[::-1], fill="toself", fillcolor=color,
                             opacity=0.15, line=dict(width=0), showlegend=False, hoverinfo="skip"))


def logit_lens_curves(summary: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Median rank (log axis) of the answer's first token by layer, one line per model.

    ``summary``: :meth:`interp.lens.LensResult.by_layer`."""
    fig = go.Figure()
    for model, part in summary.groupby("model", sort=False):
        part = part.sort_values("layer")
        fig.add_trace(go.Scatter(x=part.layer, y=part.median_rank, name=f"{model}", mode="lines+markers",
                                 line=dict(color=COLORS.get(model, COLORS["other"]), dash=_MODEL_DASH.get(model, "dot")),
                                 customdata=np.stack([part.mean_prob, part.top1], 1),
                                 hovertemplate="layer %{x}<br>median rank %{y}<br>mean prob %{customdata[0]:.3f}"
                                               "<br>top-1 %{customdata[1]:.2f}"))
    fig.update_layout(**LAYOUT, title=title, xaxis_title="layer (resid_post, final norm + unembedding)",
                      yaxis_title="median rank of the answer")
    fig.update_yaxes(type="log", autorange="reversed")
    return fig


def knowledge_by_popularity(result, *, title: str = "") -> go.Figure:
    """Stacked category shares per popularity bin (one group of bars per model) and the fitted
    P(known) with its 95% band on a second axis. ``result``: a
    :class:`interp.diffing.PopularityResult`."""
    bins = result.bins
    models = list(dict.fromkeys(bins.model))
    fig = go.Figure()
    for cat, color in CATEGORY_COLORS.items():
        part = bins[bins.category == cat]
        x = [[m for m in part.model], [f"{lo:.2g}-{hi:.2g}" for lo, hi in zip(part.pop_low, part.pop_high)]]
        fig.add_trace(go.Bar(x=x, y=part.share, name=cat, marker=dict(color=color, pattern_shape=CATEGORY_PATTERNS[cat],
                                                                      line=dict(color="black", width=0.5))))
    fig.update_layout(**LAYOUT, barmode="stack", title=title, yaxis_title="share of facts",
                      xaxis_title="model / popularity bin")
    if len(models) and not result.fits.slope.isna().all():
        slopes = "; ".join(f"{r.model}: slope {r.slope:.2f} [{r.slope_low:.2f}, {r.slope_high:.2f}] per decade"
                           for r in result.fits.itertuples())
        fig.add_annotation(text=f"logit P(known) ~ log10 popularity: {slopes}", xref="paper", yref="paper", x=0, y=1.08,
                           showarrow=False, font=dict(size=9), xanchor="left")
    return fig


def popularity_curves(result, *, title: str = "") -> go.Figure:
    """Fitted P(known) against log10 popularity with 95% bands and binned known shares."""
    fig = go.Figure()
    known = result.known_share()
    for model, part in result.curves.groupby("model", sort=False):
        color = COLORS.get(model, COLORS["other"])
        _band(fig, part.log_pop, part.low, part.high, color)
        fig.add_trace(go.Scatter(x=part.log_pop, y=part.p_known, name=f"{model} fit", line=dict(color=color,
                                 dash=_MODEL_DASH.get(model, "dot"))))
        k = known[known.model == model]
        mid = (np.log10(k.pop_low) + np.log10(k.pop_high)) / 2
        fig.add_trace(go.Scatter(x=mid, y=k.known, mode="markers", name=f"{model} binned",
                                 marker=dict(color=color, symbol="circle" if model == "base" else "square")))
    fig.update_layout(**LAYOUT, title=title, xaxis_title="log10 popularity", yaxis_title="P(known)")
    fig.update_yaxes(range=[0, 1])
    return fig


def kl_by_position(frame: pd.DataFrame, *, title: str = "", max_position: int = 32) -> go.Figure:
    """Mean KL(aligned || base) by response position. ``frame``: :meth:`ShiftResult.kl_by_position`."""
    f = frame[frame.position < max_position]
    fig = go.Figure(go.Bar(x=f.position, y=f.mean_kl, marker=dict(color=COLORS["aligned"]), name="mean KL",
                           customdata=f.n, hovertemplate="position %{x}<br>mean KL %{y:.3f}<br>n %{customdata}"))
    fig.update_layout(**LAYOUT, title=title, xaxis_title="response token position", yaxis_title="KL(aligned || base), nats")
    return fig


def token_shift_histogram(tokens: pd.DataFrame, *, title: str = "", max_rank: int = 20) -> go.Figure:
    """Histogram of the base model's rank of each aligned response token (ranks above
    ``max_rank`` pooled), bars shaded by unshifted / marginal / shifted."""
    ranks = tokens.base_rank.clip(upper=max_rank + 1)
    counts = ranks.value_counts(normalize=True).sort_index()
    colors = ["#0072B2" if r == 1 else "#E69F00" if r <= 3 else "#D55E00" for r in counts.index]
    labels = [str(r) if r <= max_rank else f">{max_rank}" for r in counts.index]
    fig = go.Figure(go.Bar(x=labels, y=counts.values, marker=dict(color=colors, line=dict(color="black", width=0.5))))
    fig.update_layout(**LAYOUT, title=title, xaxis_title="rank of the aligned token under the base model",
                      yaxis_title="share of response tokens")
    fig.update_xaxes(type="category")
    return fig


def similarity_by_layer(frame: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Cosine similarity and linear CKA between base and aligned residual streams, by layer: raw,
    and (where the frame has them) without the massive dimensions and standardised."""
    fig = go.Figure()
    series = (("cosine", COLORS["base"], "solid"), ("cka", COLORS["aligned"], "solid"),
              ("cosine_no_massive", COLORS["base"], "dash"), ("cka_no_massive", COLORS["aligned"], "dash"),
              ("cka_standardised", COLORS["base->aligned"], "dot"))
    for col, color, dash in series:
        if col not in frame:
            continue
        fig.add_trace(go.Scatter(x=frame.layer, y=frame[col], name=col.replace("_", " "), mode="lines+markers",
                                 line=dict(color=color, dash=dash)))
    fig.update_layout(**LAYOUT, title=title, xaxis_title="layer (resid_post)", yaxis_title="base vs aligned similarity")
    return fig


def weight_delta_spectra(result, *, title: str = "", max_lines: int = 12) -> go.Figure:
    """Normalised singular values of the weight deltas with the largest norms (log y)."""
    frame = result.frame.sort_values("norm", ascending=False).head(max_lines)
    fig = go.Figure()
    palette = list(COLORS.values())
    for k, row in enumerate(frame.itertuples()):
        s = result.spectra[row.name]
        fig.add_trace(go.Scatter(x=np.arange(1, len(s) + 1), y=s, mode="lines", name=row.name.replace("model.", ""),
                                 line=dict(color=palette[k % len(palette)], dash=["solid", "dash", "dot"][k // len(palette) % 3])))
    fig.update_layout(**LAYOUT, title=title, xaxis_title="singular value index", yaxis_title="sigma_i / sigma_1")
    fig.update_yaxes(type="log")
    return fig


def dose_response(frame: pd.DataFrame, *, x: str = "scale", y: str = "value", color: str = "measure",
                  title: str = "") -> go.Figure:
    """A measure against the intervention's strength (steering scale, ablation), one line per
    ``color`` group. ``frame``: e.g. :meth:`interp.patching.SteeringResult.to_frame`."""
    fig = go.Figure()
    palette = list(COLORS.values())
    for k, (name, part) in enumerate(frame.groupby(color, sort=False)):
        part = part.sort_values(x)
        fig.add_trace(go.Scatter(x=part[x], y=part[y], name=str(name), mode="lines+markers",
                                 line=dict(color=palette[k % len(palette)], dash=["solid", "dash", "dot", "dashdot"][k % 4])))
    fig.update_layout(**LAYOUT, title=title, xaxis_title=x, yaxis_title=y)
    return fig


def measure_bars(frame: pd.DataFrame, *, x: str = "measure", y: str = "value", n: str = "n", title: str = "") -> go.Figure:
    """One bar per measure (rates in [0, 1]), ``n`` shown on hover: e.g. the alignment recipe's
    behaviour table or the refusal-direction measures."""
    errors = None
    if {"ci_low", "ci_high"} <= set(frame.columns):  # interval whiskers where the rows have them
        errors = dict(type="data", symmetric=False, array=(frame.ci_high - frame[y]).fillna(0).to_numpy(),
                      arrayminus=(frame[y] - frame.ci_low).fillna(0).to_numpy(), color="black", thickness=1)
    fig = go.Figure(go.Bar(x=frame[y], y=frame[x], orientation="h", marker=dict(color=COLORS["aligned"]), error_x=errors,
                           customdata=frame[n] if n in frame else None,
                           hovertemplate="%{y}: %{x:.3f}" + (" (n=%{customdata})" if n in frame else "") + "<extra></extra>"))
    fig.update_layout(**LAYOUT, title=title, xaxis_title=y, yaxis=dict(autorange="reversed"))
    return fig


def latent_class_histogram(classes: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Histogram of the crosscoder latents' relative decoder norm (0: base-only, 1: aligned-only),
    bars shaded by the class after Latent Scaling where ``classes`` has it."""
    col = "final_class" if "final_class" in classes else "class"
    colors = {"base-only": COLORS["base"], "shared": "#999999", "aligned-only": COLORS["aligned"]}
    fig = go.Figure()
    for cls, color in colors.items():
        part = classes[classes[col] == cls]
        fig.add_trace(go.Histogram(x=part.rel_norm, name=f"{cls} ({len(part)})", marker=dict(color=color),
                                   xbins=dict(start=0, end=1, size=0.025)))
    fig.update_layout(**LAYOUT, title=title, barmode="stack", xaxis_title="relative decoder norm (aligned / sum)",
                      yaxis_title="latents")
    return fig


def causal_closure_bars(frame: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Share of the next-token KL (aligned vs its stream replaced by the base's) that each latent
    set closes, one bar group per token kind, 95% intervals over interactions.

    ``frame``: :func:`interp.dictionary.causal.causal_closure`."""
    kinds = [k for k in ("all", "template", "user", "response") if k in set(frame.kind)]
    palette = ["#555555", "#E69F00", "#56B4E9", "#009E73"]
    fig = go.Figure()
    for kind, color in zip(kinds, palette):
        part = frame[frame.kind == kind]
        fig.add_trace(go.Bar(x=part.set, y=part.closed, name=f"{kind} tokens", marker=dict(color=color),
                             error_y=dict(type="data", symmetric=False, array=(part.closed_high - part.closed).tolist(),
                                          arrayminus=(part.closed - part.closed_low).tolist())))
    fig.update_layout(**LAYOUT, title=title, barmode="group", yaxis_title="share of KL(aligned || base stream) closed",
                      xaxis_title="latents whose decoded difference is added to the base stream")
    return fig
