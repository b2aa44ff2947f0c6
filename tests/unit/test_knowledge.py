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
        want = -answer_nll(model, flat_p, flat_a, batch_size=16)  # mean per answer token
        assert (got.n_tokens > 1).any()  # the sum and the mean differ somewhere
        assert torch.allclose(got.logp, want * got.n_tokens, atol=1e-4), (side, got.logp, want)  # summed: the answer's probability
        assert torch.allclose(got.logp_mean, want, atol=1e-4)
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
    # answers the fact's few-shot exemplars show are never its wrong answers
    assert wrong_answers(t, t.iloc[[0]], k=5, exclude=[["OSLO"]]) == [["Rome"]]
    with pytest.raises(ValueError, match="exclude has 1 lists for 2 facts"):
        wrong_answers(t, t.iloc[:2], exclude=[[]])


def test_pairwise_share_counts_wrong_answers_below_the_gold_and_ties_half():
    import numpy as np

    from interp.knowledge import pairwise_share

    scores = np.array([0.0, -1.0, 1.0, 5.0, 5.0, 2.0])
    fact = np.array([0, 0, 0, 1, 1, 1])
    assert pairwise_share(scores, fact, 2).tolist() == [0.5, 0.75]


def test_labelled_share_ranks_label_one_rows_above_label_zero_rows_per_fact():
    import numpy as np

    from interp.knowledge import labelled_share, pairwise_share

    scores = np.array([3.0, 1.0, 1.5, 2.0, 5.0, 5.0, 1.0, 1.0])
    labels = np.array([1, 0, 1, 0, 1, 0, 0, 0])
    fact = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    got = labelled_share(scores, labels, fact, 3)
    assert got[0] == 0.75 and got[1] == 0.5 and np.isnan(got[2])  # fact 2: one label only
    gold = np.array([1, 0, 0, 0, 1, 0, 1, 0])
    assert np.allclose(labelled_share(scores, gold, fact, 3), pairwise_share(scores, fact, 3))


def test_control_labels_are_fixed_per_answer_string_and_seeded():
    from interp.knowledge import control_labels

    words = [f"w{i}" for i in range(200)]
    a = control_labels(words, seed=0)
    assert set(a.tolist()) == {0, 1} and 70 < a.sum() < 130  # a fair coin per string
    assert (control_labels(list(reversed(words)), seed=0) == a[::-1]).all()  # the string decides, not its place
    assert (control_labels([" W7 "], seed=0) == a[7]).all()  # normalised
    assert (control_labels(words, seed=1) != a).any()


def _probe_rows(g, n, c, d, strings, gold_signal, string_signal, vocab):
    """``n`` facts of ``c`` candidates; layer 1 carries the gold direction, every layer each
    candidate string's own random vector (features that identify the string), each scaled as asked."""
    import numpy as np

    y = torch.tensor(([1] + [0] * (c - 1)) * n)
    names = [strings[(7 * f + j) % len(strings)] for f in range(n) for j in range(c)]
    X = 0.3 * torch.randn(2, n * c, d, generator=g)
    X[1] += gold_signal * y[:, None] * vocab["gold"]
    X += string_signal * torch.stack([vocab[s] for s in names])  # every layer: whichever the probe picks
    fact = np.repeat(np.arange(n), c)
    return X, y, fact, [f"e{i // 2}" for i in fact], names


def test_the_probe_reads_a_planted_linear_signal_and_the_control_task_catches_string_memorisation():
    """Control task (Hewitt & Liang): a fixed random label per answer string. On features that carry
    only "this is the gold answer" the control sits near 0.5; on features that identify each answer
    string (strings recurring between train and evaluation), a probe can memorise the strings' labels
    and the control wins, which the old within-fact shuffled control (a random candidate per fact
    called correct) could never show."""
    import numpy as np

    from interp.knowledge.measure import HiddenConfig, _probe, control_labels, labelled_share, pairwise_share

    g = torch.Generator().manual_seed(0)
    n_tr, n_ev, c, d = 60, 20, 5, 48
    strings = [f"s{i}" for i in range(24)]
    vocab = {s: torch.randn(d, generator=g) for s in [*strings, "gold"]}
    for gold_signal, string_signal, want_probe, want_ctrl in ((1.5, 0.0, (0.95, 1.0), (0.3, 0.7)),
                                                              (0.0, 1.5, (0.0, 1.0), (0.85, 1.0))):
        Xtr, ytr, ftr, etr, ntr = _probe_rows(g, n_tr, c, d, strings, gold_signal, string_signal, vocab)
        Xev, yev, fev, eev, nev = _probe_rows(g, n_ev, c, d, strings, gold_signal, string_signal, vocab)
        ctr, cev = control_labels(ntr), control_labels(nev)
        s, ctrl, info = _probe(Xtr, ytr, torch.as_tensor(ctr), ftr, etr, Xev, yev, eev, "aligned", HiddenConfig(n_boot=0))
        assert info["n_train_facts"] == n_tr
        k_probe, k_ctrl = pairwise_share(s, fev, n_ev).mean(), np.nanmean(labelled_share(ctrl, cev, fev, n_ev))
        assert want_probe[0] <= k_probe <= want_probe[1], (gold_signal, k_probe)
        assert want_ctrl[0] <= k_ctrl <= want_ctrl[1], (string_signal, k_ctrl)
        if gold_signal:
            assert info["layer"] == 1


def _facts():
    import pandas as pd

    letters = "abcdefghijklmnoprstuvw"  # answers (q is the planted fact's)
    subjects = [a + b for a, b in zip("abcdefghijklmnoprstuvw", "bcdefghijklmnoprstuvwa")]
    rows = [{"id": f"t{i}", "subject": s, "answer": letters[i], "split": "train"} for i, s in enumerate(subjects[:16])]
    rows += [{"id": "planted", "subject": "xy", "answer": "q", "split": "test"},
             {"id": "masked", "subject": "yz", "answer": letters[18], "split": "test"},
             {"id": "guard1", "subject": "zx", "answer": letters[19], "split": "test"},
             {"id": "guard2", "subject": "zy", "answer": letters[20], "split": "test"},
             {"id": "held1", "subject": "xz", "answer": letters[16], "split": "test"},  # held out, in no set: wrong answers
             {"id": "held2", "subject": "yx", "answer": letters[17], "split": "test"}]
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
    hk = hidden_knowledge(pair, sets, table, config=HiddenConfig(k_wrong=4, n_train=16, n_boot=50), progress=False)
    pf = hk.per_fact.set_index(["side", "id"])
    row = pf.loc[("aligned", "planted")]
    assert row.k_gen == 0 and row.k_prob == 1.0 and row.hidden_prob == 1.0 and len(row.wrong) == 4
    held = set(table.answer[table.split == "test"])
    assert all(set(w) <= held for w in hk.per_fact.wrong)  # evaluated facts' wrong answers: held-out answers only
    assert 0 <= row.k_prob_mean <= 1 and 0 <= pf.loc[("aligned", "planted")].k_prob_framed_mean <= 1
    assert row.strict_class == "wrong" and not row.masked
    m = pf.loc[("aligned", "masked")]
    assert m.masked and m.strict_class == "refusal" and m.first_while_masked_prob == float(m.k_prob == 1.0)
    assert pf.loc[("base", "planted")].k_gen == 1.0  # the base's recorded answer " q"
    frame = hk.to_frame()
    assert set(frame.side) == {"base", "aligned", "aligned - base"} and set(frame.set) == {"refused", "answered"}
    assert frame[["value"]].notna().all().all() and ((frame.ci_low <= frame.value + 1e-9) | frame.ci_low.isna()).all()
    s = hk.summary()
    assert s["refused"]["n"] == 2 and s["refused"]["aligned_k_gen"] == 0.0
    r = s["refused"]
    assert r["aligned_k_prob_above_chance"] == pytest.approx(r["aligned_k_prob"] - 0.5)
    assert r["base_k_probe_above_chance_ci"][0] == pytest.approx(r["base_k_probe_ci"][0] - 0.5)
    assert "aligned_k_gen_above_chance" not in r and "aligned_k_prob_mean" in r
    assert s["abstained"]["n"] == 0 and s["abstained"]["aligned_k_prob"] is None  # always there, empty
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


def _sets(table, said=None):
    from interp.unmask import UnmaskSets

    test = table[table.split == "test"]
    return UnmaskSets(masks={"refused": test[test.id.isin(["planted", "masked"])]}, guard=test[test.id.str.startswith("guard")],
                      unknown=test.head(0), train=table[table.split == "train"], aligned_responses=said or {})


def test_train_facts_wrong_answers_come_from_train_facts_only_and_never_from_their_exemplars():
    """No evaluated fact's gold answer is a probe training row: train facts draw wrong answers from
    train-split answers, evaluated facts from held-out answers; the answers the base's few-shot
    prompt shows for a fact are never its wrong answers."""
    import numpy as np
    import pandas as pd

    from interp.knowledge.candidates import exemplar_answers
    from interp.knowledge.measure import HiddenConfig, _wrong, probe_train_facts

    table, cfg = _facts(), HiddenConfig(k_wrong=8, n_train=16)
    sets = _sets(table)
    train = probe_train_facts(sets.train, cfg.n_train, cfg.seed)
    evals = pd.concat([sets.masks["refused"].assign(set="refused"), sets.guard.assign(set="answered")])
    both = pd.concat([train.assign(set="train"), evals], ignore_index=True)
    is_eval = (both.set != "train").to_numpy()
    wrong = _wrong(table, sets, both, is_eval, cfg)
    train_answers, held_answers = set(table.answer[table.split == "train"]), set(table.answer[table.split == "test"])
    shown = exemplar_answers(table, both, n_shots=cfg.n_shots, seed=cfg.seed)
    for i in range(len(both)):
        assert set(wrong[i]) <= (held_answers if is_eval[i] else train_answers), (both.id[i], wrong[i])
        assert not set(wrong[i]) & set(shown[i]) and both.answer[i] not in wrong[i]
    assert all(len(w) == 8 for w in np.array(wrong, dtype=object)[~is_eval])  # 16 train answers - self - 2 shown >= 8
    assert not set().union(*[wrong[i] for i in np.flatnonzero(~is_eval)]) & set(evals.answer)  # the leak, closed


def test_a_table_without_entity_is_refused_with_the_fix(pair):
    from interp.knowledge import hidden_knowledge

    table = _facts().drop(columns=["entity"])
    with pytest.raises(ValueError, match=r"lack the column 'entity'.*table.assign\(entity=table.subject\)"):
        hidden_knowledge(pair, _sets(table), table, progress=False)


def test_agreement_warns_on_a_partial_overlap_and_never_gives_a_silent_nan():
    import pandas as pd

    from interp.knowledge import recovery_agreement

    pf = pd.DataFrame({"set": ["refused"] * 4 + ["answered"], "side": "aligned", "id": list("abcde"), "entity": list("abcde"),
                       "k_prob": [0.9, 0.8, 0.2, 0.1, 0.5], "k_prob_framed": 0.5, "k_probe": 0.5})
    uf = pd.DataFrame({"role": "headline", "set": "mask:refused", "id": list("abc"), "strict_class": ["correct", "wrong", "wrong"]})
    with pytest.warns(RuntimeWarning, match="only partly: 1 of its 4 fact ids are missing"):
        got = recovery_agreement(pf, uf, n_boot=0)
    assert got.n.tolist() == [3, 3, 3] and got.auroc.notna().all()
    with pytest.warns(RuntimeWarning, match="none of its 4 facts is in the per-fact table"):
        assert recovery_agreement(pf, uf.assign(id=list("xyz")), n_boot=0).empty
    with pytest.warns(RuntimeWarning, match="3 of its 3 facts are recovered"):
        got = recovery_agreement(pf[pf.id != "d"], uf.assign(strict_class="correct"), n_boot=0)
    assert got.empty
    with pytest.warns(RuntimeWarning, match="no row of mask 'refused'"):
        recovery_agreement(pf, uf.assign(set="mask:abstained"), n_boot=0)


def test_json_line_holds_the_sets_only_and_always_refused_and_abstained():
    from interp.knowledge_cli import info_line, json_line

    summary = {"refused": {"base_k_prob": 0.9, "n": 2}, "answered": {"base_k_prob": 0.8, "n": 1},
               "probes": {"base": {}}, "agreement": None, "seconds": {"total": 1.0}}
    line = json_line(summary)["hidden_knowledge"]
    assert list(line) == ["refused", "abstained", "answered"]
    assert line["abstained"] == {"base_k_prob": None, "aligned_k_prob": None, "aligned_k_probe": None,
                                 "aligned_k_probe_control": None, "aligned_k_gen": None, "n": 0}
    assert info_line(summary) == {"hidden_knowledge_info": {"probes": {"base": {}}, "agreement": None, "seconds": {"total": 1.0}}}


def test_the_cli_prints_the_hidden_knowledge_line_last(tiny_gemma_dir, tmp_path, monkeypatch):
    """``interp hidden --json`` on a tiny pair (the fact table and the sets stand in for the
    recipe's): the last line is exactly the sets, refused and abstained always; the extras a line before."""
    import json

    from typer.testing import CliRunner

    import interp.unmask
    from interp.cli import app

    table = _facts()
    monkeypatch.setattr(interp.unmask, "facts_for", lambda name, **kw: table)
    monkeypatch.setattr(interp.unmask, "unmask_sets", lambda pair, t, **kw: _sets(t, {"masked": "i cannot help with that."}))
    out = tmp_path / "hidden"
    result = CliRunner().invoke(app, ["hidden", "--base", str(tiny_gemma_dir), "--aligned", str(tiny_gemma_dir),
                                      "--chat-template", "gemma", "--device", "cpu", "--json", "--n-train", "16",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    last = json.loads(lines[-1])
    assert list(last) == ["hidden_knowledge"]
    sets = last["hidden_knowledge"]
    assert list(sets) == ["refused", "abstained", "answered"]
    keys = {"base_k_prob", "aligned_k_prob", "aligned_k_probe", "aligned_k_probe_control", "aligned_k_gen", "n"}
    assert all(keys <= set(v) for v in sets.values())
    assert sets["refused"]["n"] == 2 and sets["abstained"]["n"] == 0 and sets["abstained"]["aligned_k_prob"] is None
    assert 0 <= sets["refused"]["aligned_k_prob"] <= 1 and "targets" in sets["refused"]
    info = json.loads(lines[-2][lines[-2].index('{"hidden_knowledge_info"'):])["hidden_knowledge_info"]
    assert set(info) == {"probes", "agreement", "seconds"} and set(info["probes"]) == {"base", "aligned"}
    assert (out / "report.html").is_file()
