"""Architecture adapters: where each model family keeps its body, layers, norms and unembedding.

Hugging Face decoder-only models share a shape (embeddings -> decoder layers -> final norm ->
unembedding) but not names or call conventions: GPT-2 keeps its layers in ``transformer.h`` and
passes the attention mask to a block positionally, GPT-NeoX adds attention and MLP in parallel,
Gemma-2/3 and OLMo-2 normalise the attention and MLP outputs before adding them to the residual
stream. A :class:`Family` records those facts once per family; :class:`Arch` binds one to a model
and is the only place in interp that spells an HF attribute name.

Example::

    arch = arch_of(model)              # a TransformerBridge or an HF causal LM
    arch.family.name, arch.n_layers    # ('gemma3', 18)
    arch.final_norm, arch.unembed      # modules, as the model's tree holds them now
"""

from dataclasses import dataclass
from typing import Any

from torch import nn
from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent

__all__ = ["Family", "Arch", "FAMILIES", "arch_of", "family_of", "original", "get_path"]


@dataclass(frozen=True)
class Family:
    """How one model family is laid out (attribute paths relative to the HF causal LM).

    Attributes:
        name: short name used in tables and logs.
        model_types: the HF ``config.model_type`` values it covers.
        body: the text model below the LM head (``model``, ``transformer``, ``gpt_neox``).
        layers: the decoder-layer list on the body.
        final_norm: the norm after the last layer, on the body.
        embed: the token embedding on the body.
        unembed: the LM head on the causal LM (space-separated alternatives, first found wins:
            GPT-NeoX's is ``lm_head`` in current transformers, ``embed_out`` in older ones).
        pos_embed: a learned absolute position embedding on the body (GPT-2), if any.
        mid: the module of each layer whose input is the residual stream between attention and
            MLP (``resid_mid``); ``None`` for parallel attention + MLP.
        writers: the modules of each layer whose output is added to the residual stream.
        post_norm: attention / MLP outputs are normalised before the residual add (no weight edit
            removes a direction from the stream).
        conv1d: the writers store their weight as ``[in, out]`` (GPT-2's ``Conv1D``).
        attn: the attention block of each layer (parameter-name prefix).
        mlp: the MLP block of each layer (parameter-name prefix).
    """

    name: str
    model_types: tuple[str, ...]
    body: str = "model"
    layers: str = "layers"
    final_norm: str = "norm"
    embed: str = "embed_tokens"
    unembed: str = "lm_head"
    pos_embed: str | None = None
    mid: str | None = "post_attention_layernorm"
    writers: tuple[str, ...] = ("self_attn.o_proj", "mlp.down_proj")
    post_norm: bool = False
    conv1d: bool = False
    attn: str = "self_attn"
    mlp: str = "mlp"


FAMILIES: tuple[Family, ...] = (
    Family("llama", ("llama",)),
    Family("mistral", ("mistral",)),
    Family("gemma", ("gemma",)),
    Family("gemma2", ("gemma2",), mid="pre_feedforward_layernorm", post_norm=True),
    Family("gemma3", ("gemma3_text",), mid="pre_feedforward_layernorm", post_norm=True),
    # Gemma-3 4B and up load as Gemma3ForConditionalGeneration: the text model sits under
    # model.language_model, beside the vision tower.
    Family("gemma3_multimodal", ("gemma3",), body="model.language_model", mid="pre_feedforward_layernorm",
           post_norm=True),
    Family("qwen2", ("qwen2",)),
    Family("qwen3", ("qwen3",)),
    Family("olmo2", ("olmo2",), mid="mlp", post_norm=True),
    Family("phi3", ("phi3",)),
    Family("gpt_neox", ("gpt_neox",), body="gpt_neox", final_norm="final_layer_norm", embed="embed_in",
           unembed="lm_head embed_out", mid=None, writers=("attention.dense", "mlp.dense_4h_to_h"), attn="attention"),
    Family("gpt2", ("gpt2",), body="transformer", layers="h", final_norm="ln_f", embed="wte", pos_embed="wpe",
           mid="ln_2", writers=("attn.c_proj", "mlp.c_proj"), conv1d=True, attn="attn"),
)
_BY_TYPE = {t: f for f in FAMILIES for t in f.model_types}


def original(module: nn.Module) -> nn.Module:
    """The HF module a bridge component wraps (the module itself if it is not wrapped)."""
    while isinstance(module, GeneralizedComponent) and getattr(module, "original_component", None) is not None:
        module = module.original_component
    return module


def get_path(root: nn.Module, path: str) -> nn.Module:
    """``root.a.b`` for ``path="a.b"``, stepping through bridge wrappers to the HF modules."""
    module = root
    for part in path.split("."):
        module = getattr(original(module), part)
    return module


def _hf(model: Any) -> nn.Module:
    return getattr(model, "original_model", model)


def _config(hf: nn.Module) -> Any:
    cfg = hf.config
    return cfg.get_text_config(decoder=True) if hasattr(cfg, "get_text_config") else cfg


def family_of(model: Any) -> Family:
    """The :class:`Family` of a bridge or HF causal LM, or a ``NotImplementedError`` naming the
    model type and the families interp knows."""
    hf = _hf(model)
    # The outer model type first: a multimodal wrapper's text config names the text-only family,
    # whose body path is another.
    mtype = getattr(hf.config, "model_type", None)
    fam = _BY_TYPE.get(mtype) or _BY_TYPE.get(getattr(_config(hf), "model_type", None))
    if fam is None:
        known = ", ".join(sorted(_BY_TYPE))
        raise NotImplementedError(f"no architecture adapter for model_type {mtype!r} ({type(hf).__name__}); "
                                  f"interp's fast paths know {known}; add a Family to interp.runtime.arch.FAMILIES")
    return fam


class Arch:
    """A :class:`Family` bound to one model. Module properties resolve through the model's tree as
    it is *now*: inside :func:`interp.runtime.unwrapped` they are the HF modules, outside they may
    be the bridge's wrappers; :func:`original` gives the HF module either way."""

    def __init__(self, model: Any):
        self.hf = _hf(model)
        self.family = family_of(self.hf)
        self.config = _config(self.hf)
        self.n_layers = len(self.layer_list)

    @property
    def body(self) -> nn.Module:
        module = self.hf
        for part in self.family.body.split("."):
            module = getattr(module, part)
        return module

    @property
    def layer_list(self) -> nn.ModuleList:
        return getattr(original(self.body), self.family.layers)

    @property
    def layers(self) -> list[nn.Module]:
        """The decoder layers as HF modules (what both the bridge and the fast paths call)."""
        return [original(m) for m in self.layer_list]

    @property
    def final_norm(self) -> nn.Module:
        return getattr(original(self.body), self.family.final_norm)

    @property
    def embed(self) -> nn.Module:
        return original(getattr(original(self.body), self.family.embed))

    @property
    def pos_embed(self) -> nn.Module | None:
        p = self.family.pos_embed
        return None if p is None else original(getattr(original(self.body), p))

    @property
    def unembed(self) -> nn.Module:
        for name in self.family.unembed.split():
            head = getattr(self.hf, name, None)
            if head is not None:
                return original(head)
        raise NotImplementedError(f"{type(self.hf).__name__} has no LM head named {self.family.unembed!r}")

    @property
    def softcap(self) -> float | None:
        """The final-logit soft-cap (Gemma-2), else ``None``."""
        cap = getattr(self.config, "final_logit_softcapping", None)
        return float(cap) if cap else None

    @property
    def tied(self) -> bool:
        """The unembedding shares its weight with the token embedding."""
        return self.unembed.weight is self.embed.weight

    @property
    def parallel(self) -> bool:
        """Attention and MLP read the same input and add in parallel (no ``resid_mid``)."""
        return self.family.mid is None and bool(getattr(self.config, "use_parallel_residual", True))

    def mid(self, layer: int) -> list[nn.Module]:
        """The modules whose input is ``resid_mid`` of ``layer``: the HF module and, where the bridge
        replaces it with a component that does not call it, that component too (a projection hooked on
        both applies once in either path: projections are idempotent)."""
        name = self.family.mid
        if name is None:
            if self.parallel:
                return []
            name = "post_attention_layernorm"  # GPT-NeoX with use_parallel_residual=False
        wrapped = getattr(self.layers[layer], name)
        return list({id(m): m for m in (wrapped, original(wrapped))}.values())

    def writers(self, layer: int) -> list[nn.Module]:
        """The HF modules of ``layer`` whose output is added to the residual stream."""
        return [original(get_path(self.layers[layer], p)) for p in self.family.writers]


def arch_of(model: Any) -> Arch:
    """:class:`Arch` of a bridge or HF causal LM."""
    return Arch(model)
