"""Unmasking: recover from the aligned model the knowledge it hides, and measure how much comes back.

The measure (:mod:`interp.unmask.measure`): on held-out facts the base answers and the aligned model
masks (refuses, or says "I don't know"), the share of the base-aligned accuracy gap an intervention
closes, with a bootstrap CI, next to guards (next-token KL, accuracy on facts the aligned model
already answers, abstention kept on facts the base does not know). The interventions
(:mod:`interp.unmask.interventions`) share one interface, ``with iv.applied(model): ...``; they are
selected and fitted on train facts only (:mod:`interp.unmask.fit`, :mod:`interp.unmask.learn`) and
run together by :func:`run_unmask`.

Example:
    >>> import interp
    >>> from interp.align import graded_facts
    >>> from interp.unmask import run_unmask, default_fit_dir
    >>> pair = interp.load_pair("default")                                         # doctest: +SKIP
    >>> result = run_unmask(pair, graded_facts("default"), fit=default_fit_dir())  # doctest: +SKIP
    >>> result.summary()["refused"]["best"]                                        # doctest: +SKIP
"""

from interp.unmask.fit import UnmaskFit, fit_unmask, principal_directions, train_sets
from interp.unmask.baselines import FewShot, Prefill, few_shot_exemplars, few_shot_formatter
from interp.unmask.interventions import Ablation, Intervention, LowRankEdit, NoIntervention, Steering, describe
from interp.unmask.localise import ActivationPatch, WeightRestore, patch_screen, weight_screen
from interp.unmask.learn import answer_nll, fit_edit
from interp.unmask.measure import MASKS, UnmaskSets, evaluate, gap_ci, unmask_sets
from interp.unmask.run import TARGETS, UnmaskResult, run_unmask
from interp.unmask.tables import default_fit_dir, facts_for

__all__ = ["Ablation", "ActivationPatch", "FewShot", "Intervention", "LowRankEdit", "MASKS", "NoIntervention", "Prefill",
           "Steering", "TARGETS", "UnmaskFit", "UnmaskResult", "UnmaskSets", "WeightRestore", "answer_nll", "default_fit_dir",
           "describe", "evaluate", "facts_for", "few_shot_exemplars", "few_shot_formatter", "fit_edit", "fit_unmask", "gap_ci", "principal_directions",
           "patch_screen", "run_unmask", "train_sets", "unmask_sets", "weight_screen"]
