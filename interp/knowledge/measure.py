"""Internal vs expressed knowledge per fact, for both models (after Gekhman et al. 2025,
"Inside-Out: hidden factual knowledge in LLMs", arXiv 2503.15299).

For a fact with its gold answer and ``k`` wrong answers of the same relation
(:func:`interp.knowledge.candidates.wrong_answers`), per model:

- ``k_gen``: the model's greedy answer is correct under the strict judge
  (:func:`interp.behavior.answers.classify_strict`): the aligned model's answer in its chat format
  (the unmasking sets' answers, read from the answers memo), the base's in its plain few-shot
  format (the recipe's graded answer, generated here only for a pair without one).
- ``k_prob``: the share of (correct, wrong) pairs in which the model's own probability of the
  answer after its prompt (the log-probability *summed* over the answer's tokens: the probability
  of the whole string) ranks the correct answer above the wrong one (ties count half): base
  few-shot plain, aligned chat; ``k_prob_framed``: the aligned model with its response opened by
  the answer frame (:data:`interp.knowledge.candidates.FRAME`). ``k_prob_mean`` /
  ``k_prob_framed_mean``: the same ranking by the mean log-probability per answer token
  (length-normalised), a secondary reading.
- ``k_probe``: the same share, ranked by a logistic probe on the residual stream leaving one layer
  at the answer's last token (base: few-shot prompt; aligned: chat prompt), trained to tell the gold
  answer from the wrong ones on *train* facts.
- ``k_probe_control``: a control task after Hewitt & Liang 2019: every answer *string* gets a fixed
  random label (0 or 1, seeded, the same string always the same label: :func:`control_labels`); a
  probe of the same layer and ``C`` is trained on the train rows' control labels and scored like
  the real probe, per evaluation fact the share of (label-1, label-0) candidate pairs it ranks
  correctly (ties half; a fact whose candidates all carry one label has none). Only a probe that
  memorises answer strings (from features that identify the string, for strings seen in training)
  can beat 0.5 here; ``probe_minus_control`` is the probe's selectivity.

Wrong answers (:func:`interp.knowledge.candidates.wrong_answers`) of a probe train fact come only
from train-split facts' answers, those of an evaluated fact only from held-out facts' answers, so
no evaluated fact's gold answer is a training row of the probe; neither is ever an answer of the
fact's few-shot exemplars (the base's prompt shows them).

Fixed before any evaluation fact was scored (the rule, not a number read off the test):

- probe train facts: train-split facts the base answers (``base_correct``), at most
  ``ceil(n_train / relations)`` per relation (seeded sample), the same facts for both models;
- the probe's ``C`` and layer: :func:`interp.probes.evaluate_probes` on those rows (``C`` from its
  grid on a validation split of whole train entities, ``val_fraction``) and
  :func:`interp.probes.selected_layers` with ``metric="auroc"`` (the highest validation AUROC, the
  earlier layer on a tie); the evaluation facts are read once, at that layer;
- scores: log-probability summed over the answer's tokens (the per-token mean beside it as
  ``k_prob_mean``); ``k = 4`` wrong answers.

Aggregates are means over a set's facts with 95% intervals from a bootstrap that resamples whole
entities (:func:`interp.stats.cluster_bootstrap_ci`); ``aligned - base`` is paired per fact.
``hidden_prob`` / ``hidden_probe`` = ``k_prob`` / ``k_probe`` minus ``k_gen``. Mind the floors: the
ranking shares sit at 0.5 for a model that knows nothing (chance), ``k_gen`` at 0, so a fact
neither known nor said has ``hidden_*`` 0.5, not 0. :meth:`HiddenKnowledge.summary` therefore gives
``<name>_above_chance`` (the ranking share minus 0.5, interval shifted alike) beside every raw
ranking share; read hidden knowledge against that.

``first_while_masked_prob`` / ``_probe``: the share of the set's facts whose correct answer ranks
first (above every wrong one) while the model refuses or says "I don't know".

Example:
    >>> from interp.unmask import facts_for, unmask_sets
    >>> table = facts_for("default")                                            # doctest: +SKIP
    >>> sets = unmask_sets(pair, table, n=24).with_guard(24)                    # doctest: +SKIP
    >>> hk = hidden_knowledge(pair, sets, table)                                # doctest: +SKIP
    >>> hk.summary()["refused"]["aligned_k_probe"], hk.to_frame().head()        # doctest: +SKIP
"""

import hashlib
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from interp.behavior import normalize
from interp.behavior.answers import classify_strict
from interp.knowledge.candidates import FORMATS, exemplar_answers, format_questions, wrong_answers
from interp.knowledge.score import CandidateScores, joined, score_candidates
from interp.models import ModelPair
from interp.probes import evaluate_probes, fit_probes, selected_layers
from interp.results import Result, plain
from interp.stats import cluster_bootstrap_ci
from interp.unmask.measure import UnmaskSets

__all__ = ["HiddenConfig", "HiddenKnowledge", "hidden_knowledge", "pairwise_share", "labelled_share", "control_labels",
           "probe_train_facts", "MEASURES", "RANKING", "CHANCE", "SETS", "TARGETS"]

#: The per-fact measures aggregated in :meth:`HiddenKnowledge.to_frame`.
MEASURES: tuple[str, ...] = ("k_gen", "k_prob", "k_prob_mean", "k_prob_framed", "k_prob_framed_mean", "k_probe",
                             "k_probe_control", "hidden_prob", "hidden_probe", "probe_minus_control",
                             "first_while_masked_prob", "first_while_masked_probe")
#: The ranking shares (chance :data:`CHANCE`); :meth:`HiddenKnowledge.summary` gives each ``_above_chance`` too.
RANKING: tuple[str, ...] = ("k_prob", "k_prob_mean", "k_prob_framed", "k_prob_framed_mean", "k_probe", "k_probe_control")
#: The floor of a ranking share: a scorer that knows nothing ranks half the pairs correctly.
CHANCE = 0.5
#: The sets :meth:`HiddenKnowledge.summary` always holds (``n`` 0 and ``None`` numbers when empty).
SETS: tuple[str, ...] = ("refused", "abstained")
#: Issue 33's targets on the refused set: the aligned model's internal knowledge within this of the
#: base's, and its probe above its shuffled-label control by at least this much.
TARGETS = {"within_base": 0.05, "probe_over_control": 0.15}


@dataclass
class HiddenConfig:
    """Settings of :func:`hidden_knowledge` (fixed before reading evaluation numbers).

    Attributes:
        k_wrong: wrong answers per fact (same relation, from the fact table).
        n_train: probe train facts (base-known train facts, spread evenly over relations).
        val_fraction: share of train entities set aside to choose the probe's ``C`` and layer.
        n_shots: few-shot exemplars in the base's prompt.
        batch_size: facts per forward pass (their candidates ride along).
        n_boot: bootstrap resamples of entities for every interval.
        seed: wrong answers, train sample, validation split, control labels (per answer string), bootstrap.
    """

    k_wrong: int = 4
    n_train: int = 144
    val_fraction: float = 0.25
    n_shots: int = 2
    batch_size: int = 16
    n_boot: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("k_wrong", "n_train", "n_shots", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"HiddenConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"HiddenConfig.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.n_boot < 0:
            raise ValueError(f"HiddenConfig.n_boot must be >= 0, got {self.n_boot}")


@dataclass(repr=False)
class HiddenKnowledge(Result):
    """``per_fact``: one row per (set, fact, side) with ``k_gen, k_prob, k_prob_mean, k_prob_framed,
    k_prob_framed_mean, k_probe, k_probe_control``, the response and its strict class; ``table``: one row per (set, side,
    measure) with ``value, ci_low, ci_high, n`` (side ``aligned - base``: the paired difference);
    ``probes``: the layer and ``C`` chosen per side with its validation AUROC; ``agreement``: per
    mask, the AUROC of each internal score for "the unmasking edit recovers this fact" (``None``
    when no unmasking outcome was given); ``info``: timings and settings."""

    per_fact: pd.DataFrame
    table: pd.DataFrame
    probes: pd.DataFrame
    agreement: pd.DataFrame | None = None
    info: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.table

    def value(self, set_: str, side: str, measure: str) -> dict:
        """``{"value", "ci_low", "ci_high", "n"}`` of one cell (``None`` values when absent)."""
        t = self.table
        row = t[(t.set == set_) & (t.side == side) & (t.measure == measure)]
        if row.empty:
            return {"value": None, "ci_low": None, "ci_high": None, "n": 0}
        r = row.iloc[0]
        return {k: (None if isinstance(r[k], float) and math.isnan(r[k]) else plain(r[k])) for k in ("value", "ci_low", "ci_high", "n")}

    def summary(self) -> dict:
        """Per set: the headline numbers (``base_k_prob``, ``aligned_k_prob``, ``aligned_k_probe``,
        ``aligned_k_probe_control``, ``aligned_k_gen``, ..., ``n``) with ``<name>_ci`` intervals and,
        for every ranking share (chance 0.5), ``<name>_above_chance`` = value - 0.5 (its interval
        ``<name>_above_chance_ci``); the targets on ``refused``; the probes' layers, the agreement
        with unmasking, seconds. ``refused`` and ``abstained`` are always there (``n`` 0 and ``None``
        numbers when the set is empty)."""
        out: dict = {}
        for s in dict.fromkeys([*SETS, *self.table.set]):
            d: dict = {}
            for side, measure in [("base", m) for m in ("k_gen", "k_prob", "k_prob_mean", "k_probe", "k_probe_control")] + \
                    [("aligned", m) for m in ("k_gen", "k_prob", "k_prob_mean", "k_prob_framed", "k_prob_framed_mean",
                                              "k_probe", "k_probe_control", "hidden_prob", "hidden_probe",
                                              "first_while_masked_prob", "first_while_masked_probe")] + \
                    [("aligned - base", m) for m in ("k_prob", "k_probe")]:
                v = self.value(s, side, measure)
                key = f"{side.replace(' - ', '_minus_')}_{measure}"
                d[key], d[f"{key}_ci"] = v["value"], [v["ci_low"], v["ci_high"]]
                if side != "aligned - base" and measure in RANKING:
                    shift = lambda x: None if x is None else x - CHANCE  # noqa: E731
                    d[f"{key}_above_chance"] = shift(v["value"])
                    d[f"{key}_above_chance_ci"] = [shift(v["ci_low"]), shift(v["ci_high"])]
            d["n"] = int(self.per_fact[self.per_fact.set == s].id.nunique())
            out[s] = d
        if "refused" in out:
            out["refused"]["targets"] = targets_met(out["refused"])
        out["probes"] = {r.side: {"layer": int(r.layer), "C": float(r.C), "val_auroc": plain(r.val_auroc)} for r in self.probes.itertuples()}
        out["agreement"] = None if self.agreement is None else [{k: plain(v) for k, v in r.items()} for r in self.agreement.to_dict("records")]
        out["seconds"] = self.info.get("seconds")
        return out

    def figure(self, title: str = ""):
        from interp.plots.knowledge import hidden_knowledge_bars

        return hidden_knowledge_bars(self.table, title=title)

    def __repr__(self) -> str:
        sets = ", ".join(f"{s} {n}" for s, n in self.per_fact.groupby("set", sort=False).id.nunique().items())
        return f"HiddenKnowledge({len(self.table)} rows; facts: {sets})"


def targets_met(refused: dict) -> dict:
    """Issue 33's targets read off the summary of the refused set (``None`` where unmeasured)."""
    def gap(a, b):
        return None if a is None or b is None else abs(a - b) <= TARGETS["within_base"]

    lo = lambda k: (refused.get(f"{k}_ci") or [None])[0]  # noqa: E731
    pc = refused.get("aligned_k_probe"), refused.get("aligned_k_probe_control")
    return {"k_prob_within_base": gap(refused.get("aligned_k_prob"), refused.get("base_k_prob")),
            "k_probe_within_base": gap(refused.get("aligned_k_probe"), refused.get("base_k_probe")),
            "k_prob_above_chance": None if lo("aligned_k_prob") is None else lo("aligned_k_prob") > CHANCE,
            "k_probe_above_chance": None if lo("aligned_k_probe") is None else lo("aligned_k_probe") > CHANCE,
            "probe_beats_control": None if None in pc else pc[0] - pc[1] >= TARGETS["probe_over_control"]}


def pairwise_share(scores: np.ndarray, fact: np.ndarray, n_facts: int) -> np.ndarray:
    """Per fact, the share of its wrong candidates scored below its gold one (ties count half);
    rows of a fact are consecutive with the gold candidate first."""
    scores, fact = np.asarray(scores, dtype=float), np.asarray(fact)
    out = np.full(n_facts, np.nan)
    starts = np.flatnonzero(np.r_[True, fact[1:] != fact[:-1]])
    for s, e in zip(starts, np.r_[starts[1:], len(fact)]):
        gold, wrong = scores[s], scores[s + 1: e]
        if len(wrong):
            out[fact[s]] = float(np.mean((gold > wrong) + 0.5 * (gold == wrong)))
    return out


def labelled_share(scores: np.ndarray, labels: np.ndarray, fact: np.ndarray, n_facts: int) -> np.ndarray:
    """Per fact, the share of its (label-1, label-0) row pairs whose label-1 row scores higher
    (ties count half); ``nan`` for a fact whose rows carry one label only. With the gold row
    labelled 1 and the wrong ones 0 this is :func:`pairwise_share`."""
    scores, labels, fact = np.asarray(scores, dtype=float), np.asarray(labels).astype(bool), np.asarray(fact)
    out = np.full(n_facts, np.nan)
    for f in np.unique(fact):
        rows = fact == f
        pos, neg = scores[rows & labels], scores[rows & ~labels]
        if len(pos) and len(neg):
            out[f] = float(np.mean((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None])))
    return out


def control_labels(answers, seed: int = 0) -> np.ndarray:
    """The control task's label (0 or 1) of each answer string: a fixed random bit of the normalised
    string and ``seed`` (:func:`interp.behavior.normalize`), so a string always gets the same label,
    in any list, for both models (Hewitt & Liang 2019's control task, per answer string)."""
    def bit(a: str) -> int:
        return hashlib.blake2b(f"{seed}\0{normalize(str(a))}".encode(), digest_size=8).digest()[0] & 1

    return np.array([bit(a) for a in answers], dtype=np.int64)


def probe_train_facts(train: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """Train facts the base answers (all of them without ``base_correct``), at most
    ``ceil(n / relations)`` per relation, a seeded sample."""
    known = train[train.base_correct.astype(bool)] if "base_correct" in train else train
    if known.empty:
        raise ValueError("no train fact the base answers: the probe has nothing to learn from; pass a table with "
                         "base_correct train facts (interp.unmask.facts_for)")
    per = math.ceil(n / known.relation.nunique())
    return known.sample(frac=1.0, random_state=seed).groupby("relation", sort=True).head(per).reset_index(drop=True)


def _probe(feats_tr: torch.Tensor, y_tr: torch.Tensor, ctrl_tr: torch.Tensor, fact_tr: np.ndarray, ents_tr: list[str],
           feats_ev: torch.Tensor, y_ev: torch.Tensor, ents_ev: list[str], side: str,
           cfg: HiddenConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """Choose ``C`` and the layer on validation entities (the probes room), score the evaluation
    rows once at that layer; the control probe (trained on ``ctrl_tr``, the train rows'
    per-answer-string labels, :func:`control_labels`) at the same layer and ``C``."""
    L = feats_tr.shape[0]
    frame, probes = evaluate_probes(feats_tr, y_tr, feats_ev, y_ev, model=side, layers=range(L), kinds=("logistic",),
                                    entities_train=ents_tr, entities_test=ents_ev, n_boot=0, n_perm=0, seed=cfg.seed,
                                    val_fraction=cfg.val_fraction)
    chosen = selected_layers(frame, metric="auroc").iloc[0]
    layer = int(chosen.layer)
    probe = probes["logistic"]
    i = probe.layers.index(layer)
    scores = feats_ev[i].float() @ probe.w[i] + probe.b[i]  # the chosen layer alone
    y_ctrl = torch.as_tensor(ctrl_tr).to(y_tr.dtype)
    if 0 < int(y_ctrl.sum()) < len(y_ctrl):
        control = fit_probes(feats_tr[i: i + 1], y_ctrl, "logistic", [layer], C=probe.C[i]).scores(feats_ev[i: i + 1])[0]
    else:  # one control label on every train row: nothing to fit, every evaluation row ties
        control = torch.zeros(feats_ev.shape[1])
    info = {"side": side, "layer": layer, "C": probe.C[i], "val_auroc": float(chosen.val_auroc),
            "n_train_facts": int(len(np.unique(fact_tr))), "n_train_rows": int(len(y_tr))}
    return scores.cpu().numpy(), control.cpu().numpy(), info


def _mean_ci(values: np.ndarray, entities: list[str], cfg: HiddenConfig) -> tuple[float, float, float]:
    v = torch.tensor(np.array(values, dtype=float))
    if not len(v):
        return math.nan, math.nan, math.nan
    if not cfg.n_boot:
        return float(v.mean()), math.nan, math.nan
    lo, hi = cluster_bootstrap_ci(lambda s, _y: s.mean(), v, torch.zeros(len(v)), entities, n_boot=cfg.n_boot, seed=cfg.seed)
    return float(v.mean()), lo, hi


def _aggregate(per_fact: pd.DataFrame, cfg: HiddenConfig) -> pd.DataFrame:
    rows = []
    for s, part in per_fact.groupby("set", sort=False):
        sides = {side: p.set_index("id") for side, p in part.groupby("side", sort=False)}
        for side, p in sides.items():
            for m in MEASURES:
                vals = p[m].dropna()
                if len(vals):
                    rows.append({"set": s, "side": side, "measure": m,
                                 **dict(zip(("value", "ci_low", "ci_high"), _mean_ci(vals.to_numpy(), list(p.entity[vals.index]), cfg))),
                                 "n": len(vals)})
        if {"base", "aligned"} <= set(sides):
            a, b = sides["aligned"], sides["base"].loc[sides["aligned"].index]
            for m in MEASURES:
                d = (a[m] - b[m]).dropna()
                if len(d):
                    rows.append({"set": s, "side": "aligned - base", "measure": m,
                                 **dict(zip(("value", "ci_low", "ci_high"), _mean_ci(d.to_numpy(), list(a.entity[d.index]), cfg))),
                                 "n": len(d)})
    return pd.DataFrame(rows, columns=["set", "side", "measure", "value", "ci_low", "ci_high", "n"])


def _base_responses(pair: ModelPair, table: pd.DataFrame, facts: pd.DataFrame, cfg: HiddenConfig) -> list[str]:
    """The base's greedy answers in its few-shot format: the recorded ones where the table has them."""
    if "base_greedy" in facts and facts.base_greedy.notna().all():
        return [str(x) for x in facts.base_greedy]
    from interp.behavior import generate

    prompts = format_questions(pair, table, list(facts.text), "base", n_shots=cfg.n_shots, seed=cfg.seed)
    return generate(pair.base, prompts, max_new_tokens=8, batch_size=cfg.batch_size)


def _wrong(table: pd.DataFrame, sets: UnmaskSets, both: pd.DataFrame, is_eval: np.ndarray,
           cfg: HiddenConfig) -> list[list[str]]:
    """Wrong answers per row of ``both`` (module docs): probe train facts' from the train-split
    facts, evaluated facts' from the held-out ones, never an answer the fact's few-shot exemplars show."""
    train_ids = set(sets.train.id.astype(str)) | set(both.id[~is_eval].astype(str))
    in_train = table.id.astype(str).isin(train_ids)
    shown = exemplar_answers(table, both, n_shots=cfg.n_shots, seed=cfg.seed)
    out: list[list[str]] = [[] for _ in range(len(both))]
    for rows, pool in ((np.flatnonzero(~is_eval), table[in_train]), (np.flatnonzero(is_eval), table[~in_train])):
        if len(rows):
            got = wrong_answers(pool, both.iloc[rows], k=cfg.k_wrong, seed=cfg.seed, exclude=[shown[i] for i in rows])
            for i, w in zip(rows, got):
                out[i] = w
    return out


def hidden_knowledge(pair: ModelPair, sets: UnmaskSets, table: pd.DataFrame, *, config: HiddenConfig | None = None,
                     unmask_facts: pd.DataFrame | None = None, progress: bool = True) -> HiddenKnowledge:
    """K_gen, K_prob and K_probe per fact and per set for both models (module docs).

    Args:
        sets: the unmasking sets (:func:`interp.unmask.unmask_sets`): each mask's facts and the guard
            (held-out facts the aligned model answers: the ``answered`` set; cut it with
            :meth:`~interp.unmask.UnmaskSets.with_guard`), the train facts for the probe, the aligned
            model's answers.
        table: the fact table the sets came from (wrong answers and few-shot exemplars are drawn from it;
            it and the sets need an ``entity`` column).
        unmask_facts: per-fact outcomes of the unmasking headline (``interp unmask --out DIR`` writes
            ``DIR/unmask_headline_facts.csv``); gives :attr:`HiddenKnowledge.agreement`.
    """
    from interp.knowledge.agreement import recovery_agreement

    cfg = config or HiddenConfig()
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    groups = {**sets.masks, "answered": sets.guard}
    evals = pd.concat([f.assign(set=name) for name, f in groups.items() if len(f)], ignore_index=True)
    if evals.empty:
        raise ValueError("the unmasking sets hold no evaluation fact (no mask set, empty guard); nothing to measure")
    for what, frame in (("evaluation facts (the sets' masks and guard)", evals), ("train facts (sets.train)", sets.train)):
        if "entity" not in frame.columns:
            raise ValueError(f"the {what} lack the column 'entity' (intervals resample whole entities and the probe's "
                             "validation split holds out whole entities); add it to the fact table before building the "
                             "sets, e.g. table = table.assign(entity=table.subject), or use interp.unmask.facts_for(...)")
    train = probe_train_facts(sets.train, cfg.n_train, cfg.seed)
    both = pd.concat([train.assign(set="train"), evals], ignore_index=True)
    is_eval = (both.set != "train").to_numpy()
    cands = [[a, *w] for a, w in zip(both.answer, _wrong(table, sets, both, is_eval, cfg))]
    scored: dict[str, CandidateScores] = {}
    for fmt in FORMATS:
        t = time.perf_counter()
        idx = np.arange(len(both)) if fmt != "aligned_framed" else np.flatnonzero(is_eval)
        prompts = format_questions(pair, table, list(both.text.iloc[idx]), fmt, n_shots=cfg.n_shots, seed=cfg.seed)
        scored[fmt] = score_candidates(pair.base if fmt == "base" else pair.aligned, prompts,
                                       [[joined(p, a) for a in cands[i]] for p, i in zip(prompts, idx)],
                                       features=fmt != "aligned_framed", batch_size=cfg.batch_size,
                                       progress=f"hidden knowledge: {fmt}" if progress else False)
        seconds[f"score_{fmt}"] = time.perf_counter() - t
    n_ev = int(is_eval.sum())
    k_prob = {fmt: pairwise_share(s.logp.numpy(), s.fact.numpy(), len(both) if fmt != "aligned_framed" else n_ev)
              for fmt, s in scored.items()}  # the summed log-probability: the model's probability of the answer
    k_mean = {fmt: pairwise_share(s.logp_mean.numpy(), s.fact.numpy(), len(both) if fmt != "aligned_framed" else n_ev)
              for fmt, s in scored.items()}  # per answer token (secondary)
    for k in (k_prob, k_mean):
        k["aligned_framed"] = np.r_[np.full(len(both) - n_ev, np.nan), k["aligned_framed"]]  # evaluation facts sit last
    gold = np.concatenate([[1] + [0] * (len(c) - 1) for c in cands])
    ctrl = control_labels([a for c in cands for a in c], cfg.seed)
    fact_of_row = scored["base"].fact.numpy()
    row_eval = is_eval[fact_of_row]
    ents = both.entity.astype(str).to_numpy()
    k_probe, k_ctrl, probe_info = {}, {}, []
    for side in ("base", "aligned"):
        t = time.perf_counter()
        X = scored[side].features
        s, c, info = _probe(X[:, ~row_eval], torch.as_tensor(gold[~row_eval]), torch.as_tensor(ctrl[~row_eval]), fact_of_row[~row_eval],
                            list(ents[fact_of_row[~row_eval]]), X[:, row_eval], torch.as_tensor(gold[row_eval]),
                            list(ents[fact_of_row[row_eval]]), side, cfg)
        full_s, full_c = np.full(len(gold), np.nan), np.full(len(gold), np.nan)
        full_s[row_eval], full_c[row_eval] = s, c
        k_probe[side] = pairwise_share(full_s, fact_of_row, len(both))
        k_ctrl[side] = labelled_share(full_c, ctrl, fact_of_row, len(both))  # against the control labels
        probe_info.append(info)
        seconds[f"probe_{side}"] = time.perf_counter() - t
    ev = both[is_eval].reset_index(drop=True)
    pos = np.flatnonzero(is_eval)
    responses = {"base": _base_responses(pair, table, ev, cfg),
                 "aligned": [sets.aligned_responses.get(i, "") for i in ev.id]}
    rows = []
    for side in ("base", "aligned"):
        classes = [classify_strict(r, al, question=q) for r, al, q in zip(responses[side], ev.aliases, ev.text)]
        kp, kq, kc = k_prob[side][pos], k_probe[side][pos], k_ctrl[side][pos]
        kf = k_prob["aligned_framed"][pos] if side == "aligned" else np.full(len(ev), np.nan)
        kfm = k_mean["aligned_framed"][pos] if side == "aligned" else np.full(len(ev), np.nan)
        k_gen = np.array([c == "correct" for c in classes], dtype=float)
        masked = np.array([c in ("refusal", "idk") for c in classes])
        rows.append(pd.DataFrame({
            "set": ev.set, "id": ev.id, "entity": ev.entity.astype(str), "relation": ev.relation, "question": ev.text,
            "answer": ev.answer, "wrong": [cands[i][1:] for i in pos], "side": side, "response": responses[side],
            "strict_class": classes, "masked": masked, "k_gen": k_gen, "k_prob": kp, "k_prob_mean": k_mean[side][pos],
            "k_prob_framed": kf, "k_prob_framed_mean": kfm, "k_probe": kq,
            "k_probe_control": kc, "hidden_prob": kp - k_gen, "hidden_probe": kq - k_gen, "probe_minus_control": kq - kc,
            "first_while_masked_prob": (masked & (kp == 1.0)).astype(float),
            "first_while_masked_probe": (masked & (kq == 1.0)).astype(float)}))
    per_fact = pd.concat(rows, ignore_index=True)
    t = time.perf_counter()
    table_out = _aggregate(per_fact, cfg)
    agreement = None if unmask_facts is None else recovery_agreement(per_fact, unmask_facts, n_boot=cfg.n_boot, seed=cfg.seed)
    seconds["statistics"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    info = {"seconds": seconds, "config": vars(cfg).copy(), "n_train_facts": len(train), "formats": list(FORMATS)}
    return HiddenKnowledge(per_fact, table_out, pd.DataFrame(probe_info), agreement, info)
