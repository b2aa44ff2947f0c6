"""Knowledge vs popularity ("noisy nudge"): which facts does a model know, by how common they are?

Given graded facts (SliCK categories from :func:`interp.behavior.grade_knowledge`) with a
popularity measure (e.g. a city's population), :func:`knowledge_by_popularity` bins the facts by
log popularity (quantile bins), gives the share of each category per bin and model, and fits a
logistic regression of P(known) on log10 popularity ("known" = any category but Unknown), with a
Wald confidence interval on the slope and a confidence band on the curve.

Example:
    >>> import pandas as pd
    >>> table = pd.DataFrame({"category": ["Unknown", "HighlyKnown", "Unknown", "MaybeKnown"] * 10,
    ...                       "popularity": [1e3, 1e7, 1e4, 1e6] * 10})
    >>> result = knowledge_by_popularity(table, n_bins=2)
    >>> result.fits.loc[0, "slope"] > 0
    np.True_
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from interp.behavior.knowledge import CATEGORIES
from interp.results import Result

__all__ = ["PopularityResult", "knowledge_by_popularity", "logistic_fit", "grade_pair"]


def logistic_fit(x: np.ndarray, y: np.ndarray, *, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood logistic regression ``P(y=1) = sigmoid(a + b x)`` by Newton's method.

    Returns ``(coef [a, b], covariance 2x2)`` (the inverse Fisher information, for Wald intervals).
    Raises ``ValueError`` when ``y`` has one class only (no fit exists)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) != len(y) or len(x) < 3:
        raise ValueError(f"logistic_fit needs >= 3 paired values, got x {len(x)}, y {len(y)}")
    if y.min() == y.max():
        raise ValueError("logistic_fit: every fact has the same label (all known or all unknown); no slope to fit")
    X = np.stack([np.ones_like(x), x], 1)
    coef = np.zeros(2)
    for _ in range(max_iter):
        p = 1 / (1 + np.exp(-(X @ coef)))
        w = np.clip(p * (1 - p), 1e-12, None)
        hess = X.T @ (X * w[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, X.T @ (y - p))
        coef = coef + step
        if np.abs(step).max() < 1e-10:
            break
    p = 1 / (1 + np.exp(-(X @ coef)))
    cov = np.linalg.inv(X.T @ (X * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2))
    return coef, cov


@dataclass(repr=False)
class PopularityResult(Result):
    """Category shares per popularity bin and the logistic fit of P(known) on log10 popularity.

    Attributes:
        bins: one row per (model, bin, category): ``model, bin, pop_low, pop_high, n, category, share``.
        fits: one row per model: ``n, intercept, slope, slope_low, slope_high, p_value`` (Wald, 95%).
        curves: one row per (model, x): fitted P(known) and its 95% band on a grid of log10 popularity.
    """

    bins: pd.DataFrame
    fits: pd.DataFrame
    curves: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.bins

    def known_share(self) -> pd.DataFrame:
        """Share of known facts (not Unknown) per model and bin."""
        known = self.bins[self.bins.category != "Unknown"].groupby(["model", "bin", "pop_low", "pop_high", "n"]).share.sum()
        return known.rename("known").reset_index()

    def summary(self) -> dict:
        """Per model: the slope of P(known) per decade of popularity with its 95% CI, and the known share."""
        out: dict = {}
        for _, r in self.fits.iterrows():
            out.update({f"{r.model}_slope": float(r.slope), f"{r.model}_slope_low": float(r.slope_low),
                        f"{r.model}_slope_high": float(r.slope_high), f"{r.model}_n": int(r.n)})
        known = self.known_share()
        for model, part in known.groupby("model", sort=False):
            out[f"{model}_known_share"] = float((part.known * part.n).sum() / part.n.sum())
        return out

    def figure(self, title: str = ""):
        from interp.plots.figures import knowledge_by_popularity as plot

        return plot(self, title=title)

    def _repr_html_(self) -> str:
        return self.fits.round(3).to_html() + self.known_share().round(3).to_html()


def knowledge_by_popularity(
    table: pd.DataFrame, *, category: str = "category", popularity: str = "popularity", model: str = "model",
    n_bins: int = 10, level: float = 0.95,
) -> PopularityResult:
    """Category shares by popularity bin and a logistic fit of P(known) on log10 popularity.

    Args:
        table: one row per (fact, model) with a SliCK ``category`` and a positive ``popularity``;
            a ``model`` column (e.g. ``"base"`` / ``"aligned"``) separates models (absent: one model,
            called ``"model"``). Rows with missing or non-positive popularity are dropped.
        n_bins: quantile bins of popularity (shared by all models, so bins line up).
        level: confidence level of the intervals.
    """
    missing = [c for c in (category, popularity) if c not in table.columns]
    if missing:
        raise ValueError(f"knowledge_by_popularity: table has no column(s) {missing}; "
                         f"pass category= / popularity= naming them (columns: {list(table.columns)})")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    t = table.copy()
    if model not in t.columns:
        t[model] = "model"
    bad = sorted(set(t[category]) - set(CATEGORIES))
    if bad:
        raise ValueError(f"unknown categories {bad[:5]}; expected {', '.join(CATEGORIES)}")
    t = t[pd.to_numeric(t[popularity], errors="coerce") > 0].copy()
    if t.empty:
        raise ValueError("knowledge_by_popularity: no row has a positive popularity")
    t["log_pop"] = np.log10(t[popularity].astype(float))
    edges = np.unique(np.quantile(t["log_pop"], np.linspace(0, 1, n_bins + 1)))
    t["bin"] = np.clip(np.searchsorted(edges, t["log_pop"], side="right") - 1, 0, len(edges) - 2)
    z = _z(level)
    bin_rows, fit_rows, curve_rows = [], [], []
    grid = np.linspace(edges[0], edges[-1], 50)
    for name, part in t.groupby(model, sort=False):
        for b, cell in part.groupby("bin"):
            counts = cell[category].value_counts()
            for cat in CATEGORIES:
                bin_rows.append({"model": name, "bin": int(b), "pop_low": 10 ** edges[b], "pop_high": 10 ** edges[b + 1],
                                 "n": len(cell), "category": cat, "share": counts.get(cat, 0) / len(cell)})
        known = (part[category] != "Unknown").to_numpy(float)
        try:
            coef, cov = logistic_fit(part["log_pop"].to_numpy(), known)
        except ValueError:
            coef, cov = np.array([np.nan, np.nan]), np.full((2, 2), np.nan)
        se = math.sqrt(cov[1, 1]) if np.isfinite(cov[1, 1]) else np.nan
        p_value = math.erfc(abs(coef[1] / se) / math.sqrt(2)) if se and np.isfinite(se) else np.nan
        fit_rows.append({"model": name, "n": len(part), "known": known.mean(), "intercept": coef[0], "slope": coef[1],
                         "slope_low": coef[1] - z * se, "slope_high": coef[1] + z * se, "p_value": p_value})
        G = np.stack([np.ones_like(grid), grid], 1)
        eta = G @ coef
        band = z * np.sqrt(np.einsum("ij,jk,ik->i", G, cov, G))
        for x, e, s in zip(grid, eta, band):
            curve_rows.append({"model": name, "log_pop": x, "p_known": _sigmoid(e), "low": _sigmoid(e - s),
                               "high": _sigmoid(e + s)})
    return PopularityResult(pd.DataFrame(bin_rows), pd.DataFrame(fit_rows), pd.DataFrame(curve_rows))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if np.isfinite(x) else np.nan


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


def grade_pair(pair, table: pd.DataFrame, *, sides: Iterable[str] = ("base", "aligned"),
               known: "dict[str, pd.Series] | None" = None, config=None, progress: bool = True) -> pd.DataFrame:
    """SliCK categories of ``table``'s facts under each side of ``pair``, stacked with a ``model`` column.

    Args:
        table: facts (``id, text, answer, aliases, relation, popularity``), e.g. from
            :func:`interp.align.graded_facts` or :func:`interp.data.facts`.
        sides: which models to grade.
        known: side -> categories already graded (indexed like ``table``), e.g. the recipe's base
            grading (``{"base": table.category}``); those sides are not graded again.
        config: a :class:`interp.behavior.KnowledgeConfig`.
    """
    import datasets

    from interp.behavior import grade_knowledge

    known = dict(known or {})
    cols = ["id", "text", "answer", "aliases", "relation", "split"]
    missing = [c for c in cols + ["popularity"] if c not in table.columns]
    if missing:
        raise ValueError(f"grade_pair: table lacks columns {missing}; pass facts from interp.align.graded_facts")
    out = []
    for side in sides:
        if side in known:
            cats = list(known[side])
        else:
            ds = datasets.Dataset.from_pandas(table[cols].reset_index(drop=True), preserve_index=False)
            cats = grade_knowledge(pair.side(side), ds, config, progress=progress)["category"]
        out.append(table[["id", "relation", "popularity"]].assign(category=cats, model=side))
    return pd.concat(out, ignore_index=True)
