"""Representation deltas: how similar are the base and aligned residual streams, layer by layer?

Both models read the *same* token sequences; at each layer's ``resid_post`` and every real token
(BOS and padding left out) :func:`representation_similarity` gives the mean cosine similarity of
the two models' vectors and the linear CKA (Kornblith et al. 2019) between the two token x
d_model matrices. CKA is accumulated from d x d Gram matrices, so memory does not grow with the
number of tokens.

Raw cosine and CKA are dominated by a few "massive" dimensions that some models (Gemma) keep at
|x| ~ 1e3-1e4 on every token: two streams agree on those whatever else changed. So each layer is
also reported with them left out (``cosine_no_massive``, ``cka_no_massive``; a dimension is
massive when its mean |x| over the first batch's tokens exceeds 10x the median dimension's in
either model, the rule :func:`interp.patching.mean_diff_directions` uses) and with every dimension
standardised (``cka_standardised``: CKA of the per-dimension z-scores).

Example:
    >>> sim = representation_similarity(pair, ["The Eiffel Tower is in Paris."])   # doctest: +SKIP
    >>> sim.to_frame()[["layer", "cosine", "cka"]]                                    # doctest: +SKIP
"""

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from interp.models import ModelPair
from interp.patching.core import clean_resid_post
from interp.prompts import encode, format_prompt
from interp.results import Result
from interp.runtime import check_layers, input_device

__all__ = ["SimilarityResult", "representation_similarity", "linear_cka"]


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear CKA between ``[n, d1]`` and ``[n, d2]`` (rows are paired examples)."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"linear_cka needs paired rows, got {x.shape[0]} and {y.shape[0]}")
    x = (x - x.mean(0)).double()
    y = (y - y.mean(0)).double()
    return float((y.T @ x).norm() ** 2 / ((x.T @ x).norm() * (y.T @ y).norm()))


@dataclass(repr=False)
class SimilarityResult(Result):
    """Per layer: ``layer, cosine`` (mean over tokens), ``cka`` (linear), ``rel_diff`` (mean
    ||aligned - base|| / ||base||), the same without massive dimensions (``cosine_no_massive``,
    ``cka_no_massive``, ``massive_dims``: how many were left out), ``cka_standardised`` and ``tokens``."""

    frame: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.frame

    def summary(self) -> dict:
        """Lowest CKA (and its layer), and cosine / CKA at the last layer."""
        f = self.frame
        low = f.sort_values("cka").iloc[0]
        last = f[f.layer == f.layer.max()].iloc[0]
        out = {"min_cka": float(low.cka), "min_cka_layer": int(low.layer), "last_layer_cosine": float(last.cosine),
               "last_layer_cka": float(last.cka), "max_rel_diff": float(f.rel_diff.max()), "layers": len(f)}
        if "cka_no_massive" in f:  # frames written before the variants existed lack them
            low_nm = f.sort_values("cka_no_massive").iloc[0]
            out.update({"min_cka_no_massive": float(low_nm.cka_no_massive), "min_cka_no_massive_layer": int(low_nm.layer),
                        "last_layer_cosine_no_massive": float(last.cosine_no_massive),
                        "min_cka_standardised": float(f.cka_standardised.min()), "max_massive_dims": int(f.massive_dims.max())})
        return out

    def figure(self, title: str = ""):
        from interp.plots.figures import similarity_by_layer

        return similarity_by_layer(self.frame, title=title)

    def _repr_html_(self) -> str:
        return self.frame.round(4).to_html(index=False)


class _Stats:
    """Running sums for cosine, relative difference and linear CKA at one layer; the massive
    dimensions are fixed from the first batch (the cosine needs them token by token)."""

    def __init__(self, d: int, ratio: float = 10.0, device: "torch.device | str" = "cpu"):
        self.n = 0
        self.cos = 0.0
        self.cos_nm = 0.0
        self.rel = 0.0
        self.ratio = ratio
        self.keep: Tensor | None = None  # [d] bool: not massive
        self.sx = torch.zeros(d, dtype=torch.float64, device=device)
        self.sy = torch.zeros(d, dtype=torch.float64, device=device)
        self.xx = torch.zeros(d, d, dtype=torch.float64, device=device)
        self.yy = torch.zeros(d, d, dtype=torch.float64, device=device)
        self.yx = torch.zeros(d, d, dtype=torch.float64, device=device)

    def add(self, x: Tensor, y: Tensor) -> None:
        x, y = x.to(self.sx.device, torch.float64), y.to(self.sx.device, torch.float64)
        if self.keep is None:
            mx, my = x.abs().mean(0), y.abs().mean(0)
            self.keep = ~((mx > self.ratio * mx.median()) | (my > self.ratio * my.median()))
        self.n += x.shape[0]
        self.cos += float(torch.nn.functional.cosine_similarity(x, y, dim=-1).sum())
        self.cos_nm += float(torch.nn.functional.cosine_similarity(x[:, self.keep], y[:, self.keep], dim=-1).sum())
        self.rel += float(((y - x).norm(dim=-1) / x.norm(dim=-1).clamp_min(1e-12)).sum())
        self.sx += x.sum(0)
        self.sy += y.sum(0)
        self.xx += x.T @ x
        self.yy += y.T @ y
        self.yx += y.T @ x

    def _centred(self) -> tuple[Tensor, Tensor, Tensor]:
        n = self.n
        mx, my = self.sx / n, self.sy / n
        return (self.xx - n * torch.outer(mx, mx), self.yy - n * torch.outer(my, my), self.yx - n * torch.outer(my, mx))

    def cka(self, variant: str = "raw") -> float:
        """``raw``, ``no_massive`` (massive dimensions' rows and columns dropped) or
        ``standardised`` (every dimension scaled to unit variance), all from the same sums."""
        cxx, cyy, cyx = self._centred()
        if variant == "no_massive":
            k = self.keep
            cxx, cyy, cyx = cxx[k][:, k], cyy[k][:, k], cyx[k][:, k]
        elif variant == "standardised":
            dx = cxx.diagonal().clamp_min(1e-30).rsqrt()
            dy = cyy.diagonal().clamp_min(1e-30).rsqrt()
            cxx, cyy, cyx = dx[:, None] * cxx * dx, dy[:, None] * cyy * dy, dy[:, None] * cyx * dx
        return float(cyx.norm() ** 2 / (cxx.norm() * cyy.norm()))


def representation_similarity(
    pair: ModelPair, texts: Sequence[str], *, style: str = "plain", batch_size: int = 16,
    layers: Sequence[int] | None = None, max_memory_gb: float = 2.0, progress: bool = True,
) -> SimilarityResult:
    """Cosine similarity and linear CKA of base vs aligned ``resid_post`` at every layer.

    Args:
        texts: inputs, formatted with ``style`` (``"plain"`` or ``"chat"`` with the aligned side's
            template) and fed, identical, to both models.
        batch_size: prompts per forward pass.
        layers: the layers to compare (default: all).
        max_memory_gb: bound on the CKA sums (three ``d x d`` float64 matrices per layer, kept on
            the aligned model's input device): layers that do not fit in one pass over ``texts`` are
            done in groups, one pass each (at d = 640 all 18 layers take 0.18 GB; at d = 4096 a
            layer takes 0.4 GB, so 2 GB means 5 layers a pass). The figures do not depend on it.
    """
    if not texts:
        raise ValueError("representation_similarity needs at least one text")
    if max_memory_gb <= 0:
        raise ValueError(f"max_memory_gb must be > 0, got {max_memory_gb}")
    layers = check_layers(layers, pair.n_layers)
    tok = pair.aligned.tokenizer
    formatted = [format_prompt(t, style=style, tokenizer=tok) for t in texts]
    device = input_device(pair.aligned)
    per_layer = 3 * pair.d_model ** 2 * 8
    size = max(1, int(max_memory_gb * 2**30 // per_layer))
    groups = [layers[i: i + size] for i in range(0, len(layers), size)]
    starts = range(0, len(formatted), batch_size)
    bar = tqdm(total=len(groups) * len(starts), desc="representation similarity", disable=not progress)
    rows: list[dict] = []
    for group in groups:
        now = {layer: _Stats(pair.d_model, device=device) for layer in group}
        for s in starts:
            b = encode(tok, formatted[s: s + batch_size]).to(device)
            real = b.attention_mask.bool().clone()
            real[torch.arange(len(b), device=device), b.n_pad.to(device)] = False  # drop BOS
            xs = clean_resid_post(pair.base, b)
            ys = clean_resid_post(pair.aligned, b)
            for layer in group:
                now[layer].add(xs[layer][real], ys[layer][real])
            bar.update(1)
        # The group's figures, then its sums are dropped: memory stays within one group's.
        rows += [{"layer": i, "cosine": st.cos / st.n, "cka": st.cka(), "rel_diff": st.rel / st.n,
                  "cosine_no_massive": st.cos_nm / st.n, "cka_no_massive": st.cka("no_massive"),
                  "cka_standardised": st.cka("standardised"), "massive_dims": int((~st.keep).sum()), "tokens": st.n}
                 for i, st in now.items()]
        del now
    bar.close()
    return SimilarityResult(pd.DataFrame(rows))
