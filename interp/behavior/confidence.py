"""How confident a model is in a given answer: log-probabilities of the answer's tokens."""

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from interp.prompts import PromptBatch
from interp.runtime import input_device, unwrapped, use_fast

__all__ = ["answer_logprobs"]


def answer_logprobs(model: TransformerBridge, batch: PromptBatch) -> tuple[Float[Tensor, " batch"], Float[Tensor, " batch"]]:
    """Mean and min log-probability of the appended answer tokens (positions ``answer_first`` ..
    ``answer_last`` of a batch from :func:`interp.encode` with ``answers=``).

    Only the positions that predict answer tokens are unembedded (the last ``k`` of the padded
    rows, answers being appended at the end), and the log-softmax runs over those ``[batch, k,
    vocab]`` logits in fp32, not over every position (at a 128k vocabulary, 256 tokens and batch
    16 that was 2 GB of fp32 per call). With TransformerLens hooks active the bridge runs the whole
    forward pass, so the hooks see every position, and the same positions are read.

    Example:
        >>> b = encode(model.tokenizer, ["Q: capital of France? A:"], answers=[" Paris"])   # doctest: +SKIP
        >>> mean, low = answer_logprobs(model, b)                                           # doctest: +SKIP
    """
    device = input_device(model)
    b = batch.to(device)
    first, last = b.position("answer_first"), b.position("answer_last")
    T = b.input_ids.shape[1]
    k = min(T, T - int(first.min()) + 1)  # from the position predicting the earliest answer token
    with torch.inference_mode():
        if use_fast(model, None, "answer_logprobs"):
            with unwrapped(model) as hf:
                logits = hf(input_ids=b.input_ids, attention_mask=b.attention_mask, logits_to_keep=k).logits
        else:
            logits = model(b.input_ids, attention_mask=b.attention_mask)[:, T - k:]
        logp = torch.log_softmax(logits.float(), dim=-1)  # [batch, k, vocab]: position p is column p - (T - k)
    means, mins = [], []
    for i in range(len(b)):
        pos = torch.arange(int(first[i]), int(last[i]) + 1, device=logp.device)
        tok_lp = logp[i, pos - 1 - (T - k), b.input_ids[i, pos].to(logp.device)]  # token t is predicted at t - 1
        means.append(tok_lp.mean())
        mins.append(tok_lp.min())
    return torch.stack(means).cpu(), torch.stack(mins).cpu()
