import math

import pytest

from interp.data import (
    CORE_COLUMNS, DataError, arithmetic_statements, check_schema, city_statements, comparison_statements,
    entity_split, fact_statements, facts, fingerprint, multistep_solutions, question_set, refusal_prompts,
)
from interp.data.schema import make_dataset


@pytest.fixture(scope="module")
def table():
    return facts(n_cities=200)


def _disjoint(ds):
    train = set(entity_split(ds, "train")["entity"])
    test = set(entity_split(ds, "test")["entity"])
    return train and test and not (train & test)


def test_fact_table(table):
    check_schema(table)
    rels = set(table["relation"])
    assert rels == {"country_capital", "country_continent", "country_currency", "city_country", "element_symbol", "element_number"}
    gold = table.filter(lambda r: r["subject"] == "gold" and r["relation"] == "element_symbol")[0]
    assert gold["answer"] == "Au" and gold["text"] == "What is the chemical symbol for gold?"
    assert gold["statement"] == "The chemical symbol for gold is" and gold["domain"] == "chemistry"
    france = table.filter(lambda r: r["subject"] == "France" and r["relation"] == "country_capital")[0]
    assert france["answer"] == "Paris" and france["popularity"] > 1e7
    assert len(table.filter(lambda r: r["relation"] == "city_country")) == 200
    assert _disjoint(table)
    assert len(set(table["id"])) == len(table)


def test_facts_are_deterministic(table):
    assert fingerprint(facts(n_cities=200)) == fingerprint(table)
    assert fingerprint(facts(n_cities=200, seed=1)) != fingerprint(table)


def test_city_popularity_spans_rare_and_common(table):
    pops = [p for p, r in zip(table["popularity"], table["relation"]) if r == "city_country"]
    assert min(pops) < 3e4 and max(pops) > 3e6  # stratified over log-population


def test_unknown_relation():
    with pytest.raises(ValueError, match=r"unknown relation\(s\) \['planet_moon'\]"):
        facts(["planet_moon"])


def test_city_statements_pairs_and_negation():
    pos = city_statements(50)
    neg = city_statements(50, negated=True)
    for ds in (pos, neg):
        check_schema(ds, labels=(0, 1))
        assert sum(ds["label"]) == len(ds) // 2 and _disjoint(ds)
    assert pos[0]["text"].startswith("The city of ") and " is in " in pos[0]["text"]
    assert " is not in " in neg[0]["text"]
    # The negation flips the label of the same (city, country).
    by_text = {r["text"].replace(" is not in ", " is in "): r["label"] for r in neg}
    assert all(by_text[r["text"]] == 1 - r["label"] for r in pos)


def test_fact_and_comparison_statements():
    chem = fact_statements()
    assert "The chemical symbol for gold is Au." in chem["text"]
    assert sum(chem["label"]) == len(chem) // 2
    cmp_ = comparison_statements(200)
    for r in cmp_:
        assert r["label"] == int(r["n1"] > r["n2"]) and r["text"] == f"{r['n1']} is larger than {r['n2']}."
    assert _disjoint(cmp_)
    with pytest.raises(ValueError, match="relation must be 'larger' or 'smaller'"):
        comparison_statements(relation="bigger")


def test_question_sets_and_refusal_prompts():
    chem = question_set("chemistry")
    assert set(chem["domain"]) == {"chemistry"} and len(chem) == 236
    refusal = refusal_prompts(n_cities=50)
    assert set(zip(refusal["domain"], refusal["label"])) == {("chemistry", 1), ("geography", 0)}
    with pytest.raises(ValueError, match="domain must be one of"):
        question_set("biology")


def test_arithmetic_statements():
    ds = arithmetic_statements(300, digits=(1, 2), error_rate=0.5)
    check_schema(ds, labels=(0, 1))
    for r in ds:
        true = {"+": r["a"] + r["b"], "-": r["a"] - r["b"], "*": r["a"] * r["b"]}[r["op"]]
        assert r["true_result"] == true and r["label"] == int(r["shown"] == true)
        assert r["text"] == f"{r['a']} {r['op']} {r['b']} = {r['shown']}"
        assert r["digits"] in (1, 2) and r["a"] < 10 ** r["digits"]
    assert 0.35 < sum(ds["label"]) / len(ds) < 0.65
    assert fingerprint(ds) == fingerprint(arithmetic_statements(300, digits=(1, 2), error_rate=0.5))
    with pytest.raises(ValueError, match="ops must be drawn from"):
        arithmetic_statements(5, ops="/")
    with pytest.raises(ValueError, match="cannot draw 500 distinct statements"):
        arithmetic_statements(500, digits=(1,), ops="+")


def test_multistep_has_exactly_one_wrong_step():
    ds = multistep_solutions(30, steps=4)
    check_schema(ds, labels=(0, 1))
    assert len(ds) == 30 * 2 * 4
    for problem in set(ds["problem"]):
        rows = ds.filter(lambda p: p == problem, input_columns="problem")
        corrupted = [r for r in rows if r["version"] == "corrupted"]
        correct = [r for r in rows if r["version"] == "correct"]
        assert sum(r["label"] for r in corrupted) == 1 and sum(r["label"] for r in correct) == 0
        wrong = next(r for r in corrupted if r["label"])
        assert wrong["step_index"] == wrong["mistake_index"]
        assert not wrong["text"].endswith(f"= {wrong['answer']}.")  # the written result is not the true one
        assert correct[-1]["text"].endswith(f"= {correct[-1]['answer']}.")
    assert _disjoint(ds)


def test_make_dataset_rejects_bad_rows():
    with pytest.raises(DataError, match="no rows"):
        make_dataset([], source="x")
    with pytest.raises(DataError, match="row 1: field 'text' is missing or empty"):
        make_dataset([{"id": "a", "text": "t", "entity": "e"}, {"id": "b", "text": "", "entity": "e"}], source="x")
    with pytest.raises(DataError, match="duplicate id 'a'"):
        make_dataset([{"id": "a", "text": "t", "entity": "e"}] * 2, source="x")
    ds = make_dataset([{"id": "a", "text": "t", "entity": "e"}], source="x")
    assert list(ds.column_names) == list(CORE_COLUMNS) and math.isnan(ds[0]["popularity"])
    with pytest.raises(DataError, match="row 0: label -1 is outside"):
        check_schema(ds, labels=(0, 1))


def test_commutative_arithmetic_shares_one_entity():
    ds = arithmetic_statements(200, digits=(1,), seed=0).to_pandas()
    swapped = ds[ds.op.isin(["+", "*"]) & (ds.a != ds.b)]
    pairs = swapped.groupby(swapped.apply(lambda r: (min(r.a, r.b), r.op, max(r.a, r.b)), axis=1))
    both_orders = [g for _, g in pairs if g.a.nunique() == 2]
    assert both_orders  # 1-digit operands: some facts appear as "a op b" and "b op a"
    for g in both_orders:
        assert g.entity.nunique() == 1 and g.split.nunique() == 1
    minus = ds[ds.op == "-"]
    assert (minus.entity == minus.subject).all()  # subtraction is not commutative
