"""The hidden-knowledge figure (:mod:`interp.knowledge`): expressed vs internal knowledge per set,
base vs aligned, with entity-bootstrap intervals and chance at 0.5."""

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.plots.theme import COLORS, LAYOUT

__all__ = ["hidden_knowledge_bars"]

_SHOWN = {"k_gen": "K_gen", "k_prob": "K_prob", "k_prob_framed": "K_prob (framed)", "k_probe": "K_probe",
          "k_probe_control": "probe control"}


def hidden_knowledge_bars(table: pd.DataFrame, *, title: str = "") -> go.Figure:
    """One panel per set (``refused``, ``abstained``, ``answered``), one bar group per measure
    (K_gen, K_prob, framed K_prob, K_probe, the shuffled-label probe control), base and aligned side
    by side with 95% whiskers; a dotted line at chance (0.5) for the ranking measures.

    ``table``: :meth:`interp.knowledge.HiddenKnowledge.to_frame`."""
    sets = list(dict.fromkeys(table.set))
    fig = make_subplots(rows=1, cols=max(1, len(sets)), shared_yaxes=True, subplot_titles=sets)
    for c, s in enumerate(sets, start=1):
        for side in ("base", "aligned"):
            part = table[(table.set == s) & (table.side == side) & table.measure.isin(list(_SHOWN))]
            part = part.set_index("measure").reindex([m for m in _SHOWN if m in set(part.measure)]).reset_index()
            fig.add_trace(go.Bar(
                x=[_SHOWN[m] for m in part.measure], y=part.value, name=side, legendgroup=side, showlegend=c == 1,
                marker=dict(color=COLORS[side]), customdata=part.n,
                error_y=dict(type="data", symmetric=False, array=(part.ci_high - part.value).fillna(0),
                             arrayminus=(part.value - part.ci_low).fillna(0), thickness=1, width=2),
                hovertemplate="%{x}: %{y:.3f} (n=%{customdata})<extra>" + side + "</extra>"), row=1, col=c)
        fig.add_hline(y=0.5, line_dash="dot", line_color="#999999", row=1, col=c)
    fig.update_layout(**LAYOUT, barmode="group", title=title or "expressed (K_gen) vs internal (K_prob, K_probe) knowledge")
    fig.update_yaxes(range=[0, 1.05], title_text="share (95% CI over entities)", row=1, col=1)
    return fig
