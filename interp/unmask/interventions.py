"""Interventions on the aligned model, one interface: ``with intervention.applied(model): ...``.

Each intervention installs hooks on (or edits the weights of) the aligned model for the duration of
a ``with`` block and restores the model on exit, or changes the prompt the model sees
(:meth:`Intervention.format`). The unmasking measure (:mod:`interp.unmask.measure`) generates under
each one and classifies the answers.

============  ========================================================  ==========================
method        what it does                                              activation-space rank
============  ========================================================  ==========================
none          the aligned model as it is                                0
direction     one direction projected out at every layer and position   1
subspace      a k-dimensional subspace projected out likewise           k
steering      a learned vector added to the residual entering a layer   1
lowrank       a learned rank-r affine edit ``x + U (V^T x + b)``        r
weights       the base's weights restored for some layers / matrices    (where, not how small)
patch         the base's residual patched in at layers x positions      (where, not how small)
prefill       the response opened with a fixed prefix                  (a prompt baseline)
few_shot      the base's few-shot prompt instead of the chat template  (a prompt baseline)
============  ========================================================  ==========================

The localisation interventions (``weights``, ``patch``) live in :mod:`interp.unmask.localise`, the
prompt baselines in :mod:`interp.unmask.baselines`.

Example:
    >>> iv = Steering(vector, layer=6)                          # doctest: +SKIP
    >>> with iv.applied(pair.aligned):                          # doctest: +SKIP
    ...     generate(pair.aligned, iv.format(pair, questions))  # doctest: +SKIP
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from interp.models import ModelPair
from interp.patching.directions import ablated
from interp.patching.directions import after_first as _after_first
from interp.prompts import format_prompt
from interp.runtime import arch_of, check_layer, on_layer_input
from interp.runtime.conventions import is_decoding_step
from interp.runtime.forward import in_cell_layout

__all__ = [
    "Intervention", "NoIntervention", "Ablation", "Steering", "LowRankEdit", "side_prompts", "after_first", "check_layer",
    "describe", "edit_mask", "scoring", "rms_normalised", "EDIT_POSITIONS",
]

def side_prompts(pair: ModelPair, side: str, questions: Sequence[str]) -> list[str]:
    """``questions`` formatted as ``side`` of ``pair`` formats prompts (its chat template, or plain)."""
    if pair.style(side) == "chat":
        tok = pair.side(side).tokenizer
        return [format_prompt(q, style="chat", tokenizer=tok) for q in questions]
    return [format_prompt(q, style="plain") for q in questions]


def describe(iv: "Intervention") -> str:
    """``iv.setting``, prefixed with the ``label`` a caller gave it (e.g. the mask it was fitted for)."""
    label, setting = getattr(iv, "label", ""), iv.setting
    return setting if not label or setting.startswith(label) else f"{label}: {setting}"


def after_first(kwargs: dict, x: Tensor, *, prompt_only: bool = False) -> Tensor:
    """``[batch, pos]``: 1 at positions after each row's first real token, 0 at it (see
    :func:`interp.patching.directions.after_first`). ``prompt_only``: 0 everywhere in a decoding
    step (one new token after a cache), so an edit acts on the prompt and the generated tokens
    only read the edited prompt."""
    if prompt_only and is_decoding_step(x, kwargs):
        return torch.zeros(x.shape[:-1], device=x.device, dtype=x.dtype)
    return _after_first(kwargs, x)


@dataclass
class Intervention:
    """The interface (subclasses below). ``method`` names the family, ``setting`` this instance
    (layer, k, ...), ``rank`` the rank of the activation-space edit (``None`` when the question
    is where, not how small)."""

    method: str = field(default="none", init=False)

    @property
    def setting(self) -> str:
        return ""

    @property
    def rank(self) -> int | None:
        return 0

    def format(self, pair: ModelPair, questions: Sequence[str]) -> list[str]:
        """The prompts the aligned model sees (default: its own format, the chat template)."""
        return side_prompts(pair, "aligned", questions)

    @property
    def changes_prompt(self) -> bool:
        return False

    def prepare(self, pair: ModelPair, questions: Sequence[str], spans: Sequence[str] | None = None) -> None:
        """Compute what the intervention needs for these questions (e.g. the base's activations)."""

    @contextmanager
    def applied(self, model: TransformerBridge) -> Iterator[TransformerBridge]:
        yield model


@dataclass
class NoIntervention(Intervention):
    """The aligned model unchanged (the reference row)."""


@dataclass
class Ablation(Intervention):
    """Project the rows of ``directions`` (``[k, d]`` or ``[d]``) out of the residual stream at
    every layer and position after the first (:func:`interp.patching.ablated`)."""

    directions: Tensor | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if self.directions is None:
            raise ValueError("Ablation needs directions ([k, d_model] or [d_model])")
        self.directions = self.directions.float().reshape(-1, self.directions.shape[-1])
        self.method = "direction" if self.directions.shape[0] == 1 else "subspace"

    @property
    def setting(self) -> str:
        return self.label or f"k={self.rank}"

    @property
    def rank(self) -> int:
        return int(self.directions.shape[0])

    def applied(self, model: TransformerBridge):
        return ablated(model, self.directions)


#: Where a layer edit acts: the last prompt token only, every prompt token after the first, or
#: every position (prompt and generated tokens) after the first.
EDIT_POSITIONS: tuple[str, ...] = ("last", "prompt", "all")


_PROMPT_LAST: ContextVar[Tensor | None] = ContextVar("interp_unmask_prompt_last", default=None)


@contextmanager
def scoring(last: Tensor) -> Iterator[None]:
    """Within the block, layer edits treat ``last`` (``[batch]``: each row's last prompt token) as
    the end of the prompt: for scoring answers appended to prompts (teacher forcing), where the
    forward pass holds more than the prompt."""
    token = _PROMPT_LAST.set(last)
    try:
        yield
    finally:
        _PROMPT_LAST.reset(token)


def edit_mask(kwargs: dict, x: Tensor, positions: str) -> Tensor:
    """``[batch, pos]`` weights of a layer edit (see :data:`EDIT_POSITIONS`). Prompts are
    left-padded, so in a generation's prompt pass the last prompt token is the last column; when
    answers are appended (:func:`scoring`), it is the given position of each row."""
    if positions == "all":
        return after_first(kwargs, x)
    last = _PROMPT_LAST.get()
    if last is not None:
        cols = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
        at_or_before = cols <= last.to(x.device).unsqueeze(1) if positions == "prompt" else cols == last.to(x.device).unsqueeze(1)
        return after_first(kwargs, x) * at_or_before.to(x.dtype)
    if in_cell_layout():
        raise ValueError(f"an edit at positions={positions!r} is active inside a patching sweep, whose rows are "
                         "sweep cells (prompt copies or packed cells), not prompts: the last prompt token cannot be "
                         "found there. Use positions='all' for an edit that composes with sweeps, or apply the edit "
                         "outside the sweep")
    if positions == "prompt":
        return after_first(kwargs, x, prompt_only=True)
    decoding = is_decoding_step(x, kwargs)
    out = torch.zeros(x.shape[:-1], device=x.device, dtype=x.dtype)
    if not decoding:
        out[:, -1] = 1
    return out


@dataclass
class _LayerEdit(Intervention):
    """An edit ``x <- x + delta(x)`` of the residual stream entering ``layer`` at ``positions``
    (:data:`EDIT_POSITIONS`; default ``"last"``: the last prompt token, where the response is
    decided, so the subject's representation and the generated tokens are left alone)."""

    layer: int = 0
    positions: str = "last"

    def delta(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    @contextmanager
    def applied(self, model: TransformerBridge) -> Iterator[TransformerBridge]:
        check_layer(self.layer, int(model.cfg.n_layers))
        if self.positions not in EDIT_POSITIONS:
            raise ValueError(f"positions must be one of {EDIT_POSITIONS}, got {self.positions!r}")
        def edit(x: Tensor, kwargs: dict) -> Tensor:
            return x + edit_mask(kwargs, x, self.positions).unsqueeze(-1) * self.delta(x)

        handles = on_layer_input(arch_of(model), self.layer, edit)
        try:
            yield model
        finally:
            for h in handles:
                h.remove()


@dataclass
class Steering(_LayerEdit):
    """Add ``vector`` to the residual stream entering ``layer`` (see :class:`_LayerEdit`)."""

    vector: Tensor | None = None

    def __post_init__(self) -> None:
        if self.vector is None or self.vector.dim() != 1:
            raise ValueError("Steering needs a [d_model] vector")
        self.method = "steering"

    @property
    def setting(self) -> str:
        return f"layer {self.layer} at {self.positions}, |v|={float(self.vector.norm()):.0f}"

    @property
    def rank(self) -> int:
        return 1

    def delta(self, x: Tensor) -> Tensor:
        return self.vector.to(x.device, x.dtype)


def rms_normalised(x: Tensor) -> Tensor:
    """``x`` divided by its root mean square over the last dimension."""
    return x / x.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-6)


@dataclass
class LowRankEdit(_LayerEdit):
    """``x <- x + U (V^T x̂ + b)`` on the residual stream entering ``layer`` (see
    :class:`_LayerEdit`), ``x̂ = x / rms(x)`` (the stream divided by its root mean square over
    ``d_model``, so the gate does not scale with the stream's size); ``U``, ``V``: ``[d_model, r]``,
    ``b``: ``[r]``. With ``V = 0`` it is a steering vector in the span of ``U``; the input-dependent
    part lets the edit act on some prompts more than others."""

    U: Tensor | None = None
    V: Tensor | None = None
    b: Tensor | None = None

    def __post_init__(self) -> None:
        if self.U is None or self.U.dim() != 2:
            raise ValueError("LowRankEdit needs U of shape [d_model, r]")
        r = self.U.shape[1]
        self.V = torch.zeros_like(self.U) if self.V is None else self.V
        self.b = torch.zeros(r) if self.b is None else self.b
        if self.V.shape != self.U.shape or self.b.shape != (r,):
            raise ValueError(f"LowRankEdit: U {tuple(self.U.shape)}, V {tuple(self.V.shape)} and b {tuple(self.b.shape)} "
                             "must be [d, r], [d, r] and [r]")
        self.method = "lowrank"

    @property
    def setting(self) -> str:
        return f"layer {self.layer} at {self.positions}, r={self.rank}"

    @property
    def rank(self) -> int:
        return int(self.U.shape[1])

    def delta(self, x: Tensor) -> Tensor:
        U, V, b = (t.to(x.device, x.dtype) for t in (self.U, self.V, self.b))
        return (rms_normalised(x) @ V + b) @ U.T
