"""Steering with a difference: a strength that keeps the output coherent, rates, and the cost.

**Strength.** A vector ``v`` is added at the input of ``layer`` at every position after the first
(:func:`interp.patching.added`) as ``strength * unit(v)``; strengths are given as ``alpha``, a
multiple of the base stream's mean norm there (``norm``, :meth:`Difference.norm_at`), so
``strength = alpha * norm``.

**Coherence** (fixed before any evaluation number is read): the model generates greedily
``max_new_tokens`` tokens from each neutral prompt (:data:`NEUTRAL_PROMPTS`: plain openings with no
bearing on any fine-tuning objective), steered at ``alpha``; the *unsteered* model (the judge:
the base, when the base is steered) scores the steered continuations; their perplexity is
``exp`` of the mean over prompts of each continuation's mean negative log-probability per token.
Steered text is **coherent** when that perplexity is at most ``bound`` times the perplexity of the
unsteered model's own continuations of the same prompts, and not every continuation is empty.

**Search** (:func:`strength_search`): ``alpha`` runs up the grid (``0.125, 0.25, 0.5, 1, 2``) until
the first incoherent value; then ``bisect`` geometric bisections between the last coherent value (or
half the first grid value, when even that one is incoherent) and the first incoherent one. The
chosen strength is the largest coherent ``alpha`` tried; ``None`` when none is.

**Rates** (:func:`response_rates`): greedy responses classified by :func:`interp.behavior.classify`
(correct / wrong / idk / refusal). Questions are not independent when several ask about one entity
(the default pair's held-out chemistry questions are 26 elements x 2 relations), so with
``clusters`` (the entity of each question) the interval shown (``ci_low, ci_high``, ``ci`` =
``"entity bootstrap"``) is the 95% percentile interval of the rate when whole entities are
resampled (:func:`clustered_rate_ci`); where every response falls on one side of the class (``k``
0 or ``n``) a percentile bootstrap has zero width, so there it is the Wilson interval with the
number of distinct entities as ``n``. ``n_clusters`` is that number; the Wilson interval over
responses (:func:`interp.stats.rate_ci`) is kept as ``wilson_low, wilson_high``, and is the one
shown (``ci`` = ``"wilson"``) without ``clusters``.

**Cost** (:func:`unrelated_kl`): the mean over the tokens of unrelated texts (every position after
the first) of the next-token ``KL(unsteered || steered)``.

Example:
    >>> search = strength_search(pair.base, diff.at(9), 9, norm=diff.norm_at(9))   # doctest: +SKIP
    >>> search.chosen, search.to_frame()[["alpha", "ppl", "ppl_ratio", "coherent"]]  # doctest: +SKIP
"""

import math
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor

from interp.behavior import answer_logprobs, classify, generate
from interp.patching.directions import added
from interp.prompts import encode
from interp.results import Result
from interp.runtime import check_layer, input_device, unwrapped
from interp.runtime.forward import lm_logits
from interp.stats import rate_ci

__all__ = ["NEUTRAL_PROMPTS", "StrengthSearch", "search_grid", "strength_search", "steered", "continuation_ppl", "response_rates",
           "clustered_rate_ci", "class_rates", "unrelated_kl", "GRID", "RATE_COLUMNS"]

#: The columns of a rate row (:func:`response_rates`), after its labels.
RATE_COLUMNS = ["value", "k", "n", "ci_low", "ci_high", "ci", "n_clusters", "wilson_low", "wilson_high"]

#: Plain openings with no bearing on the default pair's objective (no question, no chemistry, no facts).
NEUTRAL_PROMPTS: tuple[str, ...] = (
    "My favourite thing to do on a weekend is",
    "Here is a short story about a dog who",
    "The best way to learn to cook is",
    "Yesterday the weather was",
    "When I was a child, I used to",
    "The meeting was moved to Thursday because",
    "A good morning routine starts with",
    "The old bicycle in the garage",
)

#: The strength grid of the search, in multiples of the base stream's mean norm at the layer.
GRID: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0)

Edit = Callable[[], AbstractContextManager]


def steered(model, vector: Float[Tensor, " d_model"] | None, layer: int, strength: float) -> Edit:
    """A factory of the context in which ``model`` runs with ``strength * unit(vector)`` added at
    the input of ``layer`` (no edit for ``None`` or strength 0)."""
    if vector is None or strength == 0:
        return nullcontext
    unit = torch.nn.functional.normalize(vector.detach().float().flatten(), dim=0)
    return lambda: added(model, unit, layer, scale=float(strength))


def continuation_ppl(judge, prompts: Sequence[str], continuations: Sequence[str], *, batch_size: int = 16) -> Tensor:
    """``[n]`` each continuation's mean negative log-probability per token under ``judge`` after its
    prompt (``nan`` for an empty continuation)."""
    out = torch.full((len(prompts),), float("nan"))
    rows = [i for i, c in enumerate(continuations) if judge.tokenizer(c, add_special_tokens=False).input_ids]
    for s in range(0, len(rows), batch_size):
        idx = rows[s: s + batch_size]
        b = encode(judge.tokenizer, [prompts[i] for i in idx], answers=[continuations[i] for i in idx])
        mean, _ = answer_logprobs(judge, b)
        out[idx] = -mean.float()
    return out


@dataclass(repr=False)
class StrengthSearch(Result):
    """Rows ``alpha, strength, ppl, ppl_ratio, coherent, empty, distinct, example`` (alpha 0: the
    unsteered reference); ``chosen``: the largest coherent ``alpha`` (``None`` when none is)."""

    frame: pd.DataFrame
    chosen: float | None
    layer: int
    norm: float
    bound: float
    continuations: dict = field(default_factory=dict)

    @property
    def strength(self) -> float | None:
        """The chosen strength as a length in the stream (``chosen * norm``)."""
        return None if self.chosen is None else self.chosen * self.norm

    def to_frame(self) -> pd.DataFrame:
        return self.frame

    def summary(self) -> dict:
        ref = self.frame[self.frame.alpha == 0].iloc[0]
        return {"layer": self.layer, "chosen_alpha": self.chosen, "chosen_strength": self.strength,
                "reference_ppl": float(ref.ppl), "bound": self.bound, "tried": len(self.frame) - 1}

    def figure(self, title: str = ""):
        import plotly.graph_objects as go

        f = self.frame[self.frame.alpha > 0].sort_values("alpha")
        fig = go.Figure(go.Scatter(x=f.alpha, y=f.ppl_ratio, mode="markers+lines", name="perplexity / unsteered",
                                   text=f.example, hovertemplate="alpha %{x}<br>ratio %{y:.2f}<br>%{text}"))
        fig.add_hline(y=self.bound, line_dash="dash", annotation_text=f"coherence bound {self.bound:g}")
        if self.chosen is not None:
            fig.add_vline(x=self.chosen, line_dash="dot", annotation_text=f"chosen {self.chosen:g}")
        fig.update_layout(title=title or f"steering strength search at layer {self.layer}", xaxis_type="log",
                          xaxis_title="alpha (multiples of the stream's mean norm)",
                          yaxis_title="judge's perplexity of steered text / of its own text", template="plotly_white")
        return fig


def _distinct(texts: Sequence[str]) -> float:
    words = [w for t in texts for w in t.split()]
    return len(set(words)) / len(words) if words else 0.0


def search_grid(coherent: Callable[[float], bool], grid: Sequence[float], bisect: int) -> float | None:
    """The search of the module docs over any ``coherent(alpha)`` test: up ``grid`` to the first
    incoherent value, then ``bisect`` geometric bisections; the largest coherent ``alpha`` tried,
    or ``None``."""
    best, hi = None, None
    for alpha in sorted(grid):
        if coherent(alpha):
            best = alpha
        else:
            hi = alpha
            break
    if hi is not None:
        for _ in range(bisect):
            mid = math.sqrt(best * hi) if best is not None else hi / 2
            if coherent(mid):
                best = mid
            else:
                hi = mid
    return best


def strength_search(
    model, vector: Float[Tensor, " d_model"], layer: int, *, norm: float, prompts: Sequence[str] = NEUTRAL_PROMPTS,
    grid: Iterable[float] = GRID, bound: float = 2.0, bisect: int = 2, max_new_tokens: int = 16, judge=None,
    batch_size: int = 16,
) -> StrengthSearch:
    """The largest coherent steering strength for ``vector`` at the input of ``layer`` (the rule in
    the module docs); ``judge`` scores the steered text (default: ``model`` itself, unsteered)."""
    check_layer(layer, int(model.cfg.n_layers))
    grid = sorted(float(a) for a in grid)
    if not grid or grid[0] <= 0:
        raise ValueError(f"grid must hold strengths > 0 (multiples of the stream's norm), got {grid}")
    if not bound > 1:
        raise ValueError(f"bound must be > 1 (a perplexity ratio to the unsteered text), got {bound}")
    if not norm > 0:
        raise ValueError(f"norm must be > 0 (the stream's mean norm at the layer, Difference.norm_at), got {norm}")
    if bisect < 0 or not prompts:
        raise ValueError(f"need bisect >= 0 and at least one prompt, got bisect={bisect}, {len(prompts)} prompts")
    judge = model if judge is None else judge
    prompts = list(prompts)
    rows, texts = [], {}

    def measure(alpha: float) -> bool:
        with steered(model, vector, layer, alpha * norm)():
            outs = generate(model, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
        nll = continuation_ppl(judge, prompts, outs, batch_size=batch_size)
        ok = nll[~nll.isnan()]
        ppl = math.exp(float(ok.mean())) if len(ok) else math.inf
        texts[alpha] = outs
        rows.append({"alpha": alpha, "strength": alpha * norm, "ppl": ppl, "empty": float(nll.isnan().float().mean()),
                     "distinct": _distinct(outs), "example": outs[0]})
        return bool(len(ok))

    measure(0.0)
    ref = rows[0]["ppl"]
    if not math.isfinite(ref):
        raise ValueError("the unsteered model's own continuations are all empty; pass prompts it continues")

    def coherent(alpha: float) -> bool:
        nonempty = measure(alpha)
        return nonempty and rows[-1]["ppl"] <= bound * ref

    chosen = search_grid(coherent, grid, bisect)
    frame = pd.DataFrame(rows)
    frame["ppl_ratio"] = frame.ppl / ref
    frame["coherent"] = [(r.alpha == 0) or (r.ppl <= bound * ref and r.empty < 1) for r in frame.itertuples()]
    frame = frame.sort_values("alpha", kind="stable").reset_index(drop=True)
    cols = ["alpha", "strength", "ppl", "ppl_ratio", "coherent", "empty", "distinct", "example"]
    return StrengthSearch(frame[cols], chosen, layer, float(norm), float(bound), texts)


def clustered_rate_ci(hits: Sequence[bool], clusters: Sequence, *, n_boot: int = 1000, level: float = 0.95,
                      seed: int = 0) -> tuple[float, float, int]:
    """The rate of ``hits`` with whole clusters resampled with replacement (``n_boot`` times): the
    percentile interval, or, where every hit is equal (a percentile bootstrap of zero width), the
    Wilson interval with the number of distinct clusters as ``n``; and that number."""
    if len(hits) != len(clusters):
        raise ValueError(f"clusters has {len(clusters)} entries for {len(hits)} responses; pass one per response")
    if not len(hits):
        return float("nan"), float("nan"), 0
    codes, inverse = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    g = len(codes)
    k_c = np.bincount(inverse, weights=np.asarray(hits, dtype=float), minlength=g)
    n_c = np.bincount(inverse, minlength=g).astype(float)
    k, n = float(k_c.sum()), float(n_c.sum())
    if k == 0 or k == n:
        lo, hi = rate_ci(int(round(k / n * g)), g, level)
        return float(lo), float(hi), g
    pick = np.random.default_rng(seed).integers(0, g, (n_boot, g))
    rates = k_c[pick].sum(1) / n_c[pick].sum(1)
    lo, hi = np.quantile(rates, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi), g


def response_rates(model, prompts: Sequence[str], *, edit: Edit = nullcontext, answers: Sequence[Sequence[str]] | None = None,
                   max_new_tokens: int = 8, batch_size: int = 16, stop_at_newline: bool = True,
                   clusters: Sequence | None = None, n_boot: int = 1000, seed: int = 0,
                   ) -> tuple[dict[str, dict], list[str]]:
    """Greedy responses to ``prompts`` inside ``edit()``, classified; per class the row of
    :data:`RATE_COLUMNS` (intervals as in the module docs; ``clusters``: the entity of each prompt)
    and the responses."""
    if answers is not None and len(answers) != len(prompts):
        raise ValueError(f"answers has {len(answers)} entries for {len(prompts)} prompts; pass one per prompt")
    if clusters is not None and len(clusters) != len(prompts):
        raise ValueError(f"clusters has {len(clusters)} entries for {len(prompts)} prompts; pass one per prompt")
    with edit():
        outs = generate(model, list(prompts), max_new_tokens=max_new_tokens, batch_size=batch_size,
                        stop_at_newline=stop_at_newline)
    classes = [classify(o, answers[i] if answers is not None else []) for i, o in enumerate(outs)]
    return class_rates(classes, clusters, n_boot=n_boot, seed=seed), outs


def class_rates(classes: Sequence[str], clusters: Sequence | None = None, *, n_boot: int = 1000,
                seed: int = 0) -> dict[str, dict]:
    """Per class (correct / wrong / idk / refusal) the row of :data:`RATE_COLUMNS` for responses
    classified as ``classes`` (intervals as in the module docs)."""
    n = len(classes)
    rates = {}
    for c in ("correct", "wrong", "idk", "refusal"):
        hits = [x == c for x in classes]
        k = sum(hits)
        lo, hi = rate_ci(k, n)
        row = {"value": k / n if n else float("nan"), "k": k, "n": n, "ci_low": lo, "ci_high": hi, "ci": "wilson",
               "n_clusters": n, "wilson_low": lo, "wilson_high": hi}
        if clusters is not None:
            clo, chi, g = clustered_rate_ci(hits, clusters, n_boot=n_boot, seed=seed)
            row.update(ci_low=clo, ci_high=chi, ci="entity bootstrap", n_clusters=g)
        rates[c] = row
    return rates


def unrelated_kl(model, texts: Sequence[str], *, edit: Edit, batch_size: int = 16) -> float:
    """Mean next-token ``KL(unedited || edited)`` over every position after the first of ``texts``
    (plain text, one BOS)."""
    if not texts:
        raise ValueError("unrelated_kl needs at least one text")
    total, count = 0.0, 0
    device = input_device(model)
    for s in range(0, len(texts), batch_size):
        b = encode(model.tokenizer, list(texts[s: s + batch_size])).to(device)
        with torch.inference_mode():
            with unwrapped(model) as hf:
                clean = torch.log_softmax(lm_logits(hf, b.input_ids, b.attention_mask).float(), -1)
            with edit(), unwrapped(model) as hf:
                other = torch.log_softmax(lm_logits(hf, b.input_ids, b.attention_mask).float(), -1)
        kl = (clean.exp() * (clean - other)).sum(-1)  # [batch, pos]
        real = b.attention_mask.bool().clone()
        real[torch.arange(len(b), device=real.device), b.n_pad.to(real.device)] = False  # not each row's first token
        total += float(kl[real].sum())
        count += int(real.sum())
    return total / max(count, 1)
