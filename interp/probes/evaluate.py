"""Fit probes on a train split and report per-layer metrics with controls, as a tidy frame.

Every result row: ``model, layer, probe, split, metric, value, ci_low, ci_high``. Choices are made
without the test rows (see :mod:`interp.probes.select`):

- ``split == "val"``: whole training entities set aside; the logistic probe's regularisation ``C``
  (per layer, from ``C_grid``) and the reported layer are chosen on these rows.
- ``split == "test"``: the probes refitted on all training rows with the chosen ``C``, read once
  per layer; 95% intervals from a bootstrap that resamples whole entities (rows of one entity are
  not independent); ``balanced_accuracy`` beside accuracy; ``p_any_layer``: a max-over-layers
  permutation test ("is any layer above chance?", at the layer of the maximum).

Controls, reported the same way:

- ``control_task`` (``split == "seen_entities"``): a logistic probe fitted to *random labels per
  entity* (Hewitt & Liang 2019) on part of the training rows and evaluated on held-out rows of the
  same entities, where memorising entities pays off; ``selectivity`` = task test accuracy minus
  control accuracy, per layer.
- ``random_direction``: a random unit direction per layer with a threshold fitted on train.
- ``majority_class``: always predicting the training split's majority label.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.probes.fit import fit_logistic, fit_mass_mean
from interp.probes.metrics import accuracy, auroc, balanced_accuracy
from interp.probes.select import seen_entity_rows, validation_rows
from interp.stats import cluster_bootstrap_ci, max_over_layers_test

__all__ = ["ProbeSet", "fit_probes", "evaluate_probes", "random_direction_scores", "random_directions", "control_labels",
           "metric_rows",
           "COLUMNS", "C_GRID"]

COLUMNS = ["model", "layer", "probe", "split", "metric", "value", "ci_low", "ci_high"]
#: The logistic probe's inverse regularisation strengths tried on the validation split (ties go to
#: the earlier entry, so 1.0, scikit-learn's default, wins a tie).
C_GRID = (1.0, 0.1, 0.01, 10.0)
KINDS = ("logistic", "mass_mean", "mass_mean_cov")


@dataclass
class ProbeSet:
    """Per-layer linear probes of one kind: ``score = X @ w + b`` (> 0 means label 1). ``C``: the
    logistic probe's regularisation per layer (``None`` for other kinds)."""

    kind: str
    layers: list[int]
    w: Float[Tensor, "layers d"]
    b: Float[Tensor, " layers"]
    C: list[float] | None = field(default=None)

    def scores(self, X: Float[Tensor, "layers n d"]) -> Float[Tensor, "layers n"]:
        if X.shape[-1] != self.w.shape[-1]:
            raise ValueError(f"activations have width {X.shape[-1]} but the probe expects {self.w.shape[-1]}")
        if X.shape[0] != self.w.shape[0]:
            raise ValueError(f"activations have {X.shape[0]} layers but the probe set has {self.w.shape[0]}")
        X = X.float().to(self.w.device)
        # One product per layer: a layer's scores do not depend on the layers scored beside it.
        return torch.stack([X[i] @ self.w[i] for i in range(X.shape[0])]) + self.b[:, None]

    def directions(self) -> Float[Tensor, "layers d"]:
        """Unit-norm probe directions."""
        return self.w / self.w.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def fit_probes(X: Float[Tensor, "layers n d"], y: Int[Tensor, " n"], kind: str = "logistic", layers: Sequence[int] | None = None,
               *, C: "float | Sequence[float]" = 1.0) -> ProbeSet:
    """Fit one probe per layer (all layers at once). ``C`` (logistic only): one value, or one per
    layer (layers sharing a value are fitted together)."""
    if kind not in KINDS:
        raise ValueError(f"unknown probe kind {kind!r}; expected one of {list(KINDS)}")
    if X.shape[1] != y.shape[0]:
        raise ValueError(f"{X.shape[1]} activation rows but {y.shape[0]} labels")
    layers = list(layers) if layers is not None else list(range(X.shape[0]))
    if kind != "logistic":
        w, b = fit_mass_mean(X, y, covariance=kind == "mass_mean_cov")
        return ProbeSet(kind, layers, w, b)
    Cs = [float(C)] * X.shape[0] if np.ndim(C) == 0 else [float(c) for c in C]
    if len(Cs) != X.shape[0]:
        raise ValueError(f"C has {len(Cs)} values for {X.shape[0]} layers; pass one value or one per layer")
    w = torch.empty(X.shape[0], X.shape[-1], device=X.device)
    b = torch.empty(X.shape[0], device=X.device)
    for c in sorted(set(Cs)):
        idx = torch.tensor([i for i, ci in enumerate(Cs) if ci == c])
        w[idx], b[idx] = fit_logistic(X[idx.to(X.device)], y, C=c)
    return ProbeSet(kind, layers, w, b, Cs)


def control_labels(entities: Sequence[str], seed: int = 0) -> Int[Tensor, " n"]:
    """A random 0/1 label per distinct entity (the same entity always gets the same label)."""
    gen = torch.Generator().manual_seed(seed)
    uniq = sorted(set(entities))
    table = dict(zip(uniq, torch.randint(0, 2, (len(uniq),), generator=gen).tolist()))
    return torch.tensor([table[e] for e in entities])


def random_directions(n_layers: int, d: int, seed: int = 0) -> Tensor:
    """The random direction of each layer (``[n_layers, d]``, not normalised), fixed by ``seed``."""
    return torch.randn(n_layers, d, generator=torch.Generator().manual_seed(seed))


def random_direction_scores(X_train: Tensor, y_train: Tensor, X_test: Tensor, seed: int = 0,
                            directions: Tensor | None = None) -> Tensor:
    """Scores along a random unit direction per layer, with a 1-D logistic threshold fitted on train
    (``directions``: the layers' rows of :func:`random_directions`, when ``X`` holds a group of layers)."""
    d = random_directions(X_train.shape[0], X_train.shape[-1], seed) if directions is None else directions
    d = d.to(X_train.device)
    d = d / d.norm(dim=-1, keepdim=True)
    proj_tr = torch.stack([X_train[i].float() @ d[i] for i in range(len(d))]).unsqueeze(-1)  # per layer (see scores)
    proj_te = torch.stack([X_test[i].float() @ d[i] for i in range(len(d))]).unsqueeze(-1)
    w, b = fit_logistic(proj_tr, y_train)
    return proj_te.squeeze(-1) * w + b[:, None]


def metric_rows(model: str, layers: Sequence[int], probe: str, split: str, scores: Tensor, y: Tensor, n_boot: int,
                clusters: "Sequence[str] | None" = None, *, metrics: Sequence[str] = ("accuracy", "auroc", "balanced_accuracy"),
                seed: int = 0) -> list[dict]:
    """Rows of each metric per layer, with a 95% percentile bootstrap interval that resamples
    whole ``clusters`` (rows when ``None``); ``n_boot=0``: no interval (``nan``)."""
    fns = {"accuracy": accuracy, "auroc": auroc, "balanced_accuracy": balanced_accuracy}
    out = []
    for metric in metrics:
        fn = fns[metric]
        value = fn(scores, y).cpu()
        if n_boot:
            lo, hi = cluster_bootstrap_ci(fn, scores.cpu(), y.cpu(), clusters, n_boot=n_boot, seed=seed)
            lo, hi = np.atleast_1d(lo), np.atleast_1d(hi)
        else:
            lo = hi = np.full(len(layers), np.nan)
        for i, layer in enumerate(layers):
            out.append({"model": model, "layer": layer, "probe": probe, "split": split, "metric": metric,
                        "value": float(value[i]), "ci_low": float(lo[i]), "ci_high": float(hi[i])})
    return out


def _choose_C(X_fit: Tensor, y_fit: Tensor, X_val: Tensor, y_val: Tensor, C_grid: Sequence[float]) -> tuple[list[float], Tensor]:
    """Per layer, the ``C`` with the highest validation accuracy (AUROC breaks ties, then grid
    order), and the validation scores at that ``C``."""
    scores = torch.stack([fit_probes(X_fit, y_fit, "logistic", C=c).scores(X_val) for c in C_grid])  # [C, L, n]
    crit = torch.stack([accuracy(s, y_val) + 1e-3 * auroc(s, y_val).nan_to_num(0.5) for s in scores])  # [C, L]
    best = torch.stack([crit[:, i].max() for i in range(crit.shape[1])])
    pick = [int(torch.nonzero(crit[:, i] >= best[i] - 1e-9)[0]) for i in range(crit.shape[1])]
    return [float(C_grid[k]) for k in pick], torch.stack([scores[k, i] for i, k in enumerate(pick)])


def evaluate_probes(
    X_train: Float[Tensor, "layers n d"], y_train: Int[Tensor, " n"], X_test: Float[Tensor, "layers m d"], y_test: Int[Tensor, " m"],
    *, model: str, layers: Sequence[int], kinds: Sequence[str] = ("logistic", "mass_mean"),
    entities_train: Sequence[str] | None = None, entities_test: Sequence[str] | None = None,
    n_boot: int = 200, seed: int = 0, C_grid: Sequence[float] = C_GRID, val_fraction: float = 0.25, n_perm: int = 1000,
    directions: Tensor | None = None,
) -> tuple[pd.DataFrame, dict[str, ProbeSet]]:
    """Choose on a validation split of training entities, refit on all training rows, evaluate on
    test, with the controls (see module docs). Returns ``(frame, probes)``.

    Example:
        >>> frame, probes = evaluate_probes(X[:, :300], y[:300], X[:, 300:], y[300:], model="base",  # doctest: +SKIP
        ...                                 layers=range(18), entities_train=ents[:300], entities_test=ents[300:])
        >>> selected_layers(frame)  # the layer chosen on validation rows, its test accuracy and CI  # doctest: +SKIP
    """
    if not C_grid:
        raise ValueError("C_grid is empty; pass at least one regularisation strength")
    layers = list(layers)
    y_train, y_test = torch.as_tensor(y_train).long(), torch.as_tensor(y_test).long()
    ents_tr = None if entities_train is None else [str(e) for e in entities_train]
    ents_te = None if entities_test is None else [str(e) for e in entities_test]
    val = torch.from_numpy(validation_rows(ents_tr, y_train.numpy(), fraction=val_fraction, seed=seed))
    X_fit, y_fit, X_val, y_val = X_train[:, ~val], y_train[~val], X_train[:, val], y_train[val]
    ents_val = None if ents_tr is None else [e for e, v in zip(ents_tr, val.tolist()) if v]
    rows, probes = [], {}
    for kind in kinds:
        if kind == "logistic":
            Cs, val_scores = _choose_C(X_fit, y_fit, X_val, y_val, C_grid)
        else:
            Cs, val_scores = 1.0, fit_probes(X_fit, y_fit, kind, layers).scores(X_val)
        rows += metric_rows(model, layers, kind, "val", val_scores, y_val, 0, ents_val)
        probe = fit_probes(X_train, y_train, kind, layers, C=Cs)
        probes[kind] = probe
        scores = probe.scores(X_test)
        rows += metric_rows(model, layers, kind, "test", scores, y_test, n_boot, ents_te, seed=seed)
        if n_perm:
            t = max_over_layers_test(scores.cpu(), y_test, accuracy, clusters=ents_te, n_perm=n_perm, seed=seed)
            rows.append({"model": model, "layer": layers[t["layer"]], "probe": kind, "split": "test", "metric": "p_any_layer",
                         "value": t["p_value"], "ci_low": float("nan"), "ci_high": float("nan")})
    rows += metric_rows(model, layers, "random_direction", "test",
                        random_direction_scores(X_train, y_train, X_test, seed, directions), y_test, n_boot, ents_te, seed=seed)
    majority = int(y_train.float().mean() >= 0.5)
    const = torch.full((len(layers), len(y_test)), 1.0 if majority else -1.0)
    rows += metric_rows(model, layers, "majority_class", "test", const, y_test, 0, metrics=("accuracy",))
    rows += _control_rows(X_train, ents_tr, model, layers, probes, n_boot, seed)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return _with_selectivity(frame, model, layers), probes


def _control_rows(X_train: Tensor, ents_tr: list[str] | None, model: str, layers: list[int], probes: dict, n_boot: int,
                  seed: int) -> list[dict]:
    """The control task on held-out rows of training entities (none without entities, or when no
    entity has two rows, or when the random labels come out all one class)."""
    if ents_tr is None:
        return []
    held = torch.from_numpy(seen_entity_rows(ents_tr, seed=seed))
    labels = control_labels(ents_tr, seed)
    fit_y, eval_y = labels[~held], labels[held]
    if not bool(held.any()) or len(set(fit_y.tolist())) < 2 or len(set(eval_y.tolist())) < 2:
        return []
    C = probes["logistic"].C if "logistic" in probes else 1.0  # the task probe's capacity, layer by layer
    control = fit_probes(X_train[:, ~held], fit_y, "logistic", layers, C=C)
    ents_held = [e for e, h in zip(ents_tr, held.tolist()) if h]
    return metric_rows(model, layers, "control_task", "seen_entities", control.scores(X_train[:, held]), eval_y, n_boot,
                       ents_held, metrics=("accuracy",), seed=seed)


def _with_selectivity(frame: pd.DataFrame, model: str, layers: list[int]) -> pd.DataFrame:
    if "logistic" not in set(frame.probe) or not (frame.probe == "control_task").any():
        return frame
    task = frame[(frame.probe == "logistic") & (frame.metric == "accuracy") & (frame.split == "test")].set_index("layer")["value"]
    ctrl = frame[(frame.probe == "control_task") & (frame.metric == "accuracy")].set_index("layer")["value"]
    sel = [{"model": model, "layer": layer, "probe": "logistic", "split": "test", "metric": "selectivity",
            "value": float(task[layer] - ctrl[layer]), "ci_low": float("nan"), "ci_high": float("nan")} for layer in layers]
    return pd.concat([frame, pd.DataFrame(sel, columns=COLUMNS)], ignore_index=True)
