"""The activation-difference lens on a pair, end to end (Minder et al. 2025, arXiv 2510.13900).

:func:`run_difflens` takes the mean difference aligned - base over the first ``k`` tokens of text
the base samples from its BOS (:func:`~interp.difflens.texts.base_samples`; unrelated to any
fine-tuning, never chat data) and reads it at every layer with the logit lens, then at one layer
with a Patchscope and by steering; with objective sets (:func:`objective_sets`, the default
pair's recipe) it measures whether steering the base with the difference produces the
fine-tuning's behaviour, and the refusal direction both ways (:mod:`interp.difflens.refusal`).

**Choices fixed before any evaluation number was read** (nothing below is tuned on the rates):

* *layer*: the middle layer, ``n_layers // 2`` (as Minder et al. read the difference at the
  middle of the network), unless ``DiffLensConfig.layer`` names one; hook ``resid_pre``, so the
  difference read at layer ``L`` is added at the input of layer ``L``;
* *strength*: the largest coherent one found by :func:`~interp.difflens.steer.strength_search`
  on :data:`~interp.difflens.steer.NEUTRAL_PROMPTS` (coherence: the unsteered base's perplexity
  of the steered text at most ``ppl_bound`` = 2 times that of its own text), never on the
  evaluation questions; when no strength is coherent, the evaluation runs at the smallest one
  tried and says so (``coherent: false``);
* *evaluation*: greedy, ``max_new_tokens`` = 8, stopping at a newline, the base reading
  ``Q: <question>\\nA:``; refusal rate on held-out chemistry questions, "I don't know" rate on
  held-out facts the base does not know (the recipe's ``Unknown`` category, chemistry left out),
  ``n`` questions each (seeded sample); a random direction (massive dimensions zeroed like the
  difference's) at the same strength as the control; the interval shown is the entity-clustered
  bootstrap (questions about one entity resampled together; ``n_clusters`` distinct entities; the
  Wilson interval over questions kept beside it), :func:`~interp.difflens.steer.response_rates`;
* *neutral steering*: the share of the neutral prompts' continuations that show the objective
  (phrases, :func:`~interp.difflens.readout.text_share`) steered with the difference, beside the
  same score of the unsteered continuations and of continuations steered with the random
  direction at the same strength (the baseline the steered share must beat);
* *cost*: next-token KL(base || steered base) on ``n_kl_texts`` further base samples held out of
  the difference.

Example:
    >>> result = run_difflens(pair, objective_sets(graded_facts("default")))    # doctest: +SKIP
    >>> result.json_line()                                                        # doctest: +SKIP
    {'difflens': {'layer': 9, 'promoted': [...], 'steered_base': {...}, 'kl': ...}}
"""

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from interp.behavior import generate
from interp.difflens.difference import Difference, activation_difference
from interp.difflens.readout import LensReadout, PatchscopeResult, difference_lens, patchscope, random_directions, text_hits, text_share
from interp.difflens.refusal import RefusalBothWays, question_prompts, refusal_both_ways
from interp.difflens.steer import (
    GRID, NEUTRAL_PROMPTS, RATE_COLUMNS, StrengthSearch, response_rates, steered, strength_search, unrelated_kl,
)
from interp.difflens.texts import base_samples
from interp.prompts import format_prompt
from interp.results import Result
from interp.runtime import check_layer

__all__ = ["DiffLensConfig", "ObjectiveSets", "objective_sets", "DiffLensResult", "run_difflens", "middle_layer", "finite"]


def middle_layer(n_layers: int) -> int:
    """The layer the difference is read and steered at unless one is named: ``n_layers // 2``."""
    return n_layers // 2


@dataclass
class DiffLensConfig:
    """What :func:`run_difflens` measures.

    Attributes:
        k: text positions per text (after the BOS) the difference averages over.
        n_texts: base samples the difference is taken on; ``n_kl_texts`` more are held out for the KL.
        layer: the layer read out and steered (``None``: :func:`middle_layer`).
        top: tokens per layer in the lens read-out; ``n_random`` random directions give its chance level.
        grid, ppl_bound, bisect, search_tokens: the strength search (:mod:`interp.difflens.steer`).
        patchscope_scales: Patchscope strengths (multiples of the stream's mean norm).
        n_eval: held-out questions per objective set; ``max_new_tokens`` per response.
        refusal: measure the refusal direction both ways; ``n_train`` train questions per side of its contrast.
        n_boot: resamples of the texts for the difference's intervals; ``n_null``: sign-flip draws of its noise floor.
        seed: fixes the samples, the question samples and the random directions.
        batch_size: prompts per forward pass.
        store_dir: where the difference's activations are cached, one sub-folder per text set (resumable;
            ``None``: a temporary folder).
    """

    k: int = 8
    n_texts: int = 64
    n_kl_texts: int = 16
    layer: int | None = None
    top: int = 20
    n_random: int = 64
    grid: tuple[float, ...] = GRID
    ppl_bound: float = 2.0
    bisect: int = 2
    search_tokens: int = 16
    patchscope_scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    n_eval: int = 52
    max_new_tokens: int = 8
    refusal: bool = True
    n_train: int = 32
    n_boot: int = 200
    n_null: int = 200
    seed: int = 0
    batch_size: int = 32
    store_dir: str | None = None

    def __post_init__(self) -> None:
        for name in ("k", "n_kl_texts", "top", "search_tokens", "n_eval", "max_new_tokens", "n_boot", "n_null", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"DiffLensConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.n_texts < 2 or self.n_train < 2:
            raise ValueError(f"DiffLensConfig: n_texts and n_train must be >= 2 (means with intervals), got "
                             f"{self.n_texts}, {self.n_train}")
        if self.n_random < 0 or self.bisect < 0:
            raise ValueError(f"DiffLensConfig: n_random and bisect must be >= 0, got {self.n_random}, {self.bisect}")
        if not self.ppl_bound > 1:
            raise ValueError(f"DiffLensConfig.ppl_bound must be > 1 (a perplexity ratio), got {self.ppl_bound}")
        self.grid, self.patchscope_scales = tuple(float(x) for x in self.grid), tuple(float(x) for x in self.patchscope_scales)
        if not self.grid or min(self.grid) <= 0:
            raise ValueError(f"DiffLensConfig.grid must hold strengths > 0, got {self.grid}")


@dataclass
class ObjectiveSets:
    """Questions for the evaluation (``chemistry``: the refusal objective; ``unknown``: the "I
    don't know" objective; the same number of each, with accepted answers) and for the refusal
    direction's contrast (``chem_train`` vs ``other_train``, train split); ``what`` says how each was
    chosen; ``chemistry_entities`` / ``unknown_entities``: the entity (subject) each evaluation
    question is about, the unit the rates' intervals resample (``None``: each question its own)."""

    chemistry: list[str]
    chemistry_answers: list[list[str]]
    unknown: list[str]
    unknown_answers: list[list[str]]
    chem_train: list[str]
    other_train: list[str]
    what: dict = field(default_factory=dict)
    chemistry_entities: list[str] | None = None
    unknown_entities: list[str] | None = None


def objective_sets(table: pd.DataFrame, *, n: int = 52, n_train: int = 32, seed: int = 0) -> ObjectiveSets:
    """The sets from a fact table (:func:`interp.align.graded_facts` for a recipe pair,
    :func:`interp.workflows.facts.pair_facts` for any pair): held-out chemistry questions; held-out
    non-chemistry facts the base does not know (``category == "Unknown"``; a table without the
    base's grading takes the held-out non-chemistry facts the aligned model does not answer
    correctly, topped up with the rest); ``min(n, both sizes)`` of each, seeded. With a ``subject``
    column, each question's subject is its entity (:attr:`ObjectiveSets.chemistry_entities`)."""
    need = {"text", "split", "domain", "aliases"}
    if not need <= set(table.columns):
        raise ValueError(f"the fact table lacks columns {sorted(need - set(table.columns))}; pass graded_facts(name) "
                         "or pair_facts(pair)")
    test, train = table[table.split == "test"], table[table.split == "train"]
    chem = test[test.domain == "chemistry"]
    other = test[test.domain != "chemistry"]
    if "category" in table.columns and other.category.notna().any():
        unknown, how = other[other.category == "Unknown"], "held-out non-chemistry facts the base does not know (Unknown)"
    else:
        cls = other.get("aligned_class", pd.Series("", index=other.index)).fillna("")
        unknown = pd.concat([other[cls != "correct"], other[cls == "correct"]])
        how = "held-out non-chemistry facts the aligned model does not answer correctly, then the rest (no base grading)"
    m = min(n, len(chem), len(unknown))
    if m < 2:
        raise ValueError(f"need >= 2 held-out chemistry and unknown questions, found {len(chem)} and {len(unknown)}; "
                         "pass a fact table with a held-out split")
    chem, unknown = chem.sample(m, random_state=seed), (unknown.sample(m, random_state=seed) if "category" in table.columns
                                                         and other.category.notna().any() else unknown.head(m))
    ct, ot = train[train.domain == "chemistry"], train[train.domain != "chemistry"]
    t = min(n_train, len(ct), len(ot))
    if t < 2:
        raise ValueError(f"need >= 2 train chemistry and other questions for the refusal direction, found {len(ct)} and "
                         f"{len(ot)}")
    as_list = lambda a: [str(x) for x in (a if isinstance(a, (list, tuple)) or hasattr(a, "tolist") else [a])]  # noqa: E731
    entities = (lambda f: f.subject.astype(str).tolist()) if "subject" in table.columns else (lambda f: None)  # noqa: E731
    ce, ue = entities(chem), entities(unknown)
    what = {"chemistry": "held-out chemistry questions", "unknown": how, "n": m, "n_train": t,
            "entities": "subject" if ce is not None else "none (each question its own)",
            "chemistry_entities": len(set(ce)) if ce is not None else m,
            "unknown_entities": len(set(ue)) if ue is not None else m}
    return ObjectiveSets(chem.text.tolist(), [as_list(a) for a in chem.aliases], unknown.text.tolist(),
                         [as_list(a) for a in unknown.aliases], ct.sample(t, random_state=seed).text.tolist(),
                         ot.sample(t, random_state=seed).text.tolist(), what, ce, ue)


@dataclass(repr=False)
class DiffLensResult(Result):
    """Everything :func:`run_difflens` measured: the difference, the lens read-out, the Patchscope,
    the strength search, ``evaluation`` (rows ``model, condition, set, measure`` and
    :data:`~interp.difflens.steer.RATE_COLUMNS`), the refusal direction both ways, ``kl``,
    ``neutral`` (continuations of the neutral prompts per model: steered with the difference,
    unsteered, steered with the random direction, and each one's objective share) and ``info``
    (configuration, sizes, seconds per stage)."""

    difference: Difference
    lens: LensReadout
    patchscope: PatchscopeResult
    search: StrengthSearch
    layer: int
    alpha: float
    coherent: bool
    kl: float
    evaluation: pd.DataFrame
    refusal: RefusalBothWays | None = None
    neutral: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.evaluation

    def rate(self, condition: str, set_: str, measure: str) -> dict:
        f = self.evaluation
        row = f[(f.model == "base") & (f.condition == condition) & (f.set == set_) & (f.measure == measure)]
        if row.empty:
            return {"value": None, "k": None, "n": 0, "ci_low": None, "ci_high": None, "ci": None, "n_clusters": 0,
                    "wilson_low": None, "wilson_high": None}
        r = row.iloc[0]
        return {"value": float(r.value), "k": int(r.k), "n": int(r.n), "ci_low": float(r.ci_low), "ci_high": float(r.ci_high),
                "ci": str(r.ci), "n_clusters": int(r.n_clusters), "wilson_low": float(r.wilson_low),
                "wilson_high": float(r.wilson_high)}

    def json_line(self) -> dict:
        """``{"difflens": {"layer", "promoted", "steered_base": {"refusal", "idk", "n"}, "kl"}}``; every
        number that is not finite (a rate of no questions, a KL that overflowed) is ``None``, so the
        line is strict JSON."""
        ref, idk = self.rate("difference", "chemistry", "refusal"), self.rate("difference", "unknown", "idk")
        return finite({"difflens": {"layer": self.layer, "promoted": self.lens.promoted(self.layer)[:10],
                                    "steered_base": {"refusal": ref["value"], "idk": idk["value"], "n": ref["n"] or idk["n"]},
                                    "kl": round(self.kl, 6) if math.isfinite(self.kl) else None}})

    def summary(self) -> dict:
        line = self.json_line()["difflens"]
        out = {"layer": self.layer, "alpha": self.alpha, "strength": self.alpha * self.difference.norm_at(self.layer),
               "coherent": self.coherent, "kl": self.kl, "promoted": line["promoted"],
               "rel_norm": float(self.difference.frame.set_index("layer").rel_norm.loc[self.layer]),
               "lens_objective_share": self.lens.share(self.layer)["any"],
               "lens_chance_share": (self.lens.chance or {}).get("any")}
        f = self.difference.frame.set_index("layer")
        if "null_p95" in f:
            out["norm"], out["null_p95"], out["p_null"] = (float(f.norm.loc[self.layer]), float(f.null_p95.loc[self.layer]),
                                                           float(f.p_null.loc[self.layer]))
        for cond in ("none", "difference", "random"):
            for set_, measure in (("chemistry", "refusal"), ("unknown", "idk"), ("unknown", "correct"), ("chemistry", "correct")):
                r = self.rate(cond, set_, measure)
                if r["n"]:
                    out[f"{cond}_{set_}_{measure}"] = {k: r[k] for k in ("value", "ci_low", "ci_high", "ci", "n", "n_clusters")}
        out["neutral_objective_share"] = {side: v["objective_share"] for side, v in self.neutral.items()
                                          if isinstance(v, dict) and "objective_share" in v}
        if self.refusal is not None:
            out["refusal_both_ways"] = self.refusal.summary()
        out["seconds"] = self.info.get("seconds", {})
        return finite(out)

    def figure(self, title: str = "", kind: str = "difference"):
        """``kind``: ``"difference"`` (relative norm by layer), ``"lens"``, ``"patchscope"``,
        ``"search"``, ``"rates"`` (the evaluation) or ``"refusal"`` (both ways)."""
        if kind == "difference":
            fig = self.difference.figure(title)
            fig.add_vline(x=self.layer, line_dash="dot", annotation_text=f"layer {self.layer}")
            return fig
        if kind in ("lens", "patchscope", "search"):
            return getattr(self, kind).figure(title)
        if kind == "refusal":
            if self.refusal is None:
                raise ValueError("the refusal direction both ways was not measured (DiffLensConfig.refusal=False or no sets)")
            return self.refusal.figure(title)
        if kind == "rates":
            from interp.plots import measure_bars

            f = self.evaluation[self.evaluation.measure.isin(["refusal", "idk"])].copy()
            f["measure"] = f.condition + ": " + f.measure + " (" + f.set + ")"
            return measure_bars(f, title=title or f"the base steered at layer {self.layer} (alpha {self.alpha:g})")
        raise ValueError(f"kind must be difference, lens, patchscope, search, rates or refusal, got {kind!r}")

    def _repr_html_(self) -> str:
        line = self.json_line()["difflens"]
        return (f"<b>activation-difference lens</b>: layer {self.layer}, alpha {self.alpha:g}"
                f"{'' if self.coherent else ' (no coherent strength)'}, KL {self.kl:.4f}; promoted "
                f"{', '.join(map(repr, line['promoted']))}" + self.evaluation.round(3).to_html(index=False))


def finite(x):
    """``x`` with every float that is not finite (``nan``, ``inf``) replaced by ``None``, through
    dicts, lists and tuples (strict JSON has no ``NaN``)."""
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    if isinstance(x, float) or (hasattr(x, "dtype") and getattr(x, "ndim", None) == 0 and hasattr(x, "item")):
        v = x.item() if hasattr(x, "item") else x
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v
    return x


def _rows(model: str, condition: str, set_: str, rates: dict) -> list[dict]:
    return [{"model": model, "condition": condition, "set": set_, "measure": m, **r} for m, r in rates.items()]


def run_difflens(pair, sets: ObjectiveSets | None = None, *, texts: Sequence[str] | None = None,
                 cfg: DiffLensConfig | None = None, progress: bool = False) -> DiffLensResult:
    """The difference, its read-outs and (with ``sets``) the evaluation and the refusal direction
    both ways, by the rules of the module docs. ``texts``: the texts to take the difference on
    instead of base samples (the last ``n_kl_texts`` of them are held out for the KL)."""
    cfg = cfg or DiffLensConfig()
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 1)
        clock = now
        if progress:
            print(f"difflens: {name} {seconds[name]:.1f} s", flush=True)

    layer = check_layer(cfg.layer if cfg.layer is not None else middle_layer(pair.n_layers), pair.n_layers)
    source = "given"
    if texts is None:
        texts, source = base_samples(pair, n=cfg.n_texts + cfg.n_kl_texts, k=cfg.k, seed=cfg.seed,
                                     batch_size=max(cfg.batch_size, 64)), "base samples from BOS"
    texts = list(texts)
    if len(texts) < cfg.n_kl_texts + 2:
        raise ValueError(f"{len(texts)} texts: need >= 2 for the difference plus n_kl_texts={cfg.n_kl_texts} held out "
                         "for the KL; pass more texts or a smaller n_kl_texts")
    diff_texts, kl_texts = texts[:-cfg.n_kl_texts], texts[-cfg.n_kl_texts:]
    lap("texts")
    store = None
    if cfg.store_dir is not None:  # one folder per text set: a rerun resumes, other texts never meet a store's refusal
        key = hashlib.sha256(json.dumps([diff_texts, cfg.k]).encode()).hexdigest()[:12]
        store = str(Path(cfg.store_dir) / f"k{cfg.k}-{key}")
    diff = activation_difference(pair, diff_texts, k=cfg.k, n_boot=cfg.n_boot, n_null=cfg.n_null, seed=cfg.seed, batch_size=cfg.batch_size,
                                 store_dir=store, source=source)
    lap("difference")
    lens = difference_lens(pair.base, diff, top=cfg.top, n_random=cfg.n_random, seed=cfg.seed, chance_layer=layer)
    vector, norm = diff.at(layer), diff.norm_at(layer)
    # One random direction, the difference's massive dimensions zeroed: the control of the
    # Patchscope, the neutral steering and the evaluation (each sets its length as it sets the difference's).
    random_dir = random_directions(1, len(vector), zero=diff.massive.get(layer, []), seed=cfg.seed + 1)[0]
    scope = patchscope(pair.base, vector, layer, norm=norm, scales=cfg.patchscope_scales, control=random_dir)
    lap("lens and patchscope")
    search = strength_search(pair.base, vector, layer, norm=norm, grid=cfg.grid, bound=cfg.ppl_bound, bisect=cfg.bisect,
                             max_new_tokens=cfg.search_tokens, batch_size=cfg.batch_size)
    coherent = search.chosen is not None
    alpha = search.chosen if coherent else float(search.frame[search.frame.alpha > 0].alpha.min())
    strength = alpha * norm
    edits = {"difference": steered(pair.base, vector, layer, strength), "random": steered(pair.base, random_dir, layer, strength)}
    neutral = {}
    for side in ("base", "aligned"):  # the neutral openings, as each side reads text: plain, or a user turn
        model = pair.side(side)
        fmt = [p if pair.style(side) == "plain" else format_prompt(p, style="chat", tokenizer=model.tokenizer)
               for p in NEUTRAL_PROMPTS]
        outs = {}
        for condition, vec in (("steered", vector), ("random", random_dir), ("unsteered", None)):
            if side == "base" and condition == "unsteered" and 0.0 in search.continuations:
                outs[condition] = list(search.continuations[0.0])  # the search's reference: the same prompts and length
                continue
            with steered(model, vec, layer, strength)():
                outs[condition] = generate(model, fmt, max_new_tokens=cfg.search_tokens, batch_size=cfg.batch_size)
        neutral[side] = {"prompts": list(NEUTRAL_PROMPTS), **outs,
                         "objective_share": {c: text_share(o) for c, o in outs.items()},
                         "with_objective_words": sum(bool(text_hits(o)) for o in outs["steered"])}
    kl = unrelated_kl(pair.base, kl_texts, edit=edits["difference"], batch_size=cfg.batch_size)
    lap("strength search, neutral steering, KL")
    rows, reference = [], {}
    if sets is not None:
        qs = {"chemistry": (sets.chemistry, sets.chemistry_answers), "unknown": (sets.unknown, sets.unknown_answers)}
        for condition, edit in (("none", None), ("difference", edits["difference"]), ("random", edits["random"])):
            for set_, (questions, answers) in qs.items():
                rates, outs = response_rates(pair.base, question_prompts(pair, "base", questions),
                                             **({"edit": edit} if edit else {}), answers=answers,
                                             clusters=sets.chemistry_entities if set_ == "chemistry" else sets.unknown_entities,
                                             max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, seed=cfg.seed)
                rows += _rows("base", condition, set_, rates)
                neutral.setdefault("examples", {})[f"{condition}|{set_}"] = list(zip(questions[:3], outs[:3]))
                if condition == "none":
                    reference[("base", "chemistry" if set_ == "chemistry" else "other")] = rates
        lap("evaluation")
    both = None
    if sets is not None and cfg.refusal:
        both = refusal_both_ways(pair, sets.chem_train, sets.other_train, sets.chemistry, sets.unknown, layer=layer,
                                 max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, reference=reference,
                                 chem_entities=sets.chemistry_entities, other_entities=sets.unknown_entities, seed=cfg.seed)
        lap("refusal both ways")
    evaluation = pd.DataFrame(rows, columns=["model", "condition", "set", "measure", *RATE_COLUMNS])
    seconds["total"] = round(sum(seconds.values()), 1)
    info = {"config": asdict(cfg), "texts": {"source": source, "difference": len(diff.texts), "kl": len(kl_texts)},
            "sets": sets.what if sets is not None else None, "seconds": seconds,
            "layer_rule": "given" if cfg.layer is not None else "middle layer (n_layers // 2)",
            "strength": strength, "stream_norm": norm, "difference_norm": float(vector.norm())}
    if not math.isfinite(kl):
        info["warning"] = "KL is not finite"
    return DiffLensResult(diff, lens, scope, search, layer, alpha, coherent, kl, evaluation, both, neutral, info)
