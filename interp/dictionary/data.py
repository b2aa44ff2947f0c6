"""Paired rows for a crosscoder: the same token of the same text in both models, read from an
:class:`~interp.cache.ActivationStore` cached with one prompt format for both sides
(``cache_activations(pair, texts, positions=["all"], style="chat", ...)``)."""

from collections.abc import Iterator

import torch
from torch import Tensor

from interp.cache import ActivationStore

__all__ = ["paired_rows", "paired_batches", "scale_factors"]


def paired_rows(store: ActivationStore, layer: int, *, hook: str = "resid_post", position: str = "all",
                sides: tuple[str, str] = ("base", "aligned")) -> Tensor:
    """``[rows, 2, d]`` (memory-mapped reads, stacked): the two sides' rows of one layer. Refuses a
    store whose sides were formatted differently (their rows are different tokens)."""
    models = store.config.get("models", {})
    missing = [s for s in sides if s not in store.sides]
    if missing:
        raise ValueError(f"the store has sides {store.sides}; a crosscoder needs {list(sides)}")
    styles = {s: models.get(s, {}).get("prompt_style") for s in sides}
    if len(set(styles.values())) != 1:
        raise ValueError(f"the store's sides were formatted differently ({styles}): row i is not the same token in "
                         "both models. Cache with cache_activations(..., style='chat') (or 'plain') for a crosscoder")
    a, b = (store.get(s, layer, hook, position) for s in sides)
    if a.shape != b.shape:
        raise ValueError(f"the sides have {a.shape[0]} and {b.shape[0]} rows; cache both sides over the same texts")
    return torch.stack([a, b], 1)


def scale_factors(rows: Tensor) -> Tensor:
    """Per side, the factor that makes the mean squared norm of ``rows`` equal to ``d``."""
    sample = rows[: min(len(rows), 8192)].float()
    return (rows.shape[-1] / sample.pow(2).sum(-1).mean(0)).sqrt()


def paired_batches(rows: Tensor, batch_size: int, *, seed: int = 0, scale: "bool | Tensor" = True) -> Iterator[Tensor]:
    """Endless shuffled batches ``[batch, 2, d]`` of ``rows`` (float32), each side scaled so that its
    mean squared norm is ``d`` (``scale=True``: factors from ``rows`` themselves; a tensor: those
    factors, e.g. the training rows' for held-out rows; ``False``: unscaled)."""
    if rows.shape[0] < batch_size:
        raise ValueError(f"{rows.shape[0]} rows for batches of {batch_size}; cache more text or lower batch_size")
    factor = scale if isinstance(scale, Tensor) else scale_factors(rows) if scale else torch.ones(rows.shape[1])
    gen = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(rows.shape[0], generator=gen)
        for s in range(0, len(order) - batch_size + 1, batch_size):
            yield rows[order[s: s + batch_size]].float() * factor[None, :, None]
