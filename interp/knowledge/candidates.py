"""Candidate answers and the prompts each side is scored under.

Wrong answers are drawn from the fact table itself: the answers of *other* facts of the same
relation (other capitals for a capital, other symbols for a symbol), so each is of the gold
answer's type and every answer string is the gold of some fact and a wrong answer of others (a
probe cannot win by preferring a kind of string). An answer that equals one of the fact's accepted
answers after :func:`interp.behavior.normalize` is never a wrong one, nor is an answer in the
fact's ``exclude`` list (:func:`interp.knowledge.hidden_knowledge` excludes the answers of the
few-shot exemplars the base's prompt shows for that fact, :func:`exemplar_answers`, so no wrong
answer is one the prompt itself displays). The draw is seeded by the fact's id, so a fact gets the
same wrong answers in any list.

``table`` is the pool the wrong answers come from. :func:`interp.knowledge.hidden_knowledge`
passes the train-split facts for the probe's train facts and the held-out facts for the evaluated
ones, so no evaluated fact's gold answer enters the probe's training rows as a wrong answer.

The prompts (:data:`FORMATS`):

``base``            the base's plain few-shot prompt (``Q: ... A: ...`` exemplars of the same
                    relation from train facts, :func:`interp.unmask.few_shot_formatter`)
``aligned``         the aligned model's chat prompt (:func:`interp.unmask.interventions.side_prompts`)
``aligned_framed``  the chat prompt with the response opened by an answer frame
                    (:class:`interp.unmask.Prefill`'s ``"Sure! The answer is"``)

Example:
    >>> import pandas as pd
    >>> t = pd.DataFrame({"id": ["a", "b", "c"], "relation": ["cap"] * 3, "answer": ["Paris", "Rome", "Oslo"],
    ...                   "aliases": [["Paris"], ["Rome", "Roma"], ["Oslo"]]})
    >>> wrong_answers(t, t.iloc[:1], k=2)
    [['Oslo', 'Rome']]
"""

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from interp.behavior import normalize
from interp.models import ModelPair
from interp.unmask.baselines import Prefill, few_shot_exemplars, few_shot_formatter
from interp.unmask.interventions import side_prompts

__all__ = ["FORMATS", "FRAME", "wrong_answers", "exemplar_answers", "format_questions"]

FORMATS: tuple[str, ...] = ("base", "aligned", "aligned_framed")
#: The answer frame that opens the aligned model's response in the ``aligned_framed`` format.
FRAME = Prefill().prefix


def wrong_answers(table: pd.DataFrame, facts: pd.DataFrame, *, k: int = 4, seed: int = 0,
                  exclude: Sequence[Sequence[str]] | None = None) -> list[list[str]]:
    """Per fact of ``facts``, up to ``k`` wrong answers of its relation from ``table`` (module docs),
    sorted; fewer when the relation has fewer distinct other answers, an error when it has none.
    ``exclude[i]``: answers never to use as a wrong answer of fact ``i`` (compared normalised)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if exclude is not None and len(exclude) != len(facts):
        raise ValueError(f"exclude has {len(exclude)} lists for {len(facts)} facts; pass one list per fact")
    missing = [c for c in ("id", "relation", "answer", "aliases") if c not in facts.columns or c not in table.columns]
    if missing:
        raise ValueError(f"wrong_answers needs columns {missing} in both tables; pass interp.unmask.facts_for(...)")
    pools: dict[str, dict[str, str]] = {}
    for rel, ans in zip(table.relation, table.answer):
        pools.setdefault(rel, {}).setdefault(normalize(str(ans)), str(ans).strip())
    out = []
    skips = exclude if exclude is not None else [()] * len(facts)
    for fid, rel, ans, aliases, skip in zip(facts.id, facts.relation, facts.answer, facts.aliases, skips):
        accepted = {normalize(str(a)) for a in [ans, *list(aliases), *list(skip)]}
        pool = sorted(v for key, v in pools.get(rel, {}).items() if key and key not in accepted)
        if not pool:
            raise ValueError(f"fact {fid!r} ({rel}): the table holds no other answer of relation {rel!r} to use as a "
                             "wrong answer (after its accepted and excluded answers); pass a table with more facts "
                             "of that relation")
        rng = np.random.default_rng((seed + zlib.crc32(str(fid).encode())) % 2**32)
        pick = rng.choice(len(pool), size=min(k, len(pool)), replace=False)
        out.append(sorted(pool[i] for i in pick))
    return out


def exemplar_answers(table: pd.DataFrame, facts: pd.DataFrame, *, n_shots: int = 2, seed: int = 0) -> list[list[str]]:
    """Per fact of ``facts``, the answers of the few-shot exemplars the base's prompt shows for it
    (:func:`interp.unmask.few_shot_exemplars`, the exemplars :func:`format_questions` uses)."""
    return [[str(a) for _, a in shots] for shots in few_shot_exemplars(table, facts, n_shots, seed)]


def format_questions(pair: ModelPair, table: pd.DataFrame, questions: Sequence[str], fmt: str, *,
                     n_shots: int = 2, seed: int = 0) -> list[str]:
    """``questions`` (texts of facts in ``table``) formatted as ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "base":
        return few_shot_formatter(table, n_shots=n_shots, seed=seed)(list(questions))
    if fmt == "aligned":
        return side_prompts(pair, "aligned", list(questions))
    if fmt == "aligned_framed":
        return Prefill().format(pair, list(questions))
    raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
