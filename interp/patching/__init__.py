"""Patching and interventions: batched (cross-model) activation patching, directions, steering."""

from interp.patching.core import Metric, clean_resid_pre, final_logits, resid_pre_sweep
from interp.patching.directions import (
    ablated, added, kl_last_token, last_logits, mean_diff_directions, orthogonalize_weights,
)
from interp.patching.metrics import answer_prob, logit_diff, refusal_score
from interp.patching.refusal import RefusalResult, refusal_direction
from interp.patching.sweep import PatchResult, cross_model_sweep

__all__ = ["Metric", "PatchResult", "RefusalResult", "ablated", "added", "kl_last_token", "last_logits",
           "mean_diff_directions", "orthogonalize_weights", "refusal_direction", "answer_prob", "clean_resid_pre", "cross_model_sweep", "final_logits",
           "logit_diff", "refusal_score", "resid_pre_sweep"]
