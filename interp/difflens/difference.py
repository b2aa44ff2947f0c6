"""The mean difference aligned - base of one hook at every layer over the first ``k`` positions.

Both models read the same tokens (one BOS where the tokenizer has one, then the text:
``style="plain"`` for both sides) and the activations of every real token are cached through the
project's store (:func:`interp.cache.cache_activations` with ``positions=["all"]``: sharded,
resumable, refusing a resume with other weights); the texts are cut to their first ``k`` tokens
first, so the store holds only those positions.

* Position ``0`` is the BOS (for a tokenizer that prepends one): the same token at the same place in
  every text, so its difference is a constant of the two models, not of the text (and in Gemma it
  carries the attention-sink activations). It is kept in the per-position breakdown; the mean is
  over the ``k`` text positions after it (``include_bos=True`` adds it). Without a BOS the ``k``
  positions start at ``0``.
* The mean gives each position the same weight: ``mean_j (mean over texts of h_aligned - h_base)``
  over the positions that some text reaches (Minder et al. 2025 average per position over texts).
* ``exclude_massive``: "massive" dimensions (mean ``|x|`` of the base's stream at the counted
  positions above this multiple of the median dimension's) are zeroed in every difference, as
  :func:`interp.patching.mean_diff_directions` does; their share of the raw difference's squared
  norm is reported (``massive_share``). ``None`` keeps every dimension.
* Intervals: the texts are resampled with replacement (``n_boot`` times); per layer the 2.5 / 97.5
  percentiles of the mean difference's norm and of its cosine with the full-sample mean. The norm
  of a mean is biased upward and its bootstrap interval never reaches 0, so it cannot tell a
  difference from noise; that is the **noise floor**'s job: a sign-flip null (``n_null`` draws),
  each text's difference (all its positions) negated at random and the norm of the mean recomputed
  the same way. Under "no consistent difference, only per-text noise" the observed norm is one
  draw of that null; ``null_p95`` is its 95th percentile and ``p_null`` = ``(1 + #{null >=
  observed}) / (1 + n_null)``. A difference with ``norm <= null_p95`` reads as noise.
* ``stream_norm``: the base stream's mean norm per layer at the counted positions on the kept
  dimensions, the unit in which steering and Patchscope strengths are given.

Example:
    >>> diff = activation_difference(pair, texts, k=8)                  # doctest: +SKIP
    >>> diff.to_frame()[["layer", "norm", "norm_low", "norm_high", "cos_low"]]  # doctest: +SKIP
    >>> diff.at(9).shape                                                 # doctest: +SKIP
    torch.Size([640])
"""

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor

from interp.cache import cache_activations
from interp.difflens.texts import first_tokens
from interp.hooks import RESID_KINDS
from interp.prompts import encode
from interp.results import Result
from interp.runtime import check_layers

__all__ = ["Difference", "activation_difference", "sign_flip_null"]


@dataclass(repr=False)
class Difference(Result):
    """The mean difference per layer (``mean``, ``[layers, d]``), per position (``per_position``,
    ``[layers, positions, d]``; position 0 the BOS when ``has_bos``), the base stream's mean norm
    per layer on the kept dimensions (``stream_norm``), and ``frame`` / ``positions`` (per layer /
    per layer and position: norms, intervals, cosines)."""

    mean: Tensor
    per_position: Tensor
    stream_norm: Tensor
    frame: pd.DataFrame
    positions: pd.DataFrame
    layers: list[int]
    hook: str
    k: int
    texts: list[str]
    source: str = "given"
    include_bos: bool = False
    has_bos: bool = True
    massive: dict = field(default_factory=dict)

    def at(self, layer: int) -> Float[Tensor, " d_model"]:
        """The mean difference at ``layer``."""
        if layer not in self.layers:
            raise KeyError(f"layer {layer} was not measured; measured layers: {self.layers}")
        return self.mean[self.layers.index(layer)]

    def norm_at(self, layer: int) -> float:
        """The base stream's mean norm at ``layer`` (the unit of steering and Patchscope strengths)."""
        self.at(layer)
        return float(self.stream_norm[self.layers.index(layer)])

    def to_frame(self) -> pd.DataFrame:
        return self.frame

    def summary(self) -> dict:
        f = self.frame
        top = f.sort_values("rel_norm", ascending=False).iloc[0]
        first = 1 if self.has_bos and not self.include_bos else 0
        return {"hook": self.hook, "k": self.k, "texts": len(self.texts), "source": self.source,
                "positions": f"{first}..{self.k - 1 + int(self.has_bos)}",
                "largest_rel_norm_layer": int(top.layer), "largest_rel_norm": float(top.rel_norm),
                "min_stability_cos_low": float(f.cos_low.min()),
                **({"layers_above_noise_floor": [int(x) for x in f[f.norm > f.null_p95].layer]} if "null_p95" in f else {})}

    def figure(self, title: str = ""):
        import plotly.graph_objects as go

        f = self.frame
        stream = f.stream_norm.clip(lower=1e-12)
        fig = go.Figure(go.Scatter(x=f.layer, y=f.rel_norm, mode="lines+markers", name="|mean diff| / |stream|",
                                   error_y=dict(type="data", symmetric=False,
                                                array=((f.norm_high - f.norm) / stream).clip(lower=0),
                                                arrayminus=((f.norm - f.norm_low) / stream).clip(lower=0))))
        if "null_p95" in f:
            fig.add_trace(go.Scatter(x=f.layer, y=f.null_p95 / stream, mode="lines", line_dash="dash",
                                     name="noise floor (sign-flip null, 95th pct)"))
        fig.update_layout(title=title or f"aligned - base, {self.hook}, first {self.k} tokens of {len(self.texts)} texts",
                          xaxis_title="layer", yaxis_title="|mean difference| / |base stream|", template="plotly_white")
        return fig


def sign_flip_null(sums: Tensor, counts: Tensor, first: int, massive: Tensor, n_null: int = 200, *,
                   seed: int = 0) -> Tensor:
    """``[n_null, layers]``: the norm of the mean difference (each position weighted alike over the
    positions ``>= first`` some text reaches, ``massive`` ``[layers, d]`` dimensions zeroed) when
    each text's difference is negated with probability 1/2. ``sums``: ``[texts, layers, positions,
    d]`` per text and position the summed difference; ``counts``: ``[texts, positions]`` tokens."""
    total = counts.sum(0)  # [P]
    reached = (total[first:] > 0).float()
    g = torch.Generator().manual_seed(seed + 7919)
    out = []
    for start in range(0, n_null, 50):
        signs = torch.randint(0, 2, (min(50, n_null - start), len(sums)), generator=g).float() * 2 - 1
        per = torch.einsum("bn,nlpd->blpd", signs, sums[:, :, first:]) / total[first:].clamp_min(1e-12)[None, None, :, None]
        m = (per * reached[None, None, :, None]).sum(2) / reached.sum().clamp_min(1)
        out.append(m.masked_fill(massive, 0.0).norm(dim=-1))
    return torch.cat(out)


def _massive(magnitude: Tensor, factor: float | None) -> Tensor:
    if factor is None:
        return torch.zeros_like(magnitude, dtype=torch.bool)
    return magnitude > factor * magnitude.median(dim=-1, keepdim=True).values


def activation_difference(
    pair, texts: Sequence[str], *, k: int = 8, hook: str = "resid_pre", layers: Sequence[int] | None = None,
    store_dir: "str | os.PathLike[str] | None" = None, include_bos: bool = False, exclude_massive: float | None = 10.0,
    n_boot: int = 200, n_null: int = 200, seed: int = 0, batch_size: int = 32, source: str = "given", progress: bool = False,
) -> Difference:
    """The mean aligned - base difference of ``hook`` at ``layers`` (default all) over the first
    ``k`` tokens of ``texts`` (see the module docs); the activations go through the store in
    ``store_dir`` (a temporary folder when ``None``; a finished store there is read, not recomputed;
    a store there made from other texts or weights is refused by the store)."""
    if hook not in RESID_KINDS:
        raise ValueError(f"hook must be one of {RESID_KINDS} (a residual stream), got {hook!r}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1 resamples of the texts, got {n_boot}")
    if n_null < 1:
        raise ValueError(f"n_null must be >= 1 sign-flip draws, got {n_null}")
    if exclude_massive is not None and exclude_massive <= 1:
        raise ValueError(f"exclude_massive is a multiple of the median dimension's magnitude (> 1) or None, "
                         f"got {exclude_massive}")
    layers = check_layers(layers, pair.n_layers)
    tok = pair.base.tokenizer
    texts = first_tokens(tok, texts, k)
    if len(texts) < 2:
        raise ValueError(f"need >= 2 non-empty texts to take a mean difference with intervals, got {len(texts)}; "
                         "pass more texts")
    has_bos = tok.bos_token_id is not None and int(encode(tok, texts[:1]).input_ids[0, 0]) == tok.bos_token_id
    first = 1 if has_bos and not include_bos else 0  # the first position the mean counts
    P = k + int(has_bos)  # positions kept: the BOS (when there is one) and k text positions
    with tempfile.TemporaryDirectory() as tmp:
        store = cache_activations(pair, texts, layers=layers, hooks=[hook], positions=["all"], style="plain",
                                  out_dir=store_dir or tmp, batch_size=batch_size, progress=progress)
        ex = store.token_examples("base")
        if not torch.equal(ex, store.token_examples("aligned")):
            raise RuntimeError("the two sides read different tokens; both must read the texts as plain text "
                               "(pass a pair whose sides share one tokenizer)")
        pos = torch.arange(len(ex)) - torch.searchsorted(ex, ex)  # index within its text (0 = BOS when there is one)
        keep = pos < P
        ex, pos = ex[keep], pos[keep]
        n = len(texts)
        cell = ex * P + pos  # (text, position) of each kept row
        counts = torch.zeros(n * P).index_add_(0, cell, torch.ones(len(cell))).view(n, P)
        counted = pos >= first
        sums, streams, magnitudes = [], [], []
        for layer in layers:
            base = store.get("base", layer, hook, "all")[keep].float()
            delta = store.get("aligned", layer, hook, "all")[keep].float() - base
            sums.append(torch.zeros(n * P, delta.shape[-1]).index_add_(0, cell, delta).view(n, P, -1))
            magnitudes.append(base[counted].abs().mean(0))
            streams.append(base[counted])
    sums = torch.stack(sums, 1)  # [n, L, P, d]
    massive = _massive(torch.stack(magnitudes), exclude_massive)  # [L, d]

    def means(weights: Tensor) -> tuple[Tensor, Tensor]:
        """Text weights ``[B, n]`` -> per position ``[B, L, P, d]`` and the mean over the counted
        positions that the weighted texts reach ``[B, L, d]``."""
        c = weights @ counts  # [B, P]
        per = torch.einsum("bn,nlpd->blpd", weights, sums) / c.clamp_min(1e-12)[:, None, :, None]
        reached = (c[:, first:] > 0).float()  # [B, P - first]
        mean = (per[:, :, first:] * reached[:, None, :, None]).sum(2) / reached.sum(1).clamp_min(1)[:, None, None]
        return per, mean

    per_pos, mean = (x[0] for x in means(torch.ones(1, n)))
    raw_norm = mean.norm(dim=-1)
    per_pos, mean = per_pos.masked_fill(massive[:, None], 0.0), mean.masked_fill(massive, 0.0)
    stream_norm = torch.stack([s.masked_fill(m, 0.0).norm(dim=-1).mean() for s, m in zip(streams, massive)])
    g = torch.Generator().manual_seed(seed)
    norms, coss = [], []
    for start in range(0, n_boot, 50):
        idx = torch.randint(0, n, (min(50, n_boot - start), n), generator=g)
        w = torch.zeros(len(idx), n).scatter_add_(1, idx, torch.ones(idx.shape))
        _, m = means(w)
        m = m.masked_fill(massive, 0.0)
        norms.append(m.norm(dim=-1))
        coss.append(torch.nn.functional.cosine_similarity(m, mean[None], dim=-1))
    norms, coss = torch.cat(norms), torch.cat(coss)  # [B, L]
    q = torch.tensor([0.025, 0.975])
    nq, cq = norms.quantile(q, dim=0), coss.quantile(q, dim=0)
    observed = mean.norm(dim=-1)
    null = sign_flip_null(sums, counts, first, massive, n_null, seed=seed)  # [n_null, L]
    frame = pd.DataFrame({"layer": layers, "norm": observed.numpy(), "norm_low": nq[0].numpy(),
                          "norm_high": nq[1].numpy(), "null_p95": null.quantile(0.95, dim=0).numpy(),
                          "p_null": ((1 + (null >= observed[None] - 1e-12 * observed[None]).sum(0)) / (1 + len(null))).numpy(),
                          "stream_norm": stream_norm.numpy(),
                          "cos_low": cq[0].numpy(), "cos_high": cq[1].numpy(),
                          "massive_dims": massive.sum(-1).numpy(),
                          "massive_share": (1 - mean.norm(dim=-1) ** 2 / raw_norm.clamp_min(1e-12) ** 2).clamp_min(0).numpy()})
    frame["rel_norm"] = frame.norm / frame.stream_norm.clip(lower=1e-12)
    unit = torch.nn.functional.normalize(mean, dim=-1)
    rows = [{"layer": layer, "position": p, "bos": has_bos and p == 0, "n": int(counts[:, p].sum()),
             "norm": float(per_pos[i, p].norm()),
             "cos_with_mean": float(torch.nn.functional.normalize(per_pos[i, p], dim=0) @ unit[i])}
            for i, layer in enumerate(layers) for p in range(P)]
    return Difference(mean, per_pos, stream_norm, frame, pd.DataFrame(rows), list(layers), hook, k, list(texts),
                      source=source, include_bos=include_bos, has_bos=has_bos,
                      massive={int(layer): massive[i].nonzero().flatten().tolist() for i, layer in enumerate(layers)})
