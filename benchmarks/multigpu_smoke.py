"""GPU smoke test: a model loaded with a ``device_map`` (spread over two GPUs when there are two)
gives the numbers of the same model on one device, for every heavy path (store, sweeps, heads,
lens, ablation, generation). With one GPU the reference runs on the CPU.

Random-initialised Llama-shape model (weights cannot travel to the GPU machine), fp32, built and
saved locally, then loaded through ``interp.load_model`` twice: on ``cuda:0`` and split over
``cuda:0`` / ``cuda:1``. Prints one JSON line per check and a final ``{"ok": ...}`` line.

Run on a machine with 2 GPUs: ``python benchmarks/multigpu_smoke.py``.
"""

import json
import sys
import tempfile

import torch


def _tokenizer(vocab: int):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>", "<pad>"] + [f"w{i}" for i in range(vocab - 4)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


def main() -> int:
    import transformers as T

    from interp import hooks, load_model
    from interp.behavior import generate
    from interp.cache import cache_activations
    from interp.cache.capture import capture
    from interp.lens import logit_lens
    from interp.patching import (ablated, attribution_sweep, clean_activations, clean_resid_pre, head_sweep, hook_sweep, logit_diff,
                                 logits_at, resid_pre_sweep)
    from interp.prompts import encode
    from interp.runtime import input_device

    n_gpus = torch.cuda.device_count()
    assert n_gpus >= 1, "needs a GPU"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    V, L = 512, 4
    folder = tempfile.mkdtemp()
    torch.manual_seed(0)
    cfg = T.LlamaConfig(vocab_size=V, hidden_size=256, intermediate_size=512, num_hidden_layers=L, num_attention_heads=4,
                        num_key_value_heads=2, max_position_embeddings=256, bos_token_id=1, eos_token_id=2, pad_token_id=3)
    T.LlamaForCausalLM(cfg).save_pretrained(folder)
    _tokenizer(V).save_pretrained(folder)
    split_map = {"model.embed_tokens": 0, "model.rotary_emb": 0, "model.layers.0": 0, "model.layers.1": 0,
                 "model.layers.2": 1, "model.layers.3": 1, "model.norm": 1, "lm_head": 1}
    # The reference: the same weights on one device (cuda:0 with two GPUs; the CPU with one GPU, so
    # that inputs and results still cross devices). The model under test: loaded with a device_map
    # (split over both GPUs, or {"": 0} with one).
    one = load_model(folder, device="cuda:0" if n_gpus >= 2 else "cpu", dtype=torch.float32)
    two = load_model(folder, device_map=split_map if n_gpus >= 2 else {"": 0}, dtype=torch.float32)
    devices = sorted({str(p.device) for p in two.original_model.parameters()})
    print(json.dumps({"check": "placement", "one": str(input_device(one)), "two": devices,
                      "two_input": str(input_device(two))}))
    g = torch.Generator().manual_seed(1)
    texts = [" ".join(f"w{int(i)}" for i in torch.randint(0, V - 4, (n,), generator=g)) for n in (7, 12, 9)]
    results, ok = {}, True

    def check(name, a, b, tol=1e-4 if n_gpus >= 2 else 1e-3):  # GPU vs CPU kernels: 1e-3
        nonlocal ok
        diff = max(float((x.detach().float().cpu() - y.detach().float().cpu()).abs().max()) for x, y in zip(a, b))
        results[name] = diff
        ok &= diff <= tol
        print(json.dumps({"check": name, "max_abs_diff": diff, "ok": diff <= tol}))

    def attempt(name, fn, tol=1e-4 if n_gpus >= 2 else 1e-3):
        """Run one check; an exception fails it (with where it came from) and the next one runs."""
        nonlocal ok
        try:
            a, b = fn()
            check(name, a, b, tol)
        except Exception as e:
            import traceback

            ok = False
            print(json.dumps({"check": name, "error": f"{type(e).__name__}: {e}"[:300],
                              "where": [ln.strip() for ln in traceback.format_exc().splitlines() if "interp/" in ln][-3:]}))

    batch = encode(one.tokenizer, texts)
    sites = [(k, layer) for k in ("resid_pre", "resid_post", "attn_out", "mlp_out") for layer in range(L)]

    def _capture():
        got = [capture(m, batch, sites, ["last", "all"]) for m in (one, two)]
        return [got[0][k] for k in sorted(got[0])], [got[1][k] for k in sorted(got[0])]

    attempt("capture", _capture)
    attempt("clean_resid_pre", lambda: ([clean_resid_pre(one, batch)], [clean_resid_pre(two, batch)]))
    attempt("logits_at", lambda: ([logits_at(one, batch)], [logits_at(two, batch)]))
    metric = logit_diff([5, 6, 7], [8, 9, 10])
    values = clean_resid_pre(one, batch)
    for packed in (None, False):
        attempt(f"resid_pre_sweep packed={packed}", lambda packed=packed: (
            [resid_pre_sweep(one, batch, values, metric, packed=packed)],
            [resid_pre_sweep(two, batch, values, metric, packed=packed)]))
    for kind in ("attn_out", "mlp_out", "resid_mid"):
        for packed in (None, False):
            attempt(f"hook_sweep {kind} packed={packed}", lambda kind=kind, packed=packed: (
                [hook_sweep(one, batch, clean_activations(one, batch, kind), metric, kind=kind, packed=packed)],
                [hook_sweep(two, batch, clean_activations(one, batch, kind), metric, kind=kind, packed=packed)]))
    attempt("head_sweep", lambda: ([head_sweep(one, batch, clean_activations(one, batch, "z"), metric)],
                                   [head_sweep(two, batch, clean_activations(one, batch, "z"), metric)]))
    for kind in ("resid_pre", "mlp_out"):
        attempt(f"attribution_sweep {kind}", lambda kind=kind: (
            [attribution_sweep(one, batch, clean_activations(one, batch, kind), metric, kind=kind)],
            [attribution_sweep(two, batch, clean_activations(one, batch, kind), metric, kind=kind)]))

    def _similarity():
        from interp import ModelPair
        from interp.diffing import representation_similarity

        got = [representation_similarity(ModelPair(m, m), texts, style="plain", progress=False).to_frame()
               for m in (one, two)]
        cols = ["cosine", "cka", "rel_diff"]
        return [torch.tensor(got[0][cols].to_numpy())], [torch.tensor(got[1][cols].to_numpy())]

    attempt("representation_similarity", _similarity)
    attempt("logit_lens", lambda: tuple([torch.tensor(logit_lens(m, batch, [5, 6, 7])["logit"].to_numpy())]
                                        for m in (one, two)))
    d = torch.randn(2, 256, generator=g)

    def _ablation():
        abl = []
        for m in (one, two):
            with ablated(m, d):
                logits, cache = m.run_with_cache(batch.input_ids.to(input_device(m)),
                                                 attention_mask=batch.attention_mask.to(input_device(m)))
                abl.append([logits_at(m, batch), logits[:, -1], cache[hooks.resid_pre(3)]])
        return abl[0], abl[1]

    attempt("ablation (fast path and run_with_cache)", _ablation)

    def _steering():
        from interp.unmask.interventions import Steering

        outs = []
        for m in (one, two):
            iv = Steering(layer=2, positions="all", vector=4.0 * d[0])
            with iv.applied(m):
                outs.append([logits_at(m, batch)])
        return outs[0], outs[1]

    attempt("steering (unmask intervention)", _steering)

    def _generate():
        gen = [generate(m, texts, max_new_tokens=6, return_ids=True) for m in (one, two)]
        return [torch.tensor(float(gen[0] != gen[1]))], [torch.tensor(0.0)]

    attempt("generate (greedy ids identical)", _generate, tol=0)

    def _store():
        stores = [cache_activations(m, texts, layers=range(L), hooks=["resid_pre", "resid_post", "mlp_out"],
                                    positions=["last", "all"], out_dir=f"{folder}/store{i}", progress=False)
                  for i, m in enumerate((one, two))]
        return ([stores[0].get("model", layer, hook=h) for layer in range(L) for h in ("resid_pre", "mlp_out")],
                [stores[1].get("model", layer, hook=h) for layer in range(L) for h in ("resid_pre", "mlp_out")])

    attempt("cache_activations", _store)
    print(json.dumps({"ok": bool(ok), **{k: v for k, v in results.items()}}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
