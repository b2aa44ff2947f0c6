"""Dictionaries: BatchTopK rule and threshold, planted-feature recovery and classes, Latent
Scaling on a hand-built artefact, sae-lens round trip (folded input scale, JumpReLU thresholds,
what sae-lens's config fields ask; against sae-lens itself in test_sae_lens_interop.py), the
two-file artefact's checksum, one-shot iterators, paired rows from a store and their split by text."""

import json

import pytest
import torch

from interp.dictionary import (
    BatchTopKSAE, Crosscoder, PlantedData, TrainConfig, latent_classes, latent_scaling, planted_benchmark,
    reconstruction_stats, train_dictionary,
)
from interp.dictionary.io import load_dictionary, save_dictionary


def test_batch_topk_keeps_k_per_token_on_average_and_the_threshold_matches_it():
    torch.manual_seed(0)
    cc = Crosscoder(16, 64, 2, k=4)
    x = torch.randn(256, 2, 16)
    f = cc.encode(x, batch_rule=True)
    assert int((f > 0).sum()) == 4 * 256
    cc.fit_threshold([torch.randn(256, 2, 16) for _ in range(8)])
    l0 = float((cc.encode(torch.randn(4096, 2, 16), batch_rule=False) > 0).sum(-1).float().mean())
    assert 3.0 <= l0 <= 5.0  # per-token rule, no batch dependence, about k on average
    one = cc.encode(x[:1], batch_rule=False)
    assert torch.allclose(one, cc.encode(x, batch_rule=False)[:1], atol=1e-5)


def test_planted_features_are_recovered_and_classed():
    data = PlantedData(d_model=32, n_features=48, seed=3)
    result = planted_benchmark(data, cfg=TrainConfig(steps=1500, lr=2e-3, warmup=50, dead_after=20_000, aux_k=16))
    assert result["planted_recovered"] >= 0.9 and result["planted_class_accuracy"] >= 0.9, result
    assert result["final_fve"] > 0.9


def _artefact_crosscoder(d: int = 8) -> Crosscoder:
    """Four latents on orthonormal directions u0..u3 (ReLU encoder, decoder biases along u5 / u6):
    0, 1, 2 aligned-only (aligned decoder u0, u1, u2; encoders read the aligned side), 3 base-only
    (base decoder u1; encoder reads the base side along u1)."""
    cc = Crosscoder(d, 4, 2, k=None)
    u = torch.eye(d)
    with torch.no_grad():
        for p_ in (cc.W_enc, cc.W_dec, cc.b_enc):
            p_.zero_()
        for j in range(3):
            cc.W_dec[j, 1], cc.W_enc[1, :, j] = u[j], u[j]
        cc.W_dec[3, 0], cc.W_enc[0, :, 3] = u[1], u[1]
        cc.b_dec.copy_(torch.stack([2.0 * u[5], -1.5 * u[6]]))
    return cc.eval()


def test_latent_scaling_tells_shrinkage_decoupling_and_genuine_latents_apart():
    """Closed-form cases of Minder et al.'s two artefacts. Where the aligned side has a_j u_j:
    latent 0, complete shrinkage: the base carries 0.8 a_0 u0 but no latent reconstructs it (it
    stays in the base's error): nu_error = 0.8, nu_recon = 0. Latent 1, decoupling: the base
    carries 0.7 a_1 u1 and the base-only latent 3 reconstructs it: nu_recon = 0.7, nu_error = 0
    (and latent 3, seen from the base, is decoupled from latent 1: nu_recon = 1 / 0.7). Latent 2,
    genuine: the base has nothing along u2: both 0. A beta fitted against the raw activations
    (reconstruction + error) would give latent 0 nu_recon = 0.8 and call shrinkage decoupling."""
    torch.manual_seed(0)
    d, n = 8, 600
    cc = _artefact_crosscoder(d)
    u = torch.eye(d)
    a = (torch.rand(n, 3) + 0.5) * (torch.rand(n, 3) < 0.6)  # sparse, positive activations
    x = torch.zeros(n, 2, d)
    x[:, 1] = a @ u[:3] + cc.b_dec[1].detach()
    x[:, 0] = 0.8 * a[:, :1] * u[0] + 0.7 * a[:, 1:2] * u[1] + cc.b_dec[0].detach()
    x[:, 0] += torch.randn(n, 1) * u[7]  # base-only noise orthogonal to every latent
    got = latent_scaling(cc, [x[:300], x[300:]], latent_classes(cc))
    assert got["class"].tolist() == ["aligned-only", "aligned-only", "aligned-only", "base-only"]
    want_recon, want_error = [0.0, 0.7, 0.0, 1 / 0.7], [0.8, 0.0, 0.0, 0.0]
    assert got.nu_recon.tolist() == pytest.approx(want_recon, abs=1e-5)
    assert got.nu_error.tolist() == pytest.approx(want_error, abs=1e-5)
    assert got.beta_recon_own.tolist() == pytest.approx([1.0] * 4, abs=1e-5)  # each latent's own side: itself
    assert got.artefact.tolist() == ["complete shrinkage", "latent decoupling", "genuine", "latent decoupling"]
    assert got.final_class.tolist() == ["shared", "shared", "aligned-only", "shared"]
    strict = latent_scaling(cc, [x], latent_classes(cc), max_nu_error=0.9, max_nu_recon=2.0)  # the cut-offs decide
    assert strict.final_class.tolist() == ["aligned-only", "aligned-only", "aligned-only", "base-only"]
    silent = latent_scaling(cc, [x * torch.tensor([1.0, 0.0])[None, :, None]], latent_classes(cc))
    assert silent.artefact[0] == "never fired" and silent.final_class[0] == "aligned-only"


def test_sae_lens_layout_round_trip(tmp_path):
    torch.manual_seed(0)
    cc = Crosscoder(16, 32, 2, k=4)
    train_dictionary(cc, [torch.randn(128, 2, 16) for _ in range(4)], TrainConfig(steps=20, warmup=2), progress=False)
    save_dictionary(cc, tmp_path / "cc", hook_name="blocks.3.hook_resid_post", hook_layer=3, model_name="tiny")
    cfg = json.loads((tmp_path / "cc" / "cfg.json").read_text())
    assert cfg["architecture"] == "crosscoder-batchtopk" and cfg["d_sae"] == 32 and cfg["n_models"] == 2
    back = load_dictionary(tmp_path / "cc")
    x = torch.randn(64, 2, 16)
    assert torch.allclose(back(x)[0], cc(x)[0], atol=1e-6)
    sae = BatchTopKSAE(16, 24, k=3)
    with pytest.raises(ValueError, match="without its inference threshold"):
        save_dictionary(sae, tmp_path / "sae", hook_name="blocks.1.hook_resid_post", hook_layer=1)
    sae.fit_threshold([torch.randn(64, 16) for _ in range(2)])
    save_dictionary(sae, tmp_path / "sae", hook_name="blocks.1.hook_resid_post", hook_layer=1)
    from safetensors.torch import load_file

    weights = load_file(str(tmp_path / "sae" / "sae_weights.safetensors"))
    assert {k: tuple(v.shape) for k, v in weights.items()} == {"W_enc": (16, 24), "W_dec": (24, 16), "b_enc": (24,),
                                                               "b_dec": (16,), "threshold": (24,)}
    cfg = json.loads((tmp_path / "sae" / "cfg.json").read_text())
    assert cfg["architecture"] == "jumprelu" and cfg["interp_architecture"] == "batchtopk"  # as sae-lens exports BatchTopK
    x = torch.randn(32, 16)
    assert torch.equal(load_dictionary(tmp_path / "sae").encode(x) > 0, sae.encode(x, batch_rule=False) > 0)
    cfg["architecture"] = "topk"  # as sae-lens writes a top-k SAE
    (tmp_path / "sae" / "cfg.json").write_text(json.dumps(cfg))
    topk = load_dictionary(tmp_path / "sae")
    assert ((topk.encode(torch.randn(10, 16)) > 0).sum(-1) <= 3).all()
    cfg["architecture"] = "gated"
    (tmp_path / "sae" / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="architecture 'gated' is not supported"):
        load_dictionary(tmp_path / "sae")


def test_reconstruction_stats_and_bad_shapes():
    torch.manual_seed(0)
    data = PlantedData(d_model=16, n_features=16, seed=1)
    cc = Crosscoder(16, 32, 2, k=2)
    train_dictionary(cc, data.batches(256, 50), TrainConfig(steps=200, lr=3e-3, warmup=10), progress=False)
    stats = reconstruction_stats(cc, data.batches(256, 4))
    assert set(stats) >= {"fve_base", "fve_aligned", "l0", "dead", "dense"} and stats["fve_base"] > 0.5
    with pytest.raises(ValueError, match=r"batches must be \[batch, 2, d_model\]"):
        train_dictionary(cc, [torch.randn(8, 3, 16)], TrainConfig(steps=1, warmup=1), progress=False)


def test_paired_rows_need_one_format_for_both_sides(tiny_gemma_dir, tmp_path):
    from interp import ModelSpec, load_pair
    from interp.cache import cache_activations
    from interp.dictionary.data import paired_batches, paired_rows

    pair = load_pair((str(tiny_gemma_dir), ModelSpec(str(tiny_gemma_dir), chat_template="gemma", prompt_style="chat")),
                     device="cpu")
    texts = ["the fox sat on the mat", "a cat ran", "where is the big red fox"]
    own = cache_activations(pair, texts, layers=[1], positions=["all"], out_dir=tmp_path / "own", progress=False)
    with pytest.raises(ValueError, match="formatted differently"):
        paired_rows(own, 1)
    same = cache_activations(pair, texts, layers=[1], positions=["all"], out_dir=tmp_path / "same", style="chat",
                             progress=False)
    rows = paired_rows(same, 1)
    assert rows.shape[1] == 2 and torch.allclose(rows[:, 0], rows[:, 1])  # same weights, same tokens
    batch = next(paired_batches(rows, 8))
    assert batch.shape == (8, 2, rows.shape[-1])
    assert batch.pow(2).sum(-1).mean() == pytest.approx(rows.shape[-1], rel=0.5)


def test_a_batch_topk_sae_trains_on_its_own_reconstruction_error():
    """An SAE decodes to [batch, d]; its loss must compare each row with its own reconstruction
    (a [batch, 1, d] - [batch, d] broadcast once compared every row with every reconstruction)."""
    g = torch.Generator().manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(48, 32, generator=g), dim=-1)
    rows = []
    for _ in range(8):
        codes = (torch.rand(256, 48, generator=g) < 0.06).float() * (1 + torch.rand(256, 48, generator=g))
        rows.append(codes @ feats)
    sae = BatchTopKSAE(32, 96, k=4)
    history = train_dictionary(sae, rows, TrainConfig(steps=400, lr=3e-3, warmup=20), progress=False)
    x = rows[0]
    with torch.no_grad():
        sae.train()
        err = (x - sae.decode(sae.encode(x))).pow(2).sum(-1).mean()
    assert history.mse.iloc[-1] < 0.2 * history.mse.iloc[0]
    assert float(err) < 0.3 * float(x.pow(2).sum(-1).mean())  # the batch-rule reconstruction of real rows
    sae.eval()
    assert reconstruction_stats(sae, rows)["fve_model"] > 0.7


@pytest.mark.parametrize("n_models", [1, 2])
def test_the_sparse_decode_gives_the_dense_loss_and_gradients(n_models):
    """Training decodes only the active latents (embedding_bag); the loss and every gradient equal
    the dense [batch, width] @ [width, d] computation of the same BatchTopK code."""
    torch.manual_seed(0)
    model = Crosscoder(16, 64, n_models, k=4)
    x = torch.randn(32, n_models, 16)
    pre, rows, cols, vals = model.batch_topk_sparse(x)
    sparse = (x - Crosscoder.decode_sparse(model, rows, cols, vals, 32)).pow(2).sum(-1).mean()
    sparse.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    f = model.encode(x, batch_rule=True)
    dense = (x - Crosscoder.decode(model, f)).pow(2).sum(-1).mean()
    dense.backward()
    assert torch.allclose(sparse, dense, atol=1e-5)
    assert int((f > 0).sum()) == int((vals > 0).sum())
    for n, p in model.named_parameters():
        assert torch.allclose(grads[n], p.grad, atol=1e-5), n


def test_sparse_and_dense_training_follow_the_same_path():
    rows = [torch.randn(64, 2, 16, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    runs = []
    for sparse in (True, False):
        model = Crosscoder(16, 64, 2, k=4)
        hist = train_dictionary(model, rows, TrainConfig(steps=30, lr=1e-3, warmup=5, sparse_decode=sparse), progress=False)
        runs.append((hist, model.W_dec.detach().clone()))
    assert torch.allclose(runs[0][1], runs[1][1], atol=1e-4)
    assert abs(runs[0][0].mse.iloc[-1] - runs[1][0].mse.iloc[-1]) < 1e-4
    assert TrainConfig().sparse_for(Crosscoder(16, 64, 2, k=4), torch.device("cpu"))
    assert not TrainConfig().sparse_for(Crosscoder(16, 64, 2, k=4), torch.device("cuda"))  # small: dense on a GPU
    assert not TrainConfig().sparse_for(Crosscoder(16, 64, 2, k=None), torch.device("cpu"))  # L1: dense


def test_the_decoder_bias_starts_at_the_mean_so_a_large_mean_does_not_kill_the_latents():
    """Residual streams carry a large mean (92% of the squared norm at the default pair's middle
    layers): with the decoder bias started at zero, a few always-on latents absorb it and most die."""
    from interp.dictionary import Crosscoder, TrainConfig, reconstruction_stats, train_dictionary

    g = torch.Generator().manual_seed(0)
    d, n_feat = 32, 64
    feats = torch.nn.functional.normalize(torch.randn(n_feat, 2, d, generator=g), dim=-1)
    mean = 12 * torch.nn.functional.normalize(torch.randn(2, d, generator=g), dim=-1)

    def batch(n: int) -> torch.Tensor:
        on = torch.rand(n, n_feat, generator=g) < 3 / n_feat
        return mean + torch.einsum("bf,fmd->bmd", on * torch.rand(n, n_feat, generator=g), feats)

    data, held = [batch(256) for _ in range(300)], [batch(2048)]
    got = {}
    for init in (False, True):
        torch.manual_seed(0)
        cc = Crosscoder(d, 128, 2, k=3)
        train_dictionary(cc, iter(data), TrainConfig(steps=300, lr=2e-3, warmup=20, dead_after=5000, init_bias=init),
                         progress=False)
        got[init] = reconstruction_stats(cc, held)
    assert got[True]["fve_base"] > got[False]["fve_base"] + 0.1 and got[True]["dead"] < got[False]["dead"]


def test_a_one_shot_iterator_that_ends_early_is_refused_with_the_fix_and_a_list_is_cycled():
    """The docstring promised cycling; a generator / iter(list) cannot be restarted and used to
    end training with a bare StopIteration."""
    torch.manual_seed(0)
    data = [torch.randn(32, 2, 8) for _ in range(3)]
    cfg = TrainConfig(steps=5, warmup=1)
    with pytest.raises(ValueError, match=r"ran out after 3 of 5 steps and a one-shot iterator .* pass a list"):
        train_dictionary(Crosscoder(8, 16, 2, k=2), iter(data), cfg, progress=False)
    with pytest.raises(ValueError, match="one-shot iterator"):
        train_dictionary(Crosscoder(8, 16, 2, k=2), (b for b in data), cfg, progress=False)
    with pytest.raises(ValueError, match="yielded nothing"):
        train_dictionary(Crosscoder(8, 16, 2, k=2), [], cfg, progress=False)
    history = train_dictionary(Crosscoder(8, 16, 2, k=2), data, TrainConfig(steps=8, warmup=1), progress=False)
    assert history.step.iloc[-1] == 7  # a list: cycled


def test_a_save_killed_between_the_two_files_is_refused_on_load(tmp_path, monkeypatch):
    """Weights first, then cfg.json with their checksum: new weights beside an old config (a
    writer killed in between) must not load as one dictionary."""
    import interp.dictionary.io as dictionary_io

    first, second = Crosscoder(8, 16, 2, k=2, seed=0), Crosscoder(8, 16, 2, k=2, seed=1)
    save_dictionary(first, tmp_path, hook_name="blocks.1.hook_resid_post", hook_layer=1)
    assert torch.equal(load_dictionary(tmp_path).W_dec, first.W_dec)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies after the weights, before the config

    monkeypatch.setattr(dictionary_io, "write_json_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        save_dictionary(second, tmp_path, hook_name="blocks.1.hook_resid_post", hook_layer=1)
    with pytest.raises(ValueError, match="does not belong to cfg.json"):
        load_dictionary(tmp_path)


def test_the_input_scale_is_folded_so_raw_activations_encode_right(tmp_path):
    """interp trains on activations times a per-model factor; the saved weights must encode raw
    activations (what a reader that never heard of interp does), and interp unfolds them."""
    from safetensors.torch import load_file

    torch.manual_seed(0)
    cc = Crosscoder(8, 32, 2, k=3)
    with torch.no_grad():
        cc.b_dec.copy_(torch.randn(2, 8))
    s = torch.tensor([0.01, 0.03])
    raw = torch.randn(256, 2, 8) * 40 + 100
    cc.fit_threshold([raw * s[None, :, None]])
    save_dictionary(cc, tmp_path, hook_name="blocks.1.hook_resid_post", hook_layer=1, input_scale=s)
    t = load_file(str(tmp_path / "sae_weights.safetensors"))
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    assert cfg["normalize_activations"] == "none" and cfg["input_scale"] == pytest.approx(s.tolist())
    pre = torch.relu(torch.einsum("bmd,mdw->bw", raw - t["b_dec"], t["W_enc"]) + t["b_enc"])
    assert torch.allclose(pre, cc.pre_acts(raw * s[None, :, None]), atol=1e-4)
    f = cc.encode(raw * s[None, :, None], batch_rule=False)
    recon = torch.einsum("bw,wmd->bmd", f, t["W_dec"]) + t["b_dec"]
    assert torch.allclose(recon, cc.decode(f) / s[None, :, None], rtol=1e-5, atol=1e-3)  # raw units
    back = load_dictionary(tmp_path)
    assert back.cfg["input_scale"] == pytest.approx(s.tolist())
    assert torch.allclose(back.W_enc, cc.W_enc, rtol=1e-5) and torch.allclose(back.b_dec, cc.b_dec, rtol=1e-5)
    with pytest.raises(ValueError, match="pass input_scale="):
        save_dictionary(cc, tmp_path, hook_name="h", hook_layer=1, extra={"input_scale": [1.0, 1.0]})


def test_sae_lens_fields_are_honoured_or_refused(tmp_path):
    """apply_b_dec_to_input, JumpReLU thresholds and the normalisations sae-lens writes, in files
    laid out as sae-lens writes them (the real sae-lens: test_sae_lens_interop.py)."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    d, w = 8, 20
    t = {"W_enc": torch.randn(d, w), "W_dec": torch.randn(w, d), "b_enc": torch.randn(w) * 0.1, "b_dec": torch.randn(d),
         "threshold": torch.rand(w)}
    x = torch.randn(64, d) * 2

    def write(name, **cfg):
        folder = tmp_path / name
        folder.mkdir()
        save_file(t, str(folder / "sae_weights.safetensors"))
        (folder / "cfg.json").write_text(json.dumps({"d_in": d, "d_sae": w, "dtype": "float32", **cfg}))
        return folder

    sae = load_dictionary(write("jump", architecture="jumprelu", apply_b_dec_to_input=False))
    pre = x @ t["W_enc"] + t["b_enc"]
    want = torch.relu(pre) * (pre > t["threshold"])
    assert torch.allclose(sae.encode(x), want, atol=1e-6) and not sae.apply_b_dec_to_input
    assert torch.allclose(sae(x)[0], want @ t["W_dec"] + t["b_dec"], atol=1e-5)
    with pytest.raises(ValueError, match=r"input_scale=<factor>"):
        load_dictionary(write("avg", architecture="standard", normalize_activations="expected_average_only_in"))
    assert load_dictionary(tmp_path / "avg", input_scale=0.5).cfg["input_scale"] == [0.5]
    with pytest.raises(ValueError, match="attention heads"):
        load_dictionary(write("head", architecture="standard", hook_name="blocks.0.attn.hook_z", hook_head_index=3))
    ln = load_dictionary(write("ln", architecture="standard", normalize_activations="layer_norm"))
    with pytest.raises(ValueError, match=r"pass decode\(f, like=x\)"):
        ln.decode(ln.encode(x))
    mu, sd = x.mean(-1, keepdim=True), (x - x.mean(-1, keepdim=True)).std(-1, keepdim=True)
    z = (x - mu) / (sd + 1e-5)
    f = torch.relu((z - t["b_dec"]) @ t["W_enc"] + t["b_enc"])
    assert torch.allclose(ln(x)[0], (f @ t["W_dec"] + t["b_dec"]) * sd + mu, atol=1e-4)
