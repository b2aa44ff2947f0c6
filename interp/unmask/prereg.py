"""The pre-registered headline and the fitted controls, both decided on train facts only.

**Pre-registration** (:func:`preregister`): per mask, each headline candidate — the mode direction
ablated (k = 1), the subspace ablated (k = 2, 4), the learned steering vector and the learned
rank-r edit — answers the mask's *held-back train facts* (never used to fit an edit's parameters)
under the strict judge (:func:`interp.behavior.answers.classify_strict`), next to the next-token
KL on answered train prompts and the accuracy kept on answered train facts. The rule, fixed before
any evaluation fact is read: among candidates with KL <= ``kl_max``, the highest strict accuracy;
ties broken by the smaller accuracy drop on the answered facts, then the smaller rank, then the
smaller KL. The choice is saved with the fit (``UnmaskFit.info["preregistered"]``) and reported
as the headline; every other row is exploratory.

**Controls** (:func:`fit_controls`, see :mod:`interp.unmask.controls`): fitted with the budget of
the edit family the headline belongs to (the rank-r edit when the headline is an ablation).

Example:
    >>> choice, rows = preregister(pair, "refused", candidates, hold, answered, kl_prompts)  # doctest: +SKIP
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from interp.behavior import classify, generate
from interp.behavior.answers import classify_strict
from interp.models import ModelPair
from interp.patching.directions import kl_last_token, last_logits
from interp.prompts import encode
from interp.unmask.controls import never_knew_facts, random_like, shuffled_answers, unrelated_facts
from interp.unmask.interventions import Ablation, Intervention, LowRankEdit, Steering, describe, side_prompts
from interp.unmask.learn import fit_edit

__all__ = ["preregister", "pick_headline", "fit_controls", "candidates"]


def candidates(basis: torch.Tensor, labels: Sequence[str], layer: int, edits: dict) -> list[Intervention]:
    """The headline candidates of one mask: ablations k = 1, 2, 4 of its basis, then its edits."""
    out: list[Intervention] = []
    for k in (1, 2, 4):
        if k <= len(basis):
            out.append(Ablation(directions=basis[:k], label=f"k={k} ({'+'.join(labels[:k])}) @ layer {layer}"))
    return out + [edits[kind] for kind in ("steering", "lowrank") if kind in edits]


def preregister(pair: ModelPair, mask: str, ivs: Sequence[Intervention], hold: pd.DataFrame, answered: pd.DataFrame,
                kl_prompts: Sequence[str], *, kl_max: float = 0.2, max_new_tokens: int = 8,
                batch_size: int = 32) -> tuple[dict, list[dict]]:
    """Pick the headline of ``mask`` on train-side validation (see the module docs); returns the
    choice (``method, setting, kind, val_strict, val_kl, val_answered_drop, n_val``) and one
    selection row per candidate."""
    model = pair.aligned
    kl_batch = encode(model.tokenizer, list(kl_prompts))
    clean = last_logits(model, kl_batch)
    texts = list(hold.text) + list(answered.text)

    def judge(outs):
        strict = [classify_strict(o, a, question=q) == "correct" for o, a, q in zip(outs[:len(hold)], hold.aliases, hold.text)]
        kept = [classify(o, a) == "correct" for o, a in zip(outs[len(hold):], answered.aliases)]
        return float(np.mean(strict)), float(np.mean(kept)) if kept else float("nan")

    base_outs = generate(model, side_prompts(pair, "aligned", texts), max_new_tokens=max_new_tokens, batch_size=batch_size)
    _, kept_before = judge(base_outs)
    rows = []
    for iv in ivs:
        with iv.applied(model):
            outs = generate(model, side_prompts(pair, "aligned", texts), max_new_tokens=max_new_tokens, batch_size=batch_size)
            kl = float(kl_last_token(clean, last_logits(model, kl_batch)).mean())
        acc, kept = judge(outs)
        rows.append({"mask": mask, "what": f"pre-registration: {iv.method}", "method": iv.method, "setting": describe(iv),
                     "rank": iv.rank, "val_strict": acc, "kl": kl, "val_answered_drop": kept_before - kept,
                     "n": len(hold), "n_answered": len(answered), "kind": _kind(iv)})
    best = pick_headline(rows, kl_max=kl_max)
    choice = {"method": best["method"], "setting": best["setting"], "kind": best["kind"], "rank": best["rank"],
              "val_strict": best["val_strict"], "val_kl": best["kl"], "val_answered_drop": best["val_answered_drop"],
              "n_val": len(hold), "rule": "max strict accuracy on held-back train facts among KL <= kl_max; ties: "
              "smaller answered-fact drop, smaller rank, smaller KL", "met_kl": best["kl"] <= kl_max}
    return choice, rows


def pick_headline(rows: Sequence[dict], *, kl_max: float = 0.2) -> dict:
    """The pre-registration rule over candidate rows (``val_strict``, ``kl``, ``val_answered_drop``,
    ``rank``): among rows with ``kl <= kl_max`` (all rows when none is), the highest strict accuracy;
    ties: the smaller answered-fact drop, then the smaller rank (``None``: last), then the smaller KL."""
    if not rows:
        raise ValueError("pick_headline needs at least one candidate row")
    eligible = [r for r in rows if r["kl"] <= kl_max] or list(rows)
    rank = lambda r: 99 if r["rank"] is None or r["rank"] != r["rank"] else r["rank"]  # noqa: E731
    return max(eligible, key=lambda r: (r["val_strict"], -r["val_answered_drop"], -rank(r), -r["kl"]))


def _kind(iv: Intervention) -> str:
    if isinstance(iv, Ablation):
        return f"ablation:{iv.rank}"
    return "steering" if isinstance(iv, Steering) else "lowrank"


def fit_controls(pair: ModelPair, edit: LowRankEdit | Steering, learn: pd.DataFrame, keep: pd.DataFrame,
                 never_pool: pd.DataFrame, answered: pd.DataFrame, kl_prompts: Sequence[str], *, steps: int,
                 kl_weight: float, seed: int = 0, progress: bool = True) -> dict[str, LowRankEdit | Steering]:
    """The controls of one mask's ``edit`` with its budget (layer, rank, positions, steps, KL
    weight, the number of mask facts ``learn`` and the answered facts ``keep`` it was fitted with)."""
    rank = edit.rank if isinstance(edit, LowRankEdit) else 0

    def fit(facts: pd.DataFrame, answers: Sequence[str], with_keep: bool = True):
        prompts = side_prompts(pair, "aligned", list(facts.text) + (list(keep.text) if with_keep else []))
        targets = [f"{a}." for a in list(answers) + (list(keep.answer) if with_keep else [])]
        iv, _ = fit_edit(pair.aligned, prompts, targets, kl_prompts, layer=edit.layer, rank=rank, positions=edit.positions,
                         steps=steps, kl_weight=kl_weight, batch_size=16, seed=seed, progress=progress)
        return iv

    never = never_knew_facts(never_pool, learn, min(len(learn), len(never_pool)), seed=seed)
    out = {"never_knew": fit(never, never.answer),
           "shuffled": fit(learn, shuffled_answers(list(learn.answer), seed=seed)),
           "random": random_like(edit, seed=seed),
           "unrelated": None}
    try:
        unrelated = unrelated_facts(answered, sorted(set(learn.relation)), 10, seed=seed)
    except ValueError:  # every answered relation is the mask's own: facts outside the mask's train facts
        unrelated = answered[~answered.id.isin(learn.id)].sample(min(10, len(answered)), random_state=seed)
    out["unrelated"] = fit(unrelated, unrelated.answer, with_keep=False)
    for name, iv in out.items():
        iv.label = f"control {name}"
    return out
