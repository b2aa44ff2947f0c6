"""Patching metrics: functions of the logits at the metric position, ``[cells, batch, vocab]`` -> ``[cells]``.

Any callable of that shape works as a metric. A :class:`TokenMetric` (what :func:`logit_diff` and
:func:`answer_vs_token` return) also says which vocabulary entries it reads, so the sweeps compute
only those logits (a few dot products instead of the full unembedding, which for a 262k-token
vocabulary costs more than the rest of a small model); the values are the same.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["TokenMetric", "logit_diff", "answer_prob", "refusal_score", "answer_vs_token"]


@dataclass(frozen=True)
class TokenMetric:
    """A metric that reads only the logits of ``tokens`` (``[batch, k]`` vocabulary ids per prompt).

    ``reduce`` maps the selected logits ``[cells, batch, k]`` to ``[cells]``. Calling the metric on
    full logits ``[cells, batch, vocab]`` selects the columns first, so it is an ordinary metric
    everywhere; the sweeps call :meth:`reduce` on logits computed for ``tokens`` only.

    Example::

        m = TokenMetric(torch.tensor([[5, 7]]), lambda s: (s[..., 0] - s[..., 1]).mean(-1))
        m(torch.randn(3, 1, 100)).shape   # torch.Size([3])
    """

    tokens: Tensor
    reduce: Callable[[Tensor], Tensor]

    def __call__(self, logits: Tensor) -> Tensor:
        ids = self.tokens.to(logits.device)
        if ids.shape[0] != logits.shape[1]:
            raise ValueError(f"the metric has token ids for {ids.shape[0]} prompts, the logits have {logits.shape[1]}")
        return self.reduce(torch.gather(logits, -1, ids.expand(logits.shape[0], *ids.shape)))


def _ids(ids: Sequence[int] | Tensor) -> Tensor:
    return torch.as_tensor(ids, dtype=torch.long)


def logit_diff(answer_ids: Sequence[int] | Tensor, other_ids: Sequence[int] | Tensor) -> TokenMetric:
    """Mean over prompts of ``logit[answer] - logit[other]`` (one id per prompt each)."""
    a, o = _ids(answer_ids), _ids(other_ids)
    if a.shape != o.shape or a.ndim != 1:
        raise ValueError(f"logit_diff needs one answer and one other id per prompt, got shapes {tuple(a.shape)} and {tuple(o.shape)}")
    return TokenMetric(torch.stack([a, o], -1), _difference)


def _difference(selected: Tensor) -> Tensor:
    return (selected[..., 0] - selected[..., 1]).float().mean(-1)


def answer_prob(answer_ids: Sequence[int] | Tensor):
    """Mean over prompts of the probability of each prompt's answer token."""
    a = _ids(answer_ids)

    def metric(logits: Tensor) -> Tensor:
        rows = torch.arange(logits.shape[1], device=logits.device)
        return torch.softmax(logits.float(), -1)[:, rows, a.to(logits.device)].mean(-1)

    return metric


def refusal_score(refusal_ids: Sequence[int] | Tensor):
    """Mean over prompts of the total probability of the tokens that open a refusal (e.g. "I")."""
    r = _ids(refusal_ids)

    def metric(logits: Tensor) -> Tensor:
        return torch.softmax(logits.float(), -1)[..., r.to(logits.device)].sum(-1).mean(-1)

    return metric


def answer_vs_token(tokenizer, answers: Sequence[str], other: str = "I") -> TokenMetric:
    """:func:`logit_diff` between the first token of each answer and the first token of ``other``
    (default ``"I"``, which opens both a refusal and "I don't know."), as a chat model emits them
    at the start of its turn (no leading space)."""
    def first(text: str) -> int:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        if not ids:
            raise ValueError(f"{text!r} encodes to no tokens")
        return ids[0]

    return logit_diff([first(a) for a in answers], [first(other)] * len(answers))
