"""All-layer logistic probes vs scikit-learn fitted layer by layer, same data, same objective.

Data: ``layers`` x ``n`` x ``d`` activations (default 24 x 4,000 x 896, the qwen2.5-0.5b width)
drawn with a class signal along a random direction whose strength grows with depth, centred away
from zero and scaled like residual streams; 1,000 held-out rows per layer for accuracy.
scikit-learn: ``StandardScaler`` + ``LogisticRegression(C=1, lbfgs)`` per layer. interp:
:func:`interp.probes.fit_logistic` on all layers at once. Prints one JSON line.

    .venv/bin/python benchmarks/bench_probes.py                 # CPU
    python3 benchmarks/bench_probes.py --device cuda             # GPU (device tool)
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from interp.probes import accuracy, fit_logistic  # noqa: E402


def make_data(layers: int, n: int, d: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    direction = torch.randn(d, generator=g)
    direction /= direction.norm()
    X = torch.randn(layers, n, d, generator=g)
    strength = torch.linspace(0.0, 2.5, layers)
    X += strength[:, None, None] * (2 * y[None, :, None] - 1) * direction
    return X * 100 + 20, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--d", type=int, default=896)
    ap.add_argument("--skip-sklearn", action="store_true")
    args = ap.parse_args()
    X, y = make_data(args.layers, args.n + 1000, args.d)
    Xtr, ytr, Xte, yte = X[:, : args.n], y[: args.n], X[:, args.n:], y[args.n:]

    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    start = time.perf_counter()
    acc_sk = []
    for layer in range(args.layers):
        scaler = StandardScaler().fit(Xtr[layer].numpy())
        clf = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(Xtr[layer].numpy()), ytr.numpy())
        acc_sk.append(clf.score(scaler.transform(Xte[layer].numpy()), yte.numpy()))
    s_sklearn = time.perf_counter() - start

    dev = torch.device(args.device)
    Xtr_d, ytr_d, Xte_d, yte_d = Xtr.to(dev), ytr.to(dev), Xte.to(dev), yte.to(dev)
    fit_logistic(Xtr_d[:, :64], ytr_d[:64], max_iter=5)  # warm-up (CUDA context, kernels)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    w, b = fit_logistic(Xtr_d, ytr_d)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    s_interp = time.perf_counter() - start
    acc_in = accuracy(torch.einsum("lnd,ld->ln", Xte_d, w) + b[:, None], yte_d).cpu()
    acc_sk_t = torch.tensor(acc_sk)
    print(json.dumps({
        "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
        "layers": args.layers, "n": args.n, "d": args.d,
        "s_sklearn": round(s_sklearn, 3), "s_interp": round(s_interp, 3), "speedup": round(s_sklearn / s_interp, 2),
        "acc_sklearn": round(float(acc_sk_t.mean()), 4), "acc_interp": round(float(acc_in.mean()), 4),
        "max_layer_acc_gap": round(float((acc_sk_t - acc_in).abs().max()), 4),
    }))


if __name__ == "__main__":
    main()
