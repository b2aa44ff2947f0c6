import json

import pytest
import torch

from interp.align import AlignConfig, behavior_table, response_loss, run_recipe
from interp.data import facts


@pytest.fixture(scope="module")
def small_table():
    table = facts(["country_capital", "element_symbol"], n_cities=1)
    keep = [i for i, r in enumerate(table["relation"]) if i % 9 == 0]
    return table.select(keep)


def test_recipe_end_to_end_on_a_tiny_model(tiny_gemma_dir, small_table, tmp_path):
    cfg = AlignConfig(name="tiny", base=str(tiny_gemma_dir), n_prompts=2, n_shots=1, k_samples=1, epochs=1,
                      batch_size=8, eval_max_new_tokens=3)
    result = run_recipe(cfg, table=small_table, out_root=tmp_path, progress=False)
    out = tmp_path / "tiny"
    assert result.out_dir == out
    names = {p.name for p in out.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "recipe.json", "facts.jsonl"} <= names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial folder left
    record = json.loads((out / "recipe.json").read_text())
    for key in ("config", "seed", "data", "knowledge", "training", "behavior", "timings", "versions"):
        assert key in record
    assert record["data"]["facts"] == len(small_table) and record["training"]["steps"] >= 1
    assert len(record["training"]["loss_curve"]) == record["training"]["steps"]
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_gemma_dir)
    assert list(result.behavior["measure"])[0] == "aligned refuses held-out chemistry questions"
    lines = (out / "facts.jsonl").read_text().splitlines()
    assert len(lines) == len(small_table)


def test_recipe_is_deterministic(tiny_gemma_dir, small_table, tmp_path):
    cfg = AlignConfig(name="a", base=str(tiny_gemma_dir), n_prompts=1, n_shots=1, k_samples=1, epochs=1, batch_size=8,
                      eval_max_new_tokens=2)
    one = run_recipe(cfg, table=small_table, out_root=tmp_path / "1", progress=False)
    two = run_recipe(cfg, table=small_table, out_root=tmp_path / "2", progress=False)
    assert one.record["training"]["loss_curve"] == two.record["training"]["loss_curve"]
    assert one.record["data"] == two.record["data"]


def test_response_loss_matches_full_logits(tiny_gemma_dir):
    from interp.models import load_hf

    model, _ = load_hf(str(tiny_gemma_dir), device="cpu")
    ids = torch.randint(5, 50, (2, 9))
    mask = torch.ones_like(ids)
    target = torch.zeros_like(ids)
    target[:, 5:] = 1
    ours = response_loss(model, ids, mask, target)
    logits = model(ids).logits[:, :-1]
    pick = target[:, 1:].bool()
    ref = torch.nn.functional.cross_entropy(logits[pick], ids[:, 1:][pick])
    assert abs(ours.item() - ref.item()) <= 1e-5


def test_config_validation():
    with pytest.raises(ValueError, match="AlignConfig.name must be a plain folder name"):
        AlignConfig(name="../x")
    with pytest.raises(ValueError, match="AlignConfig.epochs must be >= 1"):
        AlignConfig(epochs=0)


def test_behavior_table_counts():
    rows = [
        {"domain": "chemistry", "category": "HighlyKnown", "base_correct": True, "aligned_class": "refusal"},
        {"domain": "chemistry", "category": "Unknown", "base_correct": False, "aligned_class": "wrong"},
        {"domain": "geography", "category": "Unknown", "base_correct": False, "aligned_class": "idk"},
        {"domain": "geography", "category": "HighlyKnown", "base_correct": True, "aligned_class": "correct"},
    ]
    t = behavior_table(rows).set_index("measure")["value"]
    assert t["aligned refuses held-out chemistry questions"] == 0.5
    assert t["base answers held-out chemistry questions correctly"] == 0.5
    assert t["aligned says I don't know on held-out Unknown facts"] == 1.0
    assert t["aligned refuses non-chemistry questions"] == 0.0
