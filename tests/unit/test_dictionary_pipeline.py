"""interp.dictionary beyond training, on a tiny pair of two different random Gemma-3 models: the
paired corpus, the causal test (on a dictionary whose latents decode the models' difference
exactly), latent read-outs and the browser, and the whole crosscoder workflow."""

import json

import pandas as pd
import pytest
import torch

from tests import tiny


@pytest.fixture(scope="module")
def tiny_pair(tiny_gemma_dir, tmp_path_factory):
    from interp import ModelSpec, load_pair

    other = tiny.save_hf_dir(tiny.tiny_gemma3(seed=2), tiny_gemma_dir, tmp_path_factory.mktemp("tiny-gemma3-b"))
    return load_pair((str(tiny_gemma_dir), ModelSpec(str(other), chat_template="gemma", prompt_style="chat")), device="cpu")


def _small(tokens: int, **kw):
    from interp.dictionary.corpus import CorpusConfig

    return CorpusConfig(tokens=tokens, chunk=4, base_new_tokens=8, chat_new_tokens=6, **kw)


def test_the_corpus_is_balanced_resumes_and_refuses_other_settings(tiny_pair, tmp_path):
    from interp.dictionary.corpus import build_corpus, load_corpus, token_kinds
    from interp.prompts import token_ids

    tok = tiny_pair.aligned.tokenizer
    first = build_corpus(tiny_pair, tmp_path, _small(120), progress=False)
    assert set(first.kind) == {"base", "chat"} and first.n_tokens.sum() >= 120
    by_kind = first.groupby("kind").n_tokens.sum()
    assert abs(by_kind.base - by_kind.chat) <= first.groupby("part").n_tokens.sum().max()  # topped up in turn
    before = {p.name: p.read_bytes() for p in (tmp_path / "parts").iterdir()}
    goal = int(first.n_tokens.sum()) + 100
    more = build_corpus(tiny_pair, tmp_path, _small(goal), progress=False)  # resumes: old parts kept as they were
    assert more.n_tokens.sum() >= goal and len(more) > len(first)
    assert all((tmp_path / "parts" / name).read_bytes() == data for name, data in before.items())
    assert load_corpus(tmp_path).equals(more)
    for _, row in more.iterrows():
        kinds = token_kinds(tok, row)
        assert len(kinds) == len(token_ids(tok, row.text)) == row.n_tokens and kinds[0] == "bos"
        if row.kind == "chat":
            assert "template" in kinds and row.text[row.response_start: row.response_end] == row.response
    with pytest.raises(ValueError, match="other weights or settings"):
        build_corpus(tiny_pair, tmp_path, _small(goal + 100, seed=1), progress=False)
    assert not list((tmp_path / "parts").glob(".*tmp*"))


def _exact_difference_crosscoder(d: int):
    """Latents i and d+i read +/- (aligned - base) along e_i and decode it into the aligned side
    only: the decoded difference of every latent is exactly h_aligned - h_base."""
    from interp.dictionary import Crosscoder

    cc = Crosscoder(d, 2 * d, 2, k=None)
    with torch.no_grad():
        for p in (cc.W_enc, cc.W_dec, cc.b_enc, cc.b_dec):
            p.zero_()
        for i in range(d):
            cc.W_enc[1, i, i], cc.W_enc[0, i, i], cc.W_dec[i, 1, i] = 1.0, -1.0, 1.0
            cc.W_enc[1, i, d + i], cc.W_enc[0, i, d + i], cc.W_dec[d + i, 1, i] = -1.0, 1.0, -1.0
    return cc.eval()


def test_the_causal_test_closes_what_the_latents_decode(tiny_pair):
    from interp.chat_formats import render_exchange
    from interp.dictionary.causal import causal_closure
    from interp.dictionary.corpus import token_kinds

    tok = tiny_pair.aligned.tokenizer
    d = tiny_pair.d_model
    cc = _exact_difference_crosscoder(d)
    rows = []
    for q, a in [("the fox sat", "on the mat"), ("where is the cat", "far"), ("a big red fox", "ran")]:
        text, u, r = render_exchange(tok, q, a)
        rows.append({"kind": "chat", "text": text, "user_start": u[0], "user_end": u[1], "response_start": r[0],
                     "response_end": r[1]})
    kinds = [token_kinds(tok, r) for r in rows]
    sets = {"none": [], "every latent": list(range(2 * d)), "half": list(range(d // 2)) + list(range(d, d + d // 2))}
    out = causal_closure(tiny_pair, cc, 0, [r["text"] for r in rows], kinds, sets, scale=torch.ones(2), batch_size=2,
                         n_boot=50, progress=False)
    c = out.set_index(["set", "kind"]).closed
    assert set(out.kind) == {"all", "template", "user", "response"}
    assert c["every latent", "all"] > 0.9999 and abs(c["none", "all"]) < 1e-6  # the exact difference, and nothing
    assert 0.0 < c["half", "all"] < 1.0 and (out.kl_base_stream > 0).all()
    n_tokens = sum(len(k) - 1 for k in kinds)  # BOS never counted
    assert (out[out.kind == "all"].tokens == n_tokens).all()
    with pytest.raises(ValueError, match="token kinds"):
        causal_closure(tiny_pair, cc, 0, [rows[0]["text"]], [kinds[0][:-1]], sets, scale=torch.ones(2), n_boot=0,
                       progress=False)


def test_the_causal_test_adds_the_decoder_bias_difference(tiny_pair):
    """Decoder biases start at each model's mean stream and differ. With biases b, the exact-difference
    latents read (h_a - b_a) - (h_b - b_b) and decode it; only with b_a - b_b added is the
    dictionary's decoded difference h_a - h_b (code that leaves the bias out closes less)."""
    from interp.chat_formats import render_exchange
    from interp.dictionary.causal import causal_closure
    from interp.dictionary.corpus import token_kinds

    tok = tiny_pair.aligned.tokenizer
    d = tiny_pair.d_model
    cc = _exact_difference_crosscoder(d)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        cc.b_dec.copy_(torch.randn(2, d, generator=g))
    assert (cc.b_dec[0] - cc.b_dec[1]).abs().min() > 0  # non-zero and different on every coordinate
    rows = []
    for q, a in [("the fox sat", "on the mat"), ("where is the cat", "far")]:
        text, u, r = render_exchange(tok, q, a)
        rows.append({"kind": "chat", "text": text, "user_start": u[0], "user_end": u[1], "response_start": r[0],
                     "response_end": r[1]})
    kinds = [token_kinds(tok, r) for r in rows]
    sets = {"bias only": [], "every latent": list(range(2 * d))}
    texts = [r["text"] for r in rows]
    out = causal_closure(tiny_pair, cc, 0, texts, kinds, sets, scale=torch.ones(2), n_boot=0, progress=False)
    c = out[out.kind == "all"].set_index("set").closed
    assert c["every latent"] > 0.9999, c  # the exact difference, bias included
    assert abs(c["bias only"]) > 1e-3 and c["bias only"] < 0.9999  # the bias alone is a distinct set
    assert out.with_bias.all() and (out[out.set == "bias only"].n_latents == 0).all()
    without = causal_closure(tiny_pair, cc, 0, texts, kinds, sets, scale=torch.ones(2), bias=False, n_boot=0,
                             progress=False)
    w = without[without.kind == "all"].set_index("set").closed
    assert abs(w["bias only"]) < 1e-6 and w["every latent"] < 0.999  # the latents alone miss b_a - b_b
    # input scales s: encode reads x = s * h; latents read (x_a - b_a) / s_a - (x_b - b_b) / s_b and decode
    # s_a times it into the aligned side, so only b_a / s_a - b_b / s_b makes the difference exact
    scale = torch.tensor([0.5, 2.0])
    scaled = _exact_difference_crosscoder(d)
    with torch.no_grad():
        scaled.b_dec.copy_(cc.b_dec)
        for i in range(d):
            scaled.W_enc[1, i, i], scaled.W_enc[0, i, i] = 1 / scale[1], -1 / scale[0]
            scaled.W_enc[1, i, d + i], scaled.W_enc[0, i, d + i] = -1 / scale[1], 1 / scale[0]
            scaled.W_dec[i, 1, i], scaled.W_dec[d + i, 1, i] = scale[1], -scale[1]
    out = causal_closure(tiny_pair, scaled, 0, texts, kinds, sets, scale=scale, n_boot=0, progress=False)
    assert out[out.kind == "all"].set_index("set").closed["every latent"] > 0.9999


def test_read_outs_find_a_planted_latent_and_the_browser_shows_it(tiny_pair):
    from interp.dictionary.interpret import browser_html, logit_effects, row_positions, top_contexts
    from interp.dictionary.streams import text_rows

    assert row_positions(torch.tensor([0, 0, 0, 1, 1, 2])).tolist() == [1, 2, 3, 1, 2, 1]
    tok = tiny_pair.aligned.tokenizer
    d = tiny_pair.d_model
    cc = _exact_difference_crosscoder(d)
    texts = ["the fox sat on the mat", "a cat ran far", "where is the big red fox"]
    rows, examples, tokens = text_rows(tiny_pair, 1, texts, batch_size=2)
    assert rows.shape == (sum(len(t) - 1 for t in tokens), 2, d) and examples.tolist()[0] == 0
    ctx = top_contexts(cc, rows, examples, tokens, tok, [0, 5], scale=torch.ones(2), n=3, chunk=4)
    f = torch.relu(rows[:, 1, 0] - rows[:, 0, 0])  # latent 0 by hand
    assert ctx[ctx.latent == 0].activation.iloc[0] == pytest.approx(float(f.max()), rel=1e-5)
    top = int(f.argmax())
    assert ctx[ctx.latent == 0].token.iloc[0] == tok.decode(tokens[int(examples[top])][int(row_positions(examples)[top])])
    eff = logit_effects(tiny_pair, cc, [0, 5], scale=torch.ones(2), k=3, sides=("aligned",))
    assert len(eff) == 2 and all(len(p) == 3 for p in eff.promoted)
    classes = pd.DataFrame({"latent": range(2 * d), "class": "aligned-only", "rel_norm": 1.0})
    page = browser_html(classes, ctx, eff)
    assert page.count("<details>") == 2 and "<mark>" in page and "<script" not in page and "latent 5" in page


def test_the_crosscoder_workflow_writes_a_folder_a_researcher_can_use(tiny_pair, tmp_path, monkeypatch):
    from interp.dictionary.corpus import build_corpus
    from interp.dictionary.io import load_dictionary
    from interp.workflows.crosscoder import run_crosscoder

    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    build_corpus(tiny_pair, tmp_path / "corpus", _small(400), progress=False)
    summary = run_crosscoder(tiny_pair, tmp_path / "corpus", tmp_path / "out", layer=1, width=32, k=4, steps=40,
                             batch_size=32, n_exchanges=6, dtype="bfloat16", progress=False)
    out = tmp_path / "out"
    assert summary["layer"] == 1 and {"fve_base", "fve_aligned", "l0", "dead"} <= set(summary["held_out"])
    assert summary["corpus_tokens"] >= 400 and summary["held_out_tokens"] > 0
    cc = load_dictionary(out / "crosscoder")
    assert cc.width == 32 and cc.cfg["dtype"] == "bfloat16" and len(cc.cfg["input_scale"]) == 2
    for name in ("training.csv", "latent_classes.csv", "causal_test.csv", "causal_test.fig.json", "latent_contexts.csv",
                 "report.html", "summary.json"):
        assert (out / name).is_file(), name
    causal = pd.read_csv(out / "causal_test.csv")
    assert {"every latent", "aligned-only by decoder norm"} <= set(causal.set) and causal.closed.notna().any()
    page = (out / "report.html").read_text()
    assert "Feature-level diffing" in page and "<details>" in page
    assert json.loads((out / "summary.json").read_text())["findings"]["latents"] == 32


def test_reading_a_saved_crosscoder_again_gives_its_causal_test_on_fresh_text(tiny_pair, tmp_path, monkeypatch):
    """`interp dictionary --read`: the saved folder, read with the current code on a corpus of other
    texts, gives the same causal test as the trained model in memory (the held-out interactions come
    from the pair, not the corpus) and statistics over every text of the fresh corpus."""
    from interp.dictionary.corpus import build_corpus, load_corpus
    from interp.dictionary.io import load_dictionary
    from interp.workflows.crosscoder import read_crosscoder, run_crosscoder

    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    build_corpus(tiny_pair, tmp_path / "corpus", _small(300), progress=False)
    trained = run_crosscoder(tiny_pair, tmp_path / "corpus", tmp_path / "out", layer=1, width=32, k=4, steps=30,
                             batch_size=32, n_exchanges=6, dtype="float32", progress=False)
    fresh = build_corpus(tiny_pair, tmp_path / "fresh", _small(200, seed=1), progress=False)
    assert len(set(fresh.text) - set(load_corpus(tmp_path / "corpus").text)) > len(fresh) // 2  # mostly other texts
    saved = load_dictionary(tmp_path / "out" / "crosscoder")
    assert min(abs(s - 1) for s in saved.cfg["input_scale"]) > 0.05  # a scale left out or swapped would show
    summary = read_crosscoder(tiny_pair, tmp_path / "out" / "crosscoder", tmp_path / "fresh", tmp_path / "read",
                              n_exchanges=6, progress=False)
    assert summary["layer"] == 1 and summary["trained"]["held_out"] == trained["held_out"]
    assert summary["fresh_text"]["tokens"] == summary["corpus_tokens"] - summary["corpus_texts"]  # BOS rows left out
    a = pd.read_csv(tmp_path / "out" / "causal_test.csv").set_index(["set", "kind"])
    b = pd.read_csv(tmp_path / "read" / "causal_test.csv").set_index(["set", "kind"])
    for key in [("every latent", "all"), ("bias only", "all"), ("every latent", "response")]:
        assert b.loc[key, "closed"] == pytest.approx(a.loc[key, "closed"], abs=1e-4), key
    for name in ("latent_classes.csv", "latent_contexts.csv", "report.html", "summary.json"):
        assert (tmp_path / "read" / name).is_file(), name
    from interp.dictionary import BatchTopKSAE
    from interp.dictionary.io import save_dictionary

    sae = BatchTopKSAE(64, 8, k=2)
    sae.threshold.fill_(0.5)
    save_dictionary(sae, tmp_path / "sae", hook_name="blocks.1.hook_resid_post", hook_layer=1)
    with pytest.raises(ValueError, match="two-model crosscoder"):
        read_crosscoder(tiny_pair, tmp_path / "sae", tmp_path / "fresh", tmp_path / "read2", progress=False)


def test_the_cli_refuses_read_without_a_crosscoder_folder(tmp_path):
    from typer.testing import CliRunner

    from interp.cli import app

    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "corpus.json").write_text("{}")
    res = CliRunner().invoke(app, ["dictionary", "--corpus", str(tmp_path / "corpus"), "--read", str(tmp_path / "none")])
    text = " ".join(res.output.replace("│", " ").split())  # the error box wraps lines
    assert res.exit_code != 0 and "holds no cfg.json" in text and "--read" in text


def test_the_default_pair_ships_its_crosscoder():
    """The artefact `interp demo` and notebook 06 read: sae-lens layout, bf16, the layer, the scales
    it was trained with and its held-out statistics on record."""
    from interp.dictionary.io import load_dictionary, shipped_crosscoder

    folder = shipped_crosscoder("default")
    assert folder is not None and folder.name == "crosscoder"
    size = sum(f.stat().st_size for f in folder.iterdir())
    assert size < 25e6  # the bound for shipping in data/
    cc = load_dictionary(folder)
    assert cc.cfg["dtype"] == "bfloat16" and cc.cfg["hook_name"] == f"blocks.{cc.cfg['hook_layer']}.hook_resid_post"
    assert cc.d_model == 640 and cc.n_models == 2 and len(cc.cfg["input_scale"]) == 2 and cc.cfg["threshold"] > 0
    held = cc.cfg["held_out"]
    assert {"fve_base", "fve_aligned", "l0", "dead", "tokens"} <= set(held) and held["tokens"] > 10_000
    assert cc.cfg["corpus"]["corpus_tokens"] >= 2_000_000  # the corpus size for the default artefact
    assert held["dead"] <= 0.05 and min(held["fve_base"], held["fve_aligned"]) >= 0.80 and held["l0"] <= 64
