"""Hidden knowledge without an intervention: internal vs expressed knowledge per fact, both models.

After Gekhman et al. 2025 ("Inside-Out: hidden factual knowledge in LLMs", arXiv 2503.15299): a
model's knowledge of a fact is the share of (correct, wrong) answer pairs it ranks correctly,
read three ways: does it *say* the answer (``k_gen``), does its own probability of the answer
rank it first (``k_prob``), does a probe on its hidden state at the answer rank it first
(``k_probe``). On the facts the aligned model refuses or abstains on, internal knowledge close to
the base's with ``k_gen`` at zero is "masked, not erased" fact by fact, without any edit.

The room sits after :mod:`interp.unmask`: it measures the unmasking sets (the same facts, so the
two kinds of evidence can be read side by side) and reuses its prompt baselines; it reaches the
models through :mod:`interp.runtime` only.

- :mod:`interp.knowledge.candidates`: wrong answers of the same relation from the fact table; the
  prompt formats (base few-shot, aligned chat, aligned with an answer frame);
- :mod:`interp.knowledge.score`: every candidate's log-probability (summed over its tokens; the
  per-token mean beside it) and the residual stream at its last token, the prompt run once per fact;
- :mod:`interp.knowledge.measure`: :func:`hidden_knowledge` -> :class:`HiddenKnowledge` (per
  fact, aggregated with entity-bootstrap intervals; the probe's choices made on train facts);
- :mod:`interp.knowledge.agreement`: AUROC of internal knowledge for "the unmasking edit recovers
  this fact";
- :mod:`interp.knowledge.report`: the report section. The CLI is ``interp hidden``.

Example:
    >>> import interp
    >>> from interp.unmask import facts_for, unmask_sets
    >>> from interp.knowledge import hidden_knowledge
    >>> pair = interp.load_pair("default")                                   # doctest: +SKIP
    >>> table = facts_for("default")                                         # doctest: +SKIP
    >>> sets = unmask_sets(pair, table, n=24).with_guard(24)                 # doctest: +SKIP
    >>> hk = hidden_knowledge(pair, sets, table)                             # doctest: +SKIP
    >>> hk.summary()["refused"]["aligned_k_probe"], hk.figure()              # doctest: +SKIP
"""

from interp.knowledge.agreement import read_unmask_facts, recovery_agreement
from interp.knowledge.candidates import FORMATS, FRAME, exemplar_answers, format_questions, wrong_answers
from interp.knowledge.measure import (
    CHANCE, MEASURES, RANKING, SETS, TARGETS, HiddenConfig, HiddenKnowledge, control_labels, hidden_knowledge, labelled_share,
    pairwise_share, probe_train_facts,
)
from interp.knowledge.score import CandidateScores, joined, score_candidates

__all__ = ["CHANCE", "CandidateScores", "FORMATS", "FRAME", "HiddenConfig", "HiddenKnowledge", "MEASURES", "RANKING", "SETS",
           "TARGETS", "control_labels", "exemplar_answers", "format_questions", "hidden_knowledge", "joined",
           "labelled_share", "pairwise_share", "probe_train_facts", "read_unmask_facts", "recovery_agreement",
           "score_candidates", "wrong_answers"]
