"""What a trained crosscoder says: reconstruction quality, latent classes by relative decoder
norm, and Latent Scaling to tell genuine model-specific latents from training artefacts.

Latent classes (Lindsey et al. 2024): a latent's relative decoder norm
``rel = ||d_aligned|| / (||d_base|| + ||d_aligned||)`` puts it among ``base-only`` (rel < 0.1),
``aligned-only`` (rel > 0.9) or ``shared`` (between).

Latent Scaling (Minder et al. 2025, arXiv 2504.02922): for a latent ``j`` that looks specific to
one model ("own"), fit the scalar that best explains a target ``y`` by the latent's own decoder
row ``d = d_j^own`` where it fires, ``beta(y) = sum_t f_tj <d, y_t> / (||d||^2 sum_t f_tj^2)``
(least squares of ``y_t ~ beta f_tj d``), in each model ``m`` and for two targets:

- reconstruction: ``y = r^m``, the crosscoder's own reconstruction of model ``m``'s activation
  (every latent and the decoder bias);
- error: ``y = x^m - (r^m - f_j d_j^m)``, the activation minus the reconstruction without latent
  ``j``'s term (the reconstruction error plus the latent's own contribution).

The ratios ``nu_recon = beta_recon(other) / beta_recon(own)`` and
``nu_error = beta_error(other) / beta_error(own)`` near 0 mean the other model neither carries the
direction where the latent fires nor gets it from other latents: genuinely specific. A high
``nu_error`` is *complete shrinkage* (the other model carries the direction, but the sparsity
penalty shrank the latent's other-side decoder to zero, leaving it in the other model's error); a
high ``nu_recon`` is *latent decoupling* (the other model's direction is reconstructed by other
latents that fire with this one). Minder et al. rank latents by the two ratios; here a latent with
``nu_recon > max_nu_recon`` or ``nu_error > max_nu_error`` (0.3 each by default: interp's cut-offs)
is re-classed ``shared`` and its ``artefact`` named.

Example::

    classes = latent_classes(cc)                      # DataFrame: latent, rel_norm, class
    scaled = latent_scaling(cc, batches, classes)     # adds betas, nu_recon, nu_error, artefact, final_class
    scaled[scaled.artefact == "complete shrinkage"]
"""

from collections.abc import Iterable

import pandas as pd
import torch
from torch import Tensor

from interp.dictionary.models import Crosscoder

__all__ = ["reconstruction_stats", "latent_classes", "latent_scaling", "CLASSES"]

CLASSES = ("base-only", "shared", "aligned-only")


@torch.no_grad()
def reconstruction_stats(model: Crosscoder, batches: Iterable[Tensor], sides=("base", "aligned")) -> dict:
    """Fraction of variance explained per side, mean L0, and the shares of dead (never fired) and
    dense (firing on more than 10% of tokens) latents, over ``batches`` at inference."""
    model.eval()
    sse = s1 = s2 = None  # running sums: the total variance without keeping every batch
    n, l0, fired = 0, 0.0, torch.zeros(model.width, device=model.W_dec.device)
    for x in batches:
        x = x.to(model.W_dec.device, model.W_dec.dtype)
        x = x.unsqueeze(1) if x.dim() == 2 else x
        f = model.encode(x, batch_rule=False)
        r = model.decode(f)
        r = r.unsqueeze(1) if r.dim() == 2 else r
        e = (x - r).pow(2).sum((0, 2))
        sse = e if sse is None else sse + e
        xd = x.double()
        s1 = xd.sum(0) if s1 is None else s1 + xd.sum(0)
        s2 = xd.pow(2).sum(0) if s2 is None else s2 + xd.pow(2).sum(0)
        n += x.shape[0]
        l0 += float((f > 0).sum())
        fired += (f > 0).sum(0)
    tot = (s2 - s1.pow(2) / n).sum(-1)  # sum over tokens of ||x - mean||^2, per model
    fve = (1 - sse.double() / tot.clamp_min(1e-12)).tolist()
    names = list(sides)[: model.n_models] if model.n_models > 1 else ["model"]
    return {**{f"fve_{s}": v for s, v in zip(names, fve)}, "l0": l0 / max(n, 1),
            "dead": float((fired == 0).float().mean()), "dense": float((fired / max(n, 1) > 0.1).float().mean()),
            "tokens": n}


def latent_classes(model: Crosscoder, *, low: float = 0.1, high: float = 0.9) -> pd.DataFrame:
    """Per latent: the decoder norms in each model, ``rel_norm`` and its class (2-model crosscoders)."""
    if model.n_models != 2:
        raise ValueError(f"latent classes need a crosscoder of two models (base, aligned), got {model.n_models}")
    norms = model.decoder_norms().detach().cpu()
    rel = norms[:, 1] / norms.sum(-1).clamp_min(1e-12)
    cls = ["base-only" if r < low else "aligned-only" if r > high else "shared" for r in rel.tolist()]
    return pd.DataFrame({"latent": range(model.width), "norm_base": norms[:, 0].numpy(),
                         "norm_aligned": norms[:, 1].numpy(), "rel_norm": rel.numpy(), "class": cls})


@torch.no_grad()
def latent_scaling(model: Crosscoder, batches: Iterable[Tensor], classes: pd.DataFrame | None = None, *,
                   max_nu_recon: float = 0.3, max_nu_error: float = 0.3) -> pd.DataFrame:
    """``classes`` with, for every model-specific latent, ``beta_{recon,error}_{own,other}``,
    ``nu_recon``, ``nu_error`` (NaN where the latent never fires), ``artefact`` (``"genuine"``,
    ``"complete shrinkage"``, ``"latent decoupling"``, ``"shrinkage and decoupling"`` or ``"never fired"``; empty for
    shared latents) and ``final_class`` (an artefact is re-classed ``shared``). ``batches``:
    ``[batch, 2, d]`` at the scale the crosscoder was trained on.

    Example::

        scaled = latent_scaling(cc, [x], max_nu_error=0.3)
        scaled.groupby(["class", "final_class"]).size()
    """
    classes = latent_classes(model) if classes is None else classes.copy()
    specific = classes["class"].isin(["base-only", "aligned-only"]).to_numpy()
    idx = torch.tensor(classes.latent.to_numpy()[specific], dtype=torch.long)
    own = torch.tensor([1 if c == "aligned-only" else 0 for c in classes["class"][specific]], dtype=torch.long)
    W = model.W_dec.detach()
    idx, own = idx.to(W.device), own.to(W.device)
    rows = torch.arange(len(idx), device=W.device)
    dec = W[idx]  # [L, 2, d]: the latents' decoder rows in both models
    d_own = dec[rows, own]  # [L, d]: the direction every beta is fitted along
    self_term = torch.einsum("lmd,ld->lm", dec, d_own)  # <d_j^m, d_j^own>: latent j's own term, per model
    num = torch.zeros(len(idx), 2, 2, dtype=torch.float64, device=W.device)  # [L, target (recon, error), model]
    den = torch.zeros(len(idx), dtype=torch.float64, device=W.device)  # sum_t f_tj^2
    for x in batches:
        x = x.to(W.device, W.dtype)
        f = model.encode(x, batch_rule=False)
        r = model.decode(f)  # [B, 2, d]: the crosscoder's reconstruction of each model
        fj = f[:, idx]  # [B, L]
        proj_r = torch.einsum("bmd,ld->blm", r, d_own)  # <r^m, d>
        proj_e = torch.einsum("bmd,ld->blm", x - r, d_own) + fj[..., None] * self_term  # <x^m - (r^m - f_j d_j^m), d>
        num[:, 0] += torch.einsum("bl,blm->lm", fj, proj_r).double()
        num[:, 1] += torch.einsum("bl,blm->lm", fj, proj_e).double()
        den += fj.double().pow(2).sum(0)
    beta = (num / (den * d_own.double().pow(2).sum(-1)).clamp_min(1e-30)[:, None, None]).cpu()  # [L, 2, 2]
    own_c, other_c = own.cpu(), 1 - own.cpu()
    pick = lambda target, which: beta[torch.arange(len(idx)), target, which]  # noqa: E731
    cols = {"beta_recon_own": pick(0, own_c), "beta_recon_other": pick(0, other_c),
            "beta_error_own": pick(1, own_c), "beta_error_other": pick(1, other_c)}
    fired = den.cpu() > 0
    nan = torch.full((len(idx),), float("nan"), dtype=torch.float64)
    cols["nu_recon"] = torch.where(fired, cols["beta_recon_other"] / cols["beta_recon_own"], nan)
    cols["nu_error"] = torch.where(fired, cols["beta_error_other"] / cols["beta_error_own"], nan)
    for name, values in cols.items():
        classes[name] = float("nan")
        classes.loc[specific, name] = torch.where(fired, values, nan).numpy()
    shrunk = (cols["nu_error"] > max_nu_error).numpy()  # NaN compares False: a latent never seen keeps its class
    decoupled = (cols["nu_recon"] > max_nu_recon).numpy()
    kind = ["never fired" if not seen else "shrinkage and decoupling" if s_ and d_ else "complete shrinkage" if s_
            else "latent decoupling" if d_ else "genuine" for seen, s_, d_ in zip(fired.tolist(), shrunk, decoupled)]
    classes["artefact"] = ""
    classes.loc[specific, "artefact"] = kind
    final = classes["class"].copy()
    final.loc[classes.index[specific][shrunk | decoupled]] = "shared"
    classes["final_class"] = final
    return classes
