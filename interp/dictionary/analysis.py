"""What a trained crosscoder says: reconstruction quality, latent classes by relative decoder
norm, and Latent Scaling to tell genuine model-specific latents from training artefacts.

Latent classes (Lindsey et al. 2024): a latent's relative decoder norm
``rel = ||d_aligned|| / (||d_base|| + ||d_aligned||)`` puts it among ``base-only`` (rel < 0.1),
``aligned-only`` (rel > 0.9) or ``shared`` (between).

Latent Scaling (Minder et al. 2025): for a latent that looks specific to one model, fit how much
of its decoder direction the *other* model's activations carry where it fires,
``beta = sum_t a_t <u, y_t> / sum_t a_t^2`` (``a_t`` its activation times its decoder norm, ``u``
its unit decoder direction in the model it belongs to), once with ``y`` the other model's
activations (reconstruction) and once with its reconstruction error plus the latent's own term
(error). The ratios ``nu = beta_other / beta_own`` near 0 mean the latent is genuinely specific;
large ratios mean the other model carries the same direction and the decoder norm was shrunk by
the sparsity penalty (or the latent decoupled from its error): it is re-classed ``shared``.

Example::

    classes = latent_classes(cc)                      # DataFrame: latent, rel_norm, class
    scaled = latent_scaling(cc, batches, classes)     # adds nu_recon, nu_error, final class
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
                   max_nu: float = 0.3) -> pd.DataFrame:
    """``classes`` with ``beta``s and ``nu_recon`` / ``nu_error`` for every model-specific latent,
    and ``final_class``: the class after Latent Scaling (a specific latent whose ``nu`` exceeds
    ``max_nu`` in either measure is re-classed ``shared``)."""
    classes = latent_classes(model) if classes is None else classes.copy()
    specific = classes["class"].isin(["base-only", "aligned-only"]).to_numpy()
    idx = torch.tensor(classes.latent.to_numpy()[specific], dtype=torch.long)
    own = torch.tensor([1 if c == "aligned-only" else 0 for c in classes["class"][specific]], dtype=torch.long)
    W = model.W_dec.detach()
    sums = torch.zeros(len(idx), 4, device=W.device)  # num_r_own, num_r_other, num_e_own, num_e_other
    den = torch.zeros(len(idx), device=W.device)
    for x in batches:
        x = x.to(W.device, W.dtype)
        f = model.encode(x, batch_rule=False)
        err = x - model.decode(f)  # [B, 2, d]
        fj = f[:, idx]  # [B, L]
        dec = W[idx]  # [L, 2, d]
        norm_own = dec[torch.arange(len(idx)), own].norm(dim=-1)  # [L]
        u = dec[torch.arange(len(idx)), own] / norm_own.clamp_min(1e-12)[:, None]  # [L, d]
        a = fj * norm_own  # [B, L]
        proj_x = torch.einsum("bmd,ld->blm", x, u)  # [B, L, 2]
        proj_e = torch.einsum("bmd,ld->blm", err, u) + torch.einsum("bl,lmd,ld->blm", fj, dec, u)
        other = 1 - own
        take = lambda p, which: p.gather(-1, which.view(1, -1, 1).expand(p.shape[0], -1, 1)).squeeze(-1)  # noqa: E731
        sums[:, 0] += (a * take(proj_x, own)).sum(0)
        sums[:, 1] += (a * take(proj_x, other)).sum(0)
        sums[:, 2] += (a * take(proj_e, own)).sum(0)
        sums[:, 3] += (a * take(proj_e, other)).sum(0)
        den += a.pow(2).sum(0)
    beta = (sums / den.clamp_min(1e-12)[:, None]).cpu()
    nu_r = beta[:, 1] / beta[:, 0].abs().clamp_min(1e-12)
    nu_e = beta[:, 3] / beta[:, 2].abs().clamp_min(1e-12)
    for col in ("beta_recon_own", "beta_recon_other", "beta_error_own", "beta_error_other", "nu_recon", "nu_error"):
        classes[col] = float("nan")
    classes.loc[specific, "beta_recon_own"] = beta[:, 0].numpy()
    classes.loc[specific, "beta_recon_other"] = beta[:, 1].numpy()
    classes.loc[specific, "beta_error_own"] = beta[:, 2].numpy()
    classes.loc[specific, "beta_error_other"] = beta[:, 3].numpy()
    classes.loc[specific, "nu_recon"] = nu_r.numpy()
    classes.loc[specific, "nu_error"] = nu_e.numpy()
    never = den.cpu() == 0
    artefact = ((nu_r > max_nu) | (nu_e > max_nu)) & ~never
    final = classes["class"].copy()
    final.loc[classes.index[specific][artefact.numpy()]] = "shared"
    classes["final_class"] = final
    return classes
