"""Learned low-rank interventions: a steering vector or a rank-r edit at one layer, optimised on
train facts to raise the log-probability of the base's answer under a KL penalty.

Loss per step (a batch of train facts and a batch of unrelated prompts)::

    NLL(answer tokens | chat prompt, edit)  +  kl_weight * KL(aligned || edited)  at the last token
                                                of the unrelated prompts

The model's weights are frozen; only the edit's parameters (``v``, or ``U``, ``V``, ``b``) get
gradients. The layers below the edited one do not depend on the edit, so their output is computed
once per batch without gradients and the forward pass with gradients starts at the edited layer.

Example:
    >>> edit, history = fit_edit(pair.aligned, prompts, [" Au."] * n, kl_prompts, layer=6)  # doctest: +SKIP
"""

from collections.abc import Sequence
from contextlib import contextmanager

import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm
from transformer_lens.model_bridge import TransformerBridge

from interp import distributed
from interp.runtime import input_device, arch_of, check_layer, layer_input, skip_below, unwrapped, with_layer_input
from interp.runtime.forward import lm_logits
from interp.prompts import encode
from interp.unmask.interventions import EDIT_POSITIONS, LowRankEdit, Steering, rms_normalised, scoring

__all__ = ["fit_edit", "answer_nll"]


@contextmanager
def _frozen(model: torch.nn.Module):
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _answer_logprobs(hf, batch, n_answer: Tensor) -> Tensor:
    """Mean log-probability per answer token of each row (answers appended at the end of each row)."""
    k = int(n_answer.max()) + 1
    logits = lm_logits(hf, batch.input_ids, batch.attention_mask, keep=k)  # [B, k, V], positions from the mask
    logp = torch.log_softmax(logits.float(), -1)
    T = batch.input_ids.shape[1]
    targets = batch.input_ids[:, T - k + 1:]  # tokens predicted by positions T-k .. T-2
    lp = logp[:, :-1].gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [B, k-1]
    steps = torch.arange(k - 1, device=lp.device).unsqueeze(0)
    in_answer = steps >= (k - 1 - n_answer.to(lp.device)).unsqueeze(1)
    return (lp * in_answer).sum(1) / n_answer.to(lp.device)


def answer_nll(model: TransformerBridge, prompts: Sequence[str], answers: Sequence[str], *, batch_size: int = 16) -> Tensor:
    """``[n]`` mean negative log-probability per token of each answer after its formatted prompt
    (runs through any active intervention)."""
    starts = list(range(0, len(prompts), batch_size))
    todo = distributed.mine(len(starts))  # under torchrun: every world-th batch, gathered
    out = {}
    with torch.inference_mode(), unwrapped(model) as hf:
        device = input_device(hf)
        for k in todo:
            s = starts[k]
            b = encode(model.tokenizer, prompts[s: s + batch_size], answers=answers[s: s + batch_size]).to(device)
            n = b.positions["answer_last"] - b.positions["answer_first"] + 1
            with scoring(b.positions["last"]):  # a layer edit acts where it would when generating
                out[k] = -_answer_logprobs(hf, b, n).cpu()
    parts = distributed.gather_indexed(out, len(starts)) if distributed.active() else [out[k] for k in todo]
    return torch.cat(parts) if parts else torch.empty(0)


def fit_edit(
    model: TransformerBridge,
    prompts: Sequence[str],
    answers: Sequence[str],
    kl_prompts: Sequence[str],
    *,
    layer: int,
    rank: int = 0,
    positions: str = "last",
    steps: int = 60,
    lr: float = 0.05,
    kl_weight: float = 1.0,
    batch_size: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> tuple[Steering | LowRankEdit, pd.DataFrame]:
    """Learn a steering vector (``rank=0``) or a rank-``rank`` edit at ``layer``.

    Args:
        prompts: formatted prompts (the aligned model's chat format) of train facts.
        positions: where the edit acts (:data:`interp.unmask.interventions.EDIT_POSITIONS`), the
            same in training (teacher-forced answers) as at inference.
        answers: the response to raise after each prompt (e.g. ``"Au."``: the base's answer).
        kl_prompts: formatted prompts whose next-token distribution should stay as it is.
        lr: Adam learning rate; the vector's scale is in units of the residual stream's
            per-dimension size (parameters are scaled by the RMS of the stream entering ``layer``).
    Returns:
        the intervention and the per-step history (``step, nll, kl, loss``).
    """
    n_layers = int(model.cfg.n_layers)
    check_layer(layer, n_layers)
    if len(prompts) != len(answers) or not prompts:
        raise ValueError(f"fit_edit needs one answer per prompt and at least one prompt; got {len(prompts)} and {len(answers)}")
    if not kl_prompts:
        raise ValueError("fit_edit needs kl_prompts (unrelated prompts whose next token must not move)")
    if positions not in EDIT_POSITIONS:
        raise ValueError(f"positions must be one of {EDIT_POSITIONS}, got {positions!r}")
    if not 0 <= rank <= 64:
        raise ValueError(f"rank must be 0 (a steering vector) or 1..64, got {rank}")
    gen = torch.Generator().manual_seed(seed)
    tok = model.tokenizer
    with unwrapped(model) as hf, _frozen(hf):
        device = input_device(hf)
        d = int(model.cfg.d_model)
        arch = arch_of(hf)
        layers = arch.layers
        scale = _stream_rms(hf, layers[layer], encode(tok, list(prompts[:batch_size])).to(device))
        v = torch.zeros(d, device=device, requires_grad=True)
        r = max(rank, 1)  # small random U and V: a zero U or V would have no gradient to start from
        U = (torch.randn(d, r, generator=gen) * 0.01).to(device).requires_grad_(rank > 0)
        V = (torch.randn(d, r, generator=gen) * 0.01 / d ** 0.5).to(device).requires_grad_(rank > 0)
        b = torch.zeros(r, device=device, requires_grad=rank > 0)
        params = [v] if rank == 0 else [U, V, b]

        def delta(x: Tensor) -> Tensor:
            if rank == 0:
                return (v * scale).to(x.dtype)
            return ((rms_normalised(x) @ V.to(x.dtype) + b.to(x.dtype)) @ U.to(x.dtype).T) * scale

        kl_batch = encode(tok, list(kl_prompts)).to(device)
        with torch.no_grad():
            clean = torch.log_softmax(_last_logits(hf, kl_batch).float(), -1)
        # the gate V reads every token's whole stream: a tenth of the step size keeps it from jumping
        groups = [{"params": [v]}] if rank == 0 else [{"params": [U, b]}, {"params": [V], "lr": lr / 10}]
        opt = torch.optim.Adam(groups, lr=lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 5) * (1 - s / (steps + 1)))
        history = []
        entering: dict[str, Tensor] = {}

        def from_below(mod, args, kwargs):  # the stream entering the edited layer, computed without the edit
            x = entering["x"]
            where = entering["where"].to(x.dtype)  # the positions the edit acts on at inference
            return with_layer_input(args, kwargs, x + where.unsqueeze(-1) * delta(x))

        def run(batch, fn):
            with torch.no_grad():
                entering["x"] = _stream(hf, layers[layer], batch)
            T = batch.input_ids.shape[1]
            cols = torch.arange(T, device=device).unsqueeze(0)
            last = batch.positions["last"].unsqueeze(1)
            if positions == "last":
                entering["where"] = cols == last
            else:
                after = cols > batch.n_pad.to(device).unsqueeze(1)  # after each row's first token
                entering["where"] = after & (cols <= last) if positions == "prompt" else after
            with skip_below(arch, layer):
                return fn(batch)

        handle = layers[layer].register_forward_pre_hook(from_below, with_kwargs=True)
        try:
            for step in tqdm(range(steps), desc=f"unmask: fit {'vector' if rank == 0 else f'rank-{rank} edit'} at layer {layer}",
                             disable=not progress):
                idx = torch.randperm(len(prompts), generator=gen)[:batch_size].tolist()
                batch = encode(tok, [prompts[i] for i in idx], answers=[answers[i] for i in idx]).to(device)
                n = batch.positions["answer_last"] - batch.positions["answer_first"] + 1
                nll = -run(batch, lambda bb: _answer_logprobs(hf, bb, n)).mean()
                kidx = torch.randperm(len(kl_batch), generator=gen)[:batch_size]
                kb = _rows(kl_batch, kidx)
                edited = torch.log_softmax(run(kb, lambda bb: _last_logits(hf, bb)).float(), -1)
                ref = clean[kidx]
                kl = (ref.exp() * (ref - edited)).sum(-1).mean()
                loss = nll + kl_weight * kl
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                history.append({"step": step, "nll": nll.item(), "kl": kl.item(), "loss": loss.item()})
        finally:
            handle.remove()
    with torch.no_grad():
        if rank == 0:
            iv: Steering | LowRankEdit = Steering(vector=(v * scale).detach().cpu(), layer=layer, positions=positions)
        else:
            iv = LowRankEdit(U=(U * scale).detach().cpu(), V=V.detach().cpu(), b=b.detach().cpu(), layer=layer,
                             positions=positions)
    return iv, pd.DataFrame(history)


def _rows(batch, idx: Tensor):
    from interp.prompts import PromptBatch

    idx = idx.to(batch.input_ids.device)
    ids, mask = batch.input_ids[idx], batch.attention_mask[idx]
    drop = int((mask.sum(0) == 0).sum())  # columns of padding only
    return PromptBatch(ids[:, drop:], mask[:, drop:], {k: v[idx] - drop for k, v in batch.positions.items()},
                       [batch.texts[i] for i in idx.tolist()])


def _last_logits(hf, batch) -> Tensor:
    return lm_logits(hf, batch.input_ids, batch.attention_mask, keep=1)[:, -1]


def _stream_rms(hf, layer_module, batch) -> float:
    """Median over tokens (first excluded) of the RMS of the residual entering ``layer_module``."""
    x = _stream(hf, layer_module, batch)[:, 1:][batch.attention_mask[:, 1:].bool()].float()
    return float(x.pow(2).mean(-1).sqrt().median())


def _stream(hf, layer_module, batch) -> Tensor:
    """The residual stream entering ``layer_module`` (the forward pass stops there)."""
    seen = {}

    def grab(mod, args, kwargs):
        seen["x"] = layer_input(args, kwargs).detach()
        raise _Stop

    h = layer_module.register_forward_pre_hook(grab, with_kwargs=True, prepend=True)
    try:
        with torch.no_grad():
            hf(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    except _Stop:
        pass
    finally:
        h.remove()
    return seen["x"]


class _Stop(Exception):
    pass
