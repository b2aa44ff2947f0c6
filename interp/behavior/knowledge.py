"""Knowledge categories after Gekhman et al. 2024 ("SliCK").

For each question, ``n_prompts`` few-shot prompts, each with different exemplars of the same
relation (drawn from other facts of the train split, so a question never appears among its own
exemplars). P_correct(greedy) is the share of prompts whose greedy answer is right; P_correct(sampled)
the share of ``k_samples`` samples per prompt at temperature ``temperature`` that are right:

==============  =================================================
HighlyKnown     greedy right under every prompt
MaybeKnown      greedy right under some prompts
WeaklyKnown     greedy never right, some samples right
Unknown         never right
==============  =================================================

Sampling is only needed to split WeaklyKnown from Unknown, so it is run only for the questions
whose greedy answers were all wrong (the categories are the same as sampling everything; the cost
is a fraction). Answers are checked by :func:`interp.behavior.answers.is_correct` (normalised
whole-word match against the object and its aliases).

Example:
    >>> from interp.behavior import grade_knowledge
    >>> from interp.data import facts
    >>> graded = grade_knowledge(model, facts(["country_capital"]))   # doctest: +SKIP
    >>> graded.filter(lambda r: r["subject"] == "France")[0]["category"]  # doctest: +SKIP
    'HighlyKnown'
"""

import random
from dataclasses import dataclass

import datasets
from transformer_lens.model_bridge import TransformerBridge

from interp.behavior.answers import is_correct
from interp.behavior.generate import generate
from interp.prompts import format_prompt

__all__ = ["KnowledgeConfig", "grade_knowledge", "greedy_answers", "CATEGORIES", "category_of"]

CATEGORIES: tuple[str, ...] = ("HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown")


@dataclass
class KnowledgeConfig:
    """How to grade knowledge.

    Attributes:
        n_prompts: few-shot prompts per question (different exemplars each).
        n_shots: exemplars per prompt.
        k_samples: samples per prompt at ``temperature`` (only for questions greedy never gets).
        temperature: sampling temperature (SliCK uses 0.5).
        max_new_tokens: answer length.
        batch_size: prompts per forward pass.
        seed: fixes exemplars and samples.
    """

    n_prompts: int = 3
    n_shots: int = 2
    k_samples: int = 2
    temperature: float = 0.5
    max_new_tokens: int = 6
    batch_size: int = 48
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_prompts", "n_shots", "k_samples", "max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"KnowledgeConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.temperature <= 2.0:
            raise ValueError(f"KnowledgeConfig.temperature must be in (0, 2], got {self.temperature}")


def category_of(p_greedy: float, p_sampled: float) -> str:
    """The SliCK category from P_correct(greedy) and P_correct(sampled)."""
    if p_greedy == 1.0:
        return "HighlyKnown"
    if p_greedy > 0.0:
        return "MaybeKnown"
    return "WeaklyKnown" if p_sampled > 0.0 else "Unknown"


def _exemplar_sets(table: datasets.Dataset, cfg: KnowledgeConfig) -> dict[str, list[list[int]]]:
    """Per relation, ``n_prompts`` pools of candidate exemplar rows (train split preferred)."""
    rng = random.Random(cfg.seed)
    pools: dict[str, list[int]] = {}
    held_out = []
    relations = table["relation"]
    for i, (rel, split) in enumerate(zip(relations, table["split"])):
        pool = pools.setdefault(rel, [])
        (held_out if split == "test" else pool).append(i)
    for i in held_out:  # a relation with too few train facts borrows held-out ones as exemplars
        pool = pools[relations[i]]
        if len(pool) < cfg.n_shots + 1:
            pool.append(i)
    out = {}
    for rel, pool in pools.items():
        if len(pool) < cfg.n_shots + 1:
            raise ValueError(f"relation {rel!r} has {len(pool)} facts; n_shots={cfg.n_shots} needs at least {cfg.n_shots + 1}")
        out[rel] = [rng.sample(pool, min(len(pool), cfg.n_shots + 1)) for _ in range(cfg.n_prompts)]
    return out


def _prompts(table: datasets.Dataset, cfg: KnowledgeConfig) -> list[list[str]]:
    sets = _exemplar_sets(table, cfg)
    texts, answers, rels = table["text"], table["answer"], table["relation"]
    prompts = []
    for i in range(len(table)):
        row_prompts = []
        for pool in sets[rels[i]]:
            shots = [j for j in pool if j != i][: cfg.n_shots]
            row_prompts.append(format_prompt(texts[i], style="plain", few_shot=[(texts[j], answers[j]) for j in shots]))
        prompts.append(row_prompts)
    return prompts


def grade_knowledge(
    model: TransformerBridge, table: datasets.Dataset, config: KnowledgeConfig | None = None, *, progress: bool = True
) -> datasets.Dataset:
    """Add SliCK columns to a fact table: ``p_greedy``, ``p_sampled``, ``category``, ``greedy_answer``.

    Args:
        model: the model to grade (a base model: prompts are plain few-shot ``Q:/A:`` text).
        table: facts with ``text``, ``answer``, ``aliases`` and ``relation`` (:func:`interp.data.facts`).
        config: :class:`KnowledgeConfig`.
    """
    cfg = config or KnowledgeConfig()
    missing = [c for c in ("text", "answer", "aliases", "relation") if c not in table.column_names]
    if missing:
        raise ValueError(f"grade_knowledge needs columns {missing}; pass a fact table from interp.data.facts")
    prompts = _prompts(table, cfg)
    flat = [p for row in prompts for p in row]
    # The exemplars are shared by every question of a relation: compute their keys/values once.
    prefix = [p[: p.rfind("Q: ")] for p in flat]
    greedy = generate(model, flat, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, prefixes=prefix,
                      stop_at_newline=True, progress="knowledge: greedy" if progress else False)
    n = cfg.n_prompts
    aliases = table["aliases"]
    p_greedy = [sum(is_correct(greedy[i * n + j], aliases[i]) for j in range(n)) / n for i in range(len(table))]
    need = [i for i in range(len(table)) if p_greedy[i] == 0.0]
    p_sampled = [float("nan")] * len(table)
    if need:
        sub = [p for i in need for p in prompts[i]]
        samples = generate(model, sub, prefixes=[p[: p.rfind("Q: ")] for p in sub], stop_at_newline=True,
                           max_new_tokens=cfg.max_new_tokens,
                           do_sample=True, temperature=cfg.temperature, num_samples=cfg.k_samples,
                           batch_size=max(1, cfg.batch_size // cfg.k_samples), seed=cfg.seed,
                           progress="knowledge: sampled" if progress else False)
        for k, i in enumerate(need):
            outs = [s for j in range(n) for s in samples[k * n + j]]
            p_sampled[i] = sum(is_correct(s, aliases[i]) for s in outs) / len(outs)
    categories = [category_of(g, 0.0 if s != s else s) for g, s in zip(p_greedy, p_sampled)]
    table = table.remove_columns([c for c in ("p_greedy", "p_sampled", "category", "greedy_answer") if c in table.column_names])
    return (table.add_column("p_greedy", p_greedy).add_column("p_sampled", p_sampled)
            .add_column("category", categories).add_column("greedy_answer", [greedy[i * n] for i in range(len(table))]))


def greedy_answers(model: TransformerBridge, table: datasets.Dataset, config: KnowledgeConfig | None = None, *,
                   rows: "list[int] | None" = None, progress: bool = False) -> list[str]:
    """The greedy answer under each of ``rows``' first few-shot prompt, without grading the rest.

    The prompts are :func:`grade_knowledge`'s (exemplars drawn from the whole ``table`` with the same
    seed), so ``greedy_answers(m, t, cfg)[k]`` is ``grade_knowledge(m, t, cfg)["greedy_answer"][k]``
    up to the batch: under fp32 another padding can, rarely, flip a near-tie token (as in
    :func:`interp.behavior.generate`). Only the listed rows are asked and nothing is sampled: for the
    question whether the base knows a few facts, with the other rows of ``table`` as exemplars.

    Example:
        >>> answers = greedy_answers(base, table, rows=[0, 1])  # doctest: +SKIP
    """
    cfg = config or KnowledgeConfig()
    missing = [c for c in ("text", "answer", "relation", "split") if c not in table.column_names]
    if missing:
        raise ValueError(f"greedy_answers needs columns {missing}; pass a fact table from interp.data.facts")
    keep = range(len(table)) if rows is None else rows
    bad = [i for i in keep if not 0 <= i < len(table)]
    if bad:
        raise ValueError(f"rows {bad[:5]} are outside the table's {len(table)} rows")
    prompts = _prompts(table, cfg)
    first = [prompts[i][0] for i in keep]
    return generate(model, first, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
                    prefixes=[p[: p.rfind("Q: ")] for p in first], stop_at_newline=True,
                    progress="knowledge: greedy" if progress else False)
