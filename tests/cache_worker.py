"""Run cache_activations on a tiny pair; used by the tests (also under torchrun)."""

import os
import sys

import torch

from interp import ModelSpec, load_pair
from interp.cache import cache_activations
from interp.data import arithmetic_statements


def main(model_dir: str, out_dir: str, n: str, shard_size: str, hooks: str, positions: str) -> None:
    torch.manual_seed(0)
    die = os.environ.get("INTERP_TEST_DIE_RANK")  # that rank dies after writing its first shard
    if die is not None and os.environ.get("RANK", "0") == die:
        from interp.cache import run

        real, calls = run.save_file, []

        def dying(tensors, path):
            calls.append(path)
            if len(calls) == 2:
                os._exit(3)
            real(tensors, path)

        run.save_file = dying
    pair = load_pair((model_dir, ModelSpec(model_dir, chat_template="gemma", prompt_style="chat")), device="cpu")
    ds = arithmetic_statements(int(n), digits=(1, 2, 3))
    cache_activations(pair, ds, layers=[0, 1], hooks=hooks.split(","), positions=positions.split(","),
                      batch_size=64, shard_size=int(shard_size), out_dir=out_dir, progress=False)
    import resource

    print(f"PEAK_RSS_KB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")


if __name__ == "__main__":
    main(*sys.argv[1:])
