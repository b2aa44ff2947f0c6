"""Data-parallel caching check: one process vs ``torchrun --nproc-per-node N`` give the same store.

Builds a random-initialised model folder of a real shape (no hub), caches the same dataset once in
a single process and once under torchrun, and compares the shard bytes. Run on a multi-GPU machine:

    python3 benchmarks/cache_torchrun.py prepare /tmp/model
    python3 benchmarks/cache_torchrun.py cache /tmp/model /tmp/one
    torchrun --nproc-per-node 2 benchmarks/cache_torchrun.py cache /tmp/model /tmp/two
    python3 benchmarks/cache_torchrun.py compare /tmp/one /tmp/two
"""

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def prepare(folder: str) -> None:
    from benchmarks.shapes import _tokenizer, random_model

    model = random_model("gemma-3-270m", "cpu", torch.float32)
    model.save_pretrained(folder)
    _tokenizer(model.config.vocab_size).save_pretrained(folder)


def cache(model_dir: str, out: str) -> None:
    from interp import ModelSpec, load_pair
    from interp.cache import cache_activations
    from interp.data import arithmetic_statements

    rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = f"cuda:{rank}" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        torch.cuda.set_device(rank)
    pair = load_pair((model_dir, ModelSpec(model_dir, chat_template="gemma", prompt_style="chat")), device=device,
                     dtype=torch.bfloat16 if device != "cpu" else torch.float32)
    start = time.perf_counter()
    cache_activations(pair, arithmetic_statements(4000, digits=(1, 2, 3)), layers=range(18), positions=["last"],
                      batch_size=64, shard_size=500, out_dir=out, progress=False)
    if rank == 0:
        print(json.dumps({"out": out, "world": int(os.environ.get("WORLD_SIZE", "1")), "seconds": round(time.perf_counter() - start, 2)}))


def compare(a: str, b: str) -> None:
    def digest(folder: str) -> dict:
        return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(Path(folder, "shards").glob("*.safetensors"))}

    da, db = digest(a), digest(b)
    print(json.dumps({"shards": len(da), "identical": da == db,
                      "manifest_complete": json.loads(Path(b, "manifest.json").read_text())["complete"]}))


if __name__ == "__main__":
    {"prepare": prepare, "cache": cache, "compare": compare}[sys.argv[1]](*sys.argv[2:])
