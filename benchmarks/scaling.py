"""Scaling past one GPU: data-parallel caching and sweeps, and a model sharded over GPUs.

Random-initialised models of real shapes (weights cannot travel to the GPU machine), built on the
meta device and materialised on the GPUs (``shapes.meta_random_model``). Each command prints one
JSON line (rank 0).

    # data parallel: an 8B-shape pair, one process, then one process per GPU
    python3 benchmarks/scaling.py dp --shape llama-3.1-8b
    torchrun --nproc-per-node 2 benchmarks/scaling.py dp --shape llama-3.1-8b
    # a 70B-shape model over both GPUs of one process, against the 8B shape on one GPU
    python3 benchmarks/scaling.py sharded --shape llama-3.1-70b --ref llama-3.1-8b

``dp`` caches ``resid_post`` at every layer (last position) for both sides of the pair and runs a
cross-model ``resid_pre_sweep`` (every layer x every position); the time covers only the library
call (after a warm-up), between barriers. ``sharded`` caches one model and sweeps it, and reports
the caching throughput against the one implied by the reference shape's throughput on one GPU
scaled by the FLOPs per token (``shapes.flops_per_token``).
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.shapes import _tokenizer, config, flops_per_token, meta_random_model  # noqa: E402


def _texts(n: int, words: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(f"t{rng.randrange(4, 512)}" for _ in range(words)) for _ in range(n)]


def _bridge(shape: str, placement, seed: int):
    from interp.models import ModelSpec
    from interp.models.load import bridge_from_hf

    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = meta_random_model(shape, placement, dtype, seed)
    return bridge_from_hf(model, _tokenizer(config(shape).vocab_size), ModelSpec(f"{shape}-{seed}"))


def _sync() -> None:
    from interp import distributed

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    distributed.barrier()


def _peaks() -> list[float]:
    return [round(torch.cuda.max_memory_allocated(d) / 2**30, 2) for d in range(torch.cuda.device_count())] \
        if torch.cuda.is_available() else []


def _timed_cache(model_or_pair, texts, n_layers, batch, shard, sides=None) -> float:
    from interp.cache import cache_activations

    out = tempfile.mkdtemp(prefix="interp-scaling-")
    from interp import distributed

    # One folder for every rank: rank 0's name.
    out = distributed.gather_indexed({distributed.rank_and_world()[0]: out}, distributed.world())[0] \
        if distributed.world() > 1 else out
    _sync()
    start = time.perf_counter()
    cache_activations(model_or_pair, texts, layers=range(n_layers), positions=["last"], batch_size=batch,
                      shard_size=shard, out_dir=out, progress=False, style="plain", sides=sides)
    _sync()
    return time.perf_counter() - start


def _timed_sweep(model, source, prompts, words):
    from interp.patching import clean_resid_pre, logit_diff, resid_pre_sweep
    from interp.prompts import encode

    batch = encode(model.tokenizer, _texts(prompts, words, seed=7))
    values = clean_resid_pre(source, batch)
    metric = logit_diff(list(range(10, 10 + prompts)), list(range(100, 100 + prompts)))
    resid_pre_sweep(model, batch, values, metric, layers=[0])  # warm-up
    _sync()
    start = time.perf_counter()
    grid = resid_pre_sweep(model, batch, values, metric)
    _sync()
    return time.perf_counter() - start, grid


def dp(args) -> None:
    from interp import ModelPair, distributed

    rank, world = distributed.rank_and_world()
    device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    pair = ModelPair(_bridge(args.shape, device, 0), _bridge(args.shape, device, 1), name=args.shape)
    L = int(pair.base.cfg.n_layers)
    _timed_cache(pair, _texts(2 * args.batch * world, args.words, seed=1), L, args.batch, args.batch)  # warm-up
    texts = _texts(args.examples, args.words)
    cache_s = _timed_cache(pair, texts, L, args.batch, args.shard)
    tokens = 2 * args.examples * (args.words + 1)  # both sides; every text words + BOS tokens
    sweep_s, grid = _timed_sweep(pair.aligned, pair.base, args.prompts, args.sweep_words)
    peaks = distributed.gather_indexed({rank: _peaks()[rank] if torch.cuda.is_available() else 0.0}, world)
    if rank == 0:
        print(json.dumps({
            "mode": "dp", "shape": args.shape, "world": world, "device": torch.cuda.get_device_name(0)
            if torch.cuda.is_available() else "cpu", "dtype": str(pair.base.cfg.dtype),
            "cache_examples": args.examples, "cache_tokens": tokens, "cache_s": round(cache_s, 3),
            "cache_tokens_per_s": round(tokens / cache_s, 1), "sweep_cells": int(grid.numel()),
            "sweep_prompts_x_tokens": f"{args.prompts}x{args.sweep_words + 1}", "sweep_s": round(sweep_s, 3),
            "sweep_cells_per_s": round(grid.numel() / sweep_s, 2), "sweep_finite": bool(torch.isfinite(grid).all()),
            "peak_gib_per_rank": peaks}), flush=True)


def sharded(args) -> None:
    n_gpus = torch.cuda.device_count()
    ref = _bridge(args.ref, "cuda:0", 0)
    L = int(ref.cfg.n_layers)
    _timed_cache(ref, _texts(2 * args.batch, args.words, seed=1), L, args.batch, args.batch)
    ref_s = _timed_cache(ref, _texts(args.examples, args.words), L, args.batch, args.shard)
    ref_tps = args.examples * (args.words + 1) / ref_s
    del ref
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    c = config(args.shape)
    per = (c.num_hidden_layers + n_gpus - 1) // n_gpus
    device_map = {"model.embed_tokens": 0, "model.rotary_emb": 0, "model.norm": n_gpus - 1, "lm_head": n_gpus - 1}
    device_map |= {f"model.layers.{i}": i // per for i in range(c.num_hidden_layers)}
    start = time.perf_counter()
    model = _bridge(args.shape, device_map, 0)
    build_s = time.perf_counter() - start
    L = int(model.cfg.n_layers)
    _timed_cache(model, _texts(2 * args.batch, args.words, seed=1), L, args.batch, args.batch)
    cache_s = _timed_cache(model, _texts(args.examples, args.words), L, args.batch, args.shard)
    tps = args.examples * (args.words + 1) / cache_s
    seq = args.words + 1
    implied = ref_tps * flops_per_token(args.ref, seq) / flops_per_token(args.shape, seq)
    sweep_s, grid = _timed_sweep(model, model, args.prompts, args.sweep_words)
    print(json.dumps({
        "mode": "sharded", "shape": args.shape, "gpus": n_gpus, "device": torch.cuda.get_device_name(0),
        "params_b": round(sum(p.numel() for p in model.original_model.parameters()) / 1e9, 2),
        "build_s": round(build_s, 1), "cache_examples": args.examples, "seq": seq, "cache_s": round(cache_s, 3),
        "cache_tokens_per_s": round(tps, 1), "ref_shape": args.ref, "ref_tokens_per_s_one_gpu": round(ref_tps, 1),
        "flops_ratio": round(flops_per_token(args.shape, seq) / flops_per_token(args.ref, seq), 3),
        "implied_tokens_per_s": round(implied, 1), "throughput_vs_implied": round(tps / implied, 3),
        "sweep_cells": int(grid.numel()), "sweep_prompts_x_tokens": f"{args.prompts}x{args.sweep_words + 1}",
        "sweep_s": round(sweep_s, 3), "sweep_cells_per_s": round(grid.numel() / sweep_s, 2),
        "sweep_finite": bool(torch.isfinite(grid).all()), "peak_gib_per_gpu": _peaks()}), flush=True)


def similarity(args) -> None:
    """Representation similarity of an 8B-shape pair on one GPU: the CKA sums stay within
    ``max_memory_gb`` on the GPU (layer groups), where they used to take 3 x d x d float64 per layer
    on the CPU (12.9 GB at d = 4096, 32 layers)."""
    import resource

    from interp import ModelPair
    from interp.diffing import representation_similarity

    pair = ModelPair(_bridge(args.shape, "cuda:0", 0), _bridge(args.shape, "cuda:0", 1), name=args.shape)
    texts = _texts(args.prompts, args.sweep_words, seed=3)
    torch.cuda.synchronize()
    before = torch.cuda.max_memory_allocated(0)
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    frame = representation_similarity(pair, texts, batch_size=8, max_memory_gb=args.max_memory_gb,
                                      progress=False).to_frame()
    torch.cuda.synchronize()
    d, L = int(pair.d_model), int(pair.n_layers)
    print(json.dumps({
        "mode": "similarity", "shape": args.shape, "d_model": d, "layers": L, "texts": len(texts),
        "max_memory_gb": args.max_memory_gb, "seconds": round(time.perf_counter() - start, 2),
        "old_cpu_accumulators_gib": round(3 * d * d * 8 * L / 2**30, 2),
        "gpu_peak_gib_during": round(torch.cuda.max_memory_allocated(0) / 2**30, 2),
        "gpu_peak_gib_models_only": round(before / 2**30, 2),
        "process_max_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "cka_finite": bool(frame.cka.notna().all())}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["dp", "sharded", "similarity"])
    p.add_argument("--shape", default="llama-3.1-8b")
    p.add_argument("--ref", default="llama-3.1-8b")
    p.add_argument("--examples", type=int, default=512, help="texts to cache")
    p.add_argument("--words", type=int, default=255, help="tokens per text (plus BOS)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--shard", type=int, default=32)
    p.add_argument("--prompts", type=int, default=8, help="sweep prompts")
    p.add_argument("--sweep-words", type=int, default=31, help="sweep tokens per prompt (plus BOS)")
    p.add_argument("--max-memory-gb", type=float, default=2.0, help="similarity: bound on the CKA sums")
    args = p.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    {"dp": dp, "sharded": sharded, "similarity": similarity}[args.mode](args)


if __name__ == "__main__":
    main()
