"""The default pair's resident memory with shared base weights vs two copies, and the cost of the
generation self-check per side (what docs/concepts.md reports).

Each measurement runs in a fresh subprocess (resident memory is a per-process figure): load the
default pair (``share_weights`` on or off); with sharing, first time
:func:`interp.behavior.selfcheck.check_generation` on each side (before any other forward pass, so
it includes the bridge's first one, as in a user's first generation); run one forward pass of each
side; read ``VmRSS`` from ``/proc/self/status``. Prints one JSON line; its reference is the same pair
loaded as two copies in the same run. Exits 1 when sharing does not save memory. Then the default
base in fp32, 8 and 4 bits (bitsandbytes): memory footprint, and on 64 held-out fact questions the
next-token top-1 agreement and KL(fp32 || quantized) against fp32 (the facts' statements, e.g.
"The chemical symbol for gold is", so the next token is the answer).

    .venv/bin/python benchmarks/bench_pair.py | .venv/bin/python -m benchmarks.provenance append \\
        benchmarks/results_pair_cpu.jsonl --command "python benchmarks/bench_pair.py"
"""

import json
import subprocess
import sys

QUANT = r"""
import json, torch
from interp import load_model
from interp.data import facts
from interp.prompts import encode, format_prompt

table = facts().to_pandas()
qs = table[table.split == "test"].sample(64, random_state=0).statement.tolist()  # "The chemical symbol for gold is"
out, ref = {}, None
for mode in (None, "8bit", "4bit"):
    model = load_model("gemma-3-270m", device="cpu", quantize=mode)
    hf, tok = model.original_model, model.tokenizer
    last = []
    with torch.inference_mode():
        for q in qs:
            ids = encode(tok, [format_prompt(q, style="plain")]).input_ids
            last.append(hf(input_ids=ids).logits[0, -1].float())
    logits = torch.stack(last)
    name = mode or "fp32"
    out[f"mb_{name}"] = hf.get_memory_footprint() / 2**20
    if ref is None:
        ref = logits
    else:
        lp, lq = ref.log_softmax(-1), logits.log_softmax(-1)
        out[f"top1_agree_{name}"] = int((logits.argmax(-1) == ref.argmax(-1)).sum())
        out[f"kl_{name}"] = float((lp.exp() * (lp - lq)).sum(-1).mean())
    del model, hf
out["n"] = len(qs)
print(json.dumps(out))
"""

CHILD = r"""
import json, sys, time, torch
from interp import load_pair
from interp.behavior.selfcheck import check_generation

share = sys.argv[1] == "shared"
pair = load_pair("default", device="cpu", share_weights=share)
out = {}
if share:  # timed first, so that it includes each bridge's first forward pass (as in a first generation)
    for side in ("base", "aligned"):
        t = time.perf_counter()
        check_generation(pair.side(side))
        out[f"selfcheck_s_{side}"] = time.perf_counter() - t
ids = pair.base.tokenizer("The chemical symbol for gold is", return_tensors="pt").input_ids
with torch.inference_mode():
    pair.base(ids)
    pair.aligned(ids)
rss = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:")) * 1024
out.update({"rss_gb": rss / 1e9, "params": sum(p.numel() for p in pair.base.parameters())})
print(json.dumps(out))
"""


def _run(mode: str) -> dict:
    res = subprocess.run([sys.executable, "-c", QUANT if mode == "quant" else CHILD, mode], capture_output=True,
                         text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    import torch

    shared, copies, quant = _run("shared"), _run("copies"), _run("quant")
    print(json.dumps({"pair": "default", "device": "cpu", "threads": torch.get_num_threads(),
                      "params": shared["params"], "rss_gb_shared": round(shared["rss_gb"], 3),
                      "rss_gb_two_copies": round(copies["rss_gb"], 3),
                      "ratio_shared_vs_copies": round(shared["rss_gb"] / copies["rss_gb"], 3),
                      "selfcheck_s_base": round(shared["selfcheck_s_base"], 2),
                      "selfcheck_s_aligned": round(shared["selfcheck_s_aligned"], 2),
                      "quant_questions": quant["n"], **{k: round(v, 4) if isinstance(v, float) else v
                                                         for k, v in quant.items() if k != "n"}}))
    if shared["rss_gb"] >= copies["rss_gb"]:
        sys.exit(f"shared weights use {shared['rss_gb']:.2f} GB, two copies {copies['rss_gb']:.2f} GB: no saving")


if __name__ == "__main__":
    main()
