"""Controls that separate *unmasking* from *teaching*, each with the budget of the edit it controls.

The learned rank-``r`` edit (:mod:`interp.unmask.learn`) is trained with gold answers; an edit that
*teaches* would also raise accuracy on facts the base never knew. Per mask, with the main edit's
layer, rank, positions, steps, KL weight and number of train facts:

- ``never_knew``: fitted to make the aligned model answer train facts the base does **not** know
  (and the aligned model masks), scored on held-out facts the base does not know: what it
  "recovers" there it taught;
- ``shuffled``: fitted with the mask's train answers permuted among its facts: held-out facts that
  still come back were not taught (the edit is a mode switch, the knowledge the model's own);
- ``random``: a random edit of the same rank whose ``U``, ``V``, ``b`` have the fitted edit's norms;
- ``unrelated``: fitted on 10 facts of other relations the aligned model already answers (the
  "fine-tune on unrelated facts" baseline of the unlearning literature, Deeb & Roger 2024);
- ``quantized``: the aligned model's decoder weights quantized to 8 bits (row-wise absmax) or
  4 bits (NF4, blocks of 64), by bitsandbytes' own quantizers, and de-quantized in place
  (Zhang et al. 2024: quantization brings back unlearned knowledge).

Example:
    >>> iv = random_like(fit.edits["refused"]["lowrank"], seed=0)      # doctest: +SKIP
    >>> with Quantized(bits=4).applied(pair.aligned): ...              # doctest: +SKIP
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import torch
from transformer_lens.model_bridge import TransformerBridge

from interp.unmask.interventions import Intervention, LowRankEdit, Steering

__all__ = ["CONTROLS", "Quantized", "random_like", "never_knew_facts", "shuffled_answers", "unrelated_facts"]

#: The fitted controls, in the order they are reported.
CONTROLS = ("never_knew", "shuffled", "random", "unrelated")


def random_like(edit: LowRankEdit | Steering, *, seed: int = 0) -> LowRankEdit | Steering:
    """A random edit of ``edit``'s kind, layer, positions and rank whose parameters have the same
    Frobenius norms (Gaussian directions, rescaled)."""
    gen = torch.Generator().manual_seed(seed)

    def like(t: torch.Tensor) -> torch.Tensor:
        r = torch.randn(t.shape, generator=gen)
        n = float(t.float().norm())
        return r * (n / float(r.norm())) if n > 0 else torch.zeros_like(r)

    if isinstance(edit, Steering):
        return Steering(vector=like(edit.vector), layer=edit.layer, positions=edit.positions)
    return LowRankEdit(U=like(edit.U), V=like(edit.V), b=like(edit.b), layer=edit.layer, positions=edit.positions)


def never_knew_facts(pool: pd.DataFrame, like: pd.DataFrame, n: int, *, seed: int = 0) -> pd.DataFrame:
    """``n`` facts from ``pool`` (train facts the base does not know that the aligned model masks),
    with ``like``'s relation mix where the pool allows (the rest from any relation of the pool)."""
    if len(pool) < n:
        raise ValueError(f"the never-knew control needs {n} train facts the base does not know and the aligned model "
                         f"masks, found {len(pool)}; lower the number of train facts or add facts")
    picked = []
    for rel, k in like.relation.value_counts().items():
        part = pool[pool.relation == rel]
        picked.append(part.sample(min(k, len(part)), random_state=seed))
    got = pd.concat(picked) if picked else pool.head(0)
    rest = pool[~pool.id.isin(got.id)]
    return pd.concat([got, rest.sample(n - len(got), random_state=seed)]) if len(got) < n else got


def shuffled_answers(answers: Sequence[str], *, seed: int = 0) -> list[str]:
    """``answers`` permuted so that (where two answers differ) no fact keeps its own answer."""
    answers = list(answers)
    if len(set(answers)) < 2:
        raise ValueError("the shuffled-targets control needs at least two different answers")
    gen = torch.Generator().manual_seed(seed)
    for _ in range(1000):
        perm = torch.randperm(len(answers), generator=gen).tolist()
        out = [answers[i] for i in perm]
        if all(a != b for a, b in zip(out, answers)):
            return out
    # rare (many repeated answers): a rotation, sorted so equal answers are neighbours
    order = sorted(range(len(answers)), key=lambda i: answers[i])
    out = list(answers)
    for j, i in enumerate(order):
        out[i] = answers[order[(j + len(order) // 2) % len(order)]]
    return out


def unrelated_facts(answered: pd.DataFrame, exclude_relations: Sequence[str], n: int = 10, *, seed: int = 0) -> pd.DataFrame:
    """``n`` facts the aligned model answers, of relations other than ``exclude_relations``."""
    pool = answered[~answered.relation.isin(list(exclude_relations))]
    if len(pool) < n:
        raise ValueError(f"the unrelated-facts control needs {n} answered train facts outside relations "
                         f"{sorted(set(exclude_relations))}, found {len(pool)}")
    return pool.sample(n, random_state=seed)


@dataclass
class Quantized(Intervention):
    """The aligned model's decoder-layer linear weights quantized to ``bits`` (8: row-wise absmax
    int8; 4: NF4 in blocks of 64) with bitsandbytes' quantizers and de-quantized in place; restored
    on exit. A weight-level baseline, not an activation edit (``rank`` is ``None``)."""

    bits: int = 4

    def __post_init__(self) -> None:
        if self.bits not in (4, 8):
            raise ValueError(f"Quantized: bits must be 4 or 8, got {self.bits}")
        self.method = "quantized"

    @property
    def setting(self) -> str:
        return f"{self.bits}-bit ({'NF4, blocks of 64' if self.bits == 4 else 'int8 row-wise absmax'})"

    @property
    def rank(self) -> None:
        return None

    def _weights(self, model: TransformerBridge) -> list[torch.Tensor]:
        from interp.runtime import arch_of

        out = []
        for layer in arch_of(model).layers:
            out += [m.weight for m in layer.modules() if isinstance(m, torch.nn.Linear)]
        return out

    @contextmanager
    def applied(self, model: TransformerBridge) -> Iterator[TransformerBridge]:
        try:
            import bitsandbytes.functional as bnbf
        except ImportError as e:  # pragma: no cover - the [quant] extra is installed by make
            raise ImportError("the quantization baseline needs bitsandbytes: pip install 'interp[quant]'") from e
        weights = self._weights(model)
        saved = [w.detach().clone() for w in weights]
        try:
            with torch.no_grad():
                for w in weights:
                    x = w.detach().float().cpu()
                    if self.bits == 4:
                        q, state = bnbf.quantize_4bit(x, blocksize=64, quant_type="nf4")
                        y = bnbf.dequantize_4bit(q, state)
                    else:
                        codes, scale, _ = bnbf.int8_vectorwise_quant(x)
                        y = codes.float() * scale.float().unsqueeze(1) / 127.0
                    w.copy_(y.to(w.device, w.dtype))
            yield model
        finally:
            with torch.no_grad():
                for w, keep in zip(weights, saved):
                    w.copy_(keep)
