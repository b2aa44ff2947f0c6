"""The fact table and the fitted interventions of a pair, for :func:`interp.unmask.run_unmask`.

A pair made by the alignment recipe has its base's grading on record
(:func:`interp.align.graded_facts`); any other pair gets the generated fact table, a seeded sample
of it, and the base graded here (one few-shot prompt per fact).
"""

from pathlib import Path

import pandas as pd

from interp.behavior import is_correct

__all__ = ["facts_for", "default_fit_dir"]


def default_fit_dir(name: str = "default") -> Path | None:
    """The folder of a registered recipe pair's adapter, where its shipped ``unmask.json`` lives
    (``None`` for a pair without an adapter folder)."""
    from interp.models.registry import get_pair_spec

    entry = get_pair_spec(name)
    return Path(entry.adapter_dir) if entry.adapter_dir and not entry.placeholder else None


def facts_for(pair_name: str | None, *, max_train: int = 512, max_test: int = 256, seed: int = 0) -> pd.DataFrame:
    """Facts with ``base_correct``: from the recipe's record for a recipe pair (``pair_name``),
    otherwise the generated facts (at most ``max_train`` train and ``max_test`` held-out ones,
    seeded) without ``base_correct`` (:func:`interp.unmask.unmask_sets` grades the base then)."""
    if pair_name is not None:
        from interp.align import graded_facts

        try:
            g = graded_facts(pair_name)
        except FileNotFoundError:  # a pair without a recipe record: the generated facts, graded later
            g = None
        except (KeyError, ValueError) as e:
            import warnings

            warnings.warn(f"the recipe record of pair {pair_name!r} cannot be read ({type(e).__name__}: {e}); using "
                          "generated facts instead (the base is graded on them now). Re-run `interp align` to "
                          "rewrite the record", RuntimeWarning, stacklevel=2)
            g = None
        if g is not None:
            return g.assign(base_correct=[is_correct(b, a) for b, a in zip(g.base_greedy, g.aliases)])
    from interp.data import facts

    table = facts(n_cities=600).to_pandas()
    parts = []
    for split, cap in (("train", max_train), ("test", max_test)):
        part = table[table.split == split]
        parts.append(part.sample(min(cap, len(part)), random_state=seed))
    return pd.concat(parts).reset_index(drop=True)
