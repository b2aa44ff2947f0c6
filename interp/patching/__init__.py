"""Patching and interventions: batched (cross-model) activation patching, directions, ablation and
addition hooks. The refusal-direction and steering experiments built on them are workflows
(:mod:`interp.workflows`)."""

from interp.patching.attribution import attribution_sweep, compare_attribution
from interp.patching.core import Metric, clean_resid_pre, final_logits, logits_at, metric_of, resid_pre_sweep
from interp.patching.hooked import SWEEP_KINDS, clean_activations, head_sweep, hook_sweep
from interp.patching.directions import (
    ablated, added, kl_last_token, last_logits, mean_diff_directions, orthogonalize_weights_inplace,
)
from interp.patching.metrics import TokenMetric, answer_prob, answer_vs_token, logit_diff, refusal_score
from interp.patching.sweep import PatchResult, cross_model_attribution, cross_model_sweep

__all__ = ["Metric", "TokenMetric", "PatchResult", "SWEEP_KINDS", "attribution_sweep", "clean_activations", "compare_attribution",
           "cross_model_attribution", "head_sweep", "hook_sweep", "logits_at", "ablated", "added", "kl_last_token", "last_logits",
           "mean_diff_directions", "orthogonalize_weights_inplace", "answer_prob", "answer_vs_token", "clean_resid_pre", "cross_model_sweep", "final_logits", "metric_of",
           "logit_diff", "refusal_score", "resid_pre_sweep"]
