"""Planted ground truth for crosscoders: sparse features, some in both models (with equal or
different scales), some in one model only; activations are their sums plus noise.

``planted_benchmark`` trains a crosscoder on such data and reports the share of planted features
recovered (a latent whose concatenated decoder has cosine >= 0.9 with the feature) and the share
of recovered ones whose class after Latent Scaling is the planted one.

Example::

    data = PlantedData(d_model=64, n_features=96)
    result = planted_benchmark(data)     # {"planted_recovered": ..., "planted_class_accuracy": ...}
"""

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from interp.dictionary.analysis import latent_classes, latent_scaling
from interp.dictionary.models import Crosscoder
from interp.dictionary.train import TrainConfig, train_dictionary

__all__ = ["PlantedData", "planted_benchmark"]


@dataclass
class PlantedData:
    """Sparse planted features for two models.

    Attributes:
        d_model: activation width.
        n_features: planted features.
        shares: fraction shared with equal scale / shared with a different scale / base-only / aligned-only.
        scale_range: the other model's scale for "shared, different scale" (uniform in this range).
        p_active: probability that a feature is active on a token.
        noise: Gaussian noise per dimension.
    """

    d_model: int = 64
    n_features: int = 96
    shares: tuple[float, float, float, float] = (0.6, 0.2, 0.1, 0.1)
    scale_range: tuple[float, float] = (0.4, 0.7)
    p_active: float = 0.04
    noise: float = 0.01
    seed: int = 0
    classes: list[str] = field(init=False)
    directions: Tensor = field(init=False)  # [n_features, 2, d]

    def __post_init__(self) -> None:
        g = torch.Generator().manual_seed(self.seed)
        n = self.n_features
        counts = [math.floor(s * n) for s in self.shares]
        counts[0] += n - sum(counts)
        kinds = ["shared"] * counts[0] + ["shared-scaled"] * counts[1] + ["base-only"] * counts[2] + ["aligned-only"] * counts[3]
        u = torch.randn(n, 2, self.d_model, generator=g)
        u = u / u.norm(dim=-1, keepdim=True)
        scale = torch.ones(n, 2)
        lo, hi = self.scale_range
        for i, kind in enumerate(kinds):
            if kind in ("shared", "shared-scaled"):
                u[i, 1] = u[i, 0]  # the same direction in both models
            if kind == "shared-scaled":
                scale[i, int(torch.randint(0, 2, (1,), generator=g))] = lo + (hi - lo) * float(torch.rand(1, generator=g))
            elif kind == "base-only":
                scale[i, 1] = 0.0
            elif kind == "aligned-only":
                scale[i, 0] = 0.0
        self.directions = u * scale[:, :, None]
        self.classes = ["shared" if k.startswith("shared") else k for k in kinds]
        self._gen = torch.Generator().manual_seed(self.seed + 1)

    def batch(self, size: int) -> Tensor:
        """``[size, 2, d_model]`` activations."""
        active = torch.rand(size, self.n_features, generator=self._gen) < self.p_active
        mag = 0.5 + torch.rand(size, self.n_features, generator=self._gen)
        f = active * mag
        x = torch.einsum("bf,fmd->bmd", f, self.directions)
        return x + self.noise * torch.randn(x.shape, generator=self._gen)

    def batches(self, size: int, n: int):
        return [self.batch(size) for _ in range(n)]


def planted_benchmark(data: PlantedData | None = None, *, width: int | None = None, k: int | None = None,
                      l1: bool = False, cfg: TrainConfig | None = None, batch_size: int = 1024,
                      progress: bool = False) -> dict:
    """Train a BatchTopK crosscoder (``l1=True``: an L1 crosscoder) on ``data`` and score it against
    the planted features."""
    data = data or PlantedData()
    width = width or 2 * data.n_features
    k = None if l1 else (k or max(1, round(data.p_active * data.n_features)))
    cfg = cfg or TrainConfig(steps=3000, lr=2e-3, warmup=100, dead_after=20 * batch_size, aux_k=32, l1_coeff=0.5)
    model = Crosscoder(data.d_model, width, 2, k, seed=data.seed)

    class _Stream:
        def __iter__(self):
            while True:
                yield data.batch(batch_size)

    history = train_dictionary(model, _Stream(), cfg, progress=progress)
    held_out = data.batches(batch_size, 8)
    classes = latent_scaling(model, held_out, latent_classes(model))
    planted = data.directions.reshape(data.n_features, -1)
    planted = planted / planted.norm(dim=-1, keepdim=True)
    learned = model.W_dec.detach().reshape(width, -1)
    learned = learned / learned.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    cos = planted @ learned.T  # [features, latents]
    best, which = cos.max(1)
    recovered = best >= 0.9
    final = classes.set_index("latent")["final_class"]
    raw = classes.set_index("latent")["class"]
    right = [final[int(j)] == data.classes[i] for i, j in enumerate(which.tolist()) if recovered[i]]
    right_raw = [raw[int(j)] == data.classes[i] for i, j in enumerate(which.tolist()) if recovered[i]]
    return {"planted_recovered": float(recovered.float().mean()),
            "planted_class_accuracy": float(sum(right) / max(1, len(right))),
            "planted_class_accuracy_before_scaling": float(sum(right_raw) / max(1, len(right_raw))),
            "final_fve": float(history.fve.iloc[-1]), "final_l0": float(history.l0.iloc[-1]),
            "width": width, "k": k, "kind": "l1" if l1 else "batchtopk", "steps": cfg.steps}
