"""The crosscoder against planted ground truth, and its training throughput.

Prints one JSON line: ``planted_recovered`` and ``planted_class_accuracy`` (BatchTopK crosscoder,
the share of planted features recovered at cosine >= 0.9 and of recovered ones classed right after
Latent Scaling), the same for the L1 crosscoder, interp's training throughput (tokens/s), and
``speedup_vs_dictionary_learning`` (``null`` with the reason: the comparison needs
dictionary_learning in its own environment, not built here yet).

Run: ``.venv/bin/python benchmarks/bench_dictionary.py`` (about 1.5 min on 2 CPU cores).
"""

import json
import time

import torch

from interp.dictionary import Crosscoder, PlantedData, TrainConfig, planted_benchmark, train_dictionary


def throughput(d_model: int = 640, width: int = 4096, k: int = 32, batch: int = 1024, steps: int = 20) -> float:
    """Training tokens/s of a BatchTopK crosscoder of the default pair's width on random rows."""
    torch.manual_seed(0)
    cc = Crosscoder(d_model, width, 2, k)
    rows = [torch.randn(batch, 2, d_model) for _ in range(4)]
    train_dictionary(cc, rows, TrainConfig(steps=3, warmup=1), progress=False)  # warm-up
    start = time.perf_counter()
    train_dictionary(cc, rows, TrainConfig(steps=steps, warmup=1), progress=False)
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    t0 = time.perf_counter()
    top = planted_benchmark(PlantedData())
    l1 = planted_benchmark(PlantedData(), l1=True)
    out = {"planted_recovered": top["planted_recovered"], "planted_class_accuracy": top["planted_class_accuracy"],
           "planted_class_accuracy_before_scaling": top["planted_class_accuracy_before_scaling"],
           "l1_planted_recovered": l1["planted_recovered"], "l1_planted_class_accuracy": l1["planted_class_accuracy"],
           "l1_planted_class_accuracy_before_scaling": l1["planted_class_accuracy_before_scaling"],
           "train_tokens_per_s_d640_w4096_k32": round(throughput(), 1),
           "speedup_vs_dictionary_learning": None,
           "speedup_note": "not measured: needs dictionary_learning installed in its own environment",
           "device": "cpu", "threads": torch.get_num_threads(), "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
