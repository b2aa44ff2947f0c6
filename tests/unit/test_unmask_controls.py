"""The unmasking evidence's controls, pre-registration and held-out phrasings, on tiny models and
hand-made tables: what each guarantees, and the errors for input they cannot use."""

import pandas as pd
import pytest
import torch

from interp.unmask import LowRankEdit, Steering, UnmaskFit
from interp.unmask.controls import Quantized, never_knew_facts, random_like, shuffled_answers, unrelated_facts
from interp.unmask.phrasings import HELDOUT_TEMPLATES, rephrase
from interp.unmask.prereg import pick_headline


def test_shuffled_answers_move_every_answer_and_keep_the_multiset():
    answers = ["Au", "Ag", "Fe", "Fe", "Cu", "Zn", "Fe"]
    for seed in range(5):
        out = shuffled_answers(answers, seed=seed)
        assert sorted(out) == sorted(answers) and all(a != b for a, b in zip(out, answers))
    with pytest.raises(ValueError, match="at least two different answers"):
        shuffled_answers(["Au", "Au"])


def test_random_control_has_the_edits_shape_norms_layer_and_positions():
    torch.manual_seed(0)
    edit = LowRankEdit(U=torch.randn(16, 4), V=torch.randn(16, 4) * 3, b=torch.randn(4), layer=6, positions="prompt")
    rnd = random_like(edit, seed=1)
    for name in ("U", "V", "b"):
        a, b = getattr(edit, name), getattr(rnd, name)
        assert a.shape == b.shape and float(b.norm()) == pytest.approx(float(a.norm()), rel=1e-5)
        assert abs(float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))) < 0.9
    assert (rnd.layer, rnd.positions, rnd.rank) == (6, "prompt", 4)
    steer = random_like(Steering(vector=torch.ones(16), layer=3), seed=0)
    assert float(steer.vector.norm()) == pytest.approx(4.0, rel=1e-5) and steer.layer == 3


def _facts(relations, n, prefix):
    return pd.DataFrame({"id": [f"{prefix}{i}" for i in range(n)], "relation": [relations[i % len(relations)] for i in range(n)],
                         "answer": [f"a{i}" for i in range(n)]})


def test_never_knew_facts_follow_the_mask_facts_relation_mix():
    pool = _facts(["element_symbol", "element_number"], 40, "p")
    like = _facts(["element_symbol"], 6, "l")
    got = never_knew_facts(pool, like, 6, seed=0)
    assert len(got) == 6 and set(got.relation) == {"element_symbol"} and got.id.is_unique
    with pytest.raises(ValueError, match="needs 50 train facts the base does not know"):
        never_knew_facts(pool, like, 50)


def test_unrelated_facts_exclude_the_masks_relations():
    answered = _facts(["country_capital", "element_symbol"], 30, "q")
    got = unrelated_facts(answered, ["element_symbol"], 10, seed=0)
    assert len(got) == 10 and set(got.relation) == {"country_capital"}
    with pytest.raises(ValueError, match="outside relations"):
        unrelated_facts(answered, ["element_symbol", "country_capital"], 10)


def test_the_preregistration_rule_prefers_accuracy_within_kl_then_smaller_drop_then_rank():
    rows = [{"method": "lowrank", "val_strict": 0.95, "kl": 0.5, "val_answered_drop": 0.0, "rank": 4},   # over the KL bound
            {"method": "steering", "val_strict": 0.80, "kl": 0.05, "val_answered_drop": 0.10, "rank": 1},
            {"method": "subspace", "val_strict": 0.80, "kl": 0.10, "val_answered_drop": 0.0, "rank": 4},
            {"method": "direction", "val_strict": 0.80, "kl": 0.01, "val_answered_drop": 0.0, "rank": 1}]
    assert pick_headline(rows, kl_max=0.2)["method"] == "direction"  # same accuracy and drop: smaller rank
    assert pick_headline(rows[:3], kl_max=0.2)["method"] == "subspace"  # same accuracy: the smaller drop
    assert pick_headline(rows, kl_max=1.0)["method"] == "lowrank"
    assert pick_headline(rows[:1], kl_max=0.2)["method"] == "lowrank"  # none within the bound: all compete
    with pytest.raises(ValueError, match="at least one candidate"):
        pick_headline([])


def test_heldout_phrasings_rewrite_the_question_and_reverse_one_to_one_relations():
    t = pd.DataFrame({"id": ["a", "b", "c"], "relation": ["element_symbol", "country_continent", "sport"],
                      "subject": ["Gold", "Peru", "x"], "answer": ["Au", "South America", "y"],
                      "aliases": [["Au"], ["South America"], ["y"]],
                      "text": ["What is the chemical symbol for Gold?", "On which continent is Peru?", "?"]})
    para = rephrase(t, "paraphrase")
    assert para.id.tolist() == ["a@paraphrase", "b@paraphrase"]  # a relation without held-out templates is dropped
    assert para.fact_id.tolist() == ["a", "b"] and not para.reversed.any()
    assert para.text.iloc[0] == HELDOUT_TEMPLATES["element_symbol"]["paraphrase"][0].format(s="Gold", o="Au")
    rev = rephrase(t, "second").set_index("fact_id")
    assert rev.loc["a", "text"] == "Which chemical element has the symbol Au?" and rev.loc["a", "aliases"] == ["Gold"]
    assert rev.loc["a", "reversed"] and not rev.loc["b", "reversed"] and rev.loc["b", "answer"] == "South America"
    assert all(q not in set(t.text) for q in rephrase(t, "paraphrase").text)  # never a training template
    with pytest.raises(ValueError, match="phrasing must be one of"):
        rephrase(t, "third")
    with pytest.raises(ValueError, match="needs fact columns"):
        rephrase(t.drop(columns="subject"), "second")


def test_quantized_baseline_changes_weights_inside_and_restores_them_exactly(tiny_gemma_dir):
    pytest.importorskip("bitsandbytes")
    from interp import ModelSpec, load_model
    from interp.runtime import arch_of

    model = load_model(ModelSpec(str(tiny_gemma_dir)), device="cpu")
    w = next(m.weight for m in arch_of(model).layers[0].modules() if isinstance(m, torch.nn.Linear)).detach()
    before = w.detach().clone()
    for bits, tol in ((8, 0.02), (4, 0.2)):
        with Quantized(bits=bits).applied(model):
            err = float((w - before).norm() / before.norm())
            assert 0 < err < tol  # quantized, and close to the original
        assert torch.equal(w, before)
    with pytest.raises(ValueError, match="bits must be 4 or 8"):
        Quantized(bits=2)


def test_a_fit_saves_and_loads_its_controls(tmp_path):
    d = 8
    edit = LowRankEdit(U=torch.randn(d, 2), V=torch.randn(d, 2), b=torch.randn(2), layer=1, positions="prompt")
    ctrl = {"never_knew": random_like(edit, seed=1), "random": random_like(edit, seed=2)}
    fit = UnmaskFit({"refused": 1}, {"refused": torch.randn(2, d)}, {"refused": ["refusal", "pc1"]},
                    {"refused": {"lowrank": edit}}, pd.DataFrame([{"mask": "refused"}]),
                    {"preregistered": {"refused": {"kind": "lowrank", "method": "lowrank"}}}, {"refused": ctrl})
    fit.save(tmp_path)
    back = UnmaskFit.load(tmp_path)
    assert set(back.controls["refused"]) == {"never_knew", "random"}
    assert torch.equal(back.controls["refused"]["random"].V, ctrl["random"].V)
    assert back.controls["refused"]["never_knew"].positions == "prompt"
    assert back.info["preregistered"]["refused"]["kind"] == "lowrank"
