"""Knowledge vs popularity ("noisy nudge"): which facts does a model know, by how common they are?

Given graded facts (SliCK categories from :func:`interp.behavior.grade_knowledge`) with a
popularity measure (e.g. a city's population), :func:`knowledge_by_popularity` bins the facts by
log popularity (quantile bins), gives the share of each category per bin and model, and fits a
logistic regression of P(known) on log10 popularity ("known" = any category but Unknown), with a
Wald confidence interval on the slope and a confidence band on the curve. The covariance is
cluster-robust by entity when the table has an ``entity`` column (a country's capital, continent
and currency are not three independent facts); with two or more models, one fit with a model x
popularity interaction tests whether their slopes differ (``comparison``).

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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from interp.behavior.knowledge import CATEGORIES
from interp.results import Result

__all__ = ["PopularityResult", "knowledge_by_popularity", "logistic_fit", "grade_pair"]


def logistic_fit(x: np.ndarray, y: np.ndarray, *, groups: "np.ndarray | None" = None,
                 max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood logistic regression ``P(y=1) = sigmoid(a + b x)`` (statsmodels' GLM).

    Returns ``(coef [a, b], covariance 2x2)``: the inverse Fisher information, or with ``groups``
    (one cluster label per row, e.g. the entity a fact is about) the cluster-robust sandwich
    covariance, for Wald intervals that do not treat facts about one entity as independent.
    Raises ``ValueError`` when ``y`` has one class only (no fit exists)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) != len(y) or len(x) < 3:
        raise ValueError(f"logistic_fit needs >= 3 paired values, got x {len(x)}, y {len(y)}")
    if y.min() == y.max():
        raise ValueError("logistic_fit: every fact has the same label (all known or all unknown); no slope to fit")
    return _glm(np.stack([np.ones_like(x), x], 1), y, groups, max_iter)


def _glm(X: np.ndarray, y: np.ndarray, groups: "np.ndarray | None", max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    import warnings

    import statsmodels.api as sm

    model = sm.GLM(y, X, family=sm.families.Binomial())
    with warnings.catch_warnings():  # near-separation warnings: the (wide) intervals say it already
        warnings.simplefilter("ignore")
        if groups is None:
            res = model.fit(maxiter=max_iter, tol=1e-10)
        else:
            codes = np.unique(np.asarray(groups, dtype=str), return_inverse=True)[1]
            res = model.fit(maxiter=max_iter, tol=1e-10, cov_type="cluster", cov_kwds={"groups": codes})
    return np.asarray(res.params), np.asarray(res.cov_params())


@dataclass(repr=False)
class PopularityResult(Result):
    """Category shares per popularity bin and the logistic fit of P(known) on log10 popularity.

    Attributes:
        bins: one row per (model, bin, category): ``model, bin, pop_low, pop_high, n, category, share``.
        fits: one row per model: ``n, clusters, intercept, slope, slope_low, slope_high, p_value``
            (Wald, 95%; ``clusters``: entities the covariance is robust to, 0 for none).
        curves: one row per (model, x): fitted P(known) and its 95% band on a grid of log10 popularity.
        comparison: one row per model after the first: ``model, reference, slope_difference, low,
            high, p_value`` from one logistic fit of both models' facts with a model x popularity
            interaction (clustered by entity where known).
    """

    bins: pd.DataFrame
    fits: pd.DataFrame
    curves: pd.DataFrame
    comparison: pd.DataFrame = field(default_factory=pd.DataFrame)

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
        for _, r in self.comparison.iterrows():
            out.update({f"{r.model}_minus_{r.reference}_slope": float(r.slope_difference),
                        f"{r.model}_minus_{r.reference}_ci": [float(r.low), float(r.high)],
                        f"{r.model}_minus_{r.reference}_p_value": float(r.p_value)})
        known = self.known_share()
        for model, part in known.groupby("model", sort=False):
            out[f"{model}_known_share"] = float((part.known * part.n).sum() / part.n.sum())
        return out

    def figure(self, title: str = ""):
        from interp.plots.figures import knowledge_by_popularity as plot

        return plot(self, title=title)

    def _repr_html_(self) -> str:
        return self.fits.round(3).to_html() + self.comparison.round(4).to_html() + self.known_share().round(3).to_html()


def knowledge_by_popularity(
    table: pd.DataFrame, *, category: str = "category", popularity: str = "popularity", model: str = "model",
    n_bins: int = 10, level: float = 0.95, cluster: str | None = "entity",
) -> PopularityResult:
    """Category shares by popularity bin and a logistic fit of P(known) on log10 popularity.

    Args:
        table: one row per (fact, model) with a SliCK ``category`` and a positive ``popularity``;
            a ``model`` column (e.g. ``"base"`` / ``"aligned"``) separates models (absent: one model,
            called ``"model"``). Rows with missing or non-positive popularity are dropped.
        n_bins: quantile bins of popularity (shared by all models, so bins line up).
        level: confidence level of the intervals.
        cluster: the column whose values group non-independent facts (default ``"entity"``); the
            intervals are cluster-robust when the column exists, model-based otherwise (or ``None``).
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
    use_clusters = cluster is not None and cluster in t.columns
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
        groups = part[cluster].to_numpy() if use_clusters else None
        try:
            coef, cov = logistic_fit(part["log_pop"].to_numpy(), known, groups=groups)
        except ValueError:
            coef, cov = np.array([np.nan, np.nan]), np.full((2, 2), np.nan)
        se = math.sqrt(cov[1, 1]) if np.isfinite(cov[1, 1]) else np.nan
        fit_rows.append({"model": name, "n": len(part), "clusters": int(part[cluster].nunique()) if use_clusters else 0,
                         "known": known.mean(), "intercept": coef[0], "slope": coef[1],
                         "slope_low": coef[1] - z * se, "slope_high": coef[1] + z * se, "p_value": _p(coef[1], se)})
        G = np.stack([np.ones_like(grid), grid], 1)
        eta = G @ coef
        band = z * np.sqrt(np.einsum("ij,jk,ik->i", G, cov, G))
        for x, e, s in zip(grid, eta, band):
            curve_rows.append({"model": name, "log_pop": x, "p_known": _sigmoid(e), "low": _sigmoid(e - s),
                               "high": _sigmoid(e + s)})
    comparison = _compare_slopes(t, category, model, cluster if use_clusters else None, z)
    return PopularityResult(pd.DataFrame(bin_rows), pd.DataFrame(fit_rows), pd.DataFrame(curve_rows), comparison)


def _p(estimate: float, se: float) -> float:
    return math.erfc(abs(estimate / se) / math.sqrt(2)) if se and np.isfinite(se) else np.nan


def _compare_slopes(t: pd.DataFrame, category: str, model: str, cluster: str | None, z: float) -> pd.DataFrame:
    """Each model after the first against the first: one logistic fit of both models' facts with
    ``known ~ 1 + x + m + x * m`` (``m`` = 1 for the other model); the ``x * m`` coefficient is the
    slope difference. Clustered by entity, so a fact graded under both models counts once."""
    names = list(dict.fromkeys(t[model]))
    rows = []
    for other in names[1:]:
        part = t[t[model].isin([names[0], other])]
        x, m = part["log_pop"].to_numpy(float), (part[model] == other).to_numpy(float)
        y = (part[category] != "Unknown").to_numpy(float)
        try:
            if y.min() == y.max():
                raise ValueError("one class")
            coef, cov = _glm(np.stack([np.ones_like(x), x, m, x * m], 1), y, part[cluster].to_numpy() if cluster else None)
            d, se = coef[3], math.sqrt(cov[3, 3])
        except (ValueError, np.linalg.LinAlgError):
            d, se = np.nan, np.nan
        rows.append({"model": other, "reference": names[0], "slope_difference": d, "low": d - z * se, "high": d + z * se,
                     "p_value": _p(d, se), "clusters": int(part[cluster].nunique()) if cluster else 0})
    return pd.DataFrame(rows, columns=["model", "reference", "slope_difference", "low", "high", "p_value", "clusters"])


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
        keep = ["id", "relation", "popularity"] + [c for c in ("entity", "subject") if c in table.columns]
        out.append(table[keep].assign(category=cats, model=side))
    return pd.concat(out, ignore_index=True)
