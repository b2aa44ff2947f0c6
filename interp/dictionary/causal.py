"""The causal test of a crosscoder's latents (as in Minder et al. 2025): which latents carry the
difference the alignment made to the next-token distribution?

On held-out chat interactions, the aligned model's stream leaving the crosscoder's layer is
replaced by the base model's stream there plus the dictionary's decoded difference restricted to
a chosen latent set,
``h = h_base + (b^aligned / s_aligned - b^base / s_base) + sum_{j in S} f_j (d_j^aligned / s_aligned - d_j^base / s_base)``
(``f`` the latents on the two models' streams of that token, ``d`` the decoder rows, ``b`` the
decoder biases, ``s`` the input scales the crosscoder was trained with), and the rest of the
aligned model runs on. The decoder biases start at each model's mean stream and differ, so the
bias difference is part of what the dictionary decodes for every token: with it, the set of
every latent is exactly ``recon_aligned / s_aligned - recon_base / s_base``; ``bias=False``
leaves it out (the latents' own terms). ``KL_S`` is the next-token KL from the aligned model to
that run; ``KL_0`` is the plain base stream (nothing added). The share closed,
``1 - mean KL_S / mean KL_0`` over the tokens of a kind (chat-template markup, user text,
response), says how much of the models' difference at that layer the set carries; a percentile
interval resamples whole interactions.

Latent sets compared (:func:`default_sets`): the bias difference alone (``"bias only"``, the
empty set: what a set adds is read against it), the aligned-only latents after Latent Scaling
(the genuine ones), the aligned-only latents by decoder norm alone, the top ``k`` by relative
decoder norm, the ``k`` specific latents with the smallest Latent Scaling ratios, ``k`` random
latents (the control; several draws), and every latent (the dictionary's whole decoded
difference; the reconstruction error is never added).

Example::

    sets = default_sets(classes, k=32)
    closed = causal_closure(pair, cc, layer=9, texts=exchanges.text, kinds=kinds, sets=sets, scale=factor)
    closed[closed.kind == "all"][["set", "closed"]]      # "bias only", ..., "every latent"
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from interp.dictionary.models import Crosscoder
from interp.dictionary.streams import batches, logprobs, stream_at
from interp.stats import frame_bootstrap_ci

__all__ = ["default_sets", "causal_closure"]


def default_sets(classes: pd.DataFrame, *, k: int = 32, n_random: int = 3, seed: int = 0) -> dict[str, list[int]]:
    """The latent sets of the causal test from a :func:`~interp.dictionary.latent_scaling` table."""
    rng = np.random.default_rng(seed)
    sets = {"bias only": [], "genuine aligned-only (Latent Scaling)": classes.latent[classes.final_class == "aligned-only"].tolist(),
            "aligned-only by decoder norm": classes.latent[classes["class"] == "aligned-only"].tolist(),
            f"top {k} by relative norm": classes.sort_values("rel_norm", ascending=False).latent.head(k).tolist()}
    specific = classes[classes["class"] == "aligned-only"].assign(nu=lambda f: f[["nu_recon", "nu_error"]].max(axis=1))
    sets[f"{min(k, len(specific))} aligned-only with the smallest Latent Scaling ratio"] = \
        specific.sort_values("nu").latent.head(k).tolist()
    for i in range(n_random):
        sets[f"random {k} (control {i + 1})"] = sorted(rng.choice(len(classes), size=min(k, len(classes)), replace=False).tolist())
    sets["every latent"] = classes.latent.tolist()
    return sets


@torch.inference_mode()
def causal_closure(pair, model: Crosscoder, layer: int, texts: Sequence[str], kinds: Sequence[Sequence[str]],
                   sets: dict[str, Sequence[int]], *, scale: Tensor, bias: bool = True, batch_size: int = 4,
                   n_boot: int = 500, progress: bool = True) -> pd.DataFrame:
    """One row per (latent set, token kind) and the ``"all"`` kind: ``set, n_latents, with_bias,
    kind, tokens, kl_base_stream`` (``KL_0``), ``kl_with_set`` (``KL_S``), ``closed`` (``1 - KL_S /
    KL_0``) with ``closed_low`` / ``closed_high`` (95% percentile interval over interactions).

    ``bias``: add the decoder-bias difference to every set's decoded difference (an empty set is
    then the bias alone); ``False``: the latents' terms only (an empty set adds nothing).

    ``texts``: formatted interactions (e.g. :func:`~interp.dictionary.corpus.held_out_exchanges`'
    ``text``); ``kinds``: per text, the kind of each token (:func:`~interp.dictionary.corpus.token_kinds`);
    ``scale``: the two input scales the crosscoder was trained with. The BOS token is never
    replaced and never counted."""
    if model.n_models != 2:
        raise ValueError("the causal test needs a crosscoder of two models (base, aligned)")
    tok = pair.aligned.tokenizer
    W = model.W_dec.detach().float().cpu()
    scale = torch.as_tensor(scale, dtype=torch.float32).cpu()
    diff = W[:, 1] / scale[1] - W[:, 0] / scale[0]  # [width, d]: each latent's decoded difference, unscaled
    b = model.b_dec.detach().float().cpu()
    b_diff = (b[1] / scale[1] - b[0] / scale[0]) if bias else torch.zeros_like(b[0])  # [d]
    names = list(sets)
    records = []  # one per token: text, kind, KL_0, KL per set
    bar = tqdm(total=len(texts), desc="causal test", unit="text", disable=not progress)
    for rows, batch in batches(tok, list(texts), batch_size):
        mask = batch.attention_mask.bool()
        first = batch.n_pad  # the BOS of each row
        keep = mask.clone()
        keep[torch.arange(len(batch)), first] = False
        h_b, h_a = stream_at(pair.base, batch, layer), stream_at(pair.aligned, batch, layer)
        x = torch.stack([h_b, h_a], 2) * scale[None, None, :, None]  # [B, T, 2, d], training's scale
        f = model.encode(x.reshape(-1, 2, x.shape[-1]).to(W.device, model.W_dec.dtype), batch_rule=False).float().cpu()
        f = f.reshape(x.shape[0], x.shape[1], -1)
        ref = logprobs(pair.aligned, batch)
        p_ref = ref.exp()

        def kl(edit) -> Tensor:
            lp = logprobs(pair.aligned, batch, layer=layer, edit=edit)
            return (p_ref * (ref - lp)).sum(-1)  # [B, T]

        def patched(delta: Tensor):
            new = h_b + delta
            return lambda h: torch.where(keep[..., None].to(h.device), new.to(h.device, h.dtype), h)

        kls = {"": kl(patched(torch.zeros_like(h_b)))}
        done: dict[tuple, str] = {} if bias else {(): ""}  # a repeated set (or, without the bias, an empty one) is not run again
        for name in names:
            key = tuple(sorted(int(j) for j in sets[name]))
            if key not in done:
                idx = torch.as_tensor(key, dtype=torch.long)
                kls[name] = kl(patched(f[..., idx] @ diff[idx] + b_diff))
                done[key] = name
            kls[name] = kls[done[key]]
        for j, r in enumerate(rows):
            pos = torch.nonzero(keep[j]).squeeze(-1)
            kind = list(kinds[r])
            if len(kind) != int(mask[j].sum()):
                raise ValueError(f"text {r}: {len(kind)} token kinds for {int(mask[j].sum())} tokens; "
                                 "compute them with token_kinds(tokenizer, row) on the same text")
            for t in pos.tolist():
                rec = {"text": r, "kind": kind[t - int(first[j])], "kl0": float(kls[""][j, t])}
                rec.update({name: float(kls[name][j, t]) for name in names})
                records.append(rec)
        bar.update(len(rows))
    bar.close()
    tokens = pd.DataFrame(records)
    out = []
    for kind in ["all", *sorted(set(tokens.kind))]:
        part = tokens if kind == "all" else tokens[tokens.kind == kind]
        for name in names:
            ratio = lambda t, n=name: {"closed": 1 - t[n].mean() / t.kl0.mean()}  # noqa: E731
            ci = frame_bootstrap_ci(ratio, part, "text", n_boot=n_boot)["closed"] if n_boot else (np.nan, np.nan)
            out.append({"set": name, "n_latents": len(sets[name]), "with_bias": bias, "kind": kind, "tokens": len(part),
                        "kl_base_stream": part.kl0.mean(), "kl_with_set": part[name].mean(),
                        "closed": ratio(part)["closed"], "closed_low": ci[0], "closed_high": ci[1]})
    return pd.DataFrame(out)
