"""Logit lens: read each layer's residual stream through the final norm and the unembedding.

For a batch and one marked position, :func:`logit_lens` returns, per layer, the rank (1 = top) and
probability of each row's answer token when ``resid_post`` of that layer is decoded as if it were
the last layer. The last layer's decoding is the model's own output.

Example:
    >>> frame = logit_lens(pair.aligned, batch, answer_ids)     # doctest: +SKIP
    >>> frame.groupby("layer")[["rank", "prob"]].median()       # doctest: +SKIP
"""

from collections.abc import Sequence

import pandas as pd
import torch
from transformer_lens.model_bridge import TransformerBridge

from interp.cache.capture import capture
from interp.cache.fastpath import unwrapped
from interp.patching.core import final_logits
from interp.prompts import PromptBatch

__all__ = ["logit_lens"]


def logit_lens(
    model: TransformerBridge, batch: PromptBatch, answer_ids: Sequence[int], *, position: str = "last",
    layers: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Rows ``(example, layer, rank, prob, logit)`` for the answer token of each example."""
    if len(answer_ids) != len(batch):
        raise ValueError(f"{len(answer_ids)} answer ids for {len(batch)} prompts; pass one per prompt")
    layers = list(range(int(model.cfg.n_layers))) if layers is None else list(layers)
    acts = capture(model, batch, [("resid_post", layer) for layer in layers], [position])
    device = next(model.parameters()).device
    ids = torch.as_tensor(list(answer_ids), device=device)
    rows = []
    with torch.inference_mode(), unwrapped(model) as hf:
        for layer in layers:
            logits = final_logits(hf, hf.model.norm(acts[("resid_post", layer, position)])).float()
            target = logits.gather(-1, ids[:, None]).squeeze(-1)
            rank = (logits > target[:, None]).sum(-1) + 1
            prob = torch.softmax(logits, -1).gather(-1, ids[:, None]).squeeze(-1)
            for i in range(len(batch)):
                rows.append({"example": i, "layer": layer, "rank": int(rank[i]), "prob": float(prob[i]),
                             "logit": float(target[i])})
    return pd.DataFrame(rows)
