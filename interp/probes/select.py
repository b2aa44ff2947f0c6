"""Choosing without peeking: the validation split, the control split, and the selected layer.

Reported probe numbers must not come from a choice made on their own test rows. Here:

- :func:`validation_rows` sets aside whole training entities as a validation split; the
  regularisation strength and the reported layer are chosen there, and the test split is read
  once, at the layer chosen.
- :func:`seen_entity_rows` holds out some rows of each training entity that has several, for the
  control task (Hewitt & Liang 2019: random labels per entity, evaluated on held-out rows of
  entities the probe saw, where a memorising probe succeeds).
- :func:`selected_layers` reads only ``split == "val"`` rows of a probe frame to pick each
  model's layer, then reports the test metrics of that layer.

Example:
    >>> import numpy as np
    >>> ents = np.array(["a", "a", "b", "b", "c", "c", "d", "d"])
    >>> val = validation_rows(ents, labels=np.array([0, 1] * 4), fraction=0.25, seed=0)
    >>> sorted(str(e) for e in set(ents[val]))  # whole entities
    ['d']
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["validation_rows", "seen_entity_rows", "selected_layers"]


def validation_rows(entities: "Sequence[str] | np.ndarray | None", labels: np.ndarray, *, fraction: float = 0.25, seed: int = 0,
                    tries: int = 20) -> np.ndarray:
    """A boolean mask over training rows: the validation split. Whole entities when ``entities``
    is given (entity-disjoint from the rows fitted, as the test split is), random rows otherwise.
    Both the validation rows and the rest hold both labels (another seed is tried if not)."""
    if not 0 < fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(labels)
    n = len(labels)
    keys = np.asarray(entities, dtype=str) if entities is not None else np.arange(n).astype(str)
    if len(keys) != n:
        raise ValueError(f"{len(keys)} entities for {n} training rows; pass one entity per row")
    uniq = np.unique(keys)
    if len(uniq) < 2:
        raise ValueError(f"need >= 2 training entities to carve a validation split, got {len(uniq)}")
    k = min(len(uniq) - 1, max(1, round(fraction * len(uniq))))
    for attempt in range(tries):
        rng = np.random.default_rng(seed + attempt)
        mask = np.isin(keys, rng.choice(uniq, size=k, replace=False))
        if len(set(labels[mask].tolist())) == 2 and len(set(labels[~mask].tolist())) == 2:
            return mask
    raise ValueError(f"no validation split of {k} of {len(uniq)} training entities holds both labels on both sides "
                     f"after {tries} tries; pass more training rows or a larger val_fraction")


def seen_entity_rows(entities: "Sequence[str] | np.ndarray", *, fraction: float = 0.5, seed: int = 0) -> np.ndarray:
    """A boolean mask over training rows: for every entity with >= 2 rows, ``fraction`` of its rows
    (at least one, never all) held out; entities with one row stay in. All ``False`` when no entity
    repeats (then no control task can be evaluated on seen entities)."""
    keys = np.asarray(entities, dtype=str)
    rng = np.random.default_rng(seed)
    held = np.zeros(len(keys), dtype=bool)
    for e in np.unique(keys):
        rows = np.flatnonzero(keys == e)
        if len(rows) >= 2:
            k = min(len(rows) - 1, max(1, round(fraction * len(rows))))
            held[rng.choice(rows, size=k, replace=False)] = True
    return held


def selected_layers(frame: pd.DataFrame, *, metric: str = "accuracy") -> pd.DataFrame:
    """One row per (model, probe) fitted with a validation split: the layer with the highest
    validation ``metric`` (ties: the earlier layer), chosen from ``split == "val"`` rows only, with
    that layer's test metrics beside it: ``model, probe, layer, val_<metric>, <metric>, ci_low,
    ci_high`` (the interval of ``<metric>``), then ``accuracy, balanced_accuracy, auroc,
    majority_class, control_seen_entities, selectivity, p_any_layer`` (accuracy's max-over-layers
    permutation test). Columns the frame has no rows for are ``nan``."""
    val = frame[(frame.split == "val") & (frame.metric == metric)]
    test = frame[frame.split == "test"]
    out = []
    for (model, probe), part in val.groupby(["model", "probe"], sort=False):
        top = part.sort_values(["value", "layer"], ascending=[False, True]).iloc[0]
        layer = int(top.layer)

        def at(probe_: str, metric_: str, col: str = "value", split: str | None = None) -> float:
            f = frame if split else test
            rows = f[(f.model == model) & (f.probe == probe_) & (f.metric == metric_) & (f.layer == layer)]
            if split:
                rows = rows[rows.split == split]
            return float(rows[col].iloc[0]) if len(rows) else float("nan")

        p_rows = test[(test.model == model) & (test.probe == probe) & (test.metric == "p_any_layer")]
        row = {"model": model, "probe": probe, "layer": layer, f"val_{metric}": float(top.value),
               metric: at(probe, metric), "ci_low": at(probe, metric, "ci_low"), "ci_high": at(probe, metric, "ci_high")}
        for m in ("accuracy", "balanced_accuracy", "auroc"):
            row.setdefault(m, at(probe, m))
        row.update({
            "majority_class": at("majority_class", "accuracy"),
            "control_seen_entities": at("control_task", "accuracy", split="seen_entities") if probe == "logistic" else float("nan"),
            "selectivity": at(probe, "selectivity"),
            "p_any_layer": float(p_rows.value.iloc[0]) if len(p_rows) else float("nan"),
        })
        out.append(row)
    return pd.DataFrame(out)
