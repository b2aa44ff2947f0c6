"""Fit probes on a train split and report per-layer metrics with controls, as a tidy frame.

Every result row: ``model, layer, probe, split, metric, value, ci_low, ci_high``. Next to each
probe, two controls are fitted and reported the same way:

- ``control_task``: the same probe fitted to *random labels assigned per entity* (Hewitt & Liang
  2019), evaluated on held-out entities; ``selectivity = task - control`` is added as its own
  metric. A probe that memorises entities scores well on the control task; one that reads the
  property does not.
- ``random_direction``: a random unit direction per layer with a threshold fitted on the train
  split (the accuracy any direction reaches).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.probes.fit import fit_logistic, fit_mass_mean
from interp.probes.metrics import accuracy, auroc, bootstrap_ci

__all__ = ["ProbeSet", "fit_probes", "evaluate_probes", "random_direction_scores", "control_labels", "COLUMNS"]

COLUMNS = ["model", "layer", "probe", "split", "metric", "value", "ci_low", "ci_high"]
_FITTERS = {
    "logistic": lambda X, y: fit_logistic(X, y),
    "mass_mean": lambda X, y: fit_mass_mean(X, y),
    "mass_mean_cov": lambda X, y: fit_mass_mean(X, y, covariance=True),
}


@dataclass
class ProbeSet:
    """Per-layer linear probes of one kind: ``score = X @ w + b`` (> 0 means label 1)."""

    kind: str
    layers: list[int]
    w: Float[Tensor, "layers d"]
    b: Float[Tensor, " layers"]

    def scores(self, X: Float[Tensor, "layers n d"]) -> Float[Tensor, "layers n"]:
        if X.shape[-1] != self.w.shape[-1]:
            raise ValueError(f"activations have width {X.shape[-1]} but the probe expects {self.w.shape[-1]}")
        if X.shape[0] != self.w.shape[0]:
            raise ValueError(f"activations have {X.shape[0]} layers but the probe set has {self.w.shape[0]}")
        return torch.einsum("lnd,ld->ln", X.float().to(self.w.device), self.w) + self.b[:, None]

    def directions(self) -> Float[Tensor, "layers d"]:
        """Unit-norm probe directions."""
        return self.w / self.w.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def fit_probes(X: Float[Tensor, "layers n d"], y: Int[Tensor, " n"], kind: str = "logistic", layers: Sequence[int] | None = None) -> ProbeSet:
    """Fit one probe per layer (all layers at once)."""
    if kind not in _FITTERS:
        raise ValueError(f"unknown probe kind {kind!r}; expected one of {list(_FITTERS)}")
    if X.shape[1] != y.shape[0]:
        raise ValueError(f"{X.shape[1]} activation rows but {y.shape[0]} labels")
    w, b = _FITTERS[kind](X, y)
    return ProbeSet(kind, list(layers) if layers is not None else list(range(X.shape[0])), w, b)


def control_labels(entities: Sequence[str], seed: int = 0) -> Int[Tensor, " n"]:
    """A random 0/1 label per distinct entity (the same entity always gets the same label)."""
    gen = torch.Generator().manual_seed(seed)
    uniq = sorted(set(entities))
    table = dict(zip(uniq, torch.randint(0, 2, (len(uniq),), generator=gen).tolist()))
    return torch.tensor([table[e] for e in entities])


def random_direction_scores(X_train: Tensor, y_train: Tensor, X_test: Tensor, seed: int = 0) -> Tensor:
    """Scores along a random unit direction per layer, with a 1-D logistic threshold fitted on train."""
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(X_train.shape[0], X_train.shape[-1], generator=gen).to(X_train.device)
    d = d / d.norm(dim=-1, keepdim=True)
    proj_tr = torch.einsum("lnd,ld->ln", X_train.float(), d).unsqueeze(-1)
    proj_te = torch.einsum("lnd,ld->ln", X_test.float(), d).unsqueeze(-1)
    w, b = fit_logistic(proj_tr, y_train)
    return proj_te.squeeze(-1) * w + b[:, None]


def metric_rows(model: str, layers: Sequence[int], probe: str, split: str, scores: Tensor, y: Tensor, n_boot: int) -> list[dict]:
    out = []
    for metric, fn in (("accuracy", accuracy), ("auroc", auroc)):
        value = fn(scores, y)
        lo, hi = bootstrap_ci(fn, scores, y, n_boot=n_boot) if n_boot else (value * float("nan"), value * float("nan"))
        for i, layer in enumerate(layers):
            out.append({"model": model, "layer": layer, "probe": probe, "split": split, "metric": metric,
                        "value": float(value[i]), "ci_low": float(lo[i]), "ci_high": float(hi[i])})
    return out


def evaluate_probes(
    X_train: Float[Tensor, "layers n d"], y_train: Int[Tensor, " n"], X_test: Float[Tensor, "layers m d"], y_test: Int[Tensor, " m"],
    *, model: str, layers: Sequence[int], kinds: Sequence[str] = ("logistic", "mass_mean"),
    entities_train: Sequence[str] | None = None, entities_test: Sequence[str] | None = None,
    n_boot: int = 200, seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, ProbeSet]]:
    """Fit each probe kind on train, evaluate on test, with both controls. Returns (frame, probes)."""
    rows, probes = [], {}
    for kind in kinds:
        probe = fit_probes(X_train, y_train, kind, layers)
        probes[kind] = probe
        rows += metric_rows(model, layers, kind, "test", probe.scores(X_test), y_test, n_boot)
    rows += metric_rows(model, layers, "random_direction", "test", random_direction_scores(X_train, y_train, X_test, seed), y_test, n_boot)
    if entities_train is not None and entities_test is not None:
        c_all = control_labels(list(entities_train) + list(entities_test), seed)
        c_tr, c_te = c_all[: len(entities_train)], c_all[len(entities_train):]
        if len(set(c_tr.tolist())) == 2 and len(set(c_te.tolist())) == 2:
            control = fit_probes(X_train, c_tr, "logistic", layers)
            rows += metric_rows(model, layers, "control_task", "test", control.scores(X_test), c_te, n_boot)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if "logistic" in probes and (frame["probe"] == "control_task").any():
        task = frame[(frame.probe == "logistic") & (frame.metric == "accuracy")].set_index("layer")["value"]
        ctrl = frame[(frame.probe == "control_task") & (frame.metric == "accuracy")].set_index("layer")["value"]
        sel = [{"model": model, "layer": layer, "probe": "logistic", "split": "test", "metric": "selectivity",
                "value": float(task[layer] - ctrl[layer]), "ci_low": float("nan"), "ci_high": float("nan")} for layer in layers]
        frame = pd.concat([frame, pd.DataFrame(sel, columns=COLUMNS)], ignore_index=True)
    return frame, probes
