"""Cold conversion and warm load of the default base, and bridge-vs-HF logit parity.

Prints one JSON line. The cold run uses a fresh temporary INTERP_CACHE, so it measures the one-time
GGUF de-quantization; the warm run loads the cached safetensors.

    .venv/bin/python benchmarks/bench_load.py
"""

import json
import os
import tempfile
import time

import torch


def main() -> None:
    from interp import load_hf, load_model

    record: dict = {"model": "gemma-3-270m", "device": "cpu", "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get("INTERP_CACHE")
        os.environ["INTERP_CACHE"] = tmp
        try:
            start = time.perf_counter()
            model = load_model("gemma-3-270m", device="cpu")
            record["s_cold_load_with_conversion"] = round(time.perf_counter() - start, 2)
            del model
            start = time.perf_counter()
            model = load_model("gemma-3-270m", device="cpu")
            record["s_warm_load"] = round(time.perf_counter() - start, 2)
            hf, tok = load_hf("gemma-3-270m", device="cpu")
        finally:
            if old is None:
                del os.environ["INTERP_CACHE"]
            else:
                os.environ["INTERP_CACHE"] = old
    prompts = [
        "The Eiffel Tower is located in the city of",
        "The chemical symbol for gold is",
        "The atomic number of carbon is",
        "Berlin is the capital of",
        "def fibonacci(n):\n    return",
    ]
    worst = 0.0
    with torch.inference_mode():
        for prompt in prompts:
            ids = tok(prompt, return_tensors="pt").input_ids
            worst = max(worst, (model(ids) - hf(ids).logits).abs().max().item())
    record["max_abs_logit_diff_vs_hf_eager"] = worst
    print(json.dumps(record))


if __name__ == "__main__":
    main()
