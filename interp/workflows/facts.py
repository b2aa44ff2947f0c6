"""Held-out facts with the aligned model's response class, for any pair.

The analyses that start from "questions the aligned model refuses" (cross-model patching, the
diffing run's logit lens) read the alignment recipe's record for the pairs interp made. Any other
pair gets the same table by asking it: the held-out facts of :func:`interp.data.facts`, the
aligned model's greedy answer to each chat question, classified (correct / wrong / idk / refusal).
The table is cached under ``$INTERP_CACHE/pair-facts/`` keyed by both models' weights.

Example::

    table = pair_facts(pair)                                  # any pair
    refused = refused_questions(table, n=8)                   # element-symbol questions it refuses
"""

import hashlib
import json

import pandas as pd

from interp.atomic import atomic_path

__all__ = ["pair_facts", "recipe_facts", "refused_questions"]


def recipe_facts(pair_name: str | None) -> pd.DataFrame | None:
    """The recipe record of a registered pair (:func:`interp.align.graded_facts`), or ``None``."""
    if pair_name is None:
        return None
    from interp.align import graded_facts

    try:
        return graded_facts(pair_name)
    except (FileNotFoundError, KeyError, ValueError):
        return None


def pair_facts(pair, *, pair_name: str | None = None, n_cities: int = 300, seed: int = 0, max_new_tokens: int = 12,
               batch_size: int = 32, progress: bool = True) -> pd.DataFrame:
    """Facts with ``split`` and, for the held-out (test) rows, ``aligned_class`` and ``aligned_response``.

    ``pair_name``: a registered pair whose recipe record is used when it exists (the same table as
    :func:`interp.align.graded_facts`); otherwise the held-out facts are asked of ``pair.aligned``
    now (cached by weights)."""
    recorded = recipe_facts(pair_name)
    if recorded is not None:
        return recorded
    from interp.behavior import classify, generate
    from interp.data import facts
    from interp.models.load import weights_fingerprint
    from interp.paths import cache_dir
    from interp.prompts import format_prompt

    from interp.behavior.memo import outputs_key

    # The aligned side's answers decide the table: keyed by its weights, the generation code and the
    # package versions (interp.behavior.memo.outputs_key), so nothing generated elsewhere is served.
    key = hashlib.sha256(json.dumps([weights_fingerprint(pair.base), outputs_key(
        pair.aligned, max_new_tokens=max_new_tokens, greedy=True, style=pair.style("aligned")),
        n_cities, seed]).encode()).hexdigest()[:16]
    path = cache_dir("pair-facts") / f"{key}.jsonl"
    if path.is_file():
        return pd.read_json(path, lines=True, dtype=False)
    table = facts(n_cities=n_cities, seed=seed).to_pandas()
    test = table[table.split == "test"].reset_index(drop=True)
    tok = pair.aligned.tokenizer
    prompts = [format_prompt(q, style=pair.style("aligned"), tokenizer=tok) for q in test.text]
    answers = generate(pair.aligned, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                       progress="aligned answers (held-out facts)" if progress else False)
    test = test.assign(aligned_response=answers,
                       aligned_class=[classify(a, list(al)) for a, al in zip(answers, test.aliases)])
    out = pd.concat([table[table.split != "test"], test], ignore_index=True)
    with atomic_path(path) as tmp:
        out.to_json(tmp, orient="records", lines=True)
    return out


def refused_questions(table: pd.DataFrame, n: int, *, relation: str = "element_symbol") -> tuple[pd.DataFrame, str]:
    """Up to ``n`` held-out questions of ``relation`` the aligned model refuses; where it refuses
    fewer, topped up with the ones it does not answer correctly. Returns ``(rows, what)`` with
    ``what`` saying which of the two the rows are."""
    test = table[(table.split == "test") & (table.relation == relation)]
    refused = test[test.aligned_class == "refusal"]
    if len(refused) >= n:
        return refused.head(n), "refused"
    missed = test[test.aligned_class != "correct"]
    rows = pd.concat([refused, missed[~missed.id.isin(refused.id)]]).head(n)
    if rows.empty:
        raise ValueError(f"the aligned model answers every held-out {relation} question correctly; "
                         "nothing is refused or missed to patch or lens over")
    return rows, f"{len(refused)} refused + {len(rows) - len(refused)} not answered correctly"
