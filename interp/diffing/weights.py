"""Weight deltas: how much, and in how many directions, did alignment move each weight matrix?

For every 2-D weight shared by the two models (matched by parameter name), :func:`weight_deltas`
gives the Frobenius norm of ``W_aligned - W_base``, its size relative to ``||W_base||``, and the
singular value spectrum of the difference: the effective rank (Roy & Vetterli 2007: ``exp`` of the
entropy of the normalised singular values) and the number of directions holding 90% of the
squared norm. A LoRA adapter of rank ``r`` gives deltas of rank at most ``r``.

Example:
    >>> deltas = weight_deltas(pair)                              # doctest: +SKIP
    >>> deltas.to_frame().groupby("module").rel_norm.mean()        # doctest: +SKIP
"""

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from interp.runtime import unwrapped
from interp.models import ModelPair
from interp.results import Result

__all__ = ["WeightDeltaResult", "weight_deltas", "singular_values", "effective_rank"]

_LAYER = re.compile(r"\.(?:layers|h|blocks)\.(\d+)\.")


def singular_values(delta: Tensor) -> Tensor:
    """Singular values of a 2-D matrix, largest first (from the Gram matrix of the smaller side, in
    float64, so a 262k x 640 embedding costs a 640 x 640 eigendecomposition)."""
    d = delta.detach().double().cpu()
    gram = d.T @ d if d.shape[0] >= d.shape[1] else d @ d.T
    return torch.linalg.eigvalsh(gram).clamp_min(0).sqrt().flip(0)


def effective_rank(s: Tensor) -> float:
    """``exp(H(p))`` with ``p = s / sum(s)`` (1 for a rank-one matrix, n for a flat spectrum)."""
    total = float(s.sum())
    if total == 0:
        return 0.0
    p = (s / total)[s > 0].double()
    return float(math.exp(-(p * p.log()).sum()))


@dataclass(repr=False)
class WeightDeltaResult(Result):
    """Per weight matrix: ``name, layer, module, shape, norm, rel_norm, effective_rank, rank90``;
    ``spectra`` maps name -> the top singular values of the delta (normalised to the largest)."""

    frame: pd.DataFrame
    spectra: dict[str, np.ndarray]

    def to_frame(self) -> pd.DataFrame:
        return self.frame

    def by_module(self) -> pd.DataFrame:
        """Mean relative norm and effective rank per module kind (the parameter names of the model, e.g. ``self_attn.q_proj``)."""
        changed = self.frame[self.frame.norm > 0]
        return changed.groupby("module")[["rel_norm", "effective_rank", "rank90"]].mean().reset_index()

    def summary(self) -> dict:
        """How many matrices changed, by how much (relative norm) and at what rank."""
        changed = self.frame[self.frame.norm > 0]
        if changed.empty:
            return {"changed_matrices": 0, "matrices": len(self.frame)}
        return {"changed_matrices": len(changed), "matrices": len(self.frame),
                "mean_rel_norm": float(changed.rel_norm.mean()), "max_rel_norm": float(changed.rel_norm.max()),
                "max_effective_rank": float(changed.effective_rank.max()), "max_rank90": int(changed.rank90.max())}

    def figure(self, title: str = "", max_lines: int = 12):
        from interp.plots.figures import weight_delta_spectra

        return weight_delta_spectra(self, title=title, max_lines=max_lines)

    def _repr_html_(self) -> str:
        return self.by_module().round(4).to_html(index=False)


def weight_deltas(pair: ModelPair, *, top_k: int = 64, include_unchanged: bool = False) -> WeightDeltaResult:
    """Norm and spectrum of ``W_aligned - W_base`` for each 2-D weight of the pair.

    Args:
        top_k: singular values kept per matrix in ``spectra``.
        include_unchanged: also list matrices whose delta is exactly zero (e.g. the embedding when
            only the decoder layers were tuned).
    """
    with unwrapped(pair.base) as hb, unwrapped(pair.aligned) as ha:  # HF names, without the bridge's wrappers
        base = dict(hb.named_parameters())
        aligned = dict(ha.named_parameters())
    names = [n for n, p in base.items() if p.ndim == 2 and n in aligned]
    if not names:
        raise ValueError("weight_deltas: the two models share no 2-D parameter names; are they the same architecture?")
    rows, spectra = [], {}
    with torch.no_grad():
        for name in names:
            wb, wa = base[name], aligned[name]
            if wb.shape != wa.shape:
                raise ValueError(f"weight_deltas: {name} has shape {tuple(wb.shape)} in base, {tuple(wa.shape)} in aligned")
            delta = wa.detach().float() - wb.detach().float().to(wa.device)
            norm = float(delta.norm())
            if norm == 0 and not include_unchanged:
                continue
            s = singular_values(delta) if norm > 0 else torch.zeros(1, dtype=torch.float64)
            energy = (s ** 2).cumsum(0) / max(float((s ** 2).sum()), 1e-300)
            match = _LAYER.search(name)
            module = _LAYER.sub(".", name).split(".", 1)[-1] if match else name
            rows.append({"name": name, "layer": int(match.group(1)) if match else -1,
                         "module": module.removesuffix(".weight"), "shape": tuple(wb.shape), "norm": norm,
                         "rel_norm": norm / max(float(wb.detach().float().norm()), 1e-12),
                         "effective_rank": effective_rank(s), "rank90": int((energy < 0.9).sum()) + 1 if norm > 0 else 0})
            spectra[name] = (s[:top_k] / s[0]).numpy() if norm > 0 else np.zeros(0)
    columns = ["name", "layer", "module", "shape", "norm", "rel_norm", "effective_rank", "rank90"]
    return WeightDeltaResult(pd.DataFrame(rows, columns=columns), spectra)  # columns kept when nothing changed
