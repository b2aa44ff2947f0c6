"""Probe every layer of a cached store: both sides, controls, and cross-model transfer.

Example:
    >>> store = cache_activations(pair, fact_statements(), layers=range(18), out_dir="out/c")  # doctest: +SKIP
    >>> frame, probes = probe_store(store)                                                     # doctest: +SKIP
    >>> frame.query("metric == 'accuracy' and probe == 'logistic'")                            # doctest: +SKIP
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import warnings

import numpy as np
import pandas as pd
import torch

from interp.cache import ActivationStore
from interp.probes.evaluate import evaluate_probes
from interp.probes.select import selected_layers
from interp.probes.transfer import transfer
from interp.results import Result

__all__ = ["stack_layers", "probe_store", "ProbeResult"]


@dataclass(repr=False)
class ProbeResult(Result):
    """Probe metrics of every layer (``frame``: model, probe, layer, metric, value, CI) and the
    fitted probes (``probes[side][kind]``). Unpacks like the pair it holds:
    ``frame, probes = probe_store(store)``."""

    frame: pd.DataFrame
    probes: dict

    def __iter__(self) -> Iterator:
        return iter((self.frame, self.probes))

    def to_frame(self) -> pd.DataFrame:
        return self.frame

    def selected(self) -> pd.DataFrame:
        """Per (model, probe): the layer chosen on the validation split (never the test rows) and
        that layer's test accuracy with its 95% entity-bootstrap CI, balanced accuracy, AUROC, the
        majority-class and control-task baselines, selectivity and the max-over-layers p-value
        (see :func:`interp.probes.select.selected_layers`)."""
        return selected_layers(self.frame)

    def summary(self) -> dict:
        """Per model, the logistic probe (else the first kind) at the layer chosen on validation
        rows: its test accuracy with 95% CI, the control task on seen entities, selectivity, and
        the p-value of "is any layer above chance"."""
        sel = self.selected()
        out: dict = {"layers": int(self.frame.layer.nunique())}
        if sel.empty:
            return out
        kind = "logistic" if (sel.probe == "logistic").any() else sel.probe.iloc[0]
        for _, r in sel[sel.probe == kind].iterrows():
            out[r.model] = {"probe": kind, "layer": int(r.layer), "accuracy": float(r.accuracy),
                            "ci": [float(r.ci_low), float(r.ci_high)], "balanced_accuracy": float(r.balanced_accuracy),
                            "majority_class": float(r.majority_class), "control_seen_entities": float(r.control_seen_entities),
                            "selectivity": float(r.selectivity), "p_any_layer": float(r.p_any_layer)}
        return out

    def figure(self, title: str = ""):
        from interp.plots import probe_accuracy_by_layer

        return probe_accuracy_by_layer(self.frame, title=title)


def stack_layers(store: ActivationStore, side: str, hook: str, position: str, rows: np.ndarray | None = None,
                 layers: Sequence[int] | None = None) -> torch.Tensor:
    """``[layers, n, d]`` fp32 for one side (optionally only ``rows``; ``layers``: a group of the store's layers)."""
    parts = [store.get(side, layer, hook, position) for layer in (store.layers if layers is None else layers)]
    X = torch.stack(parts).float()
    return X if rows is None else X[:, torch.as_tensor(rows)]


def probe_store(
    store: ActivationStore, *, hook: str = "resid_post", position: str | None = None, label: str = "label",
    train_mask: Sequence[bool] | None = None, test_mask: Sequence[bool] | None = None,
    kinds: Sequence[str] = ("logistic", "mass_mean"), n_boot: int = 200, seed: int = 0, max_memory_gb: float = 4.0,
) -> ProbeResult:
    """Fit and evaluate probes on each side of a store (train/test from the ``split`` column
    unless masks are given), with controls and base<->aligned transfer when both sides exist.
    Regularisation and the reported layer are chosen on a validation split of training entities
    (:mod:`interp.probes.evaluate`); intervals resample whole entities (the ``entity`` column).
    Returns a :class:`ProbeResult` (unpacks as ``frame, probes``; ``.selected()`` gives the
    chosen layers).

    ``max_memory_gb`` bounds the activations held at once (``[layers, rows, d]`` in fp32 for every
    side): a store whose layers do not fit is read from its memory-mapped shards a group of
    layers at a time, with the same figures (the max-over-layers test runs on every layer's test
    scores at the end). At 32 layers x 10,000 rows x d = 4,096 the whole stack is 5.2 GB a side."""
    if max_memory_gb <= 0:
        raise ValueError(f"max_memory_gb must be > 0, got {max_memory_gb}")
    position = position or store.positions[0]
    meta = store.frame()
    y = torch.as_tensor(meta[label].to_numpy().copy()).long()
    tr = np.array(train_mask if train_mask is not None else (meta["split"] == "train").to_numpy(), dtype=bool)
    te = np.array(test_mask if test_mask is not None else (meta["split"] == "test").to_numpy(), dtype=bool)
    if len(tr) != len(meta) or len(te) != len(meta):
        raise ValueError(f"train_mask / test_mask need one entry per store row ({len(meta)}), got {len(tr)} / {len(te)}")
    if tr.sum() == 0 or te.sum() == 0:
        raise ValueError(f"need train and test rows, got {int(tr.sum())} train and {int(te.sum())} test")
    if (tr & te).any():
        raise ValueError(f"{int((tr & te).sum())} rows are in both train_mask and test_mask; the splits must be disjoint")
    entities = meta["entity"].astype(str).to_numpy() if "entity" in meta else None
    if entities is None:
        warnings.warn("the store has no 'entity' column: C and the layer are chosen on random validation rows, not "
                      "on held-out entities, and intervals resample rows; a probe that memorises entities then looks "
                      "better on validation than it is. Cache a dataset with an 'entity' column to avoid it.",
                      stacklevel=2)
    else:
        shared = set(entities[tr]) & set(entities[te])
        if shared:
            warnings.warn(f"{len(shared)} entities have rows in both train and test (e.g. {sorted(shared)[:3]}); test "
                          "accuracy then partly measures memorised entities. Split by entity (the store's 'split' column is "
                          "entity-disjoint) to avoid it.", stacklevel=2)
    frames, probes, Xs = [], {}, {}
    trt, tet = torch.from_numpy(tr), torch.from_numpy(te)
    ents_tr = None if entities is None else entities[tr].tolist()
    ents_te = None if entities is None else entities[te].tolist()
    d = int(store.get(store.sides[0], store.layers[0], hook, position).shape[-1])
    size = max(1, int(max_memory_gb * 2**30 // (len(meta) * d * 4 * len(store.sides))))
    if size < len(store.layers):
        return _probe_in_groups(store, hook, position, y, trt, tet, ents_tr, ents_te, kinds, n_boot, seed, size, d)
    for side in store.sides:
        X = stack_layers(store, side, hook, position)
        Xs[side] = X
        frame, fitted = evaluate_probes(
            X[:, trt], y[trt], X[:, tet], y[tet], model=side, layers=store.layers, kinds=kinds,
            entities_train=ents_tr, entities_test=ents_te, n_boot=n_boot, seed=seed)
        frames.append(frame)
        probes[side] = fitted
    if {"base", "aligned"} <= set(store.sides):
        frames.append(transfer({s: Xs[s][:, trt] for s in ("base", "aligned")}, y[trt],
                               {s: Xs[s][:, tet] for s in ("base", "aligned")}, y[tet], layers=store.layers, n_boot=n_boot,
                               C={s: probes[s]["logistic"].C for s in ("base", "aligned") if "logistic" in probes[s]} or None,
                               clusters=ents_te))
    return ProbeResult(pd.concat(frames, ignore_index=True), probes)


def _probe_in_groups(store: ActivationStore, hook: str, position: str, y: torch.Tensor, trt: torch.Tensor,
                     tet: torch.Tensor, ents_tr, ents_te, kinds, n_boot: int, seed: int, size: int, d: int) -> ProbeResult:
    """:func:`probe_store` reading ``size`` layers at a time (every side), joined into one result."""
    from interp.probes.evaluate import ProbeSet, random_directions
    from interp.probes.metrics import accuracy
    from interp.stats import max_over_layers_test

    layers = list(store.layers)
    groups = [layers[i: i + size] for i in range(0, len(layers), size)]
    dirs = random_directions(len(layers), d, seed)
    frames: list[pd.DataFrame] = []
    parts: dict[str, dict[str, list[ProbeSet]]] = {side: {} for side in store.sides}
    test_scores: dict[str, dict[str, list[torch.Tensor]]] = {side: {} for side in store.sides}
    for g, group in enumerate(groups):
        at = torch.tensor([layers.index(x) for x in group])
        Xs = {side: stack_layers(store, side, hook, position, layers=group) for side in store.sides}
        fitted = {}
        for side, X in Xs.items():
            frame, fitted[side] = evaluate_probes(
                X[:, trt], y[trt], X[:, tet], y[tet], model=side, layers=group, kinds=kinds, entities_train=ents_tr,
                entities_test=ents_te, n_boot=n_boot, seed=seed, n_perm=0, directions=dirs[at])
            frames.append(frame)
            for kind, probe in fitted[side].items():
                parts[side].setdefault(kind, []).append(probe)
                test_scores[side].setdefault(kind, []).append(probe.scores(X[:, tet]).cpu())
        if {"base", "aligned"} <= set(store.sides):
            frames.append(transfer({s: Xs[s][:, trt] for s in ("base", "aligned")}, y[trt],
                                   {s: Xs[s][:, tet] for s in ("base", "aligned")}, y[tet], layers=group, n_boot=n_boot,
                                   C={s: fitted[s]["logistic"].C for s in ("base", "aligned") if "logistic" in fitted[s]}
                                   or None, clusters=ents_te))
        del Xs
    probes: dict = {}
    rows = []
    for side in store.sides:
        probes[side] = {}
        for kind, sets in parts[side].items():
            Cs = None if sets[0].C is None else [c for p in sets for c in p.C]
            probes[side][kind] = ProbeSet(kind, layers, torch.cat([p.w for p in sets]), torch.cat([p.b for p in sets]), Cs)
            t = max_over_layers_test(torch.cat(test_scores[side][kind]), y[tet], accuracy, clusters=ents_te, n_perm=1000,
                                     seed=seed)
            rows.append({"model": side, "layer": layers[t["layer"]], "probe": kind, "split": "test",
                         "metric": "p_any_layer", "value": t["p_value"], "ci_low": float("nan"), "ci_high": float("nan")})
    frames.append(pd.DataFrame(rows, columns=frames[0].columns))
    return ProbeResult(pd.concat(frames, ignore_index=True), probes)
