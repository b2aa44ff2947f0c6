"""Paired rows for a crosscoder: the same token of the same text in both models, read from an
:class:`~interp.cache.ActivationStore` cached with one prompt format for both sides
(``cache_activations(pair, texts, positions=["all"], style="chat", ...)``)."""

from collections.abc import Iterator

import torch
from torch import Tensor

from interp.cache import ActivationStore

__all__ = ["paired_rows", "paired_batches", "scale_factors", "row_examples", "split_by_text"]


def paired_rows(store: ActivationStore, layer: int, *, hook: str = "resid_post", position: str = "all",
                sides: tuple[str, str] = ("base", "aligned"), drop_first: bool = True) -> Tensor:
    """``[rows, 2, d]`` (memory-mapped reads, stacked): the two sides' rows of one layer. Refuses a
    store whose sides were formatted differently (their rows are different tokens).

    ``drop_first`` (position ``"all"``): leave out each text's first token (BOS), whose massive
    attention-sink activations would otherwise dominate the reconstruction loss and the variance
    a dictionary is scored on. :func:`row_examples` gives the example index of each kept row."""
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
    rows = torch.stack([a, b], 1)
    if drop_first and position == "all":
        rows = rows[_not_first(store.token_examples(sides[0]))]
    return rows


def _not_first(examples: Tensor) -> Tensor:
    keep = torch.ones(len(examples), dtype=torch.bool)
    keep[0] = False
    keep[1:] = examples[1:] == examples[:-1]  # a row continues the text of the row before
    return keep


def row_examples(store: ActivationStore, side: str = "base", *, drop_first: bool = True) -> Tensor:
    """The example index of each row :func:`paired_rows` returns (position ``"all"``)."""
    ex = store.token_examples(side)
    return ex[_not_first(ex)] if drop_first else ex


def split_by_text(examples: Tensor, held_out: float = 0.1) -> tuple[Tensor, Tensor]:
    """``(train, held)``: boolean masks over rows (``examples``: each row's text, as
    :func:`row_examples` gives it) that hold out the last ``held_out`` share of the texts whole
    (at least one), so no text has tokens on both sides of the split.

    Example::

        train, held = split_by_text(row_examples(store))
        rows[train], rows[held]
    """
    if not 0 < held_out < 1:
        raise ValueError(f"held_out is a share of the texts in (0, 1), got {held_out}")
    texts = torch.unique(examples)  # sorted
    n_held = max(1, round(len(texts) * held_out))
    if n_held >= len(texts):
        raise ValueError(f"{len(texts)} text(s): too few to hold out {held_out:.0%} of them and train on the rest; "
                         "cache more texts")
    held = examples >= texts[-n_held]
    return ~held, held


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
