"""Directions in the residual stream: difference of means, directional ablation, addition, steering.

After Arditi et al. 2024: a behaviour (refusal, "I don't know") is mediated by one direction
``r``; *ablating* it (``x <- x - (x . r) r`` on the residual stream entering every layer and the
final norm, at every position) removes the behaviour, *adding* ``alpha * r`` at one layer induces
it. Hooks are plain PyTorch hooks on the HF modules the bridge calls, so they apply to the fast
paths, to generation with :func:`interp.behavior.generate` and to TransformerLens calls alike.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens.model_bridge import TransformerBridge

from interp.patching.core import clean_resid_pre, logits_at
from interp.prompts import PromptBatch
from interp.runtime import arch_of, check_layer, layer_input, on_layer_input, on_layer_output, with_layer_input

__all__ = ["mean_diff_directions", "ablated", "added", "after_first", "kl_last_token", "last_logits", "orthogonalize_weights_inplace"]


def mean_diff_directions(
    model: TransformerBridge, with_behaviour: PromptBatch, without: PromptBatch, position: str = "last",
    *, exclude_massive: float | None = 10.0,
) -> Float[Tensor, "layers d_model"]:
    """Per layer, mean ``resid_pre`` at ``position`` over prompts showing the behaviour minus over
    prompts that do not (not normalised: its norm is the size of the effect).

    ``exclude_massive``: zero the components on "massive" dimensions, whose mean ``|x|`` over the
    tokens of ``without`` (first token excluded) exceeds this multiple of the median dimension's.
    Models such as Gemma keep a few dimensions at 1e3-1e4 on every token; a direction that touches
    them removes them when ablated and breaks the model (measured on the default pair: next-token
    KL 7.7 at layer 2 with them, 0.02 without). ``None`` keeps every dimension."""
    def stats(batch: PromptBatch) -> tuple[Tensor, Tensor]:
        resid = clean_resid_pre(model, batch).float()  # [L, B, T, d]
        rows = torch.arange(len(batch), device=resid.device)
        at = resid[:, rows, batch.position(position).to(resid.device)].mean(1)
        real = batch.attention_mask.bool().clone().to(resid.device)
        real[rows, batch.n_pad.to(resid.device)] = False  # drop each row's first token
        return at, resid[:, real].abs().mean(1)  # [L, d], [L, d]

    mean_with, _ = stats(with_behaviour)
    mean_without, magnitude = stats(without)
    direction = mean_with - mean_without
    if exclude_massive is not None:
        massive = magnitude > exclude_massive * magnitude.median(dim=-1, keepdim=True).values
        direction = direction.masked_fill(massive, 0.0)
    return direction


def _unit(direction: Tensor) -> Tensor:
    return direction / direction.norm().clamp_min(1e-12)


def _basis(directions: Tensor) -> Tensor:
    """``[d, k]`` orthonormal columns spanning the rows of ``directions`` (``[d]`` or ``[k, d]``)."""
    rows = directions.float().reshape(-1, directions.shape[-1])
    rows = rows[rows.norm(dim=-1) > 1e-12]
    if rows.shape[0] == 0:
        raise ValueError("ablated: every direction is zero; pass at least one non-zero direction")
    q, r = torch.linalg.qr(rows.T)
    return q[:, r.diagonal().abs() > 1e-6 * r.diagonal().abs().max()]


@contextmanager
def ablated(
    model: TransformerBridge, direction: Float[Tensor, "*k d_model"], *, skip_first: bool = True
) -> Iterator[TransformerBridge]:
    """Within the block, ``model`` runs with ``direction`` projected out of the residual stream
    entering every layer, between attention and MLP, and entering the final norm, at every position
    after the first (``skip_first``: the first token, BOS, carries the massive attention-sink
    activations of models such as Gemma; projecting there breaks the model whatever the direction).

    ``direction`` may be ``[k, d_model]``: the subspace the rows span is projected out (they are
    orthonormalised first; rows of zeros are dropped).

    The hooks sit on the HF modules the bridge itself calls, so they apply to every way of running
    the model inside the block: interp's fast paths, generation, and TransformerLens
    (``run_with_cache``, ``run_with_hooks``, hook sweeps, attribution).

    Example::

        with ablated(model, refusal_dir):
            logits, cache = model.run_with_cache(tokens)   # ablated, with hook points
    """
    basis = _basis(direction)  # [d, k] orthonormal columns
    arch = arch_of(model)
    state: dict[str, Tensor] = {}

    def project(x: Tensor) -> Tensor:
        q = basis.to(x.device, x.dtype)
        keep = state.get("keep")
        if keep is None or keep.shape != x.shape[:-1]:
            keep = torch.ones(x.shape[:-1], device=x.device, dtype=x.dtype)
        return x - ((x @ q) * keep.to(x.device, x.dtype).unsqueeze(-1)) @ q.T

    def enter(x: Tensor, kwargs: dict) -> Tensor:
        state["keep"] = after_first(kwargs, x) if skip_first else torch.ones(x.shape[:-1], device=x.device, dtype=x.dtype)
        return project(x)

    def mid(mod, args, kwargs):
        return with_layer_input(args, kwargs, project(layer_input(args, kwargs)))

    handles = []
    for i in range(arch.n_layers):  # every layer's entry sets the mask from its own call (skipped layers too)
        handles += on_layer_input(arch, i, enter)
        handles += [m.register_forward_pre_hook(mid, with_kwargs=True) for m in arch.mid(i)]
        handles.append(on_layer_output(arch, i, project))  # the last one's output is what the final norm reads
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


@contextmanager
def added(model: TransformerBridge, direction: Float[Tensor, " d_model"], layer: int, scale: float = 1.0) -> Iterator[TransformerBridge]:
    """Within the block, ``scale * direction`` is added to the residual stream entering ``layer``
    at every position after the first (steering; pass a unit direction and a scale, or a mean
    difference and 1). Composes with TransformerLens calls inside the block, as :func:`ablated`."""
    arch = arch_of(model)
    check_layer(layer, arch.n_layers)

    def add(x: Tensor, kwargs: dict) -> Tensor:
        return x + scale * after_first(kwargs, x).unsqueeze(-1) * direction.to(x.device, x.dtype)

    handles = on_layer_input(arch, layer, add)
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


def after_first(kwargs: dict, x: Tensor) -> Tensor:
    """1.0 at positions after each row's first real token, 0.0 at it (from the position ids)."""
    pos = kwargs.get("position_ids")
    if pos is None:
        ones = torch.ones(x.shape[:-1], device=x.device, dtype=x.dtype)
        ones[:, 0] = 0
        return ones
    return (pos > 0).to(x.dtype).expand(x.shape[:-1])


def orthogonalize_weights_inplace(model: TransformerBridge, direction: Float[Tensor, " d_model"]) -> TransformerBridge:
    """Edit ``model`` **in place** (the name says so; load a second copy to keep the original) so that
    nothing writes ``direction`` into the residual stream: the
    token (and learned position) embedding and every attention / MLP output projection, with their
    biases, are orthogonalised to it (Arditi et al. 2024). Equivalent to :func:`ablated` with
    ``skip_first=False`` for models whose blocks add those projections to the residual stream
    directly (Llama, Mistral, Gemma, Qwen, Phi-3, GPT-NeoX, GPT-2). A tied unembedding is untied
    first (it reads the stream; editing it would change the logits). Models with norms after the
    projections (Gemma 2/3, OLMo-2) have no such weight edit; they are refused."""
    from interp.models.load import is_quantized

    if is_quantized(model):
        raise ValueError("orthogonalize_weights_inplace edits weights; this model was loaded with quantize= (packed "
                         "integer weights). Load it unquantized, or use the ablated(...) hooks")
    r = _unit(direction.float())
    arch = arch_of(model)
    if arch.family.post_norm:
        raise NotImplementedError(
            f"{type(arch.hf).__name__} ({arch.family.name}) normalises attention and MLP outputs before adding them "
            "to the residual stream, so no weight edit removes a direction; use the ablated(...) hooks instead"
        )
    from interp.models.shared import unshare

    with torch.no_grad():
        if arch.tied:
            head = arch.unembed
            head.weight = nn.Parameter(head.weight.detach().clone(), requires_grad=head.weight.requires_grad)
            arch.hf.config.tie_word_embeddings = False
        for module in (arch.embed, arch.pos_embed, *(p for i in range(arch.n_layers) for p in arch.writers(i))):
            if module is not None:
                unshare(module)  # a weight shared with the other side of an adapter pair: edit a copy
        for emb in (arch.embed, arch.pos_embed):
            if emb is not None:
                w = emb.weight  # [rows, d]
                w -= (w @ r.to(w))[:, None] * r.to(w)
        for i in range(arch.n_layers):
            for proj in arch.writers(i):
                W = proj.weight
                rr = r.to(W)
                if arch.family.conv1d:  # [in, d]
                    W -= (W @ rr)[:, None] * rr[None, :]
                else:  # [d, in]
                    W -= rr[:, None] * (rr @ W)[None, :]
                if proj.bias is not None:
                    proj.bias -= (proj.bias @ rr) * rr
    return model


def kl_last_token(p_logits: Tensor, q_logits: Tensor) -> Tensor:
    """``KL(p || q)`` per row of next-token distributions ``[batch, vocab]``."""
    p, q = torch.log_softmax(p_logits.float(), -1), torch.log_softmax(q_logits.float(), -1)
    return (p.exp() * (p - q)).sum(-1)


def last_logits(model: TransformerBridge, batch: PromptBatch) -> Tensor:
    """Next-token logits at each row's last prompt token (runs through any active hooks)."""
    return logits_at(model, batch, "last")
