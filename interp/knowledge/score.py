"""Score candidate answers after their prompt: the model's log-probability of each answer (summed
over its tokens: the probability of the whole answer string; the per-token mean is kept beside it)
and the residual stream leaving every layer at each answer's last token, from one pass.

Each fact has one prompt and several candidate answers (the gold answer and wrong ones). The prompt
is run once per fact (left-padded batch of facts, keys and values kept); the candidates of all
facts then run as one batch against those keys and values, each row the prompt's cache of its
fact, its candidate's tokens right-padded, position ids running on from the prompt. Logits are
computed only where an answer token is predicted (the prompt's last token and each answer token
but the last); the 262k-token unembedding is never applied elsewhere. The numbers equal scoring
each ``prompt + answer`` on its own (:func:`interp.unmask.answer_nll`, a per-token mean, times the
answer's tokens; tested).

An answer is tokenized on its own and appended to the prompt, as :func:`interp.prompts.encode`
does with ``answers=``; give it the leading space the context wants (:func:`joined`).

Example:
    >>> scores = score_candidates(pair.base, ["Q: What is the capital of France?\\nA:"],  # doctest: +SKIP
    ...                           [[" Paris", " Lyon", " Rome"]])
    >>> scores.logp, scores.logp_mean, scores.features.shape                             # doctest: +SKIP
    (tensor([-0.31, -12.4, -7.9]), tensor([-0.31, -6.2, -7.9]), torch.Size([18, 3, 640]))
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm
from transformers import DynamicCache
from transformer_lens.model_bridge import TransformerBridge

from interp.prompts import encode
from interp.runtime import arch_of, body_forward, final_logits, input_device, layer_output, unwrapped, use_fast
from interp.runtime.conventions import cache_kwargs

__all__ = ["CandidateScores", "score_candidates", "joined"]


def joined(prompt: str, answer: str) -> str:
    """``answer`` as appended to ``prompt``: after a space when the prompt ends in a visible
    character (``"A:"`` -> ``" Paris"``), as is after whitespace (a chat turn's newline)."""
    answer = answer.strip()
    return answer if not prompt or prompt[-1].isspace() else " " + answer


@dataclass
class CandidateScores:
    """Rows are (fact, candidate) in input order.

    Attributes:
        logp: log-probability of each candidate after its prompt, summed over its tokens (the
            model's probability of the whole answer string; what ``k_prob`` ranks by).
        n_tokens: tokens of each candidate.
        fact: the index of each row's fact.
        features: ``[layers, rows, d]`` residual stream leaving each layer at the candidate's last
            token (float32, CPU), or ``None`` when not asked for.
    """

    logp: Float[Tensor, " rows"]
    n_tokens: Int[Tensor, " rows"]
    fact: Int[Tensor, " rows"]
    features: Float[Tensor, "layers rows d"] | None

    @property
    def logp_mean(self) -> Float[Tensor, " rows"]:
        """Mean log-probability per token of each candidate (length-normalised; ``k_prob_mean``)."""
        return self.logp / self.n_tokens.to(self.logp.dtype)


def score_candidates(model: TransformerBridge, prompts: Sequence[str], candidates: Sequence[Sequence[str]], *,
                     features: bool = True, batch_size: int = 16, progress: "bool | str" = False) -> CandidateScores:
    """Score every candidate of every prompt (module docs). ``candidates[i]``: the answers to
    append to ``prompts[i]`` (with their leading space, see :func:`joined`); ``batch_size``:
    facts per pass (their candidates ride along). Runs on the model's HF modules (no
    TransformerLens hooks may be active: a :class:`interp.runtime.FastPathUnavailable` says so)."""
    if len(prompts) != len(candidates):
        raise ValueError(f"{len(candidates)} candidate lists for {len(prompts)} prompts; pass one list per prompt")
    empty = [i for i, c in enumerate(candidates) if not len(c)]
    if empty:
        raise ValueError(f"prompt {empty[0]} has no candidate answers; pass at least one per prompt")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    use_fast(model, True, "score_candidates")
    tok = model.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    ids = [[tok(a, add_special_tokens=False)["input_ids"] for a in c] for c in candidates]
    bad = [(i, a) for i, c in enumerate(candidates) for a, t in zip(c, ids[i]) if not t]
    if bad:
        raise ValueError(f"prompt {bad[0][0]}: candidate {bad[0][1]!r} tokenizes to nothing")
    logps, feats, lengths, owners = [], [], [], []
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths together: less padding
    chunks = [order[s: s + batch_size] for s in range(0, len(order), batch_size)]
    with torch.inference_mode(), unwrapped(model) as hf:
        arch, device = arch_of(hf), input_device(hf)
        for chunk in tqdm(chunks, desc=progress if isinstance(progress, str) else "score candidates", disable=not progress):
            lp, ft = _score_chunk(arch, device, tok, pad, [prompts[i] for i in chunk], [ids[i] for i in chunk], features)
            logps.append(lp)
            feats.append(ft)
            for i in chunk:
                owners += [i] * len(ids[i])
                lengths += [len(t) for t in ids[i]]
    owner = torch.tensor(owners)
    back = torch.sort(owner, stable=True).indices  # rows back to input order (fact, then candidate)
    logp = torch.cat(logps)[back]
    out_feats = torch.cat(feats, 1)[:, back] if features else None
    return CandidateScores(logp, torch.tensor(lengths)[back], owner[back], out_feats)


def _score_chunk(arch, device, tok, pad: int, prompts: list[str], ids: list[list[list[int]]],
                 features: bool) -> tuple[Tensor, Tensor | None]:
    """One pass over the prompts of a chunk, one over all their candidates (module docs)."""
    b = encode(tok, prompts).to(device)
    cache = DynamicCache()  # no config: every layer keeps all positions (prompts are far below any window)
    hidden = body_forward(arch, b.input_ids, b.attention_mask, use_cache=True, **cache_kwargs(cache))
    first = torch.log_softmax(final_logits(arch, hidden[:, -1]).float(), -1)  # [B, V]: predicts each answer's first token
    rows = [(j, t) for j, cands in enumerate(ids) for t in cands]
    sel = torch.tensor([j for j, _ in rows], device=device)
    n = torch.tensor([len(t) for _, t in rows], device=device)
    width = int(n.max())
    cand = torch.full((len(rows), width), pad, dtype=torch.long, device=device)
    mask = torch.zeros_like(cand)
    for r, (_, t) in enumerate(rows):  # right-padded: every answer starts right after its prompt
        cand[r, : len(t)] = torch.tensor(t, device=device)
        mask[r, : len(t)] = 1
    rep = DynamicCache(ddp_cache_data=[(layer.keys[sel], layer.values[sel]) for layer in cache.layers])
    full_mask = torch.cat([b.attention_mask[sel], mask], 1)
    pos = b.attention_mask.sum(1)[sel].unsqueeze(1) + torch.arange(width, device=device).unsqueeze(0)
    at = torch.arange(len(rows), device=device)
    grabbed: list[Tensor] = []
    handles = [layer.register_forward_hook(lambda mod, a, o: grabbed.append(layer_output(o)[at, n - 1].float().cpu()))
               for layer in arch.layers] if features else []
    try:
        h = body_forward(arch, cand, full_mask, position_ids=pos, use_cache=True, **cache_kwargs(rep))
    finally:
        for handle in handles:
            handle.remove()
    total = first[sel, cand[:, 0]]  # the first answer token, read at the prompt's last token
    r_idx, k_idx = torch.nonzero(mask[:, 1:], as_tuple=True)  # later answer tokens, read at the token before
    if len(r_idx):
        for s in range(0, len(r_idx), 256):  # the unembedding of a few hundred positions at a time
            rr, kk = r_idx[s: s + 256], k_idx[s: s + 256]
            lp = torch.log_softmax(final_logits(arch, h[rr, kk]).float(), -1)
            total = total.index_add(0, rr, lp[torch.arange(len(rr), device=device), cand[rr, kk + 1]])
    return total.cpu(), (torch.stack(grabbed) if features else None)  # summed over the answer's tokens
