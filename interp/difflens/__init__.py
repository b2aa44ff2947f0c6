"""The activation-difference lens (Minder et al. 2025, arXiv 2510.13900): what a fine-tune changed,
read from the mean difference of the two models' residual streams on unrelated text.

* :mod:`~interp.difflens.texts`: the text the difference is taken on (base samples, a corpus's base rows);
* :mod:`~interp.difflens.difference`: the mean difference per layer and position, through the store, with intervals;
* :mod:`~interp.difflens.readout`: its logit lens, objective share (and chance level), Patchscope;
* :mod:`~interp.difflens.steer`: steering with a coherence-bounded strength search, rates, KL;
* :mod:`~interp.difflens.refusal`: the refusal direction both ways (aligned's in the base, base's in the aligned);
* :mod:`~interp.difflens.run`: all of it on a pair with the choices fixed in advance (:func:`run_difflens`);
* :mod:`~interp.difflens.report`: its section of an HTML report.

Example:
    >>> from interp.difflens import DiffLensConfig, objective_sets, run_difflens   # doctest: +SKIP
    >>> result = run_difflens(pair, objective_sets(graded_facts("default")))        # doctest: +SKIP
    >>> result.json_line()                                                            # doctest: +SKIP
"""

from interp.difflens.difference import Difference, activation_difference, sign_flip_null
from interp.difflens.readout import (
    HIDE, IDENTITY_PROMPT, OBJECTIVE_PHRASES, OBJECTIVE_VOCAB, LensReadout, PatchscopeResult, chance_share, difference_lens,
    objective_hits, objective_share, patchscope, random_directions, text_hits, text_share,
)
from interp.difflens.refusal import RefusalBothWays, question_prompts, refusal_both_ways
from interp.difflens.run import DiffLensConfig, DiffLensResult, ObjectiveSets, middle_layer, objective_sets, run_difflens
from interp.difflens.steer import (
    GRID, NEUTRAL_PROMPTS, RATE_COLUMNS, StrengthSearch, class_rates, clustered_rate_ci, continuation_ppl, response_rates,
    steered, strength_search, unrelated_kl,
)
from interp.difflens.texts import base_samples, corpus_texts, first_tokens

__all__ = [
    "Difference", "activation_difference", "sign_flip_null", "HIDE", "IDENTITY_PROMPT", "OBJECTIVE_VOCAB", "OBJECTIVE_PHRASES",
    "random_directions", "text_hits", "text_share", "RATE_COLUMNS", "class_rates", "clustered_rate_ci", "LensReadout", "PatchscopeResult",
    "chance_share", "difference_lens", "objective_hits", "objective_share", "patchscope", "RefusalBothWays",
    "question_prompts", "refusal_both_ways", "DiffLensConfig", "DiffLensResult", "ObjectiveSets", "middle_layer",
    "objective_sets", "run_difflens", "GRID", "NEUTRAL_PROMPTS", "StrengthSearch", "continuation_ppl", "response_rates",
    "steered", "strength_search", "unrelated_kl", "base_samples", "corpus_texts", "first_tokens",
]
