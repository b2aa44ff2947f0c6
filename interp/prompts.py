"""Prompt formatting and tokenization for each side of a pair, with *marked positions*.

The base model sees plain text (optionally after few-shot ``Q:/A:`` exemplars); the aligned model
sees its chat template with exactly one BOS. Batches are left-padded, so the last prompt token sits
at the same index for every row, and the positions an analysis reads are returned as integer
indices into the padded batch:

``last``          the last prompt token (before any appended answer)
``span_last``     the last token of a marked span inside the prompt (e.g. the subject)
``answer_first``  the first token of an appended answer
``answer_last``   the last token of an appended answer

Example:
    >>> from interp.prompts import encode, format_prompt
    >>> text = format_prompt("Where is the Eiffel Tower?", style="plain")
    >>> batch = encode(tokenizer, [text], spans=["Eiffel Tower"], answers=[" Paris"])  # doctest: +SKIP
    >>> batch.positions["span_last"], batch.positions["answer_first"]                   # doctest: +SKIP
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from interp.chat_formats import bos_is_turn_marker, stop_token_ids, turn_token_ids

__all__ = ["PromptBatch", "format_prompt", "format_prompts", "encode", "token_ids", "POSITION_NAMES"]

POSITION_NAMES: tuple[str, ...] = ("last", "span_last", "answer_first", "answer_last")

Span = str | tuple[int, int] | None


@dataclass
class PromptBatch:
    """A left-padded batch of token ids with marked positions.

    Attributes:
        input_ids: ``[batch, pos]`` token ids, left-padded.
        attention_mask: ``[batch, pos]`` 1 for real tokens, 0 for padding.
        positions: name -> ``[batch]`` index into the padded sequence (see module docs).
        texts: the formatted prompt strings (without appended answers).
    """

    input_ids: Int[Tensor, "batch pos"]
    attention_mask: Int[Tensor, "batch pos"]
    positions: dict[str, Int[Tensor, " batch"]]
    texts: list[str]

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def n_pad(self) -> Int[Tensor, " batch"]:
        """Number of padding tokens on the left of each row."""
        return (self.attention_mask == 0).sum(dim=1)

    def position(self, name: str) -> Int[Tensor, " batch"]:
        """The ``[batch]`` indices of a marked position, with a clear error if it was not marked."""
        if name not in self.positions:
            raise KeyError(
                f"position {name!r} was not marked in this batch; available: {', '.join(self.positions)}"
                + ("" if name not in POSITION_NAMES else " (pass spans= or answers= to encode)")
            )
        return self.positions[name]

    def to(self, device: "str | torch.device") -> "PromptBatch":
        """A copy on ``device``."""
        return PromptBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            {k: v.to(device) for k, v in self.positions.items()},
            list(self.texts),
        )


def format_prompt(
    text: str,
    *,
    style: str = "plain",
    tokenizer: Any = None,
    few_shot: Sequence[tuple[str, str]] = (),
    system: str | None = None,
) -> str:
    """Format one prompt for a side of a pair.

    Args:
        text: the question or statement prefix.
        style: ``"plain"`` for base models, ``"chat"`` for aligned models (needs ``tokenizer``).
        tokenizer: the aligned model's tokenizer (its chat template is applied).
        few_shot: ``(question, answer)`` exemplars; plain style writes ``Q: ...\\nA: ...`` blocks,
            chat style writes alternating user / assistant turns.
        system: optional system prompt (chat style only).
    """
    if style == "plain":
        if system is not None:
            raise ValueError("system prompts need style='chat'; the plain style has no system turn")
        if not few_shot:
            return text
        shots = "\n\n".join(f"Q: {q}\nA: {a}" for q, a in few_shot)
        return f"{shots}\n\nQ: {text}\nA:"
    if style == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                "style='chat' needs a tokenizer with a chat template; load the aligned side with "
                "ModelSpec(..., chat_template='gemma') or pass its tokenizer"
            )
        messages: list[dict[str, str]] = []
        if system is not None:
            messages.append({"role": "system", "content": system})
        for q, a in few_shot:
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        messages.append({"role": "user", "content": text})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    raise ValueError(f"style must be 'plain' or 'chat', got {style!r}")


def format_prompts(texts: Sequence[str], **kwargs: Any) -> list[str]:
    """:func:`format_prompt` over a list."""
    return [format_prompt(t, **kwargs) for t in texts]


def _char_span(text: str, span: Span, row: int) -> tuple[int, int] | None:
    if span is None:
        return None
    if isinstance(span, str):
        start = text.rfind(span)
        if start < 0 or not span:
            raise ValueError(f"row {row}: marked span {span!r} does not occur in the prompt {text[-80:]!r}")
        return start, start + len(span)
    start, end = span
    if not 0 <= start < end <= len(text):
        raise ValueError(f"row {row}: span {span} is outside the prompt of {len(text)} characters")
    return start, end


def _encode_one(tokenizer: Any, text: str, span: Span, row: int, add_bos: bool) -> tuple[list[int], int | None]:
    want_offsets = span is not None
    if want_offsets and not getattr(tokenizer, "is_fast", False):
        raise ValueError("marked spans need a fast tokenizer (offset mapping); load one with use_fast=True")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=want_offsets)
    ids = list(enc["input_ids"])
    bos = tokenizer.bos_token_id
    marker = bos is not None and bos_is_turn_marker(tokenizer)  # ChatML's <|im_start|> as BOS: one per turn
    shift = 0
    if add_bos and bos is not None and not marker and (not ids or ids[0] != bos):
        ids = [bos] + ids
        shift = 1
    if bos is not None and ids[:2] == [bos, bos]:
        raise ValueError(f"row {row}: prompt starts with a doubled BOS ({tokenizer.bos_token!r} twice); the text already "
                         "holds one: format it without a BOS, or encode with add_bos=False")
    if bos is not None and not marker and bos not in turn_token_ids(tokenizer) | set(stop_token_ids(tokenizer)) \
            and ids.count(bos) > 1:
        raise ValueError(f"row {row}: prompt holds {ids.count(bos)} BOS tokens; one sequence start is expected. "
                         "Format one conversation per prompt, without a BOS in the text")
    span_last = None
    char_span = _char_span(text, span, row)
    if char_span is not None:
        start, end = char_span
        hits = [i for i, (a, b) in enumerate(enc["offset_mapping"]) if a < end and b > start and b > a]
        if not hits:
            raise ValueError(f"row {row}: no token covers the marked span {text[start:end]!r}")
        span_last = hits[-1] + shift
    return ids, span_last


def token_ids(tokenizer: Any, text: str, *, add_bos: bool = True) -> list[int]:
    """The token ids of one formatted prompt under :func:`encode`'s sequence-start rule: one BOS
    where the tokenizer has one (prepended if missing, never doubled), none where it has none
    (Qwen), and ChatML's turn marker left as the template wrote it."""
    return _encode_one(tokenizer, text, None, 0, add_bos)[0]


def encode(
    tokenizer: Any,
    texts: Sequence[str],
    *,
    spans: Sequence[Span] | None = None,
    answers: Sequence[str] | None = None,
    add_bos: bool = True,
) -> PromptBatch:
    """Tokenize formatted prompts into a left-padded :class:`PromptBatch`.

    Args:
        tokenizer: the side's tokenizer.
        texts: formatted prompts (from :func:`format_prompt`). A chat-formatted prompt already
            starts with BOS where its template writes one; otherwise one BOS is prepended (for a
            tokenizer that has one). A row never starts with two BOS tokens, and holds more than
            one only where the chat format uses the BOS token as a turn or end marker (ChatML
            tokenizers whose BOS is ``<|im_start|>``; OLMo-2, whose BOS is also its EOS).
        spans: per prompt, the substring to mark (its last occurrence) or a ``(start, end)``
            character range; gives the ``span_last`` position.
        answers: per prompt, text appended after the prompt (tokenized on its own, so the answer's
            tokens are exactly those of the answer); gives ``answer_first`` / ``answer_last``.
        add_bos: prepend BOS to rows that lack it (default True).
    """
    texts = list(texts)
    if not texts:
        raise ValueError("encode needs at least one prompt")
    for name, seq in (("spans", spans), ("answers", answers)):
        if seq is not None and len(seq) != len(texts):
            raise ValueError(f"{name} has {len(seq)} entries for {len(texts)} prompts; pass one per prompt")
    rows, span_idx, prompt_len, answer_len = [], [], [], []
    for i, text in enumerate(texts):
        ids, span_last = _encode_one(tokenizer, text, None if spans is None else spans[i], i, add_bos)
        prompt_len.append(len(ids))
        if answers is not None:
            ans = tokenizer(answers[i], add_special_tokens=False)["input_ids"]
            if not ans:
                raise ValueError(f"row {i}: answer {answers[i]!r} tokenizes to nothing")
            ids = ids + list(ans)
            answer_len.append(len(ans))
        rows.append(ids)
        span_idx.append(span_last)
    width = max(len(r) for r in rows)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    pad_id = 0 if pad_id is None else pad_id
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, ids in enumerate(rows):
        input_ids[i, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        mask[i, width - len(ids):] = 1
    n_pad = torch.tensor([width - len(r) for r in rows], dtype=torch.long)
    positions = {"last": n_pad + torch.tensor(prompt_len) - 1}
    if spans is not None:
        positions["span_last"] = n_pad + torch.tensor(span_idx)
    if answers is not None:
        positions["answer_first"] = n_pad + torch.tensor(prompt_len)
        positions["answer_last"] = positions["answer_first"] + torch.tensor(answer_len) - 1
    return PromptBatch(input_ids, mask, positions, texts)
