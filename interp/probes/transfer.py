"""Cross-model probe transfer: fit on one side, evaluate on the other, and compare directions."""

from collections.abc import Sequence

import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.probes.evaluate import COLUMNS, fit_probes, metric_rows

__all__ = ["transfer", "direction_cosines"]


def direction_cosines(w_a: Float[Tensor, "layers d"], w_b: Float[Tensor, "layers d"]) -> Float[Tensor, " layers"]:
    """Cosine similarity of two sides' probe directions, per layer."""
    return torch.nn.functional.cosine_similarity(w_a.float(), w_b.float(), dim=-1)


def transfer(
    train: dict[str, Float[Tensor, "layers n d"]], y_train: Int[Tensor, " n"],
    test: dict[str, Float[Tensor, "layers m d"]], y_test: Int[Tensor, " m"],
    *, layers: Sequence[int], kind: str = "logistic", n_boot: int = 200, C: "dict | None" = None,
    clusters: "Sequence[str] | None" = None,
) -> pd.DataFrame:
    """For sides ``base`` and ``aligned``: fit on each side's train activations, evaluate on the
    other side's test activations (``model`` = ``"base->aligned"`` / ``"aligned->base"``), plus the
    per-layer cosine of the two directions (metric ``cosine``). ``C``: per side, the logistic
    probe's regularisation (one value or one per layer; default 1.0); ``clusters``: the test rows'
    entities, for a bootstrap that resamples whole entities."""
    C = C or {}
    probes = {side: fit_probes(train[side], y_train, kind, layers, C=C.get(side, 1.0)) for side in ("base", "aligned")}
    rows = []
    for src, dst in (("base", "aligned"), ("aligned", "base")):
        rows += metric_rows(f"{src}->{dst}", layers, kind, "test", probes[src].scores(test[dst]), y_test, n_boot, clusters)
    cos = direction_cosines(probes["base"].w, probes["aligned"].w)
    rows += [{"model": "base~aligned", "layer": layer, "probe": kind, "split": "-", "metric": "cosine", "value": float(cos[i]),
              "ci_low": float("nan"), "ci_high": float("nan")} for i, layer in enumerate(layers)]
    return pd.DataFrame(rows, columns=COLUMNS)
