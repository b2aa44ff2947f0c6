"""Probe every layer of a cached store: both sides, controls, and cross-model transfer.

Example:
    >>> store = cache_activations(pair, fact_statements(), layers=range(18), out_dir="out/c")  # doctest: +SKIP
    >>> frame, probes = probe_store(store)                                                     # doctest: +SKIP
    >>> frame.query("metric == 'accuracy' and probe == 'logistic'")                            # doctest: +SKIP
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from interp.cache import ActivationStore
from interp.probes.evaluate import evaluate_probes
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

    def summary(self) -> dict:
        """Per model, the logistic probe's highest test accuracy over layers and its layer. The layer
        is chosen on the test rows themselves: an optimistic (max-over-layers) figure, not an
        estimate for a layer fixed in advance."""
        f = self.frame[(self.frame.metric == "accuracy")]
        kind = "logistic" if (f.probe == "logistic").any() else (f.probe.iloc[0] if len(f) else None)
        out: dict = {"layers": int(self.frame.layer.nunique())}
        for model, part in f[f.probe == kind].groupby("model", sort=False):
            top = part.sort_values(["value", "layer"], ascending=[False, True]).iloc[0]
            out[f"{model}_max_accuracy_over_layers"] = float(top.value)
            out[f"{model}_argmax_layer"] = int(top.layer)
        return out

    def figure(self, title: str = ""):
        from interp.plots import probe_accuracy_by_layer

        return probe_accuracy_by_layer(self.frame, title=title)


def stack_layers(store: ActivationStore, side: str, hook: str, position: str, rows: np.ndarray | None = None) -> torch.Tensor:
    """``[layers, n, d]`` for one side (optionally only ``rows``)."""
    parts = [store.get(side, layer, hook, position) for layer in store.layers]
    X = torch.stack(parts).float()
    return X if rows is None else X[:, torch.as_tensor(rows)]


def probe_store(
    store: ActivationStore, *, hook: str = "resid_post", position: str | None = None, label: str = "label",
    train_mask: Sequence[bool] | None = None, test_mask: Sequence[bool] | None = None,
    kinds: Sequence[str] = ("logistic", "mass_mean"), n_boot: int = 200, seed: int = 0,
) -> ProbeResult:
    """Fit and evaluate probes on each side of a store (train/test from the ``split`` column
    unless masks are given), with controls and base<->aligned transfer when both sides exist.
    Returns a :class:`ProbeResult` (unpacks as ``frame, probes``)."""
    position = position or store.positions[0]
    meta = store.frame()
    y = torch.as_tensor(meta[label].to_numpy().copy()).long()
    tr = np.array(train_mask if train_mask is not None else (meta["split"] == "train").to_numpy(), dtype=bool)
    te = np.array(test_mask if test_mask is not None else (meta["split"] == "test").to_numpy(), dtype=bool)
    if tr.sum() == 0 or te.sum() == 0:
        raise ValueError(f"need train and test rows, got {int(tr.sum())} train and {int(te.sum())} test")
    entities = meta["entity"].astype(str).to_numpy() if "entity" in meta else None
    frames, probes, Xs = [], {}, {}
    for side in store.sides:
        X = stack_layers(store, side, hook, position)
        Xs[side] = X
        trt, tet = torch.from_numpy(tr), torch.from_numpy(te)
        frame, fitted = evaluate_probes(
            X[:, trt], y[trt], X[:, tet], y[tet], model=side, layers=store.layers, kinds=kinds,
            entities_train=None if entities is None else entities[tr].tolist(),
            entities_test=None if entities is None else entities[te].tolist(), n_boot=n_boot, seed=seed)
        frames.append(frame)
        probes[side] = fitted
    if {"base", "aligned"} <= set(store.sides):
        trt, tet = torch.from_numpy(tr), torch.from_numpy(te)
        frames.append(transfer({s: Xs[s][:, trt] for s in ("base", "aligned")}, y[trt],
                               {s: Xs[s][:, tet] for s in ("base", "aligned")}, y[tet], layers=store.layers, n_boot=n_boot))
    return ProbeResult(pd.concat(frames, ignore_index=True), probes)
