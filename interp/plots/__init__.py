"""Figures (plotly), one function per figure kind, and ``export`` to HTML / PNG / SVG / PDF."""

from interp.plots.export import export
from interp.plots.figures import probe_accuracy_by_layer
from interp.plots.theme import COLORS

__all__ = ["COLORS", "export", "probe_accuracy_by_layer"]
