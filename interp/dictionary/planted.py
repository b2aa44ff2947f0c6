"""A planted benchmark that can fail: crosscoder latent classes against ground truth in data
shaped like residual streams, scored over every latent a class is given to.

:class:`PlantedStreams` (its defaults were fixed before the benchmark was first run):

- 256 features in 64 dimensions (4x more features than dimensions), each a unit direction;
- a mean offset: each model's stream carries a mean of norm 8 (the aligned mean is the base
  mean plus a shift of norm 1), about 93% of the squared norm (the default pair's middle layers:
  92%);
- Zipf frequencies: the feature of rank r (ranks shuffled over kinds) fires with probability
  ``0.4 r^-0.8`` (0.40 down to 0.0047); "common" is the more frequent half, "rare" the other
  (by the frequency with co-occurrence);
- magnitudes uniform in 0.5-1.5, Gaussian noise 0.02 per dimension;
- kinds: 55% shared (one direction, the same scale in both models), 15% shared with one model
  (at random) at 0.4-0.7 of the scale, 10% base-only, 10% aligned-only, and 10% aligned-only
  *entangled*: it fires only together with a partner shared feature (so its own frequency
  holds) and its direction has cosine 0.6 with the partner's, so the base carries part of its
  direction wherever it fires (the setting of Latent Scaling's artefacts, Minder et al. 2025);
- co-occurrence: 16 pairs of shared features where the second also fires with probability 0.7
  whenever the first does.

The truth classes are ``shared`` (both shared kinds), ``base-only`` and ``aligned-only`` (both
aligned kinds). :func:`class_scores` matches each latent to the planted feature its concatenated
decoder is closest to (cosine, in the scaled space the crosscoder was trained in): a latent's
label is right when that cosine is >= 0.9 and the feature's class is the label. Precision of a
class counts *every* latent labelled with it (dead ones and ones matching nothing included);
recall counts the planted features of the class whose closest latent (cosine >= 0.9) carries
the label; recovery (cosine >= 0.9) is given for common and rare features apart. Everything is
reported before and after Latent Scaling.

Example::

    result = planted_streams_benchmark(PlantedStreams())      # BatchTopK crosscoder, width 512
    result["after_scaling"]["aligned-only"]["precision"]
"""

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from interp.dictionary.analysis import latent_classes, latent_scaling
from interp.dictionary.data import scale_factors
from interp.dictionary.models import Crosscoder
from interp.dictionary.train import TrainConfig, train_dictionary

__all__ = ["PlantedStreams", "class_scores", "planted_streams_benchmark"]

KINDS = ("shared", "shared-weaker", "base-only", "aligned-only", "aligned-only-entangled")
TRUTH = {"shared": "shared", "shared-weaker": "shared", "base-only": "base-only", "aligned-only": "aligned-only",
         "aligned-only-entangled": "aligned-only"}


@dataclass
class PlantedStreams:
    """Planted features for two models in streams with a mean, rare and co-occurring features.

    Attributes:
        d_model: activation width.
        n_features: planted features.
        shares: fractions of ``KINDS`` (shared, shared-weaker, base-only, aligned-only, entangled).
        weaker_scale: the weaker model's scale for ``shared-weaker`` (uniform in this range).
        p_max, zipf: the feature of rank r fires with probability ``p_max * r ** -zipf``.
        mean_norm, mean_shift: the base mean's norm; the norm of the aligned mean's shift from it.
        entangled_cos: cosine of an entangled feature's direction with its partner's.
        co_pairs, co_prob: pairs of shared features where the second fires with probability
            ``co_prob`` whenever the first does.
        noise: Gaussian noise per dimension.
    """

    d_model: int = 64
    n_features: int = 256
    shares: tuple[float, float, float, float, float] = (0.55, 0.15, 0.10, 0.10, 0.10)
    weaker_scale: tuple[float, float] = (0.4, 0.7)
    p_max: float = 0.4
    zipf: float = 0.8
    mean_norm: float = 8.0
    mean_shift: float = 1.0
    entangled_cos: float = 0.6
    co_pairs: int = 16
    co_prob: float = 0.7
    noise: float = 0.02
    seed: int = 0
    kinds: list[str] = field(init=False)
    classes: list[str] = field(init=False)
    directions: Tensor = field(init=False)  # [n_features, 2, d]: each model's direction times its scale
    p: Tensor = field(init=False)  # [n_features]: the Zipf firing probability
    freq: Tensor = field(init=False)  # [n_features]: the firing probability with co-occurrence

    def __post_init__(self) -> None:
        if len(self.shares) != len(KINDS) or abs(sum(self.shares) - 1) > 1e-6 or min(self.shares) < 0:
            raise ValueError(f"shares: {len(KINDS)} non-negative fractions of {KINDS} summing to 1, got {self.shares}")
        if self.d_model < 2 or self.n_features < 8 or not 0 < self.p_max <= 1 or not 0 <= self.entangled_cos < 1:
            raise ValueError(f"PlantedStreams: d_model >= 2, n_features >= 8, p_max in (0, 1], entangled_cos in [0, 1); "
                             f"got {self.d_model}, {self.n_features}, {self.p_max}, {self.entangled_cos}")
        g = torch.Generator().manual_seed(self.seed)
        n, d = self.n_features, self.d_model
        counts = [math.floor(s * n) for s in self.shares]
        counts[0] += n - sum(counts)
        self.kinds = [k for k, c in zip(KINDS, counts) for _ in range(c)]
        self.classes = [TRUTH[k] for k in self.kinds]
        self.p = self.p_max * (torch.randperm(n, generator=g) + 1.0) ** -self.zipf
        unit = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=-1)
        dirs = torch.zeros(n, 2, d)
        shared = [i for i, k in enumerate(self.kinds) if k == "shared"]
        self.partner = torch.full((n,), -1, dtype=torch.long)
        lo, hi = self.weaker_scale
        for i, kind in enumerate(self.kinds):
            if kind in ("shared", "shared-weaker"):
                dirs[i, 0] = dirs[i, 1] = unit[i]
                if kind == "shared-weaker":
                    dirs[i, int(torch.randint(0, 2, (1,), generator=g))] *= lo + (hi - lo) * float(torch.rand(1, generator=g))
            elif kind == "base-only":
                dirs[i, 0] = unit[i]
            elif kind == "aligned-only":
                dirs[i, 1] = unit[i]
            else:  # entangled: a partner shared feature at least as frequent, direction partly along it
                able = [j for j in shared if self.p[j] >= self.p[i]] or [max(shared, key=lambda j: float(self.p[j]))]
                j = able[int(torch.randint(0, len(able), (1,), generator=g))]
                self.partner[i] = j
                w = unit[i] - (unit[i] @ unit[j]) * unit[j]
                c = self.entangled_cos
                dirs[i, 1] = c * unit[j] + math.sqrt(1 - c * c) * w / w.norm()
        self.directions = dirs
        free = [j for j in shared if j not in set(self.partner.tolist())]
        order = torch.randperm(len(free), generator=g)[: 2 * self.co_pairs].tolist()
        self.pairs = [(free[order[2 * t]], free[order[2 * t + 1]]) for t in range(len(order) // 2)]
        self.freq = self.p.clone()  # the firing probability with the co-occurrence: a follower also fires with its lead
        for lead, follow in self.pairs:
            self.freq[follow] = self.p[follow] + (1 - self.p[follow]) * self.co_prob * self.p[lead]
        b = torch.nn.functional.normalize(torch.randn(d, generator=g), dim=0)
        shift = torch.nn.functional.normalize(torch.randn(d, generator=g), dim=0)
        self.means = torch.stack([self.mean_norm * b, self.mean_norm * b + self.mean_shift * shift])
        self._gen = torch.Generator().manual_seed(self.seed + 1)

    def codes(self, size: int) -> Tensor:
        """``[size, n_features]`` magnitudes (0 where a feature is off)."""
        g = self._gen
        active = torch.rand(size, self.n_features, generator=g) < self.p
        for i in torch.nonzero(self.partner >= 0).flatten().tolist():  # entangled: only with the partner
            j = int(self.partner[i])
            active[:, i] = active[:, j] & (torch.rand(size, generator=g) < float(self.p[i] / self.p[j]))
        for lead, follow in self.pairs:
            active[:, follow] |= active[:, lead] & (torch.rand(size, generator=g) < self.co_prob)
        return active * (0.5 + torch.rand(size, self.n_features, generator=g))

    def batch(self, size: int) -> Tensor:
        """``[size, 2, d_model]`` activations (unscaled: the mean included)."""
        x = torch.einsum("bf,fmd->bmd", self.codes(size), self.directions) + self.means
        return x + self.noise * torch.randn(x.shape, generator=self._gen)

    def common(self) -> Tensor:
        """``[n_features]`` bool: the more frequent half (by ``freq``)."""
        return self.freq >= self.freq.median()


@torch.no_grad()
def class_scores(model: Crosscoder, data: PlantedStreams, classes, *, scale: Tensor | None = None,
                 column: str = "class", min_cos: float = 0.9) -> dict:
    """Precision and recall per class of the labels in ``classes[column]`` (one row per latent,
    as :func:`latent_classes` / :func:`latent_scaling` give), and planted-feature recovery overall,
    common and rare. ``scale``: the per-model factor the training rows were multiplied by."""
    scale = torch.ones(2) if scale is None else scale.float().cpu()
    planted = (data.directions * scale[None, :, None]).reshape(data.n_features, -1)
    planted = planted / planted.norm(dim=-1, keepdim=True)
    learned = model.W_dec.detach().float().cpu().reshape(model.width, -1)
    learned = learned / learned.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    cos = planted @ learned.T  # [features, latents]
    feat_best, feat_latent = cos.max(1)
    lat_best, lat_feature = cos.max(0)
    label = dict(zip(classes.latent.tolist(), classes[column].tolist()))
    truth = data.classes
    out: dict = {}
    for c in ("shared", "base-only", "aligned-only"):
        labelled = [j for j in range(model.width) if label[j] == c]
        right = [j for j in labelled if bool(lat_best[j] >= min_cos) and truth[int(lat_feature[j])] == c]
        planted_c = [i for i in range(data.n_features) if truth[i] == c]
        found = [i for i in planted_c if bool(feat_best[i] >= min_cos) and label[int(feat_latent[i])] == c]
        out[c] = {"labelled": len(labelled), "right": len(right), "matched_nothing": int(sum(bool(lat_best[j] < min_cos) for j in labelled)),
                  "precision": len(right) / len(labelled) if labelled else float("nan"),
                  "planted": len(planted_c), "recall": len(found) / len(planted_c) if planted_c else float("nan")}
    for kind in ("shared-weaker", "aligned-only-entangled"):  # the kinds that test Latent Scaling
        idx = [i for i, k in enumerate(data.kinds) if k == kind]
        out[f"recall_{kind}"] = (sum(bool(feat_best[i] >= min_cos) and label[int(feat_latent[i])] == TRUTH[kind]
                                     for i in idx) / max(1, len(idx)))
    recovered = feat_best >= min_cos
    common = data.common()
    out["recovered"] = float(recovered.float().mean())
    out["recovered_common"] = float(recovered[common].float().mean())
    out["recovered_rare"] = float(recovered[~common].float().mean())
    return out


def planted_streams_benchmark(data: PlantedStreams | None = None, *, l1: bool = False, width: int | None = None,
                              cfg: TrainConfig | None = None, batch_size: int = 1024, held_out_batches: int = 8,
                              progress: bool = False) -> dict:
    """Train a BatchTopK crosscoder (``l1=True``: an L1 crosscoder) of ``width`` (default twice
    the features) on ``data`` scaled as the workflow scales streams (mean squared norm ``d`` per
    side), class its latents, run Latent Scaling on held-out batches and score both labelings."""
    data = data or PlantedStreams()
    width = width or 2 * data.n_features
    scale = scale_factors(data.batch(8192))
    k = None if l1 else max(1, round(float((data.codes(8192) > 0).sum(-1).float().mean())))
    cfg = cfg or TrainConfig(steps=3000, lr=2e-3, warmup=100, dead_after=20 * batch_size, aux_k=32, l1_coeff=0.5)
    model = Crosscoder(data.d_model, width, 2, k, seed=data.seed)

    class _Stream:
        def __iter__(self):
            while True:
                yield data.batch(batch_size) * scale[None, :, None]

    history = train_dictionary(model, _Stream(), cfg, progress=progress)
    held = [data.batch(batch_size) * scale[None, :, None] for _ in range(held_out_batches)]
    classes = latent_scaling(model, held, latent_classes(model))
    fired = torch.zeros(width, dtype=torch.bool)
    with torch.no_grad():
        for x in held:
            fired |= (model.encode(x, batch_rule=False) > 0).any(0)
    return {"kind": "l1" if l1 else "batchtopk", "width": width, "k": k, "steps": cfg.steps, "batch_size": batch_size,
            "final_fve": float(history.fve.iloc[-1]), "final_l0": float(history.l0.iloc[-1]),
            "dead_on_held_out": float((~fired).float().mean()),
            "artefacts": {str(k): int(v) for k, v in classes.artefact.value_counts().items() if k},
            "before_scaling": class_scores(model, data, classes, scale=scale, column="class"),
            "after_scaling": class_scores(model, data, classes, scale=scale, column="final_class")}
