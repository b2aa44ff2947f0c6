"""interp.knowledge on tiny models: candidate scoring equals scoring each answer on its own; a
planted fact ranked first internally but never generated."""

import pytest
import torch

from interp import ModelSpec, load_pair
from interp.knowledge.score import joined, score_candidates
from interp.runtime import layer_streams
from interp.unmask import answer_nll


@pytest.fixture(scope="module")
def pair(tiny_gemma_dir):
    return load_pair((ModelSpec(str(tiny_gemma_dir)), ModelSpec(str(tiny_gemma_dir), chat_template="gemma")), device="cpu")


def test_candidates_scored_with_a_shared_prompt_equal_each_answer_alone(pair):
    from interp.unmask.interventions import side_prompts

    for side in ("base", "aligned"):
        model = pair.side(side)
        prompts = side_prompts(pair, side, ["the fox sat on", "a red cat ran far and", "we go"])
        cands = [[joined(p, a) for a in ans] for p, ans in zip(prompts, [["mat", "zz", "hat q"], ["home", "x"], ["up", "down", "in", "out"]])]
        got = score_candidates(model, prompts, cands, batch_size=2)
        flat_p = [p for p, c in zip(prompts, cands) for _ in c]
        flat_a = [a for c in cands for a in c]
        want = -answer_nll(model, flat_p, flat_a, batch_size=16)
        assert torch.allclose(got.logp, want, atol=1e-4), (side, got.logp, want)
        assert got.fact.tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 2]
        # features: the stream leaving each layer at the answer's last token of the whole sequence
        from interp.prompts import encode

        b = encode(model.tokenizer, flat_p, answers=flat_a)
        streams = layer_streams(model, b.input_ids, b.attention_mask, post=True)
        rows = torch.arange(len(flat_a))
        want_f = torch.stack([s[rows, b.positions["answer_last"]] for s in streams])
        assert got.features.shape == want_f.shape
        assert torch.allclose(got.features, want_f, atol=1e-4)


def test_wrong_answers_come_from_the_same_relation_and_never_match_the_gold():
    import pandas as pd

    from interp.knowledge import wrong_answers

    t = pd.DataFrame({"id": list("abcdef"), "relation": ["cap"] * 4 + ["sym"] * 2,
                      "answer": ["Paris", "Rome", "Oslo", "paris", "Au", "Fe"],
                      "aliases": [["Paris"], ["Rome", "Roma"], ["Oslo"], ["paris"], ["Au"], ["Fe"]]})
    got = wrong_answers(t, t, k=5)
    assert got[0] == ["Oslo", "Rome"]  # the other capitals, "paris" (the gold, normalised) never
    assert got[4] == ["Fe"] and got[5] == ["Au"]
    assert wrong_answers(t, t.iloc[[1]], k=1) == wrong_answers(t, t.iloc[[2, 1]], k=1)[1:]  # seeded by the fact's id
    with pytest.raises(ValueError, match="no other answer of relation 'solo'"):
        wrong_answers(t, pd.DataFrame({"id": ["z"], "relation": ["solo"], "answer": ["x"], "aliases": [["x"]]}))
    with pytest.raises(ValueError, match="k must be >= 1"):
        wrong_answers(t, t, k=0)


def test_pairwise_share_counts_wrong_answers_below_the_gold_and_ties_half():
    import numpy as np

    from interp.knowledge import pairwise_share

    scores = np.array([0.0, -1.0, 1.0, 5.0, 5.0, 2.0])
    fact = np.array([0, 0, 0, 1, 1, 1])
    assert pairwise_share(scores, fact, 2).tolist() == [0.5, 0.75]


def test_the_probe_reads_a_planted_linear_signal_and_its_shuffled_control_does_not():
    import numpy as np

    from interp.knowledge.measure import HiddenConfig, _probe, pairwise_share

    g = torch.Generator().manual_seed(0)
    n_tr, n_ev, c, d = 60, 20, 5, 16
    direction = torch.randn(d, generator=g)

    def rows(n):
        y = torch.tensor(([1] + [0] * (c - 1)) * n)
        X = torch.randn(2, n * c, d, generator=g)
        X[1] += 1.5 * y[:, None] * direction  # layer 1 carries "this is the gold answer"
        return X, y, np.repeat(np.arange(n), c), [f"e{i // 2}" for i in np.repeat(np.arange(n), c)]

    Xtr, ytr, ftr, etr = rows(n_tr)
    Xev, yev, fev, eev = rows(n_ev)
    s, ctrl, info = _probe(Xtr, ytr, ftr, etr, Xev, yev, eev, "aligned", HiddenConfig(n_boot=0))
    assert info["layer"] == 1 and info["n_train_facts"] == n_tr
    assert pairwise_share(s, fev, n_ev).mean() > 0.95
    assert abs(pairwise_share(ctrl, fev, n_ev).mean() - 0.5) < 0.2


def _facts():
    import pandas as pd

    letters = "abcdefghijklmnoprstuvw"  # answers (q is the planted fact's)
    subjects = [a + b for a, b in zip("abcdefghijklmnoprstuvw", "bcdefghijklmnoprstuvwa")]
    rows = [{"id": f"t{i}", "subject": s, "answer": letters[i], "split": "train"} for i, s in enumerate(subjects[:18])]
    rows += [{"id": "planted", "subject": "xy", "answer": "q", "split": "test"},
             {"id": "masked", "subject": "yz", "answer": letters[18], "split": "test"},
             {"id": "guard1", "subject": "zx", "answer": letters[19], "split": "test"},
             {"id": "guard2", "subject": "zy", "answer": letters[20], "split": "test"}]
    t = pd.DataFrame(rows)
    return t.assign(text=[f"what is the sign of {s}" for s in t.subject], aliases=[[a] for a in t.answer], relation="sign",
                    entity=t.subject, base_correct=True, base_greedy=[f" {a}" for a in t.answer])


def test_a_planted_fact_is_ranked_first_inside_but_not_said(tiny_gemma_dir):
    """The aligned model's logit for the planted answer "q" is raised after its chat prompt, and a
    stop-like token's more: greedy generation never says "q" (K_gen 0) while its own probability
    ranks "q" above every wrong answer (K_prob 1); the recorded answer of another refused fact is a
    refusal, so the share ranked first while masked counts it where its gold ranks first."""
    from interp.behavior import generate
    from interp.knowledge import HiddenConfig, hidden_knowledge
    from interp.prompts import encode
    from interp.runtime import arch_of, body_forward, unwrapped
    from interp.unmask import UnmaskSets
    from interp.unmask.interventions import side_prompts

    pair = load_pair((ModelSpec(str(tiny_gemma_dir)), ModelSpec(str(tiny_gemma_dir), chat_template="gemma")), device="cpu")
    table = _facts()
    tok = pair.aligned.tokenizer
    planted = side_prompts(pair, "aligned", [table.set_index("id").text["planted"]])
    q, stop = tok.convert_tokens_to_ids("q"), tok.convert_tokens_to_ids(".")
    with unwrapped(pair.aligned) as hf, torch.no_grad():
        arch = arch_of(hf)
        b = encode(tok, planted)
        h = body_forward(arch, b.input_ids, b.attention_mask)[0, -1]
        arch.unembed.weight[q] += 30.0 * h / h.norm() ** 2
        arch.unembed.weight[stop] += 40.0 * h / h.norm() ** 2
    test = table[table.split == "test"]
    said = dict(zip(test.id, generate(pair.aligned, side_prompts(pair, "aligned", list(test.text)), max_new_tokens=3)))
    assert not said["planted"].strip().startswith("q")  # suppressed at generation
    said["masked"] = "i cannot help with that."  # the answers memo's record for this fact: a refusal
    sets = UnmaskSets(masks={"refused": test[test.id.isin(["planted", "masked"])]}, guard=test[test.id.str.startswith("guard")],
                      unknown=test.head(0), train=table[table.split == "train"], aligned_responses=said)
    hk = hidden_knowledge(pair, sets, table, config=HiddenConfig(k_wrong=4, n_train=18, n_boot=50), progress=False)
    pf = hk.per_fact.set_index(["side", "id"])
    row = pf.loc[("aligned", "planted")]
    assert row.k_gen == 0 and row.k_prob == 1.0 and row.hidden_prob == 1.0 and len(row.wrong) == 4
    assert row.strict_class == "wrong" and not row.masked
    m = pf.loc[("aligned", "masked")]
    assert m.masked and m.strict_class == "refusal" and m.first_while_masked_prob == float(m.k_prob == 1.0)
    assert pf.loc[("base", "planted")].k_gen == 1.0  # the base's recorded answer " q"
    frame = hk.to_frame()
    assert set(frame.side) == {"base", "aligned", "aligned - base"} and set(frame.set) == {"refused", "answered"}
    assert frame[["value"]].notna().all().all() and ((frame.ci_low <= frame.value + 1e-9) | frame.ci_low.isna()).all()
    s = hk.summary()
    assert s["refused"]["n"] == 2 and s["refused"]["aligned_k_gen"] == 0.0
    assert set(s["refused"]["targets"]) == {"k_prob_within_base", "k_probe_within_base", "k_prob_above_chance",
                                            "k_probe_above_chance", "probe_beats_control"}
    assert set(s["probes"]) == {"base", "aligned"} and s["agreement"] is None
    assert "HiddenKnowledge(" in repr(hk) and "<b>HiddenKnowledge</b>" in hk._repr_html_()
    hk.figure()


def test_agreement_reads_the_unmasking_headline_rows(tmp_path):
    import pandas as pd

    from interp.knowledge import read_unmask_facts, recovery_agreement

    pf = pd.DataFrame({"set": ["refused"] * 4 + ["abstained"] * 2, "side": "aligned", "id": list("abcdef"),
                       "entity": list("abcdef"), "k_prob": [0.9, 0.8, 0.2, 0.1, 0.5, 0.7],
                       "k_prob_framed": [0.1, 0.2, 0.9, 0.8, 0.5, 0.5], "k_probe": [1.0, 0.0, 1.0, 0.0, 0.1, 0.9]})
    uf = pd.DataFrame({"role": ["headline"] * 6 + ["control shuffled", "headline"],
                       "set": ["mask:refused"] * 4 + ["mask:abstained"] * 2 + ["mask:refused"] * 2,
                       "id": list("abcdef") + ["a", "c"], "phrasing": [None] * 7 + ["reversed"],
                       "strict_class": ["correct", "correct", "refusal", "wrong", "idk", "correct", "wrong", "correct"]})
    path = tmp_path / "unmask_headline_facts.csv"
    uf.to_csv(path, index=False)
    got = recovery_agreement(pf, read_unmask_facts(tmp_path), n_boot=100).set_index(["mask", "score"])
    assert got.loc[("refused", "k_prob")].auroc == 1.0 and got.loc[("refused", "k_prob_framed")].auroc == 0.0
    assert got.loc[("refused", "k_probe")].auroc == 0.5 and got.loc[("refused", "k_prob")].n_recovered == 2
    assert got.loc[("abstained", "k_prob")].auroc == 1.0 and got.loc[("abstained", "k_prob")].n == 2
    uf.rename(columns={"id": "fact_id"}).to_csv(path, index=False)
    assert len(recovery_agreement(pf, read_unmask_facts(path), n_boot=0)) == 6
    uf.drop(columns=["strict_class"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="lacks columns \\['strict_class'\\]"):
        read_unmask_facts(path)
    with pytest.raises(FileNotFoundError, match="interp unmask --json --out DIR"):
        read_unmask_facts(tmp_path / "nowhere")
