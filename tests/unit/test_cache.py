import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from interp import ModelSpec, encode, format_prompt, hooks, load_hf, load_pair
from interp.cache import ActivationStore, cache_activations
from interp.cache import run as cache_run
from interp.data import arithmetic_statements

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pair(tiny_gemma_dir):
    return load_pair((str(tiny_gemma_dir), ModelSpec(str(tiny_gemma_dir), chat_template="gemma", prompt_style="chat")),
                     device="cpu")


@pytest.fixture(scope="module")
def data():
    ds = arithmetic_statements(40, digits=(1, 2, 3))
    return ds


def _digest(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted((folder / "shards").glob("*.safetensors"))}


def test_values_equal_run_with_cache_and_hf_hidden_states(pair, data, tmp_path, tiny_gemma_dir):
    store = cache_activations(pair, data, layers=[0, 1], hooks=["resid_pre", "resid_post", "mlp_out"],
                              positions=["last", "span_last", "all"], batch_size=7, shard_size=16, out_dir=tmp_path / "c",
                              progress=False)
    assert store.complete and store.info()["examples"] == 40
    hf, _ = load_hf(str(tiny_gemma_dir), device="cpu")
    for side in ("base", "aligned"):
        model, style = pair.side(side), pair.style(side)
        texts = [format_prompt(t, style=style, tokenizer=model.tokenizer) for t in data["text"]]
        batch = encode(model.tokenizer, texts, spans=data["subject"])  # one left-padded batch of all 40
        names = [hooks.name(h, layer) for h in ("resid_pre", "resid_post", "mlp_out") for layer in (0, 1)]
        with torch.inference_mode():
            _, ref = model.run_with_cache(batch.input_ids, attention_mask=batch.attention_mask, names_filter=names)
            hs = hf(batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True).hidden_states
        rows = torch.arange(40)
        for pos in ("last", "span_last"):
            for h in ("resid_pre", "resid_post", "mlp_out"):
                for layer in (0, 1):
                    got = store.get(side, layer, h, pos)
                    want = ref[hooks.name(h, layer)][rows, batch.positions[pos]]
                    assert (got - want).abs().max().item() <= 1e-4, (side, pos, h, layer)
            # HF hidden_states[l + 1] is the residual after block l (the last one is normed, so layer 0 only).
            assert (store.get(side, 0, "resid_post", pos) - hs[1][rows, batch.positions[pos]]).abs().max().item() <= 1e-4
            assert (store.get(side, 0, "resid_pre", pos) - hs[0][rows, batch.positions[pos]]).abs().max().item() <= 1e-4
        all_rows = store.get(side, 1, "resid_post", "all")
        assert all_rows.shape[0] == int(batch.attention_mask.sum()) == len(store.token_examples(side))
        assert (all_rows - ref[hooks.resid_post(1)][batch.attention_mask.bool()]).abs().max().item() <= 1e-4
    frame = store.frame()
    assert list(frame["label"]) == list(data["label"]) and list(frame["id"]) == list(data["id"])


def test_resume_after_a_kill_gives_identical_bytes(pair, data, tmp_path, monkeypatch):
    kwargs = dict(layers=[1], positions=["last"], batch_size=8, shard_size=8, progress=False)
    cache_activations(pair, data, out_dir=tmp_path / "whole", **kwargs)
    real_save, calls = cache_run.save_file, {"n": 0}

    def dying_save(tensors, path):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # killed while writing the 4th shard
        real_save(tensors, path)

    monkeypatch.setattr(cache_run, "save_file", dying_save)
    with pytest.raises(KeyboardInterrupt):
        cache_activations(pair, data, out_dir=tmp_path / "resumed", **kwargs)
    partial = ActivationStore.open(tmp_path / "resumed")
    assert not partial.complete and len(partial.manifest["shards"]) == 3
    monkeypatch.setattr(cache_run, "save_file", real_save)
    resumed = cache_activations(pair, data, out_dir=tmp_path / "resumed", **kwargs)
    assert resumed.complete
    assert _digest(tmp_path / "resumed") == _digest(tmp_path / "whole")
    assert not [p for p in (tmp_path / "resumed" / "shards").iterdir() if p.name.startswith(".")]


def test_different_arguments_into_the_same_folder(pair, data, tmp_path):
    cache_activations(pair, data, layers=[1], out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"holds a cache made with different arguments \(layers differ\)"):
        cache_activations(pair, data, layers=[0], out_dir=tmp_path, progress=False)


def test_bad_arguments(pair, data, tmp_path):
    with pytest.raises(ValueError, match="unknown position 'first'"):
        cache_activations(pair, data, layers=[0], positions=["first"], out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="layer 5 is out of range for a model with 2 layers"):
        cache_activations(pair, data, layers=[5], out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="need 'subject' / 'answer' columns"):
        cache_activations(pair, ["a b"], layers=[0], positions=["span_last"], out_dir=tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="holds no manifest.json"):
        ActivationStore.open(tmp_path / "nothing")


def test_store_reads_are_memory_mapped(pair, data, tmp_path):
    store = cache_activations(pair, data, layers=[0], batch_size=8, shard_size=100, out_dir=tmp_path, progress=False)
    x = store.get("base", 0)
    assert x.shape == (40, pair.d_model)
    assert not x.is_contiguous() or x.untyped_storage().nbytes() >= x.numel() * 4  # a view on the mmap
    with pytest.raises(KeyError, match="layer 3 is not in this store"):
        store.get("base", 3)


def _run_worker(tiny_gemma_dir, out, n, shard, extra_env=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(extra_env or {})}
    args = [str(tiny_gemma_dir), str(out), str(n), str(shard), "resid_pre,resid_mid,resid_post,attn_out,mlp_out",
            "last,span_last,answer_first,answer_last"]
    res = subprocess.run([sys.executable, str(ROOT / "tests" / "cache_worker.py"), *args], env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    return int(res.stdout.split("PEAK_RSS_KB")[1].split()[0]) * 1024


@pytest.mark.slow
def test_peak_memory_is_bounded_by_the_shard_not_the_dataset(tiny_gemma_dir, tmp_path):
    small = _run_worker(tiny_gemma_dir, tmp_path / "small", 200, 100)
    large = _run_worker(tiny_gemma_dir, tmp_path / "large", 2000, 100)
    # One example: 5 hooks x 2 layers x 4 positions x 64 floats x 4 bytes, for 2 sides.
    per_example = 5 * 2 * 4 * 64 * 4 * 2
    shard = 100 * per_example
    growth = large - small
    assert growth <= shard + 8 * 2**20, (growth, shard)
    assert 1800 * per_example > shard + 8 * 2**20  # had the run kept everything, this test would fail


def test_probe_store_on_a_cached_pair(pair, tmp_path):
    from interp.probes import probe_store

    ds = arithmetic_statements(120, digits=(1, 2))
    store = cache_activations(pair, ds, layers=[0, 1], positions=["last"], batch_size=32, out_dir=tmp_path, progress=False)
    frame, probes = probe_store(store, n_boot=10)
    assert {"base", "aligned", "base->aligned", "aligned->base", "base~aligned"} <= set(frame["model"])
    assert set(probes) == {"base", "aligned"} and probes["base"]["logistic"].w.shape == (2, pair.d_model)
    with pytest.raises(ValueError, match="need train and test rows"):
        probe_store(store, train_mask=[False] * 120)


def test_probe_store_in_layer_groups_gives_the_same_figures(pair, tmp_path, monkeypatch):
    from interp.probes import pipeline, probe_store

    ds = arithmetic_statements(120, digits=(1, 2))
    store = cache_activations(pair, ds, layers=[0, 1], positions=["last"], batch_size=32, out_dir=tmp_path, progress=False)
    whole, probes = probe_store(store, n_boot=10)
    read = []
    real = pipeline.stack_layers
    monkeypatch.setattr(pipeline, "stack_layers", lambda *a, **k: read.append(k.get("layers")) or real(*a, **k))
    one_layer = 1.5 * 120 * pair.d_model * 4 * 2 / 2**30  # room for one layer of both sides
    grouped, gprobes = probe_store(store, n_boot=10, max_memory_gb=one_layer)
    assert read == [[0], [0], [1], [1]]  # one layer of each side at a time, never the whole stack
    key = ["model", "probe", "split", "metric", "layer"]
    a, b = (f.sort_values(key).reset_index(drop=True) for f in (whole, grouped))
    pd.testing.assert_frame_equal(a[key], b[key])
    # A layer's fit, scores and metrics do not depend on the layers fitted beside it (each layer's
    # own standardisation floor and products), so every figure is the same to float precision.
    off = ~np.isclose(a.value, b.value, atol=1e-6, equal_nan=True)
    assert not off.any(), a[off]
    assert np.allclose(a.ci_low, b.ci_low, atol=1e-6, equal_nan=True)
    assert np.allclose(a.ci_high, b.ci_high, atol=1e-6, equal_nan=True)
    for side in ("base", "aligned"):
        assert torch.allclose(probes[side]["logistic"].w, gprobes[side]["logistic"].w, atol=1e-6)
        assert probes[side]["logistic"].C == gprobes[side]["logistic"].C
    with pytest.raises(ValueError, match="max_memory_gb must be > 0"):
        probe_store(store, max_memory_gb=0.0)


def test_a_partial_store_refuses_reads_unless_asked_and_then_rows_line_up(pair, data, tmp_path, monkeypatch):
    kwargs = dict(layers=[1], positions=["last"], batch_size=8, shard_size=8, progress=False, sides=["aligned"])
    whole = cache_activations(pair, data, out_dir=tmp_path / "whole", **kwargs)
    real_save, calls = cache_run.save_file, {"n": 0}

    def dying_save(tensors, path):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real_save(tensors, path)

    monkeypatch.setattr(cache_run, "save_file", dying_save)
    with pytest.raises(KeyboardInterrupt):
        cache_activations(pair, data, out_dir=tmp_path / "part", **kwargs)
    part = ActivationStore.open(tmp_path / "part")
    with pytest.raises(RuntimeError, match=r"incomplete store \(2 of 5 shards written\).*partial=True"):
        part.get("aligned", 1)
    with pytest.raises(RuntimeError, match="incomplete store"):
        part.frame()
    got, rows = part.get("aligned", 1, partial=True), part.frame(partial=True, side="aligned")
    assert got.shape[0] == len(rows) == 16 and part.rows("aligned") == list(range(16))
    assert torch.equal(got, whole.get("aligned", 1)[:16])
    assert rows.text.tolist() == whole.frame().text.tolist()[:16]


def test_examples_come_before_the_config_and_metadata_reads_back_exactly(pair, tmp_path, monkeypatch):
    import datasets

    ds = datasets.Dataset.from_dict({"text": ["a b", "c d"], "label": [1, 0], "code": ["068", "12"]})
    order = []
    real_examples, real_json = cache_run._write_examples, cache_run.write_json_atomic
    monkeypatch.setattr(cache_run, "_write_examples", lambda *a: (order.append("examples"), real_examples(*a)))
    monkeypatch.setattr(cache_run, "write_json_atomic", lambda *a, **k: (order.append(a[0].name), real_json(*a, **k)))
    store = cache_activations(pair, ds, layers=[0], out_dir=tmp_path, progress=False)
    assert order[:2] == ["examples", "config.json"]
    assert store.frame().code.tolist() == ["068", "12"]  # not re-typed to numbers


def test_resuming_with_other_weights_of_the_same_name_is_refused(pair, tmp_path):
    cache_activations(pair, ["a b", "c d"], layers=[0], out_dir=tmp_path, progress=False, sides=["base"])
    with torch.no_grad():
        p = next(pair.base.original_model.parameters())
        p.add_(1.0)
    try:
        with pytest.raises(ValueError, match=r"models \(the weights differ, not only the names\) differ"):
            cache_activations(pair, ["a b", "c d"], layers=[0], out_dir=tmp_path, progress=False, sides=["base"])
    finally:
        with torch.no_grad():
            p.sub_(1.0)


def test_capture_fast_true_refuses_the_bridge_path_instead_of_taking_it(pair):
    from interp.cache.capture import capture
    from interp.runtime import FastPathUnavailable

    model = pair.base
    batch = encode(model.tokenizer, ["the fox sat", "a red fox"])
    got = capture(model, batch, [("resid_post", 1)], ["last"], fast=True)
    with model.hooks(fwd_hooks=[(hooks.resid_post(0), lambda act, hook: act)]):
        with pytest.raises(FastPathUnavailable, match="TransformerLens hooks are active"):
            capture(model, batch, [("resid_post", 1)], ["last"], fast=True)
        hooked = capture(model, batch, [("resid_post", 1)], ["last"])  # fast=None: the bridge, same values
    assert torch.allclose(hooked[("resid_post", 1, "last")], got[("resid_post", 1, "last")], atol=1e-5)
    with pytest.raises(FastPathUnavailable, match="captures"):
        capture(model, batch, [("resid_mid", 1)], ["last"], fast=True)


def test_a_side_named_twice_is_cached_once(pair, data, tmp_path):
    from interp.cache.run import CacheConfig

    assert CacheConfig(layers=[1, 1], sides=["aligned", "aligned"], hooks=["resid_post"] * 2).sides == ["aligned"]
    store = cache_activations(pair, data, layers=[1], sides=["aligned", "aligned"], out_dir=tmp_path, progress=False)
    assert store.sides == ["aligned"] and store.get("aligned", 1).shape[0] == len(data) == len(store.frame())
    assert {s["side"] for s in store.manifest["shards"]} == {"aligned"}


def test_probing_a_store_without_entities_says_that_validation_is_not_entity_disjoint(pair, tmp_path):
    from interp.probes import probe_store

    ds = arithmetic_statements(60, digits=(1, 2)).remove_columns(["entity"])
    store = cache_activations(pair, ds, layers=[1], positions=["last"], out_dir=tmp_path, progress=False)
    with pytest.warns(UserWarning, match="no 'entity' column"):
        probe_store(store, n_boot=5)
