"""The crosscoder against planted ground truth, and its training throughput.

Prints one JSON line: ``planted_recovered`` and ``planted_class_accuracy`` (BatchTopK crosscoder,
the share of planted features recovered at cosine >= 0.9 and of recovered ones classed right after
Latent Scaling), the same for the L1 crosscoder, interp's crosscoder training throughput
(tokens/s), and ``speedup_vs_dictionary_learning``: interp's BatchTopK SAE against
dictionary_learning's ``BatchTopKTrainer`` (0.1.0, from PyPI) at the same width, k, batch, dtype
and device, on the same random rows, each timed over the same number of steady-state steps after
a warm-up. dictionary_learning runs in a separate environment: installed once with pip into
``$INTERP_CACHE/bench/dictionary_learning-0.1.0`` (``--target``; dictionary_learning and nnsight
0.3.7 without their dependencies, which would pull another torch, plus nnsight's socketio client)
and imported in a subprocess from there, with this environment's torch.

Run: ``.venv/bin/python benchmarks/bench_dictionary.py`` (CPU, about 3 min on 2 cores);
``python3 benchmarks/bench_dictionary.py --device cuda --wheels .whl-dl`` on a GPU machine without
network (``.whl-dl``: the wheels above, from ``pip download``).

``--planted-streams`` runs only the planted benchmark that can fail
(:mod:`interp.dictionary.planted`: a mean offset, Zipf frequencies, co-occurring and entangled
features, 256 features in 64 dimensions; precision over every latent labelled with a class,
recovery of common and rare features, before and after Latent Scaling). Its settings, fixed
before its first run: ``PlantedStreams()`` defaults (seed 0); a BatchTopK crosscoder and an L1
crosscoder of width 512 (k: the data's mean number of active features), 3000 steps of 1024 rows,
lr 2e-3, warm-up 100, aux-k 32, dead after 20 batches, L1 coefficient 0.5; Latent Scaling on 8
held-out batches of 1024 rows at its default cut-offs (nu 0.3 / 0.3); a cosine of 0.9 for a
match. It appends one JSON line (command, date, versions, settings, results) to
``benchmarks/results_planted_streams_cpu.jsonl``.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from interp.dictionary import BatchTopKSAE, Crosscoder, PlantedData, TrainConfig, planted_benchmark, train_dictionary
from interp.paths import cache_dir

DL_NO_DEPS = ["dictionary_learning==0.1.0", "nnsight==0.3.7"]
DL_WITH_DEPS = ["python-socketio[client]", "pydantic>=2.9"]  # what nnsight imports beyond torch / transformers
# The same steady-state work for both: d, width, k, batch, steps, warm-up steps; fp32.
SAE_SHAPE = {"d": 640, "width": 4096, "k": 32, "batch": 1024}

_DL_SCRIPT = """
import json, sys, time, torch
from dictionary_learning.trainers.batch_top_k import BatchTopKTrainer
d, width, k, batch, steps, warm, device = json.loads(sys.argv[1])
torch.manual_seed(0)
rows = [torch.randn(batch, d, device=device) for _ in range(4)]
tr = BatchTopKTrainer(steps=10**6, activation_dim=d, dict_size=width, k=k, layer=0, lm_name="bench", device=device,
                      seed=0, warmup_steps=1, threshold_start_step=0)
for step in range(warm):  # step 0 sets the decoder bias to the geometric median
    tr.update(step, rows[step % 4])
if device.startswith("cuda"):
    torch.cuda.synchronize()
start = time.perf_counter()
for step in range(warm, warm + steps):
    tr.update(step, rows[step % 4])
if device.startswith("cuda"):
    torch.cuda.synchronize()
print(json.dumps({"tokens_per_s": steps * batch / (time.perf_counter() - start)}))
"""


def dl_env(wheels: str | None = None) -> Path:
    """dictionary_learning's own environment (a ``pip --target`` folder), installed once."""
    import hashlib

    tag = hashlib.sha256(json.dumps([DL_NO_DEPS, DL_WITH_DEPS]).encode()).hexdigest()[:8]  # another list, another env
    target = cache_dir("bench", f"dictionary_learning-0.1.0-{tag}")
    if (target / ".complete").is_file():
        return target
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", str(tmp)]
    if wheels:
        pip += ["--no-index", "--find-links", wheels]
    subprocess.run([*pip, "--no-deps", *DL_NO_DEPS], check=True)
    subprocess.run([*pip, *DL_WITH_DEPS], check=True)
    (tmp / ".complete").write_text("ok\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def dl_throughput(env: Path, device: str, steps: int, warm: int) -> float:
    """dictionary_learning's BatchTopK trainer, steady-state tokens/s, in a subprocess from ``env``."""
    sh = SAE_SHAPE
    args = json.dumps([sh["d"], sh["width"], sh["k"], sh["batch"], steps, warm, device])
    pythonpath = os.pathsep.join([str(env), os.environ.get("PYTHONPATH", "")])
    res = subprocess.run([sys.executable, "-c", _DL_SCRIPT, args], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": pythonpath}, timeout=1800)
    if res.returncode != 0:
        raise RuntimeError(f"dictionary_learning's trainer failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])["tokens_per_s"]


def sae_throughput(device: str, steps: int, warm: int) -> float:
    """interp's BatchTopK SAE, steady-state tokens/s (same shapes, rows and step counts)."""
    sh = SAE_SHAPE
    torch.manual_seed(0)
    rows = [torch.randn(sh["batch"], sh["d"], device=device) for _ in range(4)]
    sae = BatchTopKSAE(sh["d"], sh["width"], sh["k"]).to(device)
    train_dictionary(sae, rows, TrainConfig(steps=warm, warmup=1), progress=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    train_dictionary(sae, rows, TrainConfig(steps=steps, warmup=1, threshold_batches=0), progress=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * sh["batch"] / (time.perf_counter() - start)


def throughput(d_model: int = 640, width: int = 4096, k: int = 32, batch: int = 1024, steps: int = 20) -> float:
    """Training tokens/s of a BatchTopK crosscoder of the default pair's width on random rows."""
    torch.manual_seed(0)
    cc = Crosscoder(d_model, width, 2, k)
    rows = [torch.randn(batch, 2, d_model) for _ in range(4)]
    train_dictionary(cc, rows, TrainConfig(steps=3, warmup=1), progress=False)  # warm-up
    start = time.perf_counter()
    train_dictionary(cc, rows, TrainConfig(steps=steps, warmup=1), progress=False)
    return steps * batch / (time.perf_counter() - start)


def planted_streams(out: Path) -> dict:
    """The planted benchmark that can fail, both crosscoders; one JSON line appended to ``out``."""
    import dataclasses
    import datetime
    import platform
    from importlib import metadata

    from interp.dictionary.planted import PlantedStreams, planted_streams_benchmark

    t0 = time.perf_counter()
    torch.manual_seed(0)
    data = PlantedStreams()
    settings = {k: v for k, v in dataclasses.asdict(data).items() if k not in ("kinds", "classes", "directions", "p", "freq")}
    row: dict = {"command": "python benchmarks/bench_dictionary.py --planted-streams",
                 "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
                 "versions": {n: metadata.version(n) for n in ("torch", "numpy")} | {"python": platform.python_version()},
                 "commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
                 "threads": torch.get_num_threads(), "data": settings}
    for kind in ("batchtopk", "l1"):
        row[kind] = planted_streams_benchmark(PlantedStreams(), l1=kind == "l1")
    row["seconds"] = round(time.perf_counter() - t0, 1)
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")
    try:  # the provenance sidecar, where the repository has benchmarks.provenance
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from benchmarks.provenance import record

        record(out, row["command"], ["benchmarks/bench_dictionary.py", "interp/dictionary/planted.py",
                                     "interp/dictionary/models.py", "interp/dictionary/train.py",
                                     "interp/dictionary/analysis.py", "interp/dictionary/data.py"])
    except ImportError:
        pass
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 20 on the CPU, 200 on a GPU)")
    p.add_argument("--wheels", default=None, help="install dictionary_learning from these wheels (no network)")
    p.add_argument("--speed-only", action="store_true", help="skip the planted benchmark")
    p.add_argument("--planted-streams", action="store_true", help="only the planted benchmark that can fail "
                   "(appends to benchmarks/results_planted_streams_cpu.jsonl)")
    for key in SAE_SHAPE:
        p.add_argument(f"--{key}", type=int, default=SAE_SHAPE[key], help=f"SAE comparison: {key}")
    args = p.parse_args()
    if args.planted_streams:
        print(json.dumps(planted_streams(Path(__file__).with_name("results_planted_streams_cpu.jsonl"))))
        return
    SAE_SHAPE.update({key: getattr(args, key) for key in SAE_SHAPE})
    steps = args.steps or (20 if args.device == "cpu" else 200)
    warm = 3 if args.device == "cpu" else 20
    t0 = time.perf_counter()
    out: dict = {}
    if not args.speed_only:
        top = planted_benchmark(PlantedData())
        l1 = planted_benchmark(PlantedData(), l1=True)
        out |= {"planted_recovered": top["planted_recovered"], "planted_class_accuracy": top["planted_class_accuracy"],
                "planted_class_accuracy_before_scaling": top["planted_class_accuracy_before_scaling"],
                "l1_planted_recovered": l1["planted_recovered"], "l1_planted_class_accuracy": l1["planted_class_accuracy"],
                "l1_planted_class_accuracy_before_scaling": l1["planted_class_accuracy_before_scaling"],
                "train_tokens_per_s_d640_w4096_k32": round(throughput(), 1)}
    env = dl_env(args.wheels)
    ours = sae_throughput(args.device, steps, warm)
    theirs = dl_throughput(env, args.device, steps, warm)
    out |= {"speedup_vs_dictionary_learning": round(ours / theirs, 3),
            "sae_tokens_per_s_interp": round(ours, 1), "sae_tokens_per_s_dictionary_learning": round(theirs, 1),
            "sae_shape": SAE_SHAPE, "timed_steps": steps, "dtype": "float32", "device": args.device,
            "device_name": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
            "threads": torch.get_num_threads(), "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
