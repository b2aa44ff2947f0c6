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


def _tiny_sets():
    from interp.unmask import UnmaskSets

    def facts(rel, subjects, answers, split, prefix, template):
        return pd.DataFrame({"id": [f"{prefix}{i}" for i in range(len(subjects))], "relation": rel, "subject": subjects,
                             "answer": answers, "aliases": [[a] for a in answers], "split": split,
                             "text": [template.format(s) for s in subjects], "base_correct": True})

    sym, cap = "What is the chemical symbol for {}?", "What is the capital of {}?"
    train = pd.concat([facts("element_symbol", ["Gold", "Silver", "Iron", "Copper"], ["Au", "Ag", "Fe", "Cu"], "train", "t", sym),
                       facts("country_capital", ["France", "Peru", "Chile", "Japan"], ["Paris", "Lima", "Santiago", "Tokyo"],
                             "train", "u", cap)], ignore_index=True)
    masks = {"refused": facts("element_symbol", ["Neon", "Zinc", "Tin"], ["Ne", "Zn", "Sn"], "test", "m", sym)}
    guard = facts("country_capital", ["Italy", "Spain", "Kenya"], ["Rome", "Madrid", "Nairobi"], "test", "g", cap)
    never = facts("element_symbol", ["Xenon", "Radon"], ["Xe", "Rn"], "test", "n", sym).assign(base_correct=False)
    return UnmaskSets(masks, guard, guard.head(2).assign(base_correct=False), train, {}, {"refused": never})


def test_measure_headline_scores_the_preregistered_method_its_controls_and_phrasings(tiny_gemma_dir):
    """The code path the CLI runs, on a tiny pair with hand-made sets and fit: every role, the
    never-known facts, both held-out phrasings, and the numbers the JSON's last two lines carry."""
    from interp import ModelSpec, load_pair
    from interp.unmask.headline import measure_headline, preregistered_intervention
    from interp.unmask.run import UnmaskResult

    torch.manual_seed(0)
    pair = load_pair((ModelSpec(str(tiny_gemma_dir)), ModelSpec(str(tiny_gemma_dir))), device="cpu")
    d = pair.d_model
    edit = LowRankEdit(U=torch.randn(d, 2) * 0.1, V=torch.randn(d, 2) * 0.1, b=torch.zeros(2), layer=1)
    ctrl = {"never_knew": random_like(edit, seed=1), "shuffled": random_like(edit, seed=2),
            "random": random_like(edit, seed=3), "unrelated": random_like(edit, seed=4)}
    fit = UnmaskFit({"refused": 1}, {"refused": torch.randn(2, d)}, {"refused": ["refusal", "pc1"]},
                    {"refused": {"lowrank": edit, "steering": Steering(vector=torch.randn(d), layer=1)}},
                    pd.DataFrame(), {"preregistered": {"refused": {"kind": "lowrank", "method": "lowrank", "n_val": 4,
                                                                   "val_strict": 0.5}}}, {"refused": ctrl})
    assert preregistered_intervention(fit, "refused") is edit
    sets = _tiny_sets()
    head = measure_headline(pair, sets, fit, max_new_tokens=2, batch_size=8, n_boot=20, quantize=False, progress=False)
    roles = head.frame.role.tolist()
    assert roles == ["aligned", "headline", "control never_knew", "control shuffled", "control random", "control unrelated"]
    assert (head.frame.n == 3).all() and (head.frame.n_never_known == 2).all()
    assert head.row("refused").n_guard == 3 and head.row("refused", "control random").n_guard == 0  # the guard: headline only
    assert sorted(head.phrasing_info.phrasing) == ["paraphrase", "second"] and (head.phrasing_info.n_asked == 3).all()
    result = UnmaskResult(head.frame, head.per_fact, sets, fit, pd.DataFrame(), pd.DataFrame(), {}, head)
    pre, controls = result.preregistered("refused"), result.controls("refused")
    assert pre["method"] == "lowrank" and pre["strict"] and pre["n"] == 3 and pre["n_guard"] == 3
    assert pre["ci"][0] <= pre["gap_recovered"] <= pre["ci"][1] and pre["selected_on"].startswith("train facts")
    assert set(controls) == {"never_knew", "shuffled", "random", "unrelated", "quantized_8bit", "quantized_4bit",
                             "in_domain_ceiling", "strict_heldout_templates"}
    assert controls["quantized_8bit"] is None and 0.0 <= controls["never_knew"] <= 1.0
    fit.info["preregistered"] = {}
    with pytest.raises(ValueError, match="no pre-registered method for mask 'refused'"):
        preregistered_intervention(fit, "refused")
