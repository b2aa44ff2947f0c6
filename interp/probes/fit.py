"""Probe fitting for all layers at once.

Activations come as one tensor ``[layers, n, d]``; every fitter returns per-layer directions
``[layers, d]`` (or ``[layers, d, k]``) and biases, in the raw activation space.

- :func:`fit_logistic`: L2-regularised logistic regression (sklearn's objective,
  ``0.5 * ||w||^2 + C * sum(log-loss)``), all layers in one L-BFGS optimisation on standardised
  features (the residual stream of many models has entries of 1e3-1e4, far from unit scale).
- :func:`fit_mass_mean`: difference of class means; optionally ``Sigma^-1 (mu1 - mu0)`` with the
  pooled within-class covariance (Ledoit-Wolf / OAS shrinkage), as in the geometry-of-truth work.
- :func:`fit_multiclass`: softmax regression over ``k`` classes (which of K candidate answers).
- :func:`fit_ccs`: Contrast-Consistent Search on contrast pairs (unsupervised; best of restarts).
"""

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

__all__ = ["Standardizer", "fit_logistic", "fit_mass_mean", "fit_multiclass", "fit_ccs", "CCSProbe", "ccs_scores"]


class Standardizer:
    """Per-layer mean / std of training activations (std floored to avoid division by zero)."""

    def __init__(self, X: Float[Tensor, "layers n d"], Xt: Float[Tensor, "layers d n"] | None = None):
        if Xt is not None:  # two passes over the contiguous axis of the transposed copy, layer by layer
            mean = Xt.mean(-1)
            var = torch.stack([((Xt[i] - mean[i, :, None]) ** 2).sum(-1) for i in range(Xt.shape[0])])
            var, self.mean = (var / max(1, Xt.shape[-1] - 1)).unsqueeze(1), mean.unsqueeze(1)
        else:
            var, self.mean = torch.var_mean(X, dim=1, keepdim=True)
        # The floor is each layer's own (a floor from the largest mean of *all* layers made a layer's
        # probe depend on which layers were fitted beside it).
        floor = 1e-6 * self.mean.abs().amax(dim=(1, 2), keepdim=True).clamp_min(1.0)  # [L, 1, 1]
        self.std = torch.maximum(var.sqrt(), floor)

    def __call__(self, X: Float[Tensor, "layers n d"]) -> Float[Tensor, "layers n d"]:
        return (X - self.mean) / self.std

    def to_raw(self, w: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        """Turn ``w.z + b`` on standardised ``z`` into ``w'.x + b'`` on raw ``x``."""
        std, mean = self.std.squeeze(1), self.mean.squeeze(1)
        if w.ndim == 3:  # [L, d, k]
            w_raw = w / std.unsqueeze(-1)
            return w_raw, b - torch.einsum("ld,ldk->lk", mean, w_raw)
        w_raw = w / std
        return w_raw, b - (mean * w_raw).sum(-1)


def _lbfgs(params: list[Tensor], closure, max_iter: int, scale: float) -> None:
    """L-BFGS with scikit-learn's stopping rule: the largest gradient entry of the *mean* loss
    below 1e-4 (``scale`` = the number of rows the loss sums over)."""
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-4 * scale, tolerance_change=1e-12 * scale)
    opt.step(closure)


def fit_logistic(
    X: Float[Tensor, "layers n d"], y: Int[Tensor, " n"], *, C: float = 1.0, max_iter: int = 200, solver: str = "auto"
) -> tuple[Float[Tensor, "layers d"], Float[Tensor, " layers"]]:
    """Binary logistic regression per layer, all layers at once. Returns raw-space ``(w, b)``;
    predict with ``X @ w + b > 0``.

    ``solver``: ``"lbfgs"`` (one L-BFGS run over all layers; cheap per step, the CPU default),
    ``"newton"`` (batched Newton steps with one ``[layers, d+1, d+1]`` Hessian solve each; a
    handful of large matrix products, the GPU default), or ``"auto"``. Both minimise the same
    convex objective, so they reach the same probe."""
    if solver not in ("auto", "lbfgs", "newton"):
        raise ValueError(f"solver must be 'auto', 'lbfgs' or 'newton', got {solver!r}")
    if solver == "auto":
        solver = "newton" if X.device.type == "cuda" else "lbfgs"
    if C <= 0:
        raise ValueError(f"C must be > 0, got {C}")
    labels = set(y.unique().tolist())
    if not labels <= {0, 1} or len(labels) < 2:
        raise ValueError(f"fit_logistic needs labels 0 and 1 (both present), got {sorted(labels)}")
    X = X.float()
    if solver == "newton":
        scaler = Standardizer(X)
        w, b = _newton_logistic(scaler(X), y.to(X.device).float(), C, max_iter=min(max_iter, 30))
    else:
        Xt = X.transpose(1, 2).contiguous()  # [L, d, n]: the forward product streams it fastest
        scaler = Standardizer(X, Xt)
        w, b = _lbfgs_logistic(X, Xt, scaler, y.to(X.device).float(), C, max_iter=max_iter)
    return scaler.to_raw(w, b)


def _lbfgs_logistic(
    X: Tensor, Xt: Tensor, scaler: Standardizer, y: Tensor, C: float, max_iter: int, history: int = 10
) -> tuple[Tensor, Tensor]:
    """L-BFGS with a separate curvature history and Armijo line search per layer, all layers
    advancing together (one pass over the data per evaluation, for every layer). Works on the
    standardised problem without materialising it (the scaling is folded into the products).
    Stops a layer with scikit-learn's rule: largest gradient entry of the mean loss below 1e-4."""
    L, n, d = X.shape
    mean, inv_std = scaler.mean.squeeze(1), 1.0 / scaler.std.squeeze(1)  # [L, d]

    # Each layer's row of logits padded to a multiple of 64 entries: vectorised exp / sigmoid give
    # other last bits in a vector body than in its scalar tail, so without the padding where the
    # tail falls (and a layer's probe) would depend on how many layers are fitted together.
    width = n + (-n) % 64
    y_pad = torch.zeros(width, device=X.device)
    y_pad[:n] = y
    keep = torch.zeros(width, device=X.device)
    keep[:n] = 1.0

    def f_and_g(theta: Tensor, rows: list[int]) -> tuple[Tensor, Tensor]:
        """Loss and gradient of the layers in ``rows`` (converged layers cost nothing).

        A layer's numbers are the same to the bit whether it is fitted alone, in a group, or with
        every layer (CI saw a validation AUROC move when they were not): the products are taken
        layer by layer (a batched product's summation order depends on the batch) and the
        element-wise functions run on padded rows (see ``width``)."""
        idx = torch.tensor(rows, device=X.device)
        th, mu, inv = theta[idx], mean[idx], inv_std[idx]
        w, b = th[:, :d], th[:, d]
        v = w * inv  # w . (x - mean) / std  =  v . x - v . mean
        logits = torch.zeros(len(rows), width, device=X.device)
        for i, layer in enumerate(rows):
            logits[i, :n] = v[i : i + 1] @ Xt[layer]
        logits[:, :n] += (b - (v * mu).sum(-1))[:, None]
        target = y_pad.expand(len(rows), width)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none") * keep
        loss = C * bce.sum(-1) + 0.5 * (w * w).sum(-1)
        r = C * (torch.sigmoid(logits) - target) * keep
        rsum = r.sum(-1, keepdim=True)
        back = torch.cat([r[i : i + 1, :n] @ X[layer] for i, layer in enumerate(rows)])
        gw = (back - mu * rsum) * inv + w
        return loss, torch.cat([gw, rsum], dim=-1)

    theta = torch.zeros(L, d + 1, device=X.device)
    f, g = f_and_g(theta, list(range(L)))
    gtol = 1e-4 * C * n
    S: list[Tensor] = []
    Y: list[Tensor] = []
    R: list[Tensor] = []
    for _ in range(max_iter):
        active = g.abs().amax(-1) > gtol
        if not bool(active.any()):
            break
        q = g.clone()
        alphas = []
        for s_i, y_i, r_i in zip(reversed(S), reversed(Y), reversed(R)):
            a = r_i * (s_i * q).sum(-1)
            q -= a[:, None] * y_i
            alphas.append(a)
        if S:
            sy, yy = (S[-1] * Y[-1]).sum(-1), (Y[-1] * Y[-1]).sum(-1)
            gamma = torch.where(sy > 0, sy / yy.clamp_min(1e-30), torch.ones_like(sy))
        else:
            gamma = 1.0 / g.abs().sum(-1).clamp_min(1e-30) * 10
        direction = gamma[:, None] * q
        for (s_i, y_i, r_i), a in zip(zip(S, Y, R), reversed(alphas)):
            bcoef = r_i * (y_i * direction).sum(-1)
            direction += s_i * (a - bcoef)[:, None]
        direction = -direction * active[:, None]
        slope = (g * direction).sum(-1)
        bad = slope >= 0  # not a descent direction: fall back to steepest descent
        if bool(bad.any()):
            direction = torch.where(bad[:, None], -g * active[:, None], direction)
            slope = (g * direction).sum(-1)
        t = torch.ones(L, device=X.device)
        f_new, g_new = f.clone(), g.clone()
        pending = active.clone()
        for _ in range(30):
            rows = pending.nonzero().squeeze(-1).tolist()
            if not rows:
                break
            fr, gr = f_and_g(theta + t[:, None] * direction, rows)
            f_new[rows], g_new[rows] = fr, gr
            ok = f_new <= f + 1e-4 * t * slope
            pending = pending & ~ok
            t = torch.where(pending, t * 0.5, t)
        step = t[:, None] * direction
        yv = g_new - g
        sy = (step * yv).sum(-1)
        S.append(step)
        Y.append(yv)
        R.append(torch.where(sy > 1e-10, 1.0 / sy.clamp_min(1e-10), torch.zeros_like(sy)))
        if len(S) > history:
            S.pop(0), Y.pop(0), R.pop(0)
        theta, f, g = theta + step, f_new, g_new
    return theta[:, :d], theta[:, d]


def _newton_logistic(Z: Tensor, y: Tensor, C: float, max_iter: int, tol: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Newton's method on ``C * sum(log-loss) + 0.5 * ||w||^2`` (bias unpenalised), per layer,
    with step halving where a full step would raise a layer's loss. Stops when the largest step
    is below ``tol`` relative to the largest weight. The Hessian may use TF32 on a GPU: it only
    steers the step; the gradient, and so the optimum, stays fp32."""
    L, n, d = Z.shape
    Zt = torch.cat([Z, torch.ones(L, n, 1, device=Z.device)], dim=-1)  # [L, n, d+1]
    reg = torch.ones(d + 1, device=Z.device)
    reg[-1] = 0.0
    theta = torch.zeros(L, d + 1, device=Z.device)

    def loss(th: Tensor) -> Tensor:
        logits = torch.einsum("lnd,ld->ln", Zt, th)
        return C * torch.nn.functional.binary_cross_entropy_with_logits(
            logits, y.expand(L, n), reduction="none").sum(-1) + 0.5 * (reg * th * th).sum(-1)

    current = loss(theta)
    for _ in range(max_iter):
        p = torch.sigmoid(torch.einsum("lnd,ld->ln", Zt, theta))
        grad = C * torch.bmm((p - y).unsqueeze(1), Zt).squeeze(1) + reg * theta
        tf32 = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            H = C * torch.bmm(Zt.transpose(1, 2) * (p * (1 - p)).unsqueeze(1), Zt)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = tf32
        H.diagonal(dim1=1, dim2=2).add_(reg + 1e-6)
        chol, info = torch.linalg.cholesky_ex(H)
        if bool(info.any()):
            step = torch.linalg.solve(H, grad.unsqueeze(-1)).squeeze(-1)
        else:
            step = torch.cholesky_solve(grad.unsqueeze(-1), chol).squeeze(-1)
        scale = torch.ones(L, 1, device=Z.device)
        for _ in range(8):  # per-layer backtracking
            trial = loss(theta - scale * step)
            worse = trial > current + 1e-7 * current.abs()
            if not worse.any():
                break
            scale = torch.where(worse[:, None], scale / 2, scale)
        theta = theta - scale * step
        current = loss(theta)
        if (scale * step).abs().max() <= tol * theta.abs().max().clamp_min(1e-12):
            break
    return theta[:, :-1], theta[:, -1]


def fit_mass_mean(
    X: Float[Tensor, "layers n d"], y: Int[Tensor, " n"], *, covariance: bool = False, shrinkage: "float | str" = "ledoit_wolf"
) -> tuple[Float[Tensor, "layers d"], Float[Tensor, " layers"]]:
    """Difference of class means (``covariance=True``: ``Sigma^-1 (mu1 - mu0)`` with the pooled
    within-class covariance, shrunk). The bias puts the threshold halfway between the class means'
    projections.

    Shrinkage acts on the per-dimension standardised covariance (the correlation matrix), towards
    its mean eigenvalue times the identity: ``shrinkage="ledoit_wolf"`` (default) or ``"oas"``
    estimate the amount per layer from the training rows (scikit-learn's estimators), a float
    fixes it. With fewer rows than dimensions the unshrunk matrix is singular, so some shrinkage
    is always needed."""
    X = X.float()
    yb = y.bool().to(X.device)
    mu1, mu0 = X[:, yb].mean(1), X[:, ~yb].mean(1)
    w = mu1 - mu0
    if covariance:
        centred = torch.cat([X[:, yb] - mu1[:, None], X[:, ~yb] - mu0[:, None]], dim=1)
        sd = centred.std(1).clamp_min(1e-6 * centred.abs().amax().clamp_min(1.0))  # [L, d]
        Z = centred / sd[:, None]
        R = Z.transpose(1, 2) @ Z / max(1, Z.shape[1] - 2)
        amounts = _shrinkage(Z, shrinkage)
        mu = torch.diagonal(R, dim1=1, dim2=2).mean(-1)
        eye = torch.eye(R.shape[-1], device=X.device)
        Rs = (1 - amounts)[:, None, None] * R + (amounts * mu)[:, None, None] * eye + 1e-6 * eye
        w = torch.linalg.solve(Rs, (w / sd).unsqueeze(-1)).squeeze(-1) / sd
    b = -0.5 * ((mu1 + mu0) * w).sum(-1)
    return w, b


def _shrinkage(Z: Tensor, shrinkage: "float | str") -> Tensor:
    """Per-layer shrinkage amount in [0, 1] for centred, standardised rows ``Z [L, n, d]``."""
    if isinstance(shrinkage, str):
        from sklearn.covariance import ledoit_wolf_shrinkage, oas

        if shrinkage not in ("ledoit_wolf", "oas"):
            raise ValueError(f"shrinkage must be a number in [0, 1], 'ledoit_wolf' or 'oas', got {shrinkage!r}")
        Zn = Z.detach().cpu().double().numpy()
        if shrinkage == "ledoit_wolf":
            vals = [ledoit_wolf_shrinkage(z, assume_centered=True) for z in Zn]
        else:
            vals = [oas(z, assume_centered=True)[1] for z in Zn]
        return torch.tensor(vals, dtype=Z.dtype, device=Z.device)
    if not 0 <= shrinkage <= 1:
        raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
    return torch.full((Z.shape[0],), float(shrinkage), dtype=Z.dtype, device=Z.device)


def fit_multiclass(
    X: Float[Tensor, "layers n d"], y: Int[Tensor, " n"], n_classes: int, *, C: float = 1.0, max_iter: int = 200
) -> tuple[Float[Tensor, "layers d k"], Float[Tensor, "layers k"]]:
    """Softmax regression over ``n_classes`` per layer, one L-BFGS run. Predict with
    ``argmax(X @ W + b)``."""
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must be in [0, {n_classes}), got [{int(y.min())}, {int(y.max())}]")
    X = X.float()
    scaler = Standardizer(X)
    Z = scaler(X)
    L, n, d = Z.shape
    W = torch.zeros(L, d, n_classes, device=Z.device, requires_grad=True)
    b = torch.zeros(L, n_classes, device=Z.device, requires_grad=True)
    target = y.to(Z.device).repeat(L)

    def closure():
        W.grad = b.grad = None
        with torch.enable_grad():
            logits = torch.einsum("lnd,ldk->lnk", Z, W) + b[:, None]
            loss = C * torch.nn.functional.cross_entropy(logits.reshape(L * n, -1), target, reduction="sum") + 0.5 * (W * W).sum()
            loss.backward()
        return loss

    with torch.inference_mode(False), torch.enable_grad():
        _lbfgs([W, b], closure, max_iter, scale=C * n)
    return scaler.to_raw(W.detach(), b.detach())


@dataclass
class CCSProbe:
    """A CCS probe per layer with the normaliser of the rows it was fitted on: each side's mean
    and mean norm. :meth:`scores` applies that training normaliser to new rows (normalising a
    test set by its own statistics would let the test rows shape the probe)."""

    w: Float[Tensor, "layers d"]
    b: Float[Tensor, " layers"]
    pos_mean: Float[Tensor, "layers 1 d"]
    pos_scale: Float[Tensor, "layers 1 1"]
    neg_mean: Float[Tensor, "layers 1 d"]
    neg_scale: Float[Tensor, "layers 1 1"]

    def scores(self, X_pos: Float[Tensor, "layers n d"], X_neg: Float[Tensor, "layers n d"]) -> Float[Tensor, "layers n"]:
        """``[layers, n]`` truth scores: the mean of p(x+) and 1 - p(x-)."""
        P = (X_pos.float() - self.pos_mean) / self.pos_scale
        N = (X_neg.float() - self.neg_mean) / self.neg_scale
        p1 = torch.sigmoid(torch.einsum("lnd,ld->ln", P, self.w) + self.b[:, None])
        p0 = torch.sigmoid(torch.einsum("lnd,ld->ln", N, self.w) + self.b[:, None])
        return 0.5 * (p1 + 1 - p0)


def _ccs_normaliser(X: Tensor) -> tuple[Tensor, Tensor]:
    mean = X.mean(1, keepdim=True)
    return mean, (X - mean).norm(dim=-1).mean(1, keepdim=True)[..., None].clamp_min(1e-6)


def fit_ccs(
    X_pos: Float[Tensor, "layers n d"], X_neg: Float[Tensor, "layers n d"], *, restarts: int = 5, steps: int = 500,
    lr: float = 1e-2, seed: int = 0,
) -> CCSProbe:
    """CCS (Burns et al. 2022) on contrast pairs, per layer, keeping the restart with the lowest loss.
    Each side is normalised by its own training mean and scale; the returned :class:`CCSProbe`
    keeps that normaliser and applies it to the rows it scores."""
    gen = torch.Generator().manual_seed(seed)
    X_pos, X_neg = X_pos.float(), X_neg.float()
    (pm, ps), (nm, ns) = _ccs_normaliser(X_pos), _ccs_normaliser(X_neg)
    P, N = (X_pos - pm) / ps, (X_neg - nm) / ns
    L, n, d = P.shape
    best_w = torch.zeros(L, d)
    best_b = torch.zeros(L)
    best_loss = torch.full((L,), float("inf"))
    for _ in range(restarts):
        w = (torch.randn(L, d, generator=gen) / d**0.5).to(P.device).requires_grad_(True)
        b = torch.zeros(L, device=P.device, requires_grad=True)
        opt = torch.optim.Adam([w, b], lr=lr)
        with torch.inference_mode(False), torch.enable_grad():
            for _ in range(steps):
                p1 = torch.sigmoid(torch.einsum("lnd,ld->ln", P, w) + b[:, None])
                p0 = torch.sigmoid(torch.einsum("lnd,ld->ln", N, w) + b[:, None])
                per_layer = ((p1 - (1 - p0)) ** 2).mean(1) + (torch.minimum(p1, p0) ** 2).mean(1)
                opt.zero_grad()
                per_layer.sum().backward()
                opt.step()
        better = per_layer.detach().cpu() < best_loss
        best_loss = torch.where(better, per_layer.detach().cpu(), best_loss)
        best_w[better], best_b[better] = w.detach().cpu()[better], b.detach().cpu()[better]
    return CCSProbe(best_w.to(P.device), best_b.to(P.device), pm, ps, nm, ns)


def ccs_scores(probe: CCSProbe, X_pos: Tensor, X_neg: Tensor) -> Tensor:
    """``[layers, n]`` CCS truth scores of ``probe`` (its training normaliser applied)."""
    return probe.scores(X_pos, X_neg)
