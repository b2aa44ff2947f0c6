"""A base model and an aligned model of the same family, validated to be comparable."""

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from transformer_lens.model_bridge import TransformerBridge

from interp.models.load import load_model, spec_of
from interp.models.spec import ModelSpec, as_spec
from interp.prompts import PromptBatch, encode, format_prompt

__all__ = ["ModelPair", "load_pair", "SIDES"]

SIDES: tuple[str, str] = ("base", "aligned")


def _vocab_size(model: TransformerBridge) -> int:
    return len(model.tokenizer) if model.tokenizer is not None else int(model.cfg.d_vocab)


@dataclass
class ModelPair:
    """Two bridges, ``base`` and ``aligned``, checked to share architecture, ``n_layers``,
    ``d_model`` and tokenizer vocabulary.

    A pair holds two models and their specs (which say how each side formats prompts); analyses
    live in the other modules.

    Example:
        >>> from interp import load_pair
        >>> pair = load_pair("default")                    # doctest: +SKIP
        >>> pair.base.cfg.n_layers, pair.style("aligned")  # doctest: +SKIP
        (18, 'chat')
    """

    base: TransformerBridge
    aligned: TransformerBridge
    name: str = "pair"
    base_spec: ModelSpec | None = field(default=None, repr=False)
    aligned_spec: ModelSpec | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.base_spec = self.base_spec or spec_of(self.base) or ModelSpec("base", name="base")
        self.aligned_spec = (
            self.aligned_spec
            or spec_of(self.aligned)
            or ModelSpec("aligned", name="aligned", prompt_style="chat")
        )
        b, a = self.base.cfg, self.aligned.cfg
        if b.architecture != a.architecture:
            raise ValueError(
                f"ModelPair: architectures differ (base {b.architecture}, aligned {a.architecture}); "
                "pass two checkpoints of the same model"
            )
        for attr in ("n_layers", "d_model"):
            if getattr(b, attr) != getattr(a, attr):
                raise ValueError(
                    f"ModelPair: {attr} differs (base {getattr(b, attr)}, aligned {getattr(a, attr)}); "
                    "pass two checkpoints of the same model size"
                )
        vb, va = _vocab_size(self.base), _vocab_size(self.aligned)
        if vb != va:
            raise ValueError(
                f"ModelPair: tokenizers differ (base vocab {vb}, aligned vocab {va}); "
                "pass models of the same family"
            )
        if self.base.tokenizer is not None and self.aligned.tokenizer is not None:
            if self.base.tokenizer.get_vocab() != self.aligned.tokenizer.get_vocab():
                raise ValueError(
                    f"ModelPair: tokenizers differ (same size {vb}, different token ids); "
                    "pass models of the same family"
                )

    def side(self, which: str) -> TransformerBridge:
        """``pair.side("base")`` or ``pair.side("aligned")``."""
        if which not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {which!r}")
        return self.base if which == "base" else self.aligned

    def spec(self, which: str) -> ModelSpec:
        """The :class:`ModelSpec` of one side."""
        self.side(which)
        return self.base_spec if which == "base" else self.aligned_spec

    def style(self, which: str) -> str:
        """How that side formats prompts: ``"plain"`` or ``"chat"``."""
        return self.spec(which).prompt_style

    @property
    def n_layers(self) -> int:
        return int(self.base.cfg.n_layers)

    @property
    def d_model(self) -> int:
        return int(self.base.cfg.d_model)

    def items(self) -> list[tuple[str, TransformerBridge]]:
        """``[("base", base), ("aligned", aligned)]``."""
        return [("base", self.base), ("aligned", self.aligned)]

    def encode(self, side: str, texts: "Sequence[str]", *, spans: "Sequence | None" = None,
               answers: "Sequence[str] | None" = None, few_shot: "Sequence[tuple[str, str]]" = (),
               system: str | None = None) -> PromptBatch:
        """Raw questions or statements formatted as ``side`` formats prompts (plain text for the
        base, its chat template for the aligned side), tokenized into a left-padded
        :class:`~interp.prompts.PromptBatch` with marked positions.

        Example:
            >>> batch = pair.encode("aligned", ["What is the symbol for gold?"], spans=["gold"],
            ...                     answers=[" Au"])                                    # doctest: +SKIP
            >>> batch.positions["span_last"], batch.positions["answer_first"]          # doctest: +SKIP
        """
        model = self.side(side)
        texts = list(texts)
        if isinstance(texts[0] if texts else None, (list, tuple)):
            raise ValueError("texts must be a list of strings, one prompt each")
        prompts = [format_prompt(t, style=self.style(side), tokenizer=model.tokenizer, few_shot=few_shot, system=system)
                   for t in texts]
        return encode(model.tokenizer, prompts, spans=spans, answers=answers)

    def __repr__(self) -> str:
        return (f"ModelPair({self.name!r}: base={self.base_spec.label!r}, aligned={self.aligned_spec.label!r}"
                f"{' + adapter' if self.aligned_spec.adapter else ''}, {self.base.cfg.architecture}, "
                f"{self.n_layers} layers, d_model {self.d_model})")

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{s}</td><td>{self.spec(s).label}</td><td>{self.spec(s).source}</td>"
            f"<td>{self.spec(s).adapter or ''}</td><td>{self.style(s)}</td></tr>"
            for s in SIDES
        )
        return (
            f"<b>ModelPair {self.name}</b> ({self.base.cfg.architecture}, {self.n_layers} layers, "
            f"d_model {self.d_model})<table><tr><th>side</th><th>name</th><th>source</th>"
            f"<th>adapter</th><th>prompts</th></tr>{rows}</table>"
        )


def load_pair(
    name_or_specs: "str | Sequence[str | os.PathLike[str] | ModelSpec]" = "default",
    *,
    device: "str | torch.device | None" = None,
    dtype: torch.dtype | None = None,
    device_map: "str | dict | None" = None,
    devices: "dict[str, str | torch.device | dict] | None" = None,
    allow_placeholder: bool = False,
    share_weights: bool = True,
    quantize: "dict[str, str] | None" = None,
) -> ModelPair:
    """Load a registered pair by name, or a pair from two specs ``(base, aligned)``.

    A registered pair whose aligned adapter is missing from the checkout raises (it would give two
    identical models) unless ``allow_placeholder=True``.

    Placement: ``device`` (both sides on one device), ``device_map`` (each side spread over the
    GPUs, ``"auto"``), or ``devices`` per side: a device (``"cuda:1"``) or a device map, e.g.
    ``{"base": {"": 0}, "aligned": {"": 1}}`` or, for a model that needs two GPUs per side, maps
    that put the base on GPUs 0-1 and the aligned model on GPUs 2-3 so both run at once.

    When the aligned side is the base's checkpoint plus a LoRA adapter on the same device, the two
    models share every parameter the adapter leaves alone (one copy of the base weights; see
    :mod:`interp.models.shared`); ``share_weights=False`` loads two independent copies. Such a pair's
    aligned tokenizer is a copy of the base's with its own settings (chat template, padding side,
    special tokens) over one vocabulary: toggling ``add_bos_token`` / ``add_eos_token`` or adding
    tokens on one side's tokenizer changes the other's too (interp never does; load with
    ``share_weights=False`` for two independent tokenizers).

    ``quantize`` per side, e.g. ``{"base": "8bit"}`` (or ``"4bit"``): that side's linear weights in
    8 or 4 bits (bitsandbytes), for the frozen side that is only read; a quantized base is not
    shared with the aligned side, and weight restores and orthogonalisation refuse quantized weights.

    With two specs, the base formats prompts as plain text and the aligned side with its chat
    template (strings are turned into specs that say so).

    Example:
        >>> from interp import load_pair
        >>> pair = load_pair("default")                                          # doctest: +SKIP
        >>> pair = load_pair(("google/gemma-3-270m", "google/gemma-3-270m-it"))  # doctest: +SKIP
    """
    from interp.models.registry import get_pair_spec

    if isinstance(name_or_specs, str):
        entry = get_pair_spec(name_or_specs)
        if entry.placeholder and not allow_placeholder:
            raise FileNotFoundError(
                f"pair {entry.name!r} expects the aligned LoRA adapter in {entry.adapter_dir} (adapter_config.json), "
                "which is missing: without it both sides would have the same weights. Run `interp align` to make it "
                "(or restore data/aligned/ from the repository); pass allow_placeholder=True to load the base weights "
                "with the chat template on purpose")
        base_spec, aligned_spec, name = entry.resolved_base(), entry.resolved_aligned(), entry.name
    else:
        specs = list(name_or_specs)
        if len(specs) != 2:
            raise ValueError(
                f"load_pair takes a registered name or exactly two specs (base, aligned); got {len(specs)}"
            )
        base_spec = as_spec(specs[0])
        aligned_spec = specs[1] if isinstance(specs[1], ModelSpec) else as_spec(specs[1]).with_(prompt_style="chat")
        name = f"{base_spec.label} vs {aligned_spec.label}"
    def placement(side: str) -> dict:
        where = (devices or {}).get(side)
        if where is None:
            return {"device": device, "device_map": device_map}
        if isinstance(where, dict) or where in ("auto", "balanced", "balanced_low_0", "sequential"):
            return {"device": None, "device_map": where}
        return {"device": where, "device_map": None}

    if devices is not None and set(devices) - set(SIDES):
        raise ValueError(f"devices takes the sides {SIDES}, got {sorted(devices)}")
    quantize = dict(quantize or {})
    if set(quantize) - set(SIDES):
        raise ValueError(f"quantize takes the sides {SIDES}, got {sorted(quantize)}")
    if quantize:
        base = load_model(base_spec, dtype=dtype, quantize=quantize.get("base"), **placement("base"))
        aligned = load_model(aligned_spec, dtype=dtype, quantize=quantize.get("aligned"), **placement("aligned"))
    elif share_weights and _can_share(base_spec, aligned_spec, placement("base"), placement("aligned")):
        from interp.models.load import _load_tokenizer, bridge_from_hf, load_hf, resolve_source
        from interp.models.shared import load_adapter_sharing

        base_hf, base_tok = load_hf(base_spec, dtype=dtype, **placement("base"))
        aligned_hf = load_adapter_sharing(base_hf, aligned_spec.adapter)
        # The same files as the base's: a copy of its tokenizer, unless the base's spec set a chat template.
        # Copied only when nothing will add tokens to it (TransformerLens adds a missing pad token).
        special = all(getattr(base_tok, a, None) is not None for a in ("pad_token_id", "bos_token_id", "eos_token_id"))
        like = base_tok if base_spec.chat_template is None and special else None
        aligned_tok = _load_tokenizer(aligned_spec, resolve_source(aligned_spec), like=like)
        base, aligned = bridge_from_hf(base_hf, base_tok, base_spec), bridge_from_hf(aligned_hf, aligned_tok, aligned_spec)
    else:
        base = load_model(base_spec, dtype=dtype, **placement("base"))
        aligned = load_model(aligned_spec, dtype=dtype, **placement("aligned"))
    return ModelPair(base, aligned, name=name, base_spec=base_spec, aligned_spec=aligned_spec)


def _can_share(base_spec: ModelSpec, aligned_spec: ModelSpec, base_at: dict, aligned_at: dict) -> bool:
    """The aligned side is the base's checkpoint plus a LoRA adapter, both on one device."""
    from interp.models.load import resolve_source

    if base_spec.adapter is not None or aligned_spec.adapter is None or base_at != aligned_at:
        return False
    if base_at.get("device_map") is not None:
        return False
    try:
        return resolve_source(base_spec) == resolve_source(aligned_spec)
    except ValueError:
        return False
