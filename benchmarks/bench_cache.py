"""Caching speed: interp vs HF forward and TransformerBridge.run_with_cache, same model, same batch.

Prints one JSON line per configuration with the fields of the issue:
model, device, batch, seq, tok_s_hf_full, tok_s_hf_body, tok_s_tl_cache, tok_s_interp,
interp_over_tl, interp_over_hf_body, max_abs_diff_vs_tl.

    .venv/bin/python benchmarks/bench_cache.py                         # CPU, real default base, 16 x 32
    python3 benchmarks/bench_cache.py --device cuda --random gemma-3-270m qwen2.5-0.5b llama-3.2-1b \
        --batch 32 --seq 256                                             # GPU, random weights, bf16
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.shapes import random_bridge, random_model  # noqa: E402
from interp import hooks  # noqa: E402
from interp.cache import capture  # noqa: E402
from interp.prompts import PromptBatch  # noqa: E402


def _time(fn, device: str, repeats: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, hf, bridge, device: str, batch: int, seq: int, repeats: int) -> dict:
    torch.manual_seed(0)
    vocab = bridge.cfg.d_vocab
    ids = torch.randint(4, min(vocab, 30000), (batch, seq), device=device)
    ids[:, 0] = 2
    mask = torch.ones_like(ids)
    pb = PromptBatch(ids, mask, {"last": torch.full((batch,), seq - 1, device=device)}, [""] * batch)
    layers = range(bridge.cfg.n_layers)
    names = [hooks.resid_post(layer) for layer in layers]
    sites = [("resid_post", layer) for layer in layers]
    tokens = batch * seq
    with torch.inference_mode():
        t_full = _time(lambda: hf(ids, attention_mask=mask), device, repeats)
        t_body = _time(lambda: hf.model(ids, attention_mask=mask, output_hidden_states=True), device, repeats)
        t_tl = _time(lambda: bridge.run_with_cache(ids, attention_mask=mask, names_filter=names), device, repeats)
        t_interp = _time(lambda: capture(bridge, pb, sites, ["last"]), device, repeats)
        _, ref = bridge.run_with_cache(ids, attention_mask=mask, names_filter=names)
        got = capture(bridge, pb, sites, ["last"])
        diff = max((got[("resid_post", layer, "last")] - ref[hooks.resid_post(layer)][:, -1]).abs().max().item() for layer in layers)
    return {
        "model": name, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "dtype": str(next(hf.parameters()).dtype).replace("torch.", ""), "batch": batch, "seq": seq,
        "tok_s_hf_full": round(tokens / t_full), "tok_s_hf_body": round(tokens / t_body),
        "tok_s_tl_cache": round(tokens / t_tl), "tok_s_interp": round(tokens / t_interp),
        "interp_over_tl": round(t_tl / t_interp, 3), "interp_over_hf_body": round(t_body / t_interp, 3),
        "max_abs_diff_vs_tl": diff,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--random", nargs="*", default=None, help="random-initialised shapes instead of the real default base")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if args.random:
        dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
        for name in args.random:
            hf = random_model(name, args.device, dtype)
            bridge = random_bridge(name, args.device, dtype)
            print(json.dumps(measure(name, hf, bridge, args.device, args.batch, args.seq, args.repeats)), flush=True)
            del hf, bridge
            if args.device == "cuda":
                torch.cuda.empty_cache()
    else:
        from interp import load_hf, load_model

        hf, _ = load_hf("gemma-3-270m", device=args.device)
        bridge = load_model("gemma-3-270m", device=args.device)
        print(json.dumps(measure("gemma-3-270m", hf, bridge, args.device, args.batch, args.seq, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
