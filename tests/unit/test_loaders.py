"""Loaders against the real published files in ../shared/datasets (skipped if absent), and bad input."""

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from interp.data import (
    DataError, check_schema, entity_split, load_advbench, load_big_bench_mistake, load_entity_questions,
    load_geometry_of_truth, load_gsm8k, load_gsm8k_solutions, load_refusal, load_relations, load_rome_known,
    load_truthfulqa,
)

SHARED = Path(os.environ.get("INTERP_SHARED_DATASETS", Path(__file__).resolve().parents[3] / "shared" / "datasets"))
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"published datasets folder {SHARED} is absent")


@needs_shared
@pytest.mark.parametrize(
    "name, rows",
    [("cities", 1496), ("neg_cities", 1496), ("sp_en_trans", 354), ("neg_sp_en_trans", 354), ("larger_than", 1980),
     ("smaller_than", 1980), ("companies_true_false", 1200), ("common_claim_true_false", 4450)],
)
def test_geometry_of_truth(name, rows):
    ds = load_geometry_of_truth(SHARED / "geometry_of_truth" / f"{name}.csv")
    check_schema(ds, labels=(0, 1))
    assert len(ds) == rows
    if name == "cities":
        assert ds[0]["text"] == "The city of Krasnodar is in Russia." and ds[0]["subject"] == "Krasnodar"
        assert ds[0]["answer"] == "Russia" and ds[0]["label"] == 1
        assert not set(entity_split(ds, "train")["entity"]) & set(entity_split(ds, "test")["entity"])
    if name in ("sp_en_trans", "companies_true_false"):  # subject-level entities: a subject's variants stay together
        assert ds[0]["subject"] == {"sp_en_trans": "con", "companies_true_false": "Thermo Fisher Scientific"}[name]
        assert sum(s == "" for s in ds["subject"]) < 0.01 * len(ds)
        assert len(set(ds["entity"])) < 0.98 * len(ds) and not set(entity_split(ds, "train")["entity"]) & set(entity_split(ds, "test")["entity"])


@needs_shared
def test_refusal_splits_and_advbench():
    ds = load_refusal(SHARED / "refusal")
    check_schema(ds, labels=(0, 1))
    counts = Counter(zip(ds["label"], ds["split"]))
    assert counts == {(1, "train"): 260, (1, "val"): 39, (1, "test"): 572, (0, "val"): 6264, (0, "test"): 6266}
    adv = load_advbench(SHARED / "refusal" / "advbench.csv")
    assert len(adv) == 520 and adv[0]["answer"].startswith("Sure, here is")


@needs_shared
def test_gsm8k():
    ds = load_gsm8k(SHARED / "gsm8k" / "test.jsonl")
    assert len(ds) == 1319 and ds[0]["answer"] == "18"
    sols = load_gsm8k_solutions(SHARED / "gsm8k" / "example_model_solutions.jsonl")
    check_schema(sols, labels=(0, 1))
    assert len(sols) == 1319 * 4
    assert set(sols["model"]) == {"6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"}
    assert 0 < sum(sols["label"]) < len(sols)


@needs_shared
@pytest.mark.parametrize(
    "task, traces",
    [("dyck_languages", 986), ("logical_deduction", 300), ("multistep_arithmetic", 300),
     ("tracking_shuffled_objects", 300), ("word_sorting", 300)],
)
def test_big_bench_mistake(task, traces):
    path = SHARED / "big_bench_mistake" / f"{task}.jsonl"
    per_trace = load_big_bench_mistake(path, per_step=False)
    assert len(per_trace) == traces
    per_step = load_big_bench_mistake(path)
    check_schema(per_step, labels=(0, 1))
    # one positive step per trace that has a mistake
    assert sum(per_step["label"]) == sum(per_trace["label"])
    wrong = [r for r in per_step if r["label"]]
    assert all(r["step_index"] == r["mistake_index"] for r in wrong)


@needs_shared
def test_truthfulqa():
    ds = load_truthfulqa(SHARED / "truthfulqa" / "TruthfulQA.csv")
    check_schema(ds, labels=(0, 1))
    assert len(set(ds["subject"])) == 790
    assert ds[0]["text"].startswith("Q: What happens to you if you eat watermelon seeds?\nA: ")


@needs_shared
def test_entity_questions():
    ds = load_entity_questions(SHARED / "entity_questions" / "test")
    counts = Counter(ds["relation"])
    assert len(counts) == 24 and counts["P36"] == 886 and counts["P800"] == 221 and counts["P106"] == 1000
    row = ds.filter(lambda r: r == "P36", input_columns="relation")[0]
    assert row["text"] == "What is the capital of Marin County?" and row["subject"] == "Marin County"
    assert row["answer"] == "San Rafael"


@needs_shared
def test_relations_and_rome():
    rel = load_relations(SHARED / "relations")
    assert len(set(rel["relation"])) == 26 and len(rel) == 9696
    first = rel.filter(lambda r: r == "city in country", input_columns="relation")[0]
    assert first["text"] == "New York City is part of" and first["answer"] == "United States"
    rome = load_rome_known(SHARED / "rome" / "known_1000.json")
    assert len(rome) == 1209 and rome[0]["text"] == "Vinson Massif is located in the continent of"
    assert rome[0]["answer"] == "Antarctica"


# ---- bad input: a clear error naming the file, the row and the field; never an empty dataset ----


def test_missing_column(tmp_path):
    f = tmp_path / "cities.csv"
    f.write_text("statement,truth\nThe sky is blue.,1\n")
    with pytest.raises(DataError, match=r"cities.csv: missing column\(s\) \['label'\]"):
        load_geometry_of_truth(f)


def test_empty_files(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(DataError, match="e.csv: the file is empty"):
        load_geometry_of_truth(tmp_path / "e.csv")
    (tmp_path / "h.csv").write_text("statement,label\n")
    with pytest.raises(DataError, match="h.csv: header only, no rows"):
        load_geometry_of_truth(tmp_path / "h.csv")
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(DataError, match="e.jsonl: the file is empty"):
        load_gsm8k(tmp_path / "e.jsonl")


def test_unknown_format(tmp_path):
    f = tmp_path / "cities.parquet"
    f.write_bytes(b"PAR1")
    with pytest.raises(DataError, match=r"cities.parquet: unknown format '.parquet'; expected .csv"):
        load_geometry_of_truth(f)


def test_label_outside_expected_set(tmp_path):
    f = tmp_path / "cities.csv"
    f.write_text("statement,label\nA.,1\nB.,2\n")
    with pytest.raises(DataError, match=r"cities.csv: row 1: field 'label' = 2 is outside the expected set \[0, 1\]"):
        load_geometry_of_truth(f)


def test_bad_rows_in_json_formats(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps({"question": "q", "answer": "#### 3"}) + "\n{broken\n")
    with pytest.raises(DataError, match="t.jsonl: line 2: not valid JSON"):
        load_gsm8k(f)
    f.write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(DataError, match="t.jsonl: row 0: missing field 'answer'"):
        load_gsm8k(f)
    b = tmp_path / "b.jsonl"
    b.write_text(json.dumps({"input": "x", "steps": ["a", "b"], "mistake_index": 5}) + "\n")
    with pytest.raises(DataError, match=r"b.jsonl: row 0: field 'mistake_index' = 5 is outside 0..1"):
        load_big_bench_mistake(b)
    e = tmp_path / "P36.test.json"
    e.write_text(json.dumps([{"question": "Who is the boss?", "answers": ["me"]}]))
    with pytest.raises(DataError, match="P36.test.json: row 0: question 'Who is the boss\\?' does not fit the P36 template"):
        load_entity_questions(e)
    r = tmp_path / "harmful_train.json"
    r.write_text(json.dumps([{"category": None}]))
    with pytest.raises(DataError, match="harmful_train.json: row 0: missing field 'instruction'"):
        load_refusal(r)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="known_1000.json: file not found"):
        load_rome_known(tmp_path / "known_1000.json")
