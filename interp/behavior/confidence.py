"""Output-confidence baselines: the log-probability a model gives its own answer tokens."""

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from interp.prompts import PromptBatch
from interp.runtime import input_device

__all__ = ["answer_logprobs"]


def answer_logprobs(model: TransformerBridge, batch: PromptBatch) -> tuple[Float[Tensor, " batch"], Float[Tensor, " batch"]]:
    """Mean and min log-probability of the appended answer tokens (positions ``answer_first`` ..
    ``answer_last`` of a batch from :func:`interp.encode` with ``answers=``)."""
    first, last = batch.position("answer_first"), batch.position("answer_last")
    device = input_device(model)
    b = batch.to(device)
    with torch.inference_mode():
        logits = model(b.input_ids, attention_mask=b.attention_mask)
        logp = torch.log_softmax(logits.float(), dim=-1)
    means, mins = [], []
    for i in range(len(batch)):
        pos = torch.arange(int(first[i]), int(last[i]) + 1, device=device)
        tok_lp = logp[i, pos - 1, b.input_ids[i, pos]]  # token t is predicted at t - 1
        means.append(tok_lp.mean())
        mins.append(tok_lp.min())
    return torch.stack(means).cpu(), torch.stack(mins).cpu()
