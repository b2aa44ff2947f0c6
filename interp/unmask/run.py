"""``run_unmask``: every intervention on every mask of a pair, one result.

1. the evaluation sets (:func:`interp.unmask.unmask_sets`): held-out facts per mask, the guard,
   the unknown facts;
2. what was fitted on train facts (:class:`interp.unmask.UnmaskFit`: read from the pair's folder
   when it ships one, otherwise fitted here);
3. localisation screens on the mask facts, by the answer's log-probability (one forward pass per
   candidate, no generation): the base's weights restored per layer x {attention, MLP}, and the
   cross-model ``resid_pre`` sweep (base -> aligned, layer x marked position);
4. generation under each intervention (:func:`interp.unmask.evaluate`): the direction, the subspace
   for k = 1..8, the learned vector and rank-r edit, weight restores (single best, cumulative top
   layers), patches (best cell, best layer), prefill and few-shot baselines.

Example:
    >>> result = run_unmask(pair, graded_facts("default"), n=24)   # doctest: +SKIP
    >>> result.best()                                               # doctest: +SKIP
    >>> result.figure("gap_vs_kl", mask="refused")                  # doctest: +SKIP
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from interp.models import ModelPair
from interp.patching import answer_vs_token, cross_model_sweep
from interp.unmask.fit import UnmaskFit, fit_unmask
from interp.unmask.interventions import (
    Ablation, ActivationPatch, FewShot, Intervention, NoIntervention, Prefill, WeightRestore, side_prompts,
)
from interp.unmask.learn import answer_nll
from interp.unmask.measure import UnmaskSets, evaluate, unmask_sets

__all__ = ["UnmaskResult", "run_unmask", "weight_screen", "few_shot_exemplars", "TARGETS"]

#: The targets a headline intervention must meet (rank <= 4 in activation space).
TARGETS = {"gap_recovered": 0.80, "kl": 0.2, "guard_accuracy_drop": 0.02, "max_rank": 4}
_HEADLINE_METHODS = ("direction", "subspace", "steering", "lowrank")


@dataclass
class UnmaskResult:
    """One row per (intervention, mask) (``frame``), one per (intervention, fact) (``per_fact``),
    the localisation screens and what was fitted."""

    frame: pd.DataFrame
    per_fact: pd.DataFrame
    sets: UnmaskSets
    fit: UnmaskFit
    weight_screen: pd.DataFrame
    patch_screen: pd.DataFrame
    info: dict = field(default_factory=dict)

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
                    "abstention_kept", "n"]
            best, anyway = self.best(mask), self.best(mask, meeting_guards=False)
            out[mask] = {"best": None if best is None else {k: _py(best[k]) for k in keep},
                         "best_ignoring_guards": None if anyway is None else {k: _py(anyway[k]) for k in keep},
                         "meets_targets": bool(best is not None and best.gap_recovered >= TARGETS["gap_recovered"])}
        return out

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


def _py(v):
    if hasattr(v, "item"):
        v = v.item()
    return round(v, 4) if isinstance(v, float) else v


def few_shot_exemplars(table: pd.DataFrame, questions: pd.DataFrame, n_shots: int = 2, seed: int = 0) -> list[list[tuple[str, str]]]:
    """Per question, ``n_shots`` ``(question, answer)`` exemplars of the same relation from the
    train facts (a seeded choice, never the question itself)."""
    train = table[table.split == "train"]
    out = []
    for i, (rel, text) in enumerate(zip(questions.relation, questions.text)):
        pool = train[(train.relation == rel) & (train.text != text)]
        if len(pool) < n_shots:
            pool = train[train.text != text]
        pick = pool.sample(n_shots, random_state=seed + i)
        out.append(list(zip(pick.text, pick.answer)))
    return out


def weight_screen(pair: ModelPair, frame: pd.DataFrame, kinds: Sequence[str] = ("attn", "mlp"), *,
                  batch_size: int = 32) -> pd.DataFrame:
    """Per layer x kind, the mean log-probability per token of the base's answer (``"X."``) after
    the chat prompt, with the base's weights of that layer and kind restored in the aligned model
    (``gain``: minus the unrestored model's)."""
    prompts = side_prompts(pair, "aligned", list(frame.text))
    answers = [f"{a}." for a in frame.answer]
    clean = float(-answer_nll(pair.aligned, prompts, answers, batch_size=batch_size).mean())
    rows = []
    for layer in range(pair.n_layers):
        for kind in kinds:
            with WeightRestore(source=pair.base, layers=(layer,), kind=kind).applied(pair.aligned):
                lp = float(-answer_nll(pair.aligned, prompts, answers, batch_size=batch_size).mean())
            rows.append({"layer": layer, "kind": kind, "answer_logprob": lp, "gain": lp - clean})
    return pd.DataFrame(rows)


def _interventions(pair: ModelPair, fit: UnmaskFit, sets: UnmaskSets, table: pd.DataFrame, w_screen: dict,
                   p_screen: dict, ks: Sequence[int]) -> list[Intervention]:
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
    for mask, screen in w_screen.items():
        by_layer = screen.groupby("layer").gain.sum().sort_values(ascending=False)
        top = screen.sort_values("gain", ascending=False).iloc[0]
        single = WeightRestore(source=pair.base, layers=(int(top.layer),), kind=str(top.kind))
        single.label = f"{mask}: best single"
        ivs.append(single)
        for k in (1, 2, 4, 8):
            iv = WeightRestore(source=pair.base, layers=tuple(sorted(int(x) for x in by_layer.index[:k])), kind="all")
            iv.label, iv.dose = f"{mask}: top {k}", k
            ivs.append(iv)
        every = WeightRestore(source=pair.base, layers=tuple(range(pair.n_layers)), kind="all")
        every.label, every.dose = f"{mask}: top {pair.n_layers}", pair.n_layers
        ivs.append(every)
    for mask, res in p_screen.items():
        f = res.to_frame()
        cell = f.sort_values("value").iloc[-1]
        ivs.append(ActivationPatch(pair=pair, layers=(int(cell.layer),), positions=(str(cell.position),)))
        ivs.append(ActivationPatch(pair=pair, layers=(int(cell.layer),), positions=tuple(res.positions)))
    ivs.append(Prefill())
    frames = [sets.guard, sets.unknown, *sets.masks.values()]
    every_q = pd.concat([f for f in frames if len(f)])
    ivs.append(FewShot().with_shots(list(every_q.text), few_shot_exemplars(table, every_q)))
    return ivs


def run_unmask(
    pair: ModelPair,
    table: pd.DataFrame,
    *,
    n: int | None = 24,
    fit: UnmaskFit | str | Path | None = None,
    ks: Sequence[int] = (1, 2, 4, 8),
    max_new_tokens: int = 8,
    batch_size: int = 32,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> UnmaskResult:
    """Measure every intervention on every mask of ``pair`` (see the module docs).

    Args:
        table: facts (:func:`interp.align.graded_facts` for a recipe pair, or
            ``interp.data.facts().to_pandas()``; ``base_correct`` computed when absent).
        n: facts per mask and in the guard (``None``: all).
        fit: an :class:`UnmaskFit`, or a folder holding one; ``None`` fits on the train facts here.
        ks: the subspace dimensions evaluated (the dose-response of the ablated subspace).
    """
    t0 = time.perf_counter()
    sets = unmask_sets(pair, table, n=n, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, progress=progress)
    t_sets = time.perf_counter() - t0
    if fit is None:
        fit = fit_unmask(pair, sets.train, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, progress=progress)
    elif not isinstance(fit, UnmaskFit):
        fit = UnmaskFit.load(fit)
    t1 = time.perf_counter()
    w_screen, p_screen = {}, {}
    for mask, frame in sets.masks.items():
        w_screen[mask] = weight_screen(pair, frame, batch_size=batch_size).assign(mask=mask)
        p_screen[mask] = cross_model_sweep(pair, list(frame.text), answer_vs_token(pair.aligned.tokenizer, list(frame.answer)),
                                           spans=list(frame.subject), positions=("span_last", "last"))
    t_screen = time.perf_counter() - t1
    ivs = _interventions(pair, fit, sets, table, w_screen, p_screen, ks)
    t2 = time.perf_counter()
    frame, per_fact = evaluate(pair, sets, ivs, max_new_tokens=max_new_tokens, batch_size=batch_size, n_boot=n_boot,
                               progress=progress)
    info = {"seconds": {"sets": round(t_sets, 1), "screens": round(t_screen, 1), "generation": round(time.perf_counter() - t2, 1),
                        "total": round(time.perf_counter() - t0, 1)}, "interventions": len(ivs), "n": n,
            "fit": fit.info}
    patch_frames = pd.concat([r.to_frame().assign(mask=m) for m, r in p_screen.items()])
    return UnmaskResult(frame, per_fact, sets, fit, pd.concat(list(w_screen.values())), patch_frames, info)
