"""Patching metrics: functions of the logits at the metric position, ``[cells, batch, vocab]`` -> ``[cells]``."""

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["logit_diff", "answer_prob", "refusal_score", "answer_vs_token"]


def _ids(ids: Sequence[int] | Tensor) -> Tensor:
    return torch.as_tensor(ids, dtype=torch.long)


def logit_diff(answer_ids: Sequence[int] | Tensor, other_ids: Sequence[int] | Tensor):
    """Mean over prompts of ``logit[answer] - logit[other]`` (one id per prompt each)."""
    a, o = _ids(answer_ids), _ids(other_ids)

    def metric(logits: Tensor) -> Tensor:
        rows = torch.arange(logits.shape[1], device=logits.device)
        return (logits[:, rows, a.to(logits.device)] - logits[:, rows, o.to(logits.device)]).float().mean(-1)

    return metric


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


def answer_vs_token(tokenizer, answers: Sequence[str], other: str = "I"):
    """:func:`logit_diff` between the first token of each answer and the first token of ``other``
    (default ``"I"``, which opens both a refusal and "I don't know."), as a chat model emits them
    at the start of its turn (no leading space)."""
    def first(text: str) -> int:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        if not ids:
            raise ValueError(f"{text!r} encodes to no tokens")
        return ids[0]

    return logit_diff([first(a) for a in answers], [first(other)] * len(answers))
