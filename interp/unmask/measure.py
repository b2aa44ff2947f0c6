"""The unmasking measure: how much of the base's knowledge an intervention brings back.

For a pair and facts with answers (aliases), per *mask* (the aligned model's non-answer mode:
``refused``, ``abstained``), the evaluation set is the held-out facts the base answers correctly (in
its own plain few-shot format) and the aligned model does not (that non-answer, in its chat format),
kept per fact. Then::

    gap_recovered = (acc_intervened - acc_aligned) / (acc_base - acc_aligned)

with a bootstrap 95% CI over facts. Guards, measured in the same run on held-out facts the aligned
model already answers correctly: accuracy under the intervention (``guard_accuracy_drop`` is the
aligned model's accuracy minus it), the refusal and "I don't know" rates on them, and the mean
next-token KL(aligned || intervened) at their last prompt token. ``abstention_kept``: on held-out
facts the base does *not* know, the share the intervened model still answers "I don't know"
(an unmasking that makes the model guess everything is not a recovery of knowledge).

Answers are judged by :func:`interp.behavior.classify`.

Example:
    >>> sets = unmask_sets(pair, facts_table)                       # doctest: +SKIP
    >>> rows, per_fact = evaluate(pair, sets, [NoIntervention(), steering])  # doctest: +SKIP
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from interp.behavior import classify, generate, is_correct
from interp.behavior.answers import classify_strict, surface_derivable
from interp.behavior.memo import remembered_answers
from interp.models import ModelPair
from interp.patching.directions import kl_last_token, last_logits
from interp.prompts import encode
from interp.unmask.interventions import Intervention, describe, side_prompts
from interp.stats import cluster_bootstrap_ci, rate_ci

__all__ = ["UnmaskSets", "unmask_sets", "evaluate", "gap_ci", "MASKS"]

#: The aligned model's non-answer modes an unmasking can target, by answer class.
MASKS: dict[str, str] = {"refused": "refusal", "abstained": "idk"}

_NEEDED = ("id", "text", "subject", "answer", "aliases", "relation", "split")


@dataclass
class UnmaskSets:
    """Held-out evaluation sets and train facts, each a DataFrame of facts.

    Attributes:
        masks: mask name -> held-out facts the base answers and the aligned model masks.
        guard: held-out facts the aligned model answers correctly.
        unknown: held-out facts the base does not know and the aligned model says "I don't know" to.
        train: the train facts with ``base_correct`` and (where measured) ``aligned_class``.
        aligned_responses: fact id -> the aligned model's response (held-out facts measured here).
        never_known: mask name -> held-out facts the base does *not* know and the aligned model
            masks that way (the never-knew control and the in-domain ceiling are scored there).
    """

    masks: dict[str, pd.DataFrame]
    guard: pd.DataFrame
    unknown: pd.DataFrame
    train: pd.DataFrame
    aligned_responses: dict = field(default_factory=dict)
    never_known: dict[str, pd.DataFrame] = field(default_factory=dict)

    def with_guard(self, n: int | None) -> "UnmaskSets":
        """The same sets with the guard and the unknown set cut to their first ``n`` facts
        (``None``: all): the exploratory table's size, while the pre-registered headline keeps all."""
        cut = (lambda f: f) if n is None else (lambda f: f.head(n))  # noqa: E731
        return UnmaskSets(self.masks, cut(self.guard), cut(self.unknown), self.train, self.aligned_responses,
                          self.never_known)

    def summary(self) -> pd.DataFrame:
        rows = [{"set": f"mask: {k}", "n": len(v)} for k, v in self.masks.items()]
        rows += [{"set": "guard (aligned correct)", "n": len(self.guard)}, {"set": "unknown (aligned abstains)", "n": len(self.unknown)}]
        return pd.DataFrame(rows)


def _base_correct(pair: ModelPair, table: pd.DataFrame, batch_size: int, *, rows: int | None = None) -> list[bool]:
    """The base's greedy answer under one plain few-shot prompt (SliCK's first prompt) per fact,
    judged; with ``rows``, only the first ``rows`` facts are asked (the rest serve as exemplars)."""
    import datasets

    from interp.behavior import KnowledgeConfig, greedy_answers

    ds = datasets.Dataset.from_pandas(table[["id", "text", "answer", "aliases", "relation", "split"]].reset_index(drop=True))
    asked = len(table) if rows is None else rows
    answers = greedy_answers(pair.base, ds, KnowledgeConfig(n_prompts=1, k_samples=1, batch_size=batch_size),
                             rows=list(range(asked)))
    return [is_correct(a, al) for a, al in zip(answers, table.aliases.iloc[:asked])]


def unmask_sets(
    pair: ModelPair,
    table: pd.DataFrame,
    *,
    n: int | None = None,
    n_guard: int | None = None,
    max_new_tokens: int = 8,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = True,
    remember: bool = True,
) -> UnmaskSets:
    """Build the evaluation sets from a fact table.

    Args:
        table: facts with columns ``id, text, subject, answer, aliases, relation, split`` and
            optionally ``base_correct`` (the base's few-shot greedy answer judged; computed here
            when absent, one few-shot prompt per fact) and ``category``.
        n: at most this many facts per mask (a seeded sample); ``n_guard``: guard size (default
            ``max(n, 100)``: enough to see a drop of a few points; :meth:`UnmaskSets.with_guard` cuts it).
    The aligned model's class on held-out facts is measured here (greedy, chat format; answers
    given before by the same weights are read back unless ``remember=False``: see
    :mod:`interp.behavior.memo`).
    """
    missing = [c for c in _NEEDED if c not in table.columns]
    if missing:
        raise ValueError(f"unmask_sets needs fact columns {missing}; pass interp.align.graded_facts(...) or "
                         "interp.data.facts(...).to_pandas()")
    if n is not None and n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    table = table.copy()
    if "base_correct" not in table.columns:
        table["base_correct"] = _base_correct(pair, table, batch_size)
    held = table[table.split == "test"]
    if n_guard is None:
        n_guard = None if n is None else max(n, 100)
    if n is not None:  # the masks need base-correct facts; the unknown set needs only a sample of the others
        unknown_pool = held[~held.base_correct]
        held = pd.concat([held[held.base_correct],
                          unknown_pool.sample(min(len(unknown_pool), 4 * (n_guard or n)), random_state=seed)])
    prompts = side_prompts(pair, "aligned", list(held.text))
    responses = remembered_answers(pair.aligned, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                   progress="unmask: aligned on held-out facts" if progress else False, remember=remember)
    held = held.assign(aligned_response=responses,
                       aligned_class=[classify(r, a) for r, a in zip(responses, held.aliases)])
    def take(frame: pd.DataFrame, k: int | None) -> pd.DataFrame:
        return frame if k is None or len(frame) <= k else frame.sample(k, random_state=seed)

    masks = {name: take(held[held.base_correct & (held.aligned_class == cls)], n) for name, cls in MASKS.items()}
    masks = {k: v for k, v in masks.items() if len(v)}
    if not masks:
        raise ValueError("no held-out fact is answered by the base and masked by the aligned model "
                         "(refused or 'I don't know'); nothing to unmask")
    guard = take(held[held.aligned_class == "correct"], n_guard)
    unknown = take(held[~held.base_correct & (held.aligned_class == "idk")], n_guard)
    never = {name: take(held[~held.base_correct & (held.aligned_class == cls)], n) for name, cls in MASKS.items()}
    return UnmaskSets(masks, guard, unknown, table[table.split == "train"], dict(zip(held.id, responses)),
                      {k: v for k, v in never.items() if len(v)})


def gap_ci(intervened: np.ndarray, aligned: np.ndarray, base: np.ndarray, *, n_boot: int = 1000,
           seed: int = 0) -> tuple[float, float, float]:
    """``gap_recovered`` and its bootstrap 95% CI (facts resampled with replacement; resamples
    whose gap is zero are dropped)."""
    def gap(i, a, b):
        den = b.mean(-1) - a.mean(-1)
        return np.where(den != 0, (i.mean(-1) - a.mean(-1)) / np.where(den != 0, den, 1), np.nan)

    i, a, b = (np.asarray(x, dtype=float) for x in (intervened, aligned, base))
    point = float(gap(i, a, b))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(i), size=(n_boot, len(i)))
    boots = gap(i[idx], a[idx], b[idx])
    boots = boots[~np.isnan(boots)]
    if not len(boots):
        return point, float("nan"), float("nan")
    return point, float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def evaluate(
    pair: ModelPair,
    sets: UnmaskSets,
    interventions: Sequence[Intervention],
    *,
    max_new_tokens: int = 8,
    batch_size: int = 32,
    n_boot: int = 1000,
    progress: bool = True,
    never_known: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate under each intervention on every mask set, the guard and the unknown set.

    Returns ``(results, per_fact)``: one row per (intervention, mask) with ``method, setting,
    rank, mask, gap_recovered, ci_low, ci_high, acc_intervened, acc_aligned, acc_base, kl,
    guard_accuracy, guard_accuracy_drop, guard_drop_low, guard_drop_high (95% bootstrap over guard
    facts, paired), guard_refusal, guard_idk, abstention_kept, abstention_kept_low,
    abstention_kept_high (Wilson 95%), strict_accuracy, strict_low, strict_high (the strict judge,
    :func:`interp.behavior.answers.is_correct_strict`, Wilson 95%), strict_surface / strict_rest (on
    facts whose answer can / cannot be read off the question's surface, with strict_rest_low /
    strict_rest_high), n_surface, n, n_guard, n_unknown`` and, with ``never_known``,
    ``never_known_strict, never_known_low, never_known_high, n_never_known`` (strict accuracy on
    held-out facts the base does not know that the aligned model masks, Wilson 95%);
    and one row per (intervention, fact) with the base's, the aligned model's and the intervened
    answers.
    """
    model, tok = pair.aligned, pair.aligned.tokenizer
    guard_batch = encode(tok, side_prompts(pair, "aligned", list(sets.guard.text))) if len(sets.guard) else None
    clean_logits = last_logits(model, guard_batch) if guard_batch is not None else None
    aligned_guard_each = np.array([sets.aligned_responses.get(i) is not None and classify(sets.aligned_responses[i], a) == "correct"
                                   for i, a in zip(sets.guard.id, sets.guard.aliases)], dtype=float)
    aligned_guard = float(aligned_guard_each.mean()) if len(sets.guard) else float("nan")
    groups = {**{f"mask:{k}": v for k, v in sets.masks.items()}, "guard": sets.guard, "unknown": sets.unknown}
    if never_known:  # facts the base never knew: what an edit "recovers" there, it taught
        groups.update({f"never:{k}": v for k, v in sets.never_known.items()})
    rows, facts = [], []
    bar = tqdm(interventions, desc="unmask: evaluate", disable=not progress)
    for iv in bar:
        bar.set_postfix_str(f"{iv.method} {describe(iv)}"[:40])
        for frame in groups.values():
            if len(frame):
                iv.prepare(pair, list(frame.text), list(frame.subject))
        classes, strict = {}, {}
        live = {k: f for k, f in groups.items() if len(f)}
        with iv.applied(model):  # every set in one generate call (batched by length across sets)
            everything = generate(model, iv.format(pair, [q for f in live.values() for q in f.text]),
                                  max_new_tokens=max_new_tokens, batch_size=batch_size)
            start = 0
            for key, frame in live.items():
                outs = everything[start: start + len(frame)]
                start += len(frame)
                classes[key] = [classify(o, a) for o, a in zip(outs, frame.aliases)]
                strict[key] = [classify_strict(o, a, question=q) for o, a, q in zip(outs, frame.aliases, frame.text)]
                for (_, r), o, c, cs in zip(frame.iterrows(), outs, classes[key], strict[key]):
                    facts.append({"method": iv.method, "setting": describe(iv), "set": key, "id": r.id, "question": r.text,
                                  "answer": r.answer, "base_answer": r.get("base_greedy", None),
                                  "aligned_answer": sets.aligned_responses.get(r.id), "intervened_answer": o, "class": c,
                                  "strict_class": cs, "surface": surface_derivable(str(r.answer), str(r.subject))})
            kl = float("nan")
            if clean_logits is not None and not iv.changes_prompt:
                kl = float(kl_last_token(clean_logits, last_logits(model, guard_batch)).mean())
        g = classes.get("guard", [])
        guard_acc = float(np.mean([c == "correct" for c in g])) if g else float("nan")
        drop_lo, drop_hi = _drop_ci(aligned_guard_each, np.array([c == "correct" for c in g], dtype=float), n_boot) if g \
            else (float("nan"), float("nan"))
        unknown = classes.get("unknown", [])
        kept_lo, kept_hi = rate_ci(sum(c == "idk" for c in unknown), len(unknown))
        for name, frame in sets.masks.items():
            got = np.array([c == "correct" for c in classes[f"mask:{name}"]], dtype=float)
            al = np.array([classify(sets.aligned_responses.get(i, ""), a) == "correct" for i, a in zip(frame.id, frame.aliases)],
                          dtype=float)
            base = frame.base_correct.to_numpy(dtype=float)
            gap, lo, hi = gap_ci(got, al, base, n_boot=n_boot)
            # The strict judge (leading answer, no echo) and the split by surface-derivable answers
            # (symbols that are the element name's first letters), each with a Wilson interval.
            sc = np.array([c == "correct" for c in strict[f"mask:{name}"]], dtype=bool)
            surf = np.array([surface_derivable(str(a), str(sj)) for a, sj in zip(frame.answer, frame.subject)], dtype=bool)
            st_lo, st_hi = rate_ci(int(sc.sum()), len(sc))
            rest_lo, rest_hi = rate_ci(int(sc[~surf].sum()), int((~surf).sum()))
            rows.append({"method": iv.method, "setting": describe(iv), "rank": iv.rank, "dose": getattr(iv, "dose", None), "mask": name,
                         "gap_recovered": gap, "ci_low": lo, "ci_high": hi, "acc_intervened": got.mean(),
                         "acc_aligned": al.mean(), "acc_base": base.mean(), "kl": kl,
                         "guard_accuracy": guard_acc, "guard_accuracy_drop": aligned_guard - guard_acc,
                         "guard_drop_low": drop_lo, "guard_drop_high": drop_hi,
                         "guard_refusal": float(np.mean([c == "refusal" for c in g])) if g else float("nan"),
                         "guard_idk": float(np.mean([c == "idk" for c in g])) if g else float("nan"),
                         "abstention_kept": float(np.mean([c == "idk" for c in classes.get("unknown", [])]))
                         if classes.get("unknown") else float("nan"),
                         "abstention_kept_low": kept_lo, "abstention_kept_high": kept_hi,
                         "strict_accuracy": float(sc.mean()) if len(sc) else float("nan"),
                         "strict_low": st_lo, "strict_high": st_hi,
                         "strict_surface": float(sc[surf].mean()) if surf.any() else float("nan"),
                         "strict_rest": float(sc[~surf].mean()) if (~surf).any() else float("nan"),
                         "strict_rest_low": rest_lo, "strict_rest_high": rest_hi, "n_surface": int(surf.sum()),
                         "n": len(frame), "n_guard": len(g), "n_unknown": len(unknown)})
            nk = strict.get(f"never:{name}")
            if nk is not None:
                hit = sum(c == "correct" for c in nk)
                lo_nk, hi_nk = rate_ci(hit, len(nk))
                rows[-1].update({"never_known_strict": hit / len(nk), "never_known_low": lo_nk, "never_known_high": hi_nk,
                                 "n_never_known": len(nk)})
    return pd.DataFrame(rows), pd.DataFrame(facts)


def _drop_ci(before: np.ndarray, after: np.ndarray, n_boot: int, seed: int = 0) -> tuple[float, float]:
    """95% interval of ``mean(before - after)`` resampling the guard facts (paired)."""
    if len(before) != len(after) or not len(before):
        return float("nan"), float("nan")
    diff = torch.as_tensor(before - after, dtype=torch.float64)
    return cluster_bootstrap_ci(lambda d, _: d.mean(), diff, torch.zeros(len(diff)), n_boot=max(n_boot, 1), seed=seed)
