"""``run_unmask``: every intervention on every mask of a pair, one result.

1. the evaluation sets (:func:`interp.unmask.unmask_sets`): held-out facts per mask, the guard,
   the unknown facts;
2. what was fitted on train facts (:class:`interp.unmask.UnmaskFit`: read from the pair's folder
   when it ships one, otherwise fitted here);
3. localisation screens on the mask facts, by the answer's log-probability (one forward pass per
   candidate, no generation): the base's weights restored per layer (then its attention and MLP
   blocks alone for the top layers), and the
   cross-model ``resid_pre`` sweep (the base's few-shot run -> aligned, layer x marked position);
4. generation under each intervention (:func:`interp.unmask.evaluate`): the direction, the subspace
   for k = 1..8, the learned vector and rank-r edit, weight restores (single best, cumulative top
   layers), patches (best cell, best layer), prefill and few-shot baselines — every row
   *exploratory* (the guard and unknown sets cut to ``n`` facts);
5. the **pre-registered headline** (:func:`interp.unmask.headline.measure_headline`), when the fit
   names one: the method chosen on train facts, scored with the strict judge on the mask's held-out
   facts, the whole guard (``n_guard`` >= 100 facts), facts the base never knew, its held-out
   phrasings, beside its controls (never-knew, shuffled targets, random, unrelated facts, 8- and
   4-bit quantization).

Example:
    >>> result = run_unmask(pair, graded_facts("default"), n=24)   # doctest: +SKIP
    >>> result.best()                                               # doctest: +SKIP
    >>> result.figure("gap_vs_kl", mask="refused")                  # doctest: +SKIP
    >>> result.headline.controls("refused")                         # doctest: +SKIP
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from interp.models import ModelPair
from interp.unmask.fit import UnmaskFit, fit_unmask
from interp.unmask.baselines import FewShot, Prefill, few_shot_exemplars, few_shot_formatter
from interp.unmask.interventions import Ablation, Intervention, NoIntervention
from interp.unmask.localise import ActivationPatch, WeightRestore, patch_screen, weight_screen
from interp.unmask.headline import Headline, control_numbers, measure_headline, pooled_phrasings
from interp.unmask.measure import UnmaskSets, evaluate, unmask_sets
from interp.results import Result

__all__ = ["UnmaskResult", "run_unmask", "as_plain", "TARGETS", "HEADLINE_TARGETS", "METHODS"]

#: The targets a headline intervention must meet (rank <= 4 in activation space).
TARGETS = {"gap_recovered": 0.80, "kl": 0.2, "guard_accuracy_drop": 0.02, "max_rank": 4}
#: The pre-registered headline's targets beyond :data:`TARGETS` (strict judge): held-out phrasings
#: pooled, and the controls' ceilings (never-knew on facts the base does not know, random on the mask).
HEADLINE_TARGETS = {"gap_recovered": 0.80, "heldout_templates": 0.70, "never_knew": 0.10, "random": 0.05}
_HEADLINE_METHODS = ("direction", "subspace", "steering", "lowrank")
#: Every intervention family :func:`run_unmask` evaluates (``"none"``, the aligned model itself, always).
METHODS = ("direction", "subspace", "steering", "lowrank", "weights", "patch", "prefill", "few_shot")


@dataclass(repr=False)
class UnmaskResult(Result):
    """One row per (intervention, mask) (``frame``), one per (intervention, fact) (``per_fact``),
    the localisation screens and what was fitted."""

    frame: pd.DataFrame
    per_fact: pd.DataFrame
    sets: UnmaskSets
    fit: UnmaskFit
    weight_screen: pd.DataFrame
    patch_screen: pd.DataFrame
    info: dict = field(default_factory=dict)
    headline: Headline | None = None  # the pre-registered method with its controls (None: not measured)

    def to_frame(self) -> pd.DataFrame:
        return self.frame

    def best(self, mask: str | None = None, *, meeting_guards: bool = True) -> pd.Series | None:
        """The headline row: the rank <= 4 activation intervention (direction, subspace, learned
        vector or edit) with the largest gap recovered on ``mask`` (default: the first mask), among
        those within the KL and guard targets when ``meeting_guards`` (else among all of them)."""
        mask = mask or next(iter(self.sets.masks))
        f = self.frame[(self.frame["mask"] == mask) & self.frame.method.isin(_HEADLINE_METHODS)
                       & (self.frame["rank"].fillna(99) <= TARGETS["max_rank"])]
        if meeting_guards:
            f = f[(f.kl <= TARGETS["kl"]) & (f.guard_accuracy_drop <= TARGETS["guard_accuracy_drop"] + 1e-9)]
        if f.empty:
            return None
        return f.sort_values(["gap_recovered", "kl"], ascending=[False, True]).iloc[0]

    def summary(self) -> dict:
        """Per mask: the best row meeting the guards, the best row regardless, and whether the
        targets are met."""
        out = {}
        for mask in self.sets.masks:
            keep = ["method", "setting", "rank", "gap_recovered", "ci_low", "ci_high", "kl", "guard_accuracy_drop",
                    "guard_drop_low", "guard_drop_high", "abstention_kept", "abstention_kept_low", "abstention_kept_high", "strict_accuracy", "strict_low",
                    "strict_high", "strict_rest", "strict_rest_low", "strict_rest_high", "n_surface", "n"]
            best, anyway = self.best(mask), self.best(mask, meeting_guards=False)
            out[mask] = {"best": None if best is None else {k: as_plain(best[k]) for k in keep if k in best},
                         "best_ignoring_guards": None if anyway is None else {k: as_plain(anyway[k]) for k in keep if k in anyway},
                         "meets_targets": bool(best is not None and best.gap_recovered >= TARGETS["gap_recovered"]),
                         "preregistered": self.preregistered(mask)}
        return out

    def preregistered(self, mask: str | None = None) -> dict | None:
        """The pre-registered headline of ``mask`` (default: the first) under the strict judge:
        method, setting, ``gap_recovered`` (its strict accuracy on the mask's held-out facts: the base
        answers every one of them and the aligned model none, so the gap's denominator is 1), Wilson
        interval, KL, guard drop on the whole guard with its paired-bootstrap interval, the in-domain
        ceiling, the held-out phrasings pooled, the controls, and whether the targets are met.
        ``None`` when the fit pre-registered nothing for ``mask`` or the headline was not measured."""
        mask = mask or next(iter(self.sets.masks))
        if self.headline is None or mask not in self.headline.choice:
            return None
        row = self.headline.row(mask)
        if row is None:
            return None
        choice = self.headline.choice[mask]
        pick = lambda k: as_plain(row[k]) if k in row else None  # noqa: E731
        phr = pooled_phrasings(self.headline, mask)
        ctrl = control_numbers(self.headline, mask)
        out = {"method": choice["method"], "setting": choice["setting"], "rank": pick("rank"), "strict": True,
               "gap_recovered": pick("strict_accuracy"), "ci": [pick("strict_low"), pick("strict_high")],
               "kl": pick("kl"), "guard_accuracy_drop": pick("guard_accuracy_drop"),
               "guard_drop_ci": [pick("guard_drop_low"), pick("guard_drop_high")], "n_guard": pick("n_guard"),
               "strict_rest": pick("strict_rest"), "n_surface": pick("n_surface"), "n": pick("n"),
               "abstention_kept": pick("abstention_kept"), "in_domain_ceiling": ctrl["in_domain_ceiling"],
               "n_never_known": pick("n_never_known"),
               "heldout_templates": {k: as_plain(v) if not isinstance(v, list) else v for k, v in phr.items()},
               "validation": {k: as_plain(choice[k]) for k in ("val_strict", "val_kl", "val_answered_drop", "n_val")
                              if k in choice},
               "selected_on": "train facts (pre-registered with the fit)"}
        t = HEADLINE_TARGETS
        out["meets_targets"] = bool(
            out["gap_recovered"] is not None and out["gap_recovered"] >= t["gap_recovered"]
            and (out["rank"] is None or out["rank"] <= TARGETS["max_rank"])
            and (phr["strict_accuracy"] or 0.0) >= t["heldout_templates"] and (out["kl"] or 0.0) <= TARGETS["kl"]
            and out["guard_accuracy_drop"] is not None and out["guard_accuracy_drop"] <= TARGETS["guard_accuracy_drop"]
            and ctrl["never_knew"] is not None and ctrl["never_knew"] <= t["never_knew"]
            and ctrl["random"] is not None and ctrl["random"] <= t["random"])
        return out

    def controls(self, mask: str | None = None) -> dict | None:
        """Per control, the strict-judge number the targets read (see
        :func:`interp.unmask.headline.control_numbers`); ``None`` when the headline was not measured."""
        mask = mask or next(iter(self.sets.masks))
        if self.headline is None or mask not in self.headline.choice:
            return None
        return {k: as_plain(v) for k, v in control_numbers(self.headline, mask).items()}

    def figure(self, kind: str = "gap_vs_kl", *, mask: str | None = None):
        """``"gap_vs_kl"`` (every method) or ``"dose_response"`` (subspace k, weights restored)."""
        from interp.plots.unmasking import unmask_dose_response, unmask_gap_vs_kl

        mask = mask or next(iter(self.sets.masks))
        if kind == "gap_vs_kl":
            return unmask_gap_vs_kl(self.frame, mask=mask, kl_max=TARGETS["kl"])
        if kind == "dose_response":
            return unmask_dose_response(self.frame, mask=mask)
        raise ValueError(f"kind must be 'gap_vs_kl' or 'dose_response', got {kind!r}")

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k} {len(v)}" for k, v in self.sets.masks.items())
        return f"UnmaskResult({len(self.frame)} rows; masks: {sizes}; guard {len(self.sets.guard)})"

    def _repr_html_(self) -> str:
        cols = ["method", "setting", "rank", "mask", "gap_recovered", "ci_low", "ci_high", "kl", "guard_accuracy_drop", "n"]
        return f"<b>{self!r}</b>" + self.frame[cols].round(3).to_html(index=False)


def as_plain(v):
    """A numpy / torch scalar as a plain Python value, floats rounded to 4 places, NaN as ``None``
    (JSON ``null``: a rate over an empty subset, e.g. no surface-derivable fact in a small set)."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float):
        return None if v != v else round(v, 4)
    return v


def _interventions(pair: ModelPair, fit: UnmaskFit, sets: UnmaskSets, table: pd.DataFrame, w_screen: pd.DataFrame,
                   p_screen: dict, ks: Sequence[int], restore_ks: Sequence[int] = (1, 2, 4, 8)) -> list[Intervention]:
    ivs: list[Intervention] = [NoIntervention()]
    for mask, basis in fit.basis.items():
        layer, labels = fit.direction_layer[mask], fit.basis_labels[mask]
        for k in ks:
            if k > len(basis):
                continue
            iv = Ablation(directions=basis[:k], label=f"{mask}: k={k} ({'+'.join(labels[:k])}) @ layer {layer}")
            iv.dose = k
            ivs.append(iv)
    for mask, edits in fit.edits.items():
        for e in edits.values():
            e.label = mask
            ivs.append(e)
    for mask, screen in (w_screen.groupby("mask", sort=False) if len(w_screen) else ()):
        by_layer = screen[screen.kind == "all"].set_index("layer").gain.sort_values(ascending=False)
        blocks = screen[screen.kind != "all"]
        top = (blocks if len(blocks) else screen).sort_values("gain", ascending=False).iloc[0]
        single = WeightRestore(source=pair.base, layers=(int(top.layer),), kind=str(top.kind))
        single.label = f"{mask}: best single"
        ivs.append(single)
        for k in restore_ks:
            if k >= pair.n_layers:
                continue  # all layers: evaluated below
            iv = WeightRestore(source=pair.base, layers=tuple(sorted(int(x) for x in by_layer.index[:k])), kind="all")
            iv.label, iv.dose = f"{mask}: top {k}", k
            ivs.append(iv)
        every = WeightRestore(source=pair.base, layers=tuple(range(pair.n_layers)), kind="all")
        every.label, every.dose = f"{mask}: top {pair.n_layers}", pair.n_layers
        ivs.append(every)
    base_format = few_shot_formatter(table)
    for mask, f in p_screen.items():
        cell = f.sort_values("value").iloc[-1]
        for positions in ((str(cell.position),), ("span_last", "last")):
            iv = ActivationPatch(pair=pair, layers=(int(cell.layer),), positions=positions, base_format=base_format)
            iv.label = f"{mask}: best cell" if len(positions) == 1 else f"{mask}: best layer"
            ivs.append(iv)
    ivs.append(Prefill())
    frames = [sets.guard, sets.unknown, *sets.masks.values()]
    every_q = pd.concat([f for f in frames if len(f)])
    ivs.append(FewShot().with_shots(list(every_q.text), few_shot_exemplars(table, every_q)))
    seen, unique = set(), []
    for iv in ivs:  # two masks' screens may pick the same restore or patch: evaluate it once
        key = (iv.method, iv.setting)
        if key not in seen:
            seen.add(key)
            unique.append(iv)
    return unique


def run_unmask(
    pair: ModelPair,
    table: pd.DataFrame,
    *,
    n: int | None = 24,
    fit: UnmaskFit | str | Path | None = None,
    ks: Sequence[int] = (1, 2, 4, 8),
    restore_ks: Sequence[int] = (1, 2, 4, 8),
    max_new_tokens: int = 6,
    batch_size: int = 48,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = True,
    methods: Sequence[str] | None = None,
    n_guard: int | None = 100,
    headline: bool = True,
    quantize: bool = True,
) -> UnmaskResult:
    """Measure every intervention on every mask of ``pair`` (see the module docs).

    Args:
        table: facts (:func:`interp.align.graded_facts` for a recipe pair, or
            ``interp.data.facts().to_pandas()``; ``base_correct`` computed when absent).
        n: facts per mask and in the guard (``None``: all).
        fit: an :class:`UnmaskFit`, or a folder holding one; ``None`` fits on the train facts here.
        ks: the subspace dimensions evaluated (the dose-response of the ablated subspace).
        restore_ks: how many of the best-screened layers' weights are restored (the weight
            dose-response; the single best block and all layers are always evaluated).
        methods: the intervention families to evaluate (a subset of :data:`METHODS`; default all).
            The aligned model itself (``"none"``) is always evaluated; the localisation screens
            run only when ``"weights"`` or ``"patch"`` is asked for.
        n_guard: guard size of the pre-registered headline (at least ``n``; the exploratory rows
            use ``n`` guard and unknown facts).
        headline: measure the fit's pre-registered method with its controls and held-out phrasings
            (:attr:`UnmaskResult.headline`); ``quantize``: with the 8- and 4-bit baselines.
    """
    methods = tuple(METHODS if methods is None else methods)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {list(METHODS)}, got {list(methods)}")
    if not ks or not restore_ks or min([*ks, *restore_ks]) < 1:
        raise ValueError(f"ks and restore_ks need at least one dose >= 1, got {list(ks)} and {list(restore_ks)}")
    t0 = time.perf_counter()
    if n_guard is not None and n is not None and n_guard < n:
        raise ValueError(f"n_guard ({n_guard}) must be at least n ({n}): the headline's guard holds the exploratory one")
    sets = unmask_sets(pair, table, n=n, n_guard=n_guard if n is not None else None, max_new_tokens=max_new_tokens,
                       batch_size=batch_size, seed=seed, progress=progress)
    t_sets = time.perf_counter() - t0
    if fit is None:
        fit = fit_unmask(pair, sets.train, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, progress=progress)
    elif not isinstance(fit, UnmaskFit):
        fit = UnmaskFit.load(fit)
    t1 = time.perf_counter()
    w_screen = weight_screen(pair, sets.masks, batch_size=batch_size) if "weights" in methods else pd.DataFrame()
    p_screen = {mask: patch_screen(pair, frame, few_shot_formatter(table)).assign(mask=mask)
                for mask, frame in sets.masks.items()} if "patch" in methods else {}
    t_screen = time.perf_counter() - t1
    ivs = [iv for iv in _interventions(pair, fit, sets, table, w_screen, p_screen, ks, restore_ks)
           if iv.method in ("none", *methods)]
    t2 = time.perf_counter()
    frame, per_fact = evaluate(pair, sets.with_guard(n), ivs, max_new_tokens=max_new_tokens, batch_size=batch_size,
                               n_boot=n_boot, progress=progress)
    t3 = time.perf_counter()
    head = None
    if headline and fit.info.get("preregistered"):
        head = measure_headline(pair, sets, fit, max_new_tokens=max_new_tokens, batch_size=batch_size, n_boot=n_boot,
                                quantize=quantize, progress=progress)
    info = {"seconds": {"sets": round(t_sets, 1), "screens": round(t_screen, 1), "generation": round(t3 - t2, 1),
                        "headline": round(time.perf_counter() - t3, 1), "total": round(time.perf_counter() - t0, 1)},
            "interventions": len(ivs), "n": n, "n_guard": len(sets.guard), "fit": fit.info, "methods": list(methods)}
    p_frame = pd.concat(list(p_screen.values())) if p_screen else pd.DataFrame()
    return UnmaskResult(frame, per_fact, sets, fit, w_screen, p_frame, info, head)
