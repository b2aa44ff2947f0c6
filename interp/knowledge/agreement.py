"""Do the facts an unmasking edit recovers have high internal knowledge? Per mask, the AUROC of
each internal score of the aligned model (``k_prob``, ``k_prob_framed``, ``k_probe``) for "the
edit's answer is correct" (strict judge), over the mask's facts, with a 95% interval from a
bootstrap over entities.

The unmasking outcome is the per-fact table ``interp unmask --out DIR`` writes as
``DIR/unmask_headline_facts.csv`` (:func:`interp.unmask.headline.measure_headline`): rows of the
pre-registered method (``role == "headline"``) on each mask's facts in their own phrasing
(``set == "mask:<name>"``, no ``phrasing``), the fact ``id`` (``fact_id`` accepted) and
``strict_class``. 0.5: the internal score says nothing about which facts come back.

The table must cover the same facts: a mask whose facts the table covers only partly gives a
warning naming how many ids are missing (the AUROC is then over the overlap); a mask it does not
cover at all, or whose covered facts are all recovered or none is, gives a warning and no row, so
no AUROC is ever ``nan`` unannounced.

Example:
    >>> import pandas as pd
    >>> pf = pd.DataFrame({"set": ["refused"] * 4, "side": ["aligned"] * 4, "id": list("abcd"), "entity": list("abcd"),
    ...                    "k_prob": [0.9, 0.8, 0.2, 0.1], "k_prob_framed": [1.0, 0.5, 0.5, 0.0], "k_probe": [1, 1, 0, 0.5]})
    >>> uf = pd.DataFrame({"role": ["headline"] * 4, "set": ["mask:refused"] * 4, "id": list("abcd"),
    ...                    "strict_class": ["correct", "correct", "refusal", "wrong"]})
    >>> recovery_agreement(pf, uf, n_boot=0).auroc.tolist()
    [1.0, 0.875, 1.0]
"""

import os
import warnings

import numpy as np
import pandas as pd
import torch

from interp.probes.metrics import auroc
from interp.stats import cluster_bootstrap_ci

__all__ = ["recovery_agreement", "read_unmask_facts", "SCORES"]

#: The aligned model's internal scores whose agreement with recovery is measured.
SCORES: tuple[str, ...] = ("k_prob", "k_prob_framed", "k_probe")


def read_unmask_facts(path: "str | os.PathLike[str]") -> pd.DataFrame:
    """The per-fact unmasking outcome from ``path`` (a CSV, or a folder holding
    ``unmask_headline_facts.csv``), checked for the columns :func:`recovery_agreement` reads."""
    p = os.fspath(path)
    if os.path.isdir(p):
        p = os.path.join(p, "unmask_headline_facts.csv")
    if not os.path.isfile(p):
        raise FileNotFoundError(f"no unmasking per-fact table at {p}; run `interp unmask --json --out DIR` and pass "
                                "DIR/unmask_headline_facts.csv")
    frame = pd.read_csv(p)
    _outcomes(frame)  # fails early on a table of the wrong shape
    return frame


def _outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    """``mask, id, recovered`` per fact of the headline rows."""
    key = "id" if "id" in frame else "fact_id" if "fact_id" in frame else None
    missing = [c for c in ("set", "strict_class") if c not in frame] + ([] if key else ["id (or fact_id)"])
    if missing:
        raise ValueError(f"the unmasking per-fact table lacks columns {missing}; it has {list(frame.columns)}. Pass the "
                         "unmask_headline_facts.csv that `interp unmask --out DIR` writes")
    f = frame
    if "role" in f:
        f = f[f.role == "headline"]
    if "phrasing" in f:
        f = f[f.phrasing.isna()]
    f = f[f.set.astype(str).str.startswith("mask:")]
    out = pd.DataFrame({"mask": f.set.str.removeprefix("mask:"), "id": f[key].astype(str),
                        "recovered": (f.strict_class == "correct").astype(int)})
    return out.drop_duplicates(["mask", "id"])


def recovery_agreement(per_fact: pd.DataFrame, unmask_facts: pd.DataFrame, *, n_boot: int = 1000,
                       seed: int = 0) -> pd.DataFrame:
    """One row per (mask, score): ``mask, score, auroc, ci_low, ci_high, n, n_recovered``; a
    warning, not a row, for a mask without an overlap or whose facts are all recovered or none is;
    a warning naming the missing ids' count when the table covers a mask's facts only partly."""
    outcome = _outcomes(unmask_facts)
    aligned = per_fact[per_fact.side == "aligned"].assign(id=lambda f: f.id.astype(str))
    rows = []
    hint = ("pass the unmask_headline_facts.csv of an `interp unmask` run on the same pair, --n and seed as these sets")
    for mask in dict.fromkeys(aligned.set):
        if mask != "answered" and mask not in set(outcome["mask"]):  # "answered": the guard, no mask of unmasking
            warnings.warn(f"agreement with unmasking: the per-fact table has no row of mask {mask!r}; not measured there",
                          RuntimeWarning, stacklevel=2)
    for mask, part in outcome.groupby("mask", sort=False):
        ours = set(aligned.id[aligned.set == mask])
        if not ours:
            continue  # a mask this measurement has no facts of
        missing, extra = ours - set(part.id), set(part.id) - ours
        if not ours - missing:
            warnings.warn(f"agreement with unmasking, mask {mask!r}: none of its {len(ours)} facts is in the per-fact table "
                          f"(it holds {len(part)} other ids); no AUROC. {hint}", RuntimeWarning, stacklevel=2)
            continue
        if missing or extra:
            warnings.warn(f"agreement with unmasking, mask {mask!r}: the per-fact table overlaps the mask set only partly: "
                          f"{len(missing)} of its {len(ours)} fact ids are missing from the table and {len(extra)} of the "
                          f"table's ids are not in the set; the AUROC is over the {len(ours) - len(missing)} shared facts. "
                          f"{hint}", RuntimeWarning, stacklevel=2)
        m = aligned[aligned.set == mask].merge(part, on="id")
        y = torch.tensor(np.array(m.recovered, dtype=np.int64))
        if not 0 < int(y.sum()) < len(y):
            warnings.warn(f"agreement with unmasking, mask {mask!r}: {int(y.sum())} of its {len(y)} facts are recovered, "
                          "so no ranking of them can be scored (AUROC undefined); no row", RuntimeWarning, stacklevel=2)
            continue
        for score in SCORES:
            if score not in m or m[score].isna().all():
                continue
            s = torch.tensor(np.array(m[score], dtype=float)).unsqueeze(0)
            value = float(auroc(s, y)[0])
            lo = hi = float("nan")  # an interval only with n_boot
            if n_boot:
                lo, hi = cluster_bootstrap_ci(lambda a, b: auroc(a, b)[0], s, y, list(m.entity), n_boot=n_boot, seed=seed)
            rows.append({"mask": mask, "score": score, "auroc": value, "ci_low": lo, "ci_high": hi, "n": len(m),
                         "n_recovered": int(y.sum())})
    return pd.DataFrame(rows, columns=["mask", "score", "auroc", "ci_low", "ci_high", "n", "n_recovered"])
