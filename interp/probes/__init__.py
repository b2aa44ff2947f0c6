"""Linear probes: batched per-layer fits, choices made on validation rows, metrics with controls
and entity-clustered intervals, cross-model transfer, save/load."""

from interp.probes.evaluate import (
    C_GRID, COLUMNS, ProbeSet, control_labels, evaluate_probes, fit_probes, metric_rows, random_direction_scores,
)
from interp.probes.fit import CCSProbe, ccs_scores, fit_ccs, fit_logistic, fit_mass_mean, fit_multiclass
from interp.probes.io import check_compatible, load_probes, save_probes
from interp.probes.metrics import accuracy, auroc, balanced_accuracy, bootstrap_ci
from interp.probes.pipeline import ProbeResult, probe_store, stack_layers
from interp.probes.select import seen_entity_rows, selected_layers, validation_rows
from interp.probes.transfer import direction_cosines, transfer

__all__ = [
    "C_GRID", "COLUMNS", "CCSProbe", "ProbeSet", "accuracy", "auroc", "balanced_accuracy", "bootstrap_ci", "ccs_scores",
    "check_compatible", "control_labels", "direction_cosines", "evaluate_probes", "fit_ccs", "fit_logistic", "fit_mass_mean",
    "fit_multiclass", "fit_probes", "load_probes", "metric_rows", "ProbeResult", "probe_store", "random_direction_scores",
    "save_probes", "seen_entity_rows", "selected_layers", "stack_layers", "transfer", "validation_rows",
]
