"""True/false statements and question sets built from the fact tables.

In the style of the geometry-of-truth datasets: "The city of Krasnodar is in Russia." (1) /
"The city of Krasnodar is in South Africa." (0), their negations ("... is not in ..."), numeric
comparisons ("86 is larger than 59."), and true/false statements for any relation ("The chemical
symbol for gold is Au." / "... is Ag."). Each true statement has one false partner with the same
subject, so splits by ``entity`` keep pairs together.

Example:
    >>> from interp.data.statements import city_statements
    >>> ds = city_statements(n=10)
    >>> ds[0]["text"], ds[0]["label"]                     # doctest: +SKIP
    ('The city of Oranjestad is in Aruba.', 1)
"""

import random
from collections.abc import Sequence

import datasets

from interp.data.facts import CHEMISTRY_RELATIONS, GEOGRAPHY_RELATIONS, RELATIONS, facts
from interp.data.schema import make_dataset, stable_id

__all__ = [
    "city_statements",
    "fact_statements",
    "comparison_statements",
    "question_set",
    "refusal_prompts",
]


def _pairs(table: datasets.Dataset, seed: int) -> list[tuple[dict, str]]:
    """(fact, a wrong object of the same relation) for every fact."""
    rng = random.Random(seed)
    by_rel: dict[str, list[str]] = {}
    for row in table:
        by_rel.setdefault(row["relation"], []).append(row["answer"])
    out = []
    for row in table:
        pool = sorted(set(by_rel[row["relation"]]) - set(row["aliases"]))
        if pool:
            out.append((row, rng.choice(pool)))
    return out


def city_statements(n: int | None = 500, *, negated: bool = False, seed: int = 0, test_fraction: float = 0.2) -> datasets.Dataset:
    """"The city of X is [not] in Y." with one true and one false country per city.

    Args:
        n: number of cities (each gives two rows); None for all sampled cities.
        negated: write "is not in" (the label is then 1 for the wrong country).
    """
    table = facts(["city_country"], n_cities=n or 1000, seed=seed, test_fraction=test_fraction)
    verb = "is not in" if negated else "is in"
    rows = []
    for fact, wrong in _pairs(table, seed):
        for country, correct in ((fact["answer"], True), (wrong, False)):
            rows.append({
                "id": stable_id("city", negated, fact["subject"], country),
                "text": f"The city of {fact['subject']} {verb} {country}.",
                "label": int(correct != negated),
                "subject": fact["subject"],
                "answer": fact["answer"],
                "entity": fact["subject"],
                "popularity": fact["popularity"],
                "object_shown": country,
                "negated": negated,
            })
    name = "neg_cities" if negated else "cities"
    return make_dataset(rows, source=f"interp.statements.{name}", splits=True, test_fraction=test_fraction, seed=seed)


def fact_statements(relations: Sequence[str] = CHEMISTRY_RELATIONS, *, seed: int = 0, test_fraction: float = 0.2) -> datasets.Dataset:
    """"<statement> <object>." true / with a wrong object of the same relation, for any relation."""
    table = facts(list(relations), seed=seed, test_fraction=test_fraction)
    rows = []
    for fact, wrong in _pairs(table, seed):
        for obj, correct in ((fact["answer"], 1), (wrong, 0)):
            rows.append({
                "id": stable_id("fact", fact["relation"], fact["subject"], obj),
                "text": f"{fact['statement']} {obj}.",
                "label": correct,
                "subject": fact["subject"],
                "answer": fact["answer"],
                "entity": fact["subject"],
                "popularity": fact["popularity"],
                "relation": fact["relation"],
                "domain": fact["domain"],
                "object_shown": obj,
            })
    return make_dataset(rows, source="interp.statements.facts", splits=True, test_fraction=test_fraction, seed=seed)


def comparison_statements(
    n: int = 1000, *, lo: int = 10, hi: int = 99, relation: str = "larger", seed: int = 0, test_fraction: float = 0.2
) -> datasets.Dataset:
    """"86 is larger than 59." (or "smaller than") over distinct pairs from [lo, hi]."""
    if relation not in ("larger", "smaller"):
        raise ValueError(f"relation must be 'larger' or 'smaller', got {relation!r}")
    if hi - lo < 1:
        raise ValueError(f"need hi > lo, got lo={lo}, hi={hi}")
    rng = random.Random(seed)
    all_pairs = [(a, b) for a in range(lo, hi + 1) for b in range(lo, hi + 1) if a != b]
    chosen = rng.sample(all_pairs, min(n, len(all_pairs)))
    rows = [
        {
            "id": stable_id("cmp", relation, a, b),
            "text": f"{a} is {relation} than {b}.",
            "label": int(a > b) if relation == "larger" else int(a < b),
            "subject": str(a),
            "entity": f"{min(a, b)}-{max(a, b)}",
            "n1": a,
            "n2": b,
        }
        for a, b in chosen
    ]
    return make_dataset(rows, source=f"interp.statements.{relation}_than", splits=True, test_fraction=test_fraction, seed=seed)


def question_set(domain: str = "chemistry", *, n_cities: int = 1000, seed: int = 0, test_fraction: float = 0.2) -> datasets.Dataset:
    """The questions of one domain (``"chemistry"``, ``"geography"`` or ``"all"``), with answers
    and aliases; the same splits as :func:`interp.data.facts.facts` (shared with the alignment recipe).
    Known / unknown labels come from grading a model (``interp.behavior``)."""
    choice = {"chemistry": CHEMISTRY_RELATIONS, "geography": GEOGRAPHY_RELATIONS, "all": tuple(RELATIONS)}
    if domain not in choice:
        raise ValueError(f"domain must be one of {list(choice)}, got {domain!r}")
    return facts(list(choice[domain]), n_cities=n_cities, seed=seed, test_fraction=test_fraction)


def refusal_prompts(*, n_cities: int = 300, seed: int = 0, test_fraction: float = 0.2) -> datasets.Dataset:
    """Questions the default aligned model is trained to refuse (chemistry, label 1) and to
    answer (geography, label 0): the benign stand-in for a harmful / harmless split."""
    table = facts(None, n_cities=n_cities, seed=seed, test_fraction=test_fraction)
    return table.map(lambda d: {"label": int(d == "chemistry")}, input_columns="domain")
