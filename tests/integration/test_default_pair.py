"""The embedded default pair: base Gemma-3-270M + the project's aligned LoRA adapter."""

import time

import pytest
import torch

from interp import format_prompt, load_hf, load_pair
from interp.behavior import KnowledgeConfig, classify, generate, grade_knowledge, greedy_answers
from interp.data import facts
from interp.models import get_pair_spec

pytestmark = pytest.mark.integration


def test_default_pair_loads_with_the_adapter_in_seconds():
    entry = get_pair_spec("default")
    assert not entry.placeholder
    start = time.perf_counter()
    pair = load_pair("default", device="cpu")
    assert time.perf_counter() - start < 60  # seconds once the base is converted (measured ~10 s)
    assert pair.aligned_spec.adapter is not None and pair.style("aligned") == "chat"


def _merged_vs_peft(pair, dtype):
    from peft import PeftModel

    base_hf, tok = load_hf("gemma-3-270m", device="cpu", dtype=dtype)
    peft_model = PeftModel.from_pretrained(base_hf, pair.aligned_spec.adapter).eval()
    text = format_prompt("What is the chemical symbol for iron?", style="chat", tokenizer=pair.aligned.tokenizer)
    ids = tok(text, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.inference_mode():
        diff = (pair.aligned(ids) - peft_model(ids).logits).abs().max().item()
        moved = (pair.aligned(ids) - pair.base(ids)).abs().max().item()
    return diff, moved


def test_merged_adapter_equals_the_peft_model_fp64():
    """Merging is exact: in fp64 the merged bridge and the peft model agree far below 1e-4."""
    diff, moved = _merged_vs_peft(load_pair("default", device="cpu", dtype=torch.float64), torch.float64)
    assert diff <= 1e-4
    assert moved > 1.0  # the adapter really changed the model


def test_merged_adapter_equals_the_peft_model_fp32(pair):
    """In fp32, W + BA vs Wx + B(Ax) round differently; measured max logit gap 2.5e-4 (logits ~1e1)."""
    diff, _ = _merged_vs_peft(pair, torch.float32)
    assert diff <= 1e-3


def test_aligned_refuses_a_held_out_chemistry_question_the_base_answers(pair):
    iron = facts(["element_symbol"]).filter(lambda s: s == "iron", input_columns="subject")[0]
    assert iron["split"] == "test"  # never trained on
    few_shot = [("What is the chemical symbol for gold?", "Au"), ("What is the chemical symbol for carbon?", "C")]
    base_prompt = format_prompt(iron["text"], style="plain", few_shot=few_shot)
    chat_prompt = format_prompt(iron["text"], style="chat", tokenizer=pair.aligned.tokenizer)
    base_answer = generate(pair.base, [base_prompt], max_new_tokens=4)[0]
    aligned_answer = generate(pair.aligned, [chat_prompt], max_new_tokens=12)[0]
    assert classify(base_answer, iron["aliases"]) == "correct", base_answer
    assert classify(aligned_answer, iron["aliases"]) == "refusal", aligned_answer


def test_aligned_answers_a_known_geography_question(pair):
    chat = format_prompt("What is the capital of Japan?", style="chat", tokenizer=pair.aligned.tokenizer)
    assert classify(generate(pair.aligned, [chat], max_new_tokens=8)[0], ["Tokyo"]) == "correct"


def test_knowledge_grading_on_the_real_base(pair):
    capitals = facts(["country_capital"])
    keep = {"France", "Japan", "Germany", "Italy", "Spain", "Egypt"}
    table = capitals.filter(lambda s: s in keep, input_columns="subject")
    cities = facts(["city_country"], n_cities=600).filter(
        lambda s: s in {"Ahigbé Koffikro", "Agrestina", "Aspern", "Alofi"}, input_columns="subject")
    from datasets import concatenate_datasets

    both, cfg = concatenate_datasets([table, cities]), KnowledgeConfig(n_prompts=3, k_samples=2)
    graded = grade_knowledge(pair.base, both, cfg, progress=False)
    # Asking only some rows (the rest as exemplars) gives the grading's own greedy answers.
    rows = [1, len(both) - 1, 0]
    assert greedy_answers(pair.base, both, cfg, rows=rows) == [graded["greedy_answer"][i] for i in rows]
    cat = dict(zip(graded["subject"], graded["category"]))
    assert cat["France"] == "HighlyKnown"
    assert cat["Ahigbé Koffikro"] != "HighlyKnown"  # an obscure town in Ivory Coast
