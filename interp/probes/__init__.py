"""Linear probes: batched per-layer fits, metrics with controls, cross-model transfer, save/load."""

from interp.probes.evaluate import (
    COLUMNS, ProbeSet, control_labels, evaluate_probes, fit_probes, metric_rows, random_direction_scores,
)
from interp.probes.fit import ccs_scores, fit_ccs, fit_logistic, fit_mass_mean, fit_multiclass
from interp.probes.io import check_compatible, load_probes, save_probes
from interp.probes.metrics import accuracy, auroc, bootstrap_ci
from interp.probes.pipeline import ProbeResult, probe_store, stack_layers
from interp.probes.transfer import direction_cosines, transfer

__all__ = [
    "COLUMNS", "ProbeSet", "accuracy", "auroc", "bootstrap_ci", "ccs_scores", "check_compatible", "control_labels",
    "direction_cosines", "evaluate_probes", "fit_ccs", "fit_logistic", "fit_mass_mean", "fit_multiclass", "fit_probes",
    "load_probes", "metric_rows", "ProbeResult", "probe_store", "random_direction_scores", "save_probes", "stack_layers", "transfer",
]
