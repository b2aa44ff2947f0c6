"""Sparse dictionaries over residual streams: a BatchTopK SAE and a BatchTopK / L1 crosscoder.

An SAE reads one model's activations ``x [batch, d]``; a crosscoder reads the same token's
activations in several models ``x [batch, n_models, d]`` (here: base and aligned) into one shared
latent space, with an encoder and a decoder per model (Lindsey et al. 2024). BatchTopK keeps the
``k * batch`` largest latent activations of the whole batch (a latent's value is weighted by its
decoder norm, summed over models, when choosing); after training a single threshold replaces the
batch rule so that inference is per token (Bussmann et al. 2024; Minder et al. 2025). The L1
crosscoder uses a ReLU and an L1 penalty weighted by the decoder norms instead (its artefacts are
what Latent Scaling was made to detect).

Decoder rows are kept at unit norm per model for SAEs; crosscoders keep the sum over models of
the per-model norms at most 1 after each step, so relative decoder norms stay meaningful.

Dictionaries read from other tools (:mod:`interp.dictionary.io`) may carry what sae-lens and
dictionary_learning define and interp's training never sets: per-latent JumpReLU thresholds
(``jump_threshold``: a latent is kept where its pre-activation exceeds its threshold), an encoder
that reads ``x`` rather than ``x - b_dec`` (``apply_b_dec_to_input = False``) and a per-token
input normalisation (``input_norm``, undone on the reconstruction: ``decode(f, like=x)``).

Example::

    cc = Crosscoder(d_model=640, width=4096, n_models=2, k=32)
    recon, latents = cc(x)            # x [batch, 2, 640]
"""

import torch
from jaxtyping import Float
from torch import Tensor, nn

__all__ = ["BatchTopKSAE", "Crosscoder"]


def _batch_topk(pre: Tensor, score: Tensor, k: int) -> Tensor:
    """Keep the ``k * batch`` entries of ``pre`` with the largest ``score`` in the whole batch."""
    flat = score.flatten()
    n = min(flat.numel(), k * pre.shape[0])
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[flat.topk(n, sorted=False).indices] = True
    return pre * keep.view_as(pre)


class Crosscoder(nn.Module):
    """Shared latents for ``n_models`` streams of width ``d_model``.

    Args:
        d_model: residual-stream width.
        width: number of latents.
        n_models: models read (2: base and aligned; 1 makes it an SAE).
        k: active latents per token on average (BatchTopK); ``None`` for the L1 variant.
    """

    def __init__(self, d_model: int, width: int, n_models: int = 2, k: int | None = 32, *, seed: int = 0):
        super().__init__()
        if width < 1 or d_model < 1 or n_models < 1:
            raise ValueError(f"d_model, width and n_models must be positive, got {d_model}, {width}, {n_models}")
        if k is not None and not 1 <= k <= width:
            raise ValueError(f"k must be in [1, width={width}], got {k}")
        g = torch.Generator().manual_seed(seed)
        W_dec = torch.randn(width, n_models, d_model, generator=g)
        W_dec = W_dec / W_dec.norm(dim=-1, keepdim=True) / n_models * 0.5
        self.W_dec = nn.Parameter(W_dec)
        self.W_enc = nn.Parameter(W_dec.permute(1, 2, 0).clone() * n_models)  # [n_models, d, width]
        self.b_enc = nn.Parameter(torch.zeros(width))
        self.b_dec = nn.Parameter(torch.zeros(n_models, d_model))
        self.k = k
        self.per_token = False  # True: top-k per token at inference (sae-lens "topk" SAEs)
        self.register_buffer("threshold", torch.tensor(float("nan")))  # set after training (BatchTopK)
        self.register_buffer("jump_threshold", None)  # [width]: JumpReLU (sae-lens "jumprelu"), per latent
        self.apply_b_dec_to_input = True  # sae-lens's flag: the encoder reads x - b_dec (False: x)
        self.input_norm = "none"  # sae-lens's per-token normalize_activations: "layer_norm" | "constant_norm_rescale"
        self.d_model, self.width, self.n_models = d_model, width, n_models

    def decoder_norms(self) -> Float[Tensor, "width n_models"]:
        return self.W_dec.norm(dim=-1)

    def pre_acts(self, x: Float[Tensor, "batch n_models d_model"]) -> Float[Tensor, "batch width"]:
        x = self.normalise_input(x)
        x = x - self.b_dec if self.apply_b_dec_to_input else x
        return torch.relu(torch.einsum("bmd,mdw->bw", x, self.W_enc) + self.b_enc)

    def normalise_input(self, x: Tensor) -> Tensor:
        """``x`` as the encoder reads it under ``input_norm`` (sae-lens's run-time normalisations,
        per token: ``constant_norm_rescale`` scales each row to norm sqrt(d); ``layer_norm``
        centres it and divides by its standard deviation + 1e-5)."""
        if self.input_norm == "none":
            return x
        if self.input_norm == "constant_norm_rescale":
            return x * (self.d_model**0.5 / x.norm(dim=-1, keepdim=True))
        centred = x - x.mean(-1, keepdim=True)
        return centred / (centred.std(dim=-1, keepdim=True) + 1e-5)

    def denormalise_output(self, r: Tensor, x: Tensor) -> Tensor:
        """A reconstruction ``r`` in the normalised space mapped back to ``x``'s (sae-lens's
        ``run_time_activation_norm_fn_out``); the identity when ``input_norm`` is ``"none"``."""
        if self.input_norm == "none":
            return r
        if self.input_norm == "constant_norm_rescale":
            return r / (self.d_model**0.5 / x.norm(dim=-1, keepdim=True))
        mu = x.mean(-1, keepdim=True)
        return r * (x - mu).std(dim=-1, keepdim=True) + mu

    def encode(self, x: Float[Tensor, "batch n_models d_model"], *, batch_rule: bool | None = None) -> Float[Tensor, "batch width"]:
        """Latent activations. BatchTopK during training (``batch_rule``, default: in train mode),
        the fitted threshold at inference (per token, no batch dependence)."""
        pre = self.pre_acts(x)
        if self.jump_threshold is not None:  # JumpReLU: per-latent thresholds on the pre-activation
            return pre * (pre > self.jump_threshold)
        if self.k is None:
            return pre
        use_batch = self.training if batch_rule is None else batch_rule
        if self.per_token and not use_batch:
            vals, idx = pre.topk(self.k, dim=-1)
            return torch.zeros_like(pre).scatter(-1, idx, vals)
        if use_batch or torch.isnan(self.threshold):
            return self.batch_rule(pre)
        return pre * (self.weighted(pre) > self.threshold)

    def weighted(self, pre: Tensor) -> Tensor:
        """Pre-activations weighted by the latents' summed decoder norms (what BatchTopK ranks)."""
        return pre * self.decoder_norms().sum(-1)

    def batch_rule(self, pre: Tensor) -> Tensor:
        """The training rule on pre-activations ``[batch, width]``: the ``k * batch`` largest
        weighted entries of the batch kept, the rest zero."""
        return _batch_topk(pre, self.weighted(pre), self.k)

    def decode(self, f: Float[Tensor, "batch width"], like: Tensor | None = None) -> Float[Tensor, "batch n_models d_model"]:
        """The reconstruction of ``f``; with a per-token ``input_norm`` the activations that were
        encoded (``like``) map it back to their scale."""
        r = torch.einsum("bw,wmd->bmd", f, self.W_dec) + self.b_dec
        if self.input_norm == "none":
            return r
        if like is None:
            raise ValueError(f"this dictionary normalises each token (normalize_activations={self.input_norm!r}): pass "
                             "decode(f, like=x) with the activations that were encoded, or call model(x)")
        return self.denormalise_output(r, like.unsqueeze(1) if like.dim() == 2 else like)

    def batch_topk_sparse(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The training rule's active latents as ``(pre, rows, cols, vals)``: the ``k * batch``
        largest weighted pre-activations of the batch, sorted by row (``vals`` keep the graph)."""
        x = x.unsqueeze(1) if x.dim() == 2 else x
        pre = self.pre_acts(x)  # [B, W]
        B, W = pre.shape
        score = self.weighted(pre).flatten()
        n = min(score.numel(), int(self.k) * B)
        idx = score.topk(n, sorted=False).indices.sort().values  # row-major: grouped by row
        return pre, idx // W, idx % W, pre.flatten()[idx]

    def decode_sparse(self, rows: Tensor, cols: Tensor, vals: Tensor, batch: int) -> Tensor:
        """``decode`` of a sparse code (``rows, cols, vals`` sorted by row): gathers the ``k``
        active decoder rows per token instead of a dense ``[batch, width] @ [width, d]`` product."""
        counts = torch.bincount(rows, minlength=batch)
        offsets = torch.cumsum(counts, 0) - counts
        flat = self.W_dec.reshape(self.width, -1)
        out = torch.nn.functional.embedding_bag(cols, flat, offsets, mode="sum", per_sample_weights=vals)
        return out.view(batch, self.n_models, self.d_model) + self.b_dec

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.encode(x)
        return self.decode(f, like=x), f

    @torch.no_grad()
    def fit_threshold(self, batches) -> float:
        """The inference threshold: the mean over batches of the smallest kept (weighted) value
        under the batch rule."""
        vals = []
        for x in batches:
            pre = self.pre_acts(x)
            score = self.weighted(pre)
            kept = _batch_topk(pre, score, self.k) > 0
            if kept.any():
                vals.append(score[kept].min())
        self.threshold.fill_(float(torch.stack(vals).mean()) if vals else 0.0)
        return float(self.threshold)

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        """Decoder norms summed over models at most 1 per latent (SAE: exactly 1)."""
        total = self.decoder_norms().sum(-1, keepdim=True).clamp_min(1e-8)  # [width, 1]
        scale = (1.0 / total).clamp(max=1.0) if self.n_models > 1 else 1.0 / total
        self.W_dec.mul_(scale.unsqueeze(-1))


class BatchTopKSAE(Crosscoder):
    """A BatchTopK SAE on one model's stream: a crosscoder with one model, ``x [batch, d]``."""

    def __init__(self, d_model: int, width: int, k: int = 32, *, seed: int = 0):
        super().__init__(d_model, width, n_models=1, k=k, seed=seed)

    def encode(self, x: Tensor, *, batch_rule: bool | None = None) -> Tensor:
        return super().encode(x.unsqueeze(1) if x.dim() == 2 else x, batch_rule=batch_rule)

    def decode(self, f: Tensor, like: Tensor | None = None) -> Tensor:
        return super().decode(f, like)[:, 0]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.encode(x)
        return self.decode(f, like=x), f

    def pre_acts(self, x: Tensor) -> Tensor:
        return super().pre_acts(x.unsqueeze(1) if x.dim() == 2 else x)
