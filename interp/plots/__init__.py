"""Figures (plotly), one function per figure kind, and ``export`` to HTML / PNG / SVG / PDF."""

from interp.plots.export import export
from interp.plots.figures import (
    dose_response,
    kl_by_position,
    knowledge_by_popularity,
    causal_closure_bars,
    latent_class_histogram,
    measure_bars,
    logit_lens_curves,
    patching_heatmap,
    popularity_curves,
    probe_accuracy_by_layer,
    similarity_by_layer,
    token_shift_histogram,
    weight_delta_spectra,
)
from interp.plots.theme import COLORS

__all__ = ["COLORS", "causal_closure_bars", "dose_response", "export", "kl_by_position", "knowledge_by_popularity", "latent_class_histogram", "logit_lens_curves",
           "measure_bars", "patching_heatmap", "popularity_curves", "probe_accuracy_by_layer", "similarity_by_layer", "token_shift_histogram",
           "weight_delta_spectra"]
