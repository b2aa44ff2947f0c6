"""Datasets: generators (facts, statements, arithmetic) and loaders for published formats.

Every dataset is a ``datasets.Dataset`` with the columns of :mod:`interp.data.schema`
(id, text, label, subject, answer, entity, source, split, popularity, + extras).
"""

from interp.data.arithmetic import arithmetic_statements, multistep_solutions
from interp.data.facts import RELATIONS, Relation, facts
from interp.data.loaders import (
    load_advbench,
    load_big_bench_mistake,
    load_entity_questions,
    load_geometry_of_truth,
    load_gsm8k,
    load_gsm8k_solutions,
    load_refusal,
    load_relations,
    load_rome_known,
    load_truthfulqa,
)
from interp.data.schema import CORE_COLUMNS, DataError, check_schema, entity_split, fingerprint
from interp.data.statements import (
    city_statements,
    comparison_statements,
    fact_statements,
    question_set,
    refusal_prompts,
)

__all__ = [
    "CORE_COLUMNS", "DataError", "RELATIONS", "Relation", "arithmetic_statements", "check_schema",
    "city_statements", "comparison_statements", "entity_split", "fact_statements", "facts", "fingerprint",
    "load_advbench", "load_big_bench_mistake", "load_entity_questions", "load_geometry_of_truth", "load_gsm8k",
    "load_gsm8k_solutions", "load_refusal", "load_relations", "load_rome_known", "load_truthfulqa",
    "multistep_solutions", "question_set", "refusal_prompts",
]
