"""Attribution patching: a first-order estimate of every cell's patching effect at once.

For the destination run, one forward pass records the activation ``a`` at every layer of a hook
kind and one backward pass gives the gradient ``g`` of the metric with respect to each; with the
source activation ``a'`` (a second forward pass, on the other model or prompt), the estimated
change of the metric when cell (layer, position) is patched is ``(a' - a) . g`` summed over the
batch rows (Nanda 2023; Syed et al. 2023). Two forward passes and one backward pass replace the
``layers x positions`` forward passes of the exact sweep; :func:`compare_attribution` reports how
well the estimate tracks the exact effect.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from interp import hooks
from interp.patching.core import Metric, cell_setup, metric_of
from interp.patching.hooked import SWEEP_KINDS, _Stop
from interp.prompts import PromptBatch
from interp.runtime import arch_of, check_layers

__all__ = ["attribution_sweep", "compare_attribution"]


def attribution_sweep(
    model: TransformerBridge,
    batch: PromptBatch,
    values: Float[Tensor, "layers batch src_pos d"],
    metric: Metric,
    *,
    kind: str = "resid_pre",
    layers: Sequence[int] | None = None,
    positions: Int[Tensor, "cells batch"] | None = None,
    value_positions: Int[Tensor, "cells batch"] | None = None,
    metric_position: str | Int[Tensor, " batch"] = "last",
) -> Float[Tensor, "swept_layers cells"]:
    """Estimated change of ``metric`` for each (layer, cell) patch of ``values`` into ``model`` on
    ``batch`` (same arguments as :func:`interp.patching.resid_pre_sweep`; add the clean metric to
    compare with the sweep's values)."""
    if kind not in SWEEP_KINDS:
        raise ValueError(f"kind must be one of {', '.join(SWEEP_KINDS)}, got {kind!r}")
    layers = check_layers(layers, int(model.cfg.n_layers))
    b, positions, value_positions, mpos = cell_setup(model, batch, positions, value_positions, metric_position)
    device, B = b.input_ids.device, len(b)
    acts: dict[int, Tensor] = {}
    grabbed: list[Tensor] = []

    def leaf(act: Tensor, hook) -> Tensor:  # everything downstream needs a graph, frozen weights or not
        return act.detach().requires_grad_(True)

    def keep(act: Tensor, hook, layer: int) -> None:
        act.retain_grad()
        acts[layer] = act

    def grab(act: Tensor, hook) -> None:
        grabbed.append(act[torch.arange(B, device=act.device), mpos.to(act.device)])
        raise _Stop

    fwd = [(hooks.resid_pre(0), leaf)] + [(hooks.name(kind, layer), lambda act, hook, layer=layer: keep(act, hook, layer))
                                          for layer in layers]
    with torch.enable_grad():
        try:
            model.run_with_hooks(b.input_ids, attention_mask=b.attention_mask, fwd_hooks=fwd + [(hooks.FINAL_NORM, grab)])
        except _Stop:
            pass
        out = metric_of(arch_of(model), grabbed[0][None], metric)
        out.sum().backward()
    rows = torch.arange(B, device=device).unsqueeze(0)  # broadcast against [cells, batch]
    values = values.to(device)
    result = torch.empty(len(layers), positions.shape[0], device=device)
    for li, layer in enumerate(layers):
        a, g = acts[layer].detach().to(device), acts[layer].grad.to(device)  # from the layer's GPU
        diff = values[layer, rows, value_positions].float() - a[rows, positions].float()  # [cells, batch, ...]
        result[li] = (diff * g[rows, positions].float()).flatten(1).sum(-1)
    return result


def compare_attribution(exact: Tensor, clean: float, estimate: Tensor) -> dict:
    """Pearson and Spearman correlation of the estimated vs exact effects (``exact - clean``) with
    95% Fisher-z intervals (cells are not independent draws, so read them as a guide), the share of
    cells whose sign agrees, and whether the top cell is the same."""
    from interp.stats import correlation_ci

    e = (exact - clean).flatten().double().cpu().numpy()
    a = estimate.flatten().double().cpu().numpy()
    varies = e.std() > 0 and a.std() > 0  # a correlation with a constant is undefined
    pearson = float(np.corrcoef(e, a)[0, 1]) if varies else float("nan")
    spearman = float(pd.Series(e).corr(pd.Series(a), method="spearman")) if varies else float("nan")
    moved = np.abs(e) > 1e-6 * max(np.abs(e).max(), 1e-30)  # cells the exact patch changes at all
    agree = float((np.sign(e[moved]) == np.sign(a[moved])).mean()) if moved.any() else float("nan")
    return {"pearson": pearson, "pearson_ci": list(correlation_ci(pearson, e.size)), "spearman": spearman,
            "spearman_ci": list(correlation_ci(spearman, e.size, spearman=True)), "sign_agreement": agree,
            "same_top_cell": bool(np.argmax(np.abs(e)) == np.argmax(np.abs(a))), "cells": int(e.size)}
