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

Example:
    >>> iv = Steering(vector, layer=6)                          # doctest: +SKIP
    >>> with iv.applied(pair.aligned):                          # doctest: +SKIP
    ...     generate(pair.aligned, iv.format(pair, questions))  # doctest: +SKIP
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from interp.cache.fastpath import decoder_layers, layer_input, unwrapped, with_layer_input
from interp.models import ModelPair
from interp.patching.directions import ablated
from interp.prompts import encode, format_prompt

__all__ = [
    "Intervention", "NoIntervention", "Ablation", "Steering", "LowRankEdit", "WeightRestore", "ActivationPatch",
    "Prefill", "FewShot", "side_prompts", "after_first", "check_layer", "describe", "edit_mask", "EDIT_POSITIONS", "WEIGHT_KINDS",
]

#: Matrix groups :class:`WeightRestore` restores: the attention block, the MLP block, or both.
WEIGHT_KINDS: tuple[str, ...] = ("attn", "mlp", "all")


def check_layer(layer: int, n_layers: int, what: str = "layer") -> int:
    """``layer`` as an int in ``[0, n_layers)``, or a clear error."""
    if isinstance(layer, bool) or not isinstance(layer, int | torch.Tensor) and not hasattr(layer, "__index__"):
        raise ValueError(f"{what} must be an int, got {layer!r}")
    layer = int(layer)
    if not 0 <= layer < n_layers:
        raise ValueError(f"{what} must be in [0, {n_layers}), got {layer}")
    return layer


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
    """``[batch, pos]``: 1 at positions after each row's first real token, 0 at it and padding
    (from the layer call's position ids; without them, every position but the first).
    ``prompt_only``: 0 everywhere in a decoding step (one new token after a cache), so an edit
    acts on the prompt and the generated tokens only read the edited prompt."""
    if prompt_only and x.shape[1] == 1 and kwargs.get("past_key_values", kwargs.get("past_key_value")) is not None:
        return torch.zeros(x.shape[:-1], device=x.device, dtype=x.dtype)
    pos = kwargs.get("position_ids")
    if pos is None:
        ones = torch.ones(x.shape[:-1], device=x.device, dtype=x.dtype)
        ones[:, 0] = 0
        return ones
    return (pos > 0).to(x.dtype).expand(x.shape[:-1])


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


def edit_mask(kwargs: dict, x: Tensor, positions: str) -> Tensor:
    """``[batch, pos]`` weights of a layer edit at inference (see :data:`EDIT_POSITIONS`); prompts
    are left-padded, so the last prompt token is the last column of the prompt pass."""
    if positions == "all":
        return after_first(kwargs, x)
    if positions == "prompt":
        return after_first(kwargs, x, prompt_only=True)
    decoding = x.shape[1] == 1 and kwargs.get("past_key_values", kwargs.get("past_key_value")) is not None
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
        with unwrapped(model) as hf:
            _, layers = decoder_layers(hf, int(model.cfg.n_layers))

            def edit(mod, args, kwargs):
                x = layer_input(args, kwargs)
                return with_layer_input(args, kwargs, x + edit_mask(kwargs, x, self.positions).unsqueeze(-1) * self.delta(x))

            handle = layers[self.layer].register_forward_pre_hook(edit, with_kwargs=True)
            try:
                yield model
            finally:
                handle.remove()


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


@dataclass
class LowRankEdit(_LayerEdit):
    """``x <- x + U (V^T x + b)`` on the residual stream entering ``layer`` (see
    :class:`_LayerEdit`); ``U``, ``V``: ``[d_model, r]``, ``b``: ``[r]``. With ``V = 0`` it is a
    steering vector in the span of ``U``; the input-dependent part lets the edit act on some
    prompts more than others."""

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
        return (x @ V + b) @ U.T


def _layer_params(model: TransformerBridge, layer: int, kind: str) -> dict[str, Tensor]:
    """The parameters of one decoder layer of ``kind`` (attention block, MLP block or all), by name."""
    with unwrapped(model) as hf:
        _, layers = decoder_layers(hf, int(model.cfg.n_layers))
        params = dict(layers[layer].named_parameters())
    if kind == "all":
        return params
    attn_names = ("self_attn.", "attn.", "attention.")
    mlp_names = ("mlp.", "feed_forward.")
    prefixes = attn_names if kind == "attn" else mlp_names
    return {n: p for n, p in params.items() if n.startswith(prefixes)}


@dataclass
class WeightRestore(Intervention):
    """Copy the base's weights of ``kind`` (``"attn"``, ``"mlp"`` or ``"all"`` of the layer,
    norms included) for each of ``layers`` into the aligned model; restored on exit. For any pair
    of one architecture. ``everything=True`` restores every parameter of the model (embeddings,
    final norm and unembedding too): the aligned model then computes exactly what the base does."""

    source: TransformerBridge | None = None
    layers: Sequence[int] = ()
    kind: str = "all"
    everything: bool = False

    def __post_init__(self) -> None:
        if self.source is None:
            raise ValueError("WeightRestore needs source= (the base model)")
        if self.kind not in WEIGHT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(WEIGHT_KINDS)}, got {self.kind!r}")
        self.layers = tuple(check_layer(x, int(self.source.cfg.n_layers)) for x in self.layers)
        if not self.layers and not self.everything:
            raise ValueError("WeightRestore needs at least one layer (or everything=True)")
        self.method = "weights"

    @property
    def setting(self) -> str:
        if self.everything:
            return "every parameter"
        ls = self.layers
        span = f"{ls[0]}-{ls[-1]}" if len(ls) > 2 and list(ls) == list(range(ls[0], ls[-1] + 1)) else ",".join(map(str, ls))
        return f"{self.kind} of layer{'s' if len(ls) > 1 else ''} {span}"

    @property
    def rank(self) -> None:
        return None

    def _pairs(self, model: TransformerBridge) -> list[tuple[Tensor, Tensor]]:
        if self.everything:
            dst = dict(model.original_model.named_parameters())
            src = dict(self.source.original_model.named_parameters())
            if dst.keys() != src.keys():
                raise ValueError("WeightRestore: the two models' parameter names differ; pass a pair of one architecture")
            return [(dst[n], src[n]) for n in dst]
        out = []
        for layer in self.layers:
            dst, src = _layer_params(model, layer, self.kind), _layer_params(self.source, layer, self.kind)
            if dst.keys() != src.keys():
                raise ValueError(f"WeightRestore: layer {layer}'s parameters differ between the models")
            out += [(dst[n], src[n]) for n in dst]
        return out

    @contextmanager
    def applied(self, model: TransformerBridge) -> Iterator[TransformerBridge]:
        pairs = self._pairs(model)
        saved = [d.detach().clone() for d, _ in pairs]
        try:
            with torch.no_grad():
                for d, s in pairs:
                    d.copy_(s.to(d.device, d.dtype))
            yield model
        finally:
            with torch.no_grad():
                for (d, _), keep in zip(pairs, saved):
                    d.copy_(keep)


@dataclass
class ActivationPatch(Intervention):
    """Patch the base's residual stream (the base reading its own prompt format) into the aligned
    run at ``layers`` x marked ``positions``, matched by marked position: ``"span_last"`` (the
    subject's last token), ``"last"`` (the last prompt token) or ``"all"`` (every prompt position:
    only for prompts that tokenise to the same length on both sides, e.g. a pair whose two sides
    use one format). Layer ``l < n_layers`` patches ``resid_pre`` of block ``l``; ``l == n_layers``
    the stream entering the final norm. The prompt only: generated tokens run unpatched, reading
    the patched prompt's keys and values. Call :meth:`prepare` with the questions (and subjects)
    first."""

    pair: ModelPair | None = None
    layers: Sequence[int] = ()
    positions: Sequence[str] = ("last",)
    _values: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.pair is None:
            raise ValueError("ActivationPatch needs pair=")
        self.layers = tuple(check_layer(x, self.pair.n_layers + 1) for x in self.layers)
        self.positions = tuple(self.positions)
        bad = [p for p in self.positions if p not in ("last", "span_last", "all")]
        if bad or not self.layers or not self.positions:
            raise ValueError(f"ActivationPatch needs layers and positions from ('last', 'span_last', 'all'), got {self.positions}")
        self.method = "patch"

    @property
    def setting(self) -> str:
        return f"layers {','.join(map(str, self.layers))} at {'+'.join(self.positions)}"

    @property
    def rank(self) -> None:
        return None

    def prepare(self, pair: ModelPair, questions: Sequence[str], spans: Sequence[str] | None = None) -> None:
        from interp.patching.core import clean_resid_post, clean_resid_pre

        if "span_last" in self.positions and spans is None:
            raise ValueError("ActivationPatch at 'span_last' needs the subjects (spans=) of the questions")
        use_spans = spans if "span_last" in self.positions else None
        b = encode(pair.base.tokenizer, side_prompts(pair, "base", questions), spans=use_spans)
        a = encode(pair.aligned.tokenizer, self.format(pair, questions), spans=use_spans)
        n = pair.n_layers
        pre = clean_resid_pre(pair.base, b)
        streams = torch.cat([pre, clean_resid_post(pair.base, b)[n - 1:]]) if n in self.layers else pre
        streams = streams[list(self.layers)].cpu()  # [L, B, T, d]
        for i in range(len(questions)):
            ids = tuple(a.input_ids[i, a.n_pad[i]:].tolist())
            if "all" in self.positions:
                length = len(ids)
                if int(b.attention_mask[i].sum()) != length:
                    raise ValueError(f"ActivationPatch at 'all' needs prompts of one length on both sides; question {i} has "
                                     f"{int(b.attention_mask[i].sum())} base and {length} aligned tokens")
                dst, src = list(range(length)), [int(b.n_pad[i]) + k for k in range(length)]
            else:
                dst = [int(a.positions[p][i] - a.n_pad[i]) for p in self.positions]
                src = [int(b.positions[p][i]) for p in self.positions]
            self._values[ids] = (dst, streams[:, i, src])  # positions in the unpadded prompt, [L, P, d]

    @contextmanager
    def applied(self, model: TransformerBridge) -> Iterator[TransformerBridge]:
        rows: dict[str, list] = {}
        n = int(model.cfg.n_layers)
        with unwrapped(model) as hf:
            body, layers = decoder_layers(hf, n)

            def find_rows(mod, args, kwargs):
                ids = args[0] if args else kwargs.get("input")
                rows["now"] = []
                if ids is None or ids.shape[1] == 1:  # a decoding step: nothing to patch
                    return
                for r in range(ids.shape[0]):
                    seq = ids[r].tolist()
                    for start in range(len(seq)):  # strip left padding: the longest suffix that is a prepared prompt
                        hit = self._values.get(tuple(seq[start:]))
                        if hit is not None:
                            rows["now"].append((r, start, hit))
                            break

            def patch(li: int):
                def hook(mod, args, kwargs):
                    if not rows.get("now"):
                        return None
                    x = layer_input(args, kwargs).clone()
                    for r, offset, (dst, vals) in rows["now"]:
                        x[r, [offset + p for p in dst]] = vals[li].to(x.device, x.dtype)
                    return with_layer_input(args, kwargs, x)
                return hook

            handles = [body.embed_tokens.register_forward_pre_hook(find_rows, with_kwargs=True)]
            handles += [(layers[layer] if layer < n else body.norm).register_forward_pre_hook(patch(li), with_kwargs=True)
                        for li, layer in enumerate(self.layers)]
            try:
                yield model
            finally:
                for h in handles:
                    h.remove()


@dataclass
class Prefill(Intervention):
    """The aligned model's response opened with ``prefix`` (after Qi et al. 2024); the
    continuation is judged."""

    prefix: str = "Sure! The answer is"

    def __post_init__(self) -> None:
        self.method = "prefill"

    @property
    def setting(self) -> str:
        return repr(self.prefix)

    @property
    def rank(self) -> None:
        return None

    @property
    def changes_prompt(self) -> bool:
        return True

    def format(self, pair: ModelPair, questions: Sequence[str]) -> list[str]:
        return [p + self.prefix for p in super().format(pair, questions)]


@dataclass
class FewShot(Intervention):
    """The aligned model given the base's plain few-shot prompt (``Q: ... A: ...`` exemplars)
    instead of its chat template; register each question's ``(question, answer)`` exemplars with
    :meth:`with_shots`."""

    def __post_init__(self) -> None:
        self.method = "few_shot"
        self._by_question: dict[str, list] = {}

    @property
    def setting(self) -> str:
        return f"{max((len(s) for s in self._by_question.values()), default=0)} exemplars"

    @property
    def rank(self) -> None:
        return None

    @property
    def changes_prompt(self) -> bool:
        return True

    def with_shots(self, questions: Sequence[str], shots: Sequence[Sequence[tuple[str, str]]]) -> "FewShot":
        """Register the exemplars of more questions."""
        self._by_question.update({q: list(s) for q, s in zip(questions, shots)})
        return self

    def format(self, pair: ModelPair, questions: Sequence[str]) -> list[str]:
        missing = [q for q in questions if q not in self._by_question]
        if missing:
            raise ValueError(f"FewShot has no exemplars for {len(missing)} questions (e.g. {missing[0]!r}); call with_shots first")
        return [format_prompt(q, style="plain", few_shot=self._by_question[q]) for q in questions]

