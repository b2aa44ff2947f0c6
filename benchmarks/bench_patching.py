"""Activation patching: transformer_lens.patching.get_act_patch_resid_pre vs interp's batched sweep.

Same model, same prompts (default 8 prompts x 16 tokens, every layer x every position, resid_pre,
same-model clean -> corrupted patching, logit-difference metric at the last position), same
process. Prints one JSON line: model, device, cells, s_tl, s_interp, speedup, max_abs_diff (interp's
default, packed sweep), and the same three for the sweep with whole prompts replicated per cell
(``packed=False``: ``s_interp_replicated``, ``speedup_replicated``, ``max_abs_diff_replicated``).

    .venv/bin/python benchmarks/bench_patching.py                       # CPU, real default base
    python3 benchmarks/bench_patching.py --device cuda --random gemma-3-270m   # GPU, bf16
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.shapes import random_bridge  # noqa: E402
from interp.patching import clean_resid_pre, logit_diff, resid_pre_sweep  # noqa: E402
from interp.prompts import PromptBatch  # noqa: E402


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--random", default=None, help="a random-initialised shape instead of the real default base")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--max-batch", type=int, default=256)
    args = ap.parse_args()
    from transformer_lens import patching as tl_patching

    if args.random:
        model = random_bridge(args.random, args.device, torch.bfloat16 if args.device == "cuda" else torch.float32)
        name = f"{args.random} (random)"
    else:
        from interp import load_model

        model = load_model("gemma-3-270m", device=args.device)
        name = "gemma-3-270m"
    g = torch.Generator().manual_seed(0)
    B, T = args.prompts, args.seq
    clean = torch.randint(1000, 20000, (B, T), generator=g)
    clean[:, 0] = 2
    corrupt = clean.clone()
    corrupt[:, T // 2] = torch.randint(1000, 20000, (B,), generator=g)
    clean, corrupt = clean.to(args.device), corrupt.to(args.device)
    a, b = 1000, 2000

    def tl_metric(logits):
        return (logits[:, -1, a] - logits[:, -1, b]).float().mean()

    mask = torch.ones_like(corrupt)
    pos = {"last": torch.full((B,), T - 1, device=args.device)}
    clean_b, corrupt_b = PromptBatch(clean, mask, pos, [""] * B), PromptBatch(corrupt, mask, dict(pos), [""] * B)
    metric = logit_diff([a] * B, [b] * B)
    with torch.inference_mode():
        resid_pre_sweep(model, corrupt_b, clean_resid_pre(model, clean_b), metric, layers=[0], max_batch=args.max_batch)  # warm-up
        sync(args.device)
        start = time.perf_counter()
        ours = resid_pre_sweep(model, corrupt_b, clean_resid_pre(model, clean_b), metric, max_batch=args.max_batch)
        sync(args.device)
        s_interp = time.perf_counter() - start
        start = time.perf_counter()  # the same sweep with whole prompts replicated per cell (no packing)
        replicated = resid_pre_sweep(model, corrupt_b, clean_resid_pre(model, clean_b), metric, max_batch=args.max_batch,
                                     packed=False)
        sync(args.device)
        s_replicated = time.perf_counter() - start
        start = time.perf_counter()
        _, cache = model.run_with_cache(clean)
        ref = tl_patching.get_act_patch_resid_pre(model, corrupt, cache, tl_metric)
        sync(args.device)
        s_tl = time.perf_counter() - start
    print(json.dumps({
        "model": name, "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""), "prompts": B, "seq": T,
        "cells": int(ref.numel()), "s_tl": round(s_tl, 3), "s_interp": round(s_interp, 3),
        "speedup": round(s_tl / s_interp, 2), "max_abs_diff": float((ours.float() - ref.float()).abs().max()),
        "s_interp_replicated": round(s_replicated, 3), "speedup_replicated": round(s_tl / s_replicated, 2),
        "max_abs_diff_replicated": float((replicated.float() - ref.float()).abs().max()),
    }))


if __name__ == "__main__":
    main()
