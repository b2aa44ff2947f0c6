"""interp.unmask on tiny models: planted directions, weight restores, patches, learned edits, the
gap statistic, saving what was fitted."""

import numpy as np
import pytest
import torch

from interp import ModelSpec, encode, load_model, load_pair
from interp.runtime import unwrapped
from interp.patching import last_logits
from interp.unmask import (
    Ablation, ActivationPatch, LowRankEdit, Steering, UnmaskFit, WeightRestore, answer_nll, fit_edit, gap_ci,
)
from interp.unmask.interventions import edit_mask

DELTA = "model.layers.1.self_attn.q_proj.weight"


def _pair(model_dir, *, aligned_style="plain", delta=True):
    pair = load_pair((ModelSpec(str(model_dir)), ModelSpec(str(model_dir), prompt_style=aligned_style,
                                                          chat_template="gemma" if aligned_style == "chat" else None)),
                     device="cpu")
    if delta:
        g = torch.Generator().manual_seed(1)
        with unwrapped(pair.aligned) as hf, torch.no_grad():
            w = dict(hf.named_parameters())[DELTA]
            w += 0.5 * torch.randn(w.shape[0], 2, generator=g) @ torch.randn(2, w.shape[1], generator=g)
    return pair


@pytest.fixture(scope="module")
def pair(tiny_gemma_dir):
    return _pair(tiny_gemma_dir)


TEXTS = ["the fox sat", "a red fox ran far", "we go home"]


def test_restoring_every_weight_reproduces_the_base_logits_exactly(pair):
    batch = encode(pair.base.tokenizer, TEXTS)
    want, before = last_logits(pair.base, batch), last_logits(pair.aligned, batch)
    assert (want - before).abs().max() > 1e-3  # the pair differs
    for iv in (WeightRestore(source=pair.base, everything=True),
               WeightRestore(source=pair.base, layers=range(pair.n_layers), kind="all")):
        with iv.applied(pair.aligned):
            got = last_logits(pair.aligned, batch)
        assert torch.equal(got, want), iv.setting
        assert torch.equal(last_logits(pair.aligned, batch), before)  # restored on exit
    with WeightRestore(source=pair.base, layers=(1,), kind="mlp").applied(pair.aligned):  # the delta is in attention
        assert torch.equal(last_logits(pair.aligned, batch), before)
    with WeightRestore(source=pair.base, layers=(1,), kind="attn").applied(pair.aligned):
        assert torch.equal(last_logits(pair.aligned, batch), want)
    with pytest.raises(ValueError, match="kind must be one of"):
        WeightRestore(source=pair.base, layers=(0,), kind="heads")
    with pytest.raises(ValueError, match=r"layer must be in \[0, 2\)"):
        WeightRestore(source=pair.base, layers=(2,))


def test_patching_every_layer_reproduces_the_base_run(pair):
    batch = encode(pair.base.tokenizer, TEXTS)
    want, before = last_logits(pair.base, batch), last_logits(pair.aligned, batch)
    every = ActivationPatch(pair=pair, layers=tuple(range(pair.n_layers + 1)), positions=("all",))
    every.prepare(pair, TEXTS)
    with every.applied(pair.aligned):
        got = last_logits(pair.aligned, batch)
    assert (got - want).abs().max().item() <= 1e-4
    below = ActivationPatch(pair=pair, layers=tuple(range(pair.n_layers)), positions=("all",))  # the changed layer still runs
    below.prepare(pair, TEXTS)
    with below.applied(pair.aligned):
        assert (last_logits(pair.aligned, batch) - want).abs().max().item() > 1e-3
    assert torch.equal(last_logits(pair.aligned, batch), before)


def test_ablating_a_planted_direction_removes_the_planted_behaviour(tiny_llama_dir):
    model = load_model(str(tiny_llama_dir), device="cpu")
    tok = model.tokenizer
    target = tok.convert_tokens_to_ids("\u2581z")
    r = torch.nn.functional.normalize(torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(3)), dim=0)
    batch = encode(tok, TEXTS)
    clean = last_logits(model, batch)[:, target]
    with unwrapped(model) as hf, torch.no_grad():  # plant: every token writes r; reading r predicts "z"
        hf.model.embed_tokens.weight += 2.0 * r
        hf.lm_head.weight[target] += 40.0 * r
    planted = last_logits(model, batch)
    assert (planted.argmax(-1) == target).all()
    with Ablation(directions=r).applied(model):
        ablated = last_logits(model, batch)
    assert not (ablated.argmax(-1) == target).any()
    planted_shift = (planted[:, target] - clean).mean()
    assert planted_shift > 5 and ((ablated[:, target] - clean).abs() < 0.1 * planted_shift).all()  # back to unplanted
    other = torch.nn.functional.normalize(torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(4)), dim=0)
    with Ablation(directions=other).applied(model):  # a random direction leaves the behaviour alone
        assert (last_logits(model, batch).argmax(-1) == target).all()
    two = Ablation(directions=torch.stack([other, r, other + r]))  # a dependent row adds nothing
    assert two.method == "subspace" and two.rank == 3
    with two.applied(model):
        assert not (last_logits(model, batch).argmax(-1) == target).any()


def test_layer_edits_act_on_the_last_prompt_token_only(pair):
    x = torch.zeros(2, 5, pair.d_model)
    assert edit_mask({}, x, "last").tolist() == [[0, 0, 0, 0, 1]] * 2
    assert edit_mask({"past_key_values": object()}, x[:, :1], "last").sum() == 0  # a decoding step
    assert edit_mask({"past_key_values": object(), "position_ids": torch.tensor([[5], [6]])}, x[:, :1], "all").sum() == 2
    v = torch.randn(pair.d_model)
    batch = encode(pair.aligned.tokenizer, TEXTS)
    from interp.patching import clean_resid_pre

    plain = clean_resid_pre(pair.aligned, batch)
    with Steering(vector=v, layer=1).applied(pair.aligned):
        steered = clean_resid_pre(pair.aligned, batch)
    diff = (steered[1] - plain[1]).norm(dim=-1)  # [B, T]
    assert torch.allclose(steered[1][:, -1] - plain[1][:, -1], v.expand(3, -1), atol=1e-4)
    assert diff[:, :-1].max() <= 1e-5
    # scoring an appended answer puts the edit where generation does: the last prompt token
    answers = ["z"] * 3
    ids = pair.aligned.tokenizer("z", add_special_tokens=False)["input_ids"]
    assert len(ids) == 1  # a one-token answer: its log-probability is read at the last prompt token
    with Steering(vector=v, layer=1).applied(pair.aligned):
        first = torch.log_softmax(last_logits(pair.aligned, batch), -1)[:, ids[0]]
        scored = -answer_nll(pair.aligned, TEXTS, answers)
    assert torch.allclose(scored, first, atol=1e-4)
    U = torch.randn(pair.d_model, 2)
    with LowRankEdit(U=U, layer=0, positions="prompt").applied(pair.aligned):  # V = 0: a vector in span(U)
        edited = clean_resid_pre(pair.aligned, batch)
    real = batch.attention_mask.bool().clone()
    real[torch.arange(3), batch.n_pad] = False
    assert (edited[0][~real] - plain[0][~real]).abs().max() <= 1e-6  # first token and padding untouched
    with pytest.raises(ValueError, match="U of shape"):
        LowRankEdit(U=torch.randn(pair.d_model))


@pytest.mark.parametrize("rank", [0, 2])
def test_the_learned_edit_lowers_the_training_loss(tiny_gemma_dir, rank):
    pair = _pair(tiny_gemma_dir, aligned_style="chat", delta=False)
    from interp.unmask.interventions import side_prompts

    prompts = side_prompts(pair, "aligned", ["the fox", "a red cat", "we go", "it is"])
    answers = ["zz.", "zz.", "zz.", "zz."]
    before = answer_nll(pair.aligned, prompts, answers).mean()
    # a random tiny model's logits barely move (near-uniform over 320 tokens): ask for a clear drop, not a fit
    iv, history = fit_edit(pair.aligned, prompts, answers, side_prompts(pair, "aligned", ["a b c", "d e f"]), layer=1,
                           rank=rank, positions="all", steps=25, lr=0.5, batch_size=4, progress=False)
    assert history.nll.iloc[-5:].mean() < history.nll.iloc[0] - 0.3
    with iv.applied(pair.aligned):
        after = answer_nll(pair.aligned, prompts, answers).mean()
    assert after < before - 0.3
    assert iv.rank == max(rank, 1) and iv.layer == 1
    assert torch.equal(answer_nll(pair.aligned, prompts, answers).mean(), before)  # hooks removed
    assert all(not p.requires_grad or p.grad is None for p in pair.aligned.original_model.parameters())
    with pytest.raises(ValueError, match="positions must be one of"):
        fit_edit(pair.aligned, prompts, answers, prompts, layer=1, positions="middle")
    with pytest.raises(ValueError, match=r"layer must be in \[0, 2\)"):
        fit_edit(pair.aligned, prompts, answers, prompts, layer=-1)


def test_gap_ci():
    base = np.ones(20)
    aligned = np.zeros(20)
    got = np.array([1.0] * 15 + [0.0] * 5)
    gap, lo, hi = gap_ci(got, aligned, base, n_boot=2000)
    assert gap == pytest.approx(0.75)
    assert 0.5 < lo < 0.75 < hi <= 0.95
    assert gap_ci(aligned, aligned, base)[:1] == (0.0,)
    assert np.isnan(gap_ci(got, base, base)[0])  # no gap to recover


def test_guard_drop_interval_is_a_paired_bootstrap():
    from interp.unmask.measure import _drop_ci

    before = np.ones(24)
    after = np.ones(24)
    after[[3, 17]] = 0  # 2 of 24 guard facts lost
    lo, hi = _drop_ci(before, after, 2000)
    assert 0.0 <= lo < 2 / 24 < hi <= 0.25
    assert _drop_ci(before, before, 200) == (0.0, 0.0)  # nothing changes: no spread
    flipped = np.ones(24)
    flipped[[0, 1]] = 0
    before2 = flipped.copy()
    lo2, hi2 = _drop_ci(before2, flipped, 200)  # the same two facts wrong before and after: paired, no change
    assert (lo2, hi2) == (0.0, 0.0)


def test_unmask_fit_saves_and_loads(tmp_path, pair):
    import pandas as pd

    d = pair.d_model
    fit = UnmaskFit({"refused": 1}, {"refused": torch.randn(3, d)}, {"refused": ["refusal", "abstention", "pc1"]},
                    {"refused": {"steering": Steering(vector=torch.randn(d), layer=1, positions="prompt"),
                                 "lowrank": LowRankEdit(U=torch.randn(d, 2), V=torch.randn(d, 2), b=torch.randn(2), layer=0)}},
                    pd.DataFrame([{"mask": "refused", "layer": 1, "kl": 0.1}]), {"seconds": 1.0})
    fit.save(tmp_path)
    back = UnmaskFit.load(tmp_path)
    assert torch.equal(back.basis["refused"], fit.basis["refused"]) and back.direction_layer == {"refused": 1}
    assert torch.equal(back.edits["refused"]["steering"].vector, fit.edits["refused"]["steering"].vector)
    assert torch.equal(back.edits["refused"]["lowrank"].V, fit.edits["refused"]["lowrank"].V)
    assert back.edits["refused"]["lowrank"].layer == 0 and back.selection.equals(fit.selection)
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(FileNotFoundError, match="interp unmask --fit"):
        UnmaskFit.load(tmp_path / "nothing")
    assert back.edits["refused"]["steering"].positions == "prompt"  # the edit's positions travel with it
    assert back.edits["refused"]["lowrank"].positions == "last"
    # A record and tensors of two different fits (a writer killed between the two files) are refused.
    other = tmp_path / "other"
    UnmaskFit(fit.direction_layer, {"refused": torch.randn(3, d)}, fit.basis_labels, fit.edits, fit.selection).save(other)
    (tmp_path / "unmask.safetensors").write_bytes((other / "unmask.safetensors").read_bytes())
    with pytest.raises(ValueError, match="does not belong to unmask.json"):
        UnmaskFit.load(tmp_path)


def test_unmask_figures_draw_each_masks_own_families():
    import pandas as pd

    from interp.plots.unmasking import unmask_dose_response, unmask_gap_vs_kl

    rows = []
    for mask in ("refused", "abstained"):
        for fam in ("refused", "abstained"):
            for k in (1, 2, 4):
                rows.append({"method": "subspace", "setting": f"{fam}: k={k} (x) @ layer 4", "mask": mask, "dose": k,
                             "gap_recovered": 0.1 * k, "ci_low": 0.0, "ci_high": 0.5, "kl": 0.01 * k, "guard_accuracy": 0.9,
                             "guard_accuracy_drop": 0.1})
                rows.append({"method": "weights", "setting": f"{fam}: top {k}: all of layers 1", "mask": mask, "dose": k,
                             "gap_recovered": 0.2, "ci_low": 0.1, "ci_high": 0.3, "kl": 0.0, "guard_accuracy": 1.0,
                             "guard_accuracy_drop": 0.0})
        rows.append({"method": "prefill", "setting": "'Sure'", "mask": mask, "dose": None, "gap_recovered": 0.5, "ci_low": 0.2,
                     "ci_high": 0.7, "kl": float("nan"), "guard_accuracy": 1.0, "guard_accuracy_drop": 0.0})
    frame = pd.DataFrame(rows)
    dose = unmask_dose_response(frame, mask="abstained")
    lines = [t for t in dose.data if t.name]
    assert [len(t.x) for t in lines] == [3, 3, 3, 3]  # only the abstained families, one point per dose
    assert list(lines[0].y) == pytest.approx([0.1, 0.2, 0.4])
    gap = unmask_gap_vs_kl(frame, mask="refused")
    assert gap.layout.xaxis.type == "log" and min(min(t.x) for t in gap.data) >= 1e-3  # zero KL drawn at the floor
    assert {t.name for t in gap.data} == {"subspace", "weights", "prefill"}


def test_refusal_direction_is_selected_on_prompts_held_out_of_its_estimate(tiny_gemma_dir, monkeypatch):
    """The candidate directions come from the training prompts after the first ``n_val``; the
    validation prompts that select the layer are those first ``n_val``, never part of the estimate."""
    import interp.workflows.refusal as refusal
    from interp.prompts import format_prompt

    pair = _pair(tiny_gemma_dir, aligned_style="chat")
    tok = pair.aligned.tokenizer
    seen = []
    original = refusal.mean_diff_directions

    def spy(model, with_behaviour, without, *args, **kwargs):
        seen.append((with_behaviour.input_ids.clone(), without.input_ids.clone()))
        return original(model, with_behaviour, without, *args, **kwargs)

    monkeypatch.setattr(refusal, "mean_diff_directions", spy)
    refused = ["the fox sat", "a red fox ran far", "we go home", "big dogs bark", "a cat ran", "the mat is red"]
    answered = ["one two three", "blue sky", "go now", "the sun is hot", "rain falls", "birds sing"]
    result = refusal.refusal_direction(pair, refused, answered, refused[:2], [["x"]] * 2, answered[:2], [["y"]] * 2,
                                       layers=[1], n_val=2, max_new_tokens=2, batch_size=4)

    def chat(texts):
        return encode(tok, [format_prompt(t, style="chat", tokenizer=tok) for t in texts]).input_ids

    assert len(seen) == 1
    assert torch.equal(seen[0][0], chat(refused[2:])) and torch.equal(seen[0][1], chat(answered[2:]))
    sel = result.selection
    assert list(sel.layer) == [1] and (sel.n == 2).all() and {"ci_low", "ci_high"} <= set(sel.columns)
    with pytest.raises(ValueError, match="need n_val >= 1 validation prompts plus >= 2"):
        refusal.refusal_direction(pair, refused[:3], answered, refused[:1], [["x"]], answered[:1], [["y"]], n_val=2)


def test_a_corrupt_recipe_record_is_reported_not_silently_replaced(tmp_path, monkeypatch):
    import interp.align
    from interp.unmask.tables import facts_for

    def corrupt(name):
        raise ValueError("Expected object or value")

    monkeypatch.setattr(interp.align, "graded_facts", corrupt)
    with pytest.warns(RuntimeWarning, match="recipe record of pair 'default' cannot be read"):
        out = facts_for("default", max_train=4, max_test=4)
    assert len(out) == 8


def test_learned_edits_are_scored_with_the_position_ids_generation_uses(pair):
    """Left-padded rows: the scoring pass gives each row's first real token position 0, as generation
    does, so a padded row's logits equal the same prompt alone."""
    from interp.unmask.learn import _last_logits

    batch = encode(pair.aligned.tokenizer, ["the fox sat", "a red fox ran far away"])
    alone = encode(pair.aligned.tokenizer, ["the fox sat"])
    with torch.inference_mode(), unwrapped(pair.aligned) as hf:
        padded, single = _last_logits(hf, batch)[0], _last_logits(hf, alone)[0]
    assert torch.allclose(padded, single, atol=1e-4)


def test_the_strict_judge_credits_leading_answers_only():
    from interp.behavior.answers import classify, classify_strict, surface_derivable

    q = "What is the chemical symbol for iodine?"
    assert classify(" I think it is Xe", ["I"]) == "correct"  # the lenient judge: "I" anywhere in the line
    assert classify_strict(" I think it is Xe", ["I"], question=q) == "wrong"
    assert classify_strict(" I.", ["I"], question=q) == "correct"
    assert classify_strict("The answer is I.", ["I"], question=q) == "correct"
    assert classify_strict(" Iodine", ["iodine"], question=q) == "wrong"  # an echo of the question
    assert classify_strict("I'm sorry, I can't help.", ["I"], question=q) == "refusal"
    assert surface_derivable("Be", "beryllium") and not surface_derivable("Fe", "iron")


def test_greedy_answers_are_the_gradings_own_and_bad_rows_are_named(pair):
    from interp.behavior import KnowledgeConfig, grade_knowledge, greedy_answers
    from interp.data import facts

    table = facts(["country_capital"]).select(range(12))
    # one prompt per batch: a random model's logits are near-ties that another padding can flip
    cfg = KnowledgeConfig(n_prompts=2, k_samples=1, max_new_tokens=3, batch_size=1)
    graded = grade_knowledge(pair.base, table, cfg, progress=False)
    assert greedy_answers(pair.base, table, cfg, rows=[7, 0, 11]) == [graded["greedy_answer"][i] for i in (7, 0, 11)]
    with pytest.raises(ValueError, match=r"rows \[12\] are outside the table's 12 rows"):
        greedy_answers(pair.base, table, rows=[0, 12])
    with pytest.raises(ValueError, match="needs columns"):
        greedy_answers(pair.base, table.remove_columns("relation"))
