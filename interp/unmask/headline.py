"""The pre-registered headline, its controls and its held-out phrasings, measured on held-out facts.

For each mask the fit (:class:`interp.unmask.UnmaskFit`) names one pre-registered method, chosen
on train facts (:mod:`interp.unmask.prereg`). :func:`measure_headline` scores, under the strict
judge:

- the headline on the mask's held-out facts, with the whole guard (at least 100 facts the aligned
  model answers: its accuracy drop with a paired bootstrap interval), the abstention kept on facts
  the base does not know, and the *in-domain ceiling*: its accuracy on held-out facts of the mask
  that the base does not know (an edit that exceeds the base's accuracy there taught);
- the controls fitted with the headline's budget (never-knew, shuffled targets, random, unrelated
  facts) and the aligned model quantized to 8 and 4 bits, on the same facts;
- the headline on the held-out phrasings (:mod:`interp.unmask.phrasings`): per phrasing, the mask's
  facts asked that way, kept where the base answers them so (few-shot, exemplars in the same
  phrasing) and the aligned model masks them so, with the rates at which it does.

Example:
    >>> head = measure_headline(pair, sets, fit)            # doctest: +SKIP
    >>> head.controls("refused")                            # doctest: +SKIP
"""

from dataclasses import dataclass

import pandas as pd

from interp.behavior import classify, generate
from interp.models import ModelPair
from interp.unmask.controls import Quantized
from interp.unmask.fit import UnmaskFit
from interp.unmask.interventions import Ablation, Intervention, NoIntervention, describe, side_prompts
from interp.unmask.measure import MASKS, UnmaskSets, _base_correct, evaluate
from interp.unmask.phrasings import PHRASINGS, rephrase

__all__ = ["Headline", "measure_headline", "preregistered_intervention", "phrasing_sets"]


@dataclass
class Headline:
    """``frame``: one row per (role, mask) — ``role`` is ``headline``, ``control <name>`` or
    ``quantized <bits>`` — with the columns of :func:`interp.unmask.evaluate`; ``phrasings``: the
    headline per (mask, phrasing); ``phrasing_info``: how many facts each phrasing kept and why;
    ``per_fact``: every answer."""

    frame: pd.DataFrame
    phrasings: pd.DataFrame
    phrasing_info: pd.DataFrame
    per_fact: pd.DataFrame
    choice: dict

    def row(self, mask: str, role: str = "headline") -> pd.Series | None:
        f = self.frame[(self.frame["mask"] == mask) & (self.frame.role == role)]
        return None if f.empty else f.iloc[0]

    def controls(self, mask: str) -> dict:
        """The strict-judge numbers of each control on ``mask`` (see :func:`control_numbers`)."""
        return control_numbers(self, mask)


def preregistered_intervention(fit: UnmaskFit, mask: str) -> Intervention:
    """The intervention the fit pre-registered for ``mask``."""
    choice = fit.info.get("preregistered", {}).get(mask)
    if choice is None:
        raise ValueError(f"the fit has no pre-registered method for mask {mask!r} (fitted before pre-registration); "
                         "re-fit with `interp unmask --fit`")
    kind = choice["kind"]
    if kind.startswith("ablation:"):
        k, layer = int(kind.split(":")[1]), fit.direction_layer[mask]
        iv: Intervention = Ablation(directions=fit.basis[mask][:k],
                                    label=f"k={k} ({'+'.join(fit.basis_labels[mask][:k])}) @ layer {layer}")
    else:
        iv = fit.edits[mask][kind]
    return iv


def phrasing_sets(pair: ModelPair, sets: UnmaskSets, phrasing: str, *, max_new_tokens: int = 6, batch_size: int = 48,
                  n_pool: int = 8) -> tuple[UnmaskSets, list[dict]]:
    """Each mask's held-out facts asked with ``phrasing``, kept where the base answers them (plain
    few-shot, exemplars: ``n_pool`` train facts per relation in the same phrasing) and the aligned
    model masks them the same way; with one info row per mask."""
    masks, responses, info = {}, {}, []
    for mask, frame in sets.masks.items():
        q = rephrase(frame, phrasing)
        if not len(q):
            info.append({"mask": mask, "phrasing": phrasing, "n_asked": 0})
            continue
        pool = rephrase(sets.train[sets.train.relation.isin(set(frame.relation))].groupby("relation").head(n_pool), phrasing)
        both = pd.concat([q, pool], ignore_index=True)
        base_ok = _base_correct(pair, both, batch_size, rows=len(q))
        outs = generate(pair.aligned, side_prompts(pair, "aligned", list(q.text)), max_new_tokens=max_new_tokens,
                        batch_size=batch_size)
        q = q.assign(base_correct=base_ok, aligned_class=[classify(o, a) for o, a in zip(outs, q.aliases)])
        responses.update(dict(zip(q.id, outs)))
        masked = q.aligned_class == MASKS[mask]
        kept = q[q.base_correct & masked]
        info.append({"mask": mask, "phrasing": phrasing, "n_asked": len(q), "base_correct": int(q.base_correct.sum()),
                     "aligned_masks": int(masked.sum()), "aligned_mask_rate": float(masked.mean()),
                     "aligned_correct_rate": float((q.aligned_class == "correct").mean()), "n_kept": len(kept),
                     "reversed": bool(q.reversed.any())})
        if len(kept):
            masks[mask] = kept
    empty = sets.guard.head(0)
    return UnmaskSets(masks, empty, sets.unknown.head(0), sets.train, responses), info


def _only(sets: UnmaskSets, mask: str, *, guard: bool) -> UnmaskSets:
    return UnmaskSets({mask: sets.masks[mask]}, sets.guard if guard else sets.guard.head(0),
                      sets.unknown if guard else sets.unknown.head(0), sets.train, sets.aligned_responses,
                      {k: v for k, v in sets.never_known.items() if k == mask})


def measure_headline(pair: ModelPair, sets: UnmaskSets, fit: UnmaskFit, *, max_new_tokens: int = 6, batch_size: int = 48,
                     n_boot: int = 1000, quantize: bool = True, progress: bool = True) -> Headline:
    """Score each mask's pre-registered method, its controls and its held-out phrasings (module docs)."""
    frames, facts, chosen = [], [], {}
    for mask in sets.masks:
        if mask not in fit.info.get("preregistered", {}):
            continue
        head = preregistered_intervention(fit, mask)
        chosen[mask] = {**fit.info["preregistered"][mask], "setting": describe(head)}
        roles = [("aligned", NoIntervention()), ("headline", head)]
        f, pf = evaluate(pair, _only(sets, mask, guard=True), [iv for _, iv in roles], max_new_tokens=max_new_tokens,
                         batch_size=batch_size, n_boot=n_boot, progress=False, never_known=True)
        frames.append(f.assign(role=[r for r, _ in roles]))
        facts.append(pf.assign(role=pf.setting.map({describe(iv): r for r, iv in roles})))
        ctrl = [(f"control {k}", iv) for k, iv in fit.controls.get(mask, {}).items()]
        if quantize:
            ctrl += [(f"quantized {b}", Quantized(bits=b)) for b in (8, 4)]
        if ctrl:
            f, pf = evaluate(pair, _only(sets, mask, guard=False), [iv for _, iv in ctrl], max_new_tokens=max_new_tokens,
                             batch_size=batch_size, n_boot=n_boot, progress=False, never_known=True)
            frames.append(f.assign(role=[r for r, _ in ctrl]))
            facts.append(pf.assign(role=pf.setting.map({describe(iv): r for r, iv in ctrl})))
    phr_rows, info = [], []
    for phrasing in PHRASINGS:
        psets, pinfo = phrasing_sets(pair, sets, phrasing, max_new_tokens=max_new_tokens, batch_size=batch_size)
        info += pinfo
        for mask in psets.masks:
            if mask not in chosen:
                continue
            f, pf = evaluate(pair, _only(psets, mask, guard=False), [preregistered_intervention(fit, mask)],
                             max_new_tokens=max_new_tokens, batch_size=batch_size, n_boot=n_boot, progress=False)
            phr_rows.append(f.assign(phrasing=phrasing, role="headline"))
            facts.append(pf.assign(role="headline", phrasing=phrasing))
    cols = ["mask", "phrasing", "strict_accuracy", "strict_low", "strict_high", "n"]
    return Headline(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(),
                    pd.concat(phr_rows, ignore_index=True) if phr_rows else pd.DataFrame(columns=cols),
                    pd.DataFrame(info), pd.concat(facts, ignore_index=True) if facts else pd.DataFrame(), chosen)


def pooled_phrasings(head: Headline, mask: str) -> dict:
    """The headline's strict accuracy over every held-out phrasing of ``mask`` pooled (Wilson 95%)."""
    from interp.stats import rate_ci

    pf = head.per_fact
    if pf.empty or "phrasing" not in pf:
        return {"strict_accuracy": None, "n": 0}
    part = pf[(pf.role == "headline") & pf.phrasing.notna() & (pf.set == f"mask:{mask}")]
    hit, n = int((part.strict_class == "correct").sum()), len(part)
    lo, hi = rate_ci(hit, n)
    return {"strict_accuracy": hit / n if n else None, "low": lo if n else None, "high": hi if n else None, "n": n}


def control_numbers(head: Headline, mask: str) -> dict:
    """Per control, the number the target reads: the never-knew control's strict accuracy on
    held-out facts the base does not know (``never_known_strict``), every other control's strict
    accuracy on the mask's held-out facts; the headline's pooled held-out-phrasing accuracy as
    ``strict_heldout_templates``."""
    def num(role, col):
        r = head.row(mask, role)
        return None if r is None or col not in r or r[col] != r[col] else float(r[col])

    out = {"never_knew": num("control never_knew", "never_known_strict"),
           "shuffled": num("control shuffled", "strict_accuracy"),
           "random": num("control random", "strict_accuracy"),
           "unrelated": num("control unrelated", "strict_accuracy"),
           "quantized_8bit": num("quantized 8", "strict_accuracy"),
           "quantized_4bit": num("quantized 4", "strict_accuracy"),
           "in_domain_ceiling": num("headline", "never_known_strict"),
           "strict_heldout_templates": pooled_phrasings(head, mask)["strict_accuracy"]}
    return out
