"""Both models' residual streams at one layer on the same tokens, and forward passes of one
model with that layer's output replaced: what the causal test and the latent read-outs need.

Texts are encoded once with the aligned side's tokenizer (one BOS, then the text as written:
``style="plain"`` in the store's terms) and both models read those ids, so position *t* is the
same token in both. Everything goes through :mod:`interp.runtime` (the HF modules, bridge
wrappers off), so any family the runtime knows works.
"""

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

from interp.prompts import PromptBatch, encode
from interp.runtime import arch_of
from interp.runtime.forward import body_forward, final_logits, input_device, on_layer_output, unwrapped

__all__ = ["batches", "stream_at", "logprobs", "text_rows"]


def batches(tokenizer, texts: Sequence[str], batch_size: int) -> Iterator[tuple[range, PromptBatch]]:
    """``(rows, batch)`` over ``texts`` in order, ``batch_size`` at a time (left-padded)."""
    for s in range(0, len(texts), batch_size):
        rows = range(s, min(len(texts), s + batch_size))
        yield rows, encode(tokenizer, [texts[i] for i in rows])


@torch.inference_mode()
def stream_at(model, batch: PromptBatch, layer: int) -> Tensor:
    """``[batch, pos, d]`` float32: the residual stream leaving ``layer`` (later layers are not run)."""
    arch, got = arch_of(model), {}

    class _Done(Exception):
        pass

    def keep(x: Tensor) -> Tensor:
        got["x"] = x
        raise _Done

    device = input_device(model)
    with unwrapped(model):
        handle = on_layer_output(arch, layer, keep)
        try:
            body_forward(arch, batch.input_ids.to(device), batch.attention_mask.to(device))
        except _Done:
            pass
        finally:
            handle.remove()
    return got["x"].float().cpu()


@torch.inference_mode()
def logprobs(model, batch: PromptBatch, *, layer: int | None = None,
             edit: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """``[batch, pos, vocab]`` float32 next-token log-probabilities at every position, with the
    stream leaving ``layer`` replaced by ``edit(stream)`` when both are given."""
    arch, device = arch_of(model), input_device(model)
    with unwrapped(model):
        handle = on_layer_output(arch, layer, lambda x: edit(x).to(x.device, x.dtype)) if edit is not None else None
        try:
            hidden = body_forward(arch, batch.input_ids.to(device), batch.attention_mask.to(device))
        finally:
            if handle is not None:
                handle.remove()
        return torch.log_softmax(final_logits(arch, hidden).float(), -1).cpu()


@torch.inference_mode()
def text_rows(pair, layer: int, texts: Sequence[str], *, batch_size: int = 8) -> tuple[Tensor, Tensor, list[list[int]]]:
    """Paired rows of formatted ``texts`` without a store: ``(rows [N, 2, d], examples [N],
    tokens)`` — every token but each text's BOS, in the layout of
    :func:`~interp.dictionary.data.paired_rows` / :func:`~interp.dictionary.data.row_examples`,
    and the token ids each text was read as."""
    tok = pair.aligned.tokenizer
    rows, examples, tokens = [], [], []
    for idx, batch in batches(tok, list(texts), batch_size):
        keep = batch.attention_mask.bool().clone()
        keep[torch.arange(len(batch)), batch.n_pad] = False
        h = torch.stack([stream_at(pair.base, batch, layer), stream_at(pair.aligned, batch, layer)], 2)
        rows.append(h[keep])
        examples.append(torch.tensor(list(idx))[:, None].expand_as(keep)[keep])
        tokens += [ids[m.bool()].tolist() for ids, m in zip(batch.input_ids, batch.attention_mask)]
    return torch.cat(rows), torch.cat(examples), tokens
