"""The one place hook names are built.

Every other module asks this one for a hook name instead of spelling ``"blocks.3.hook_resid_post"``
by hand. The names are the TransformerBridge aliases, which are the same as the legacy
HookedTransformer names.

Example:
    >>> from interp import hooks
    >>> hooks.name("resid_post", 3)
    'blocks.3.hook_resid_post'
    >>> hooks.parse("blocks.3.hook_resid_post")
    ('resid_post', 3)
"""

import numbers
import re
from collections.abc import Iterable, Sequence

__all__ = [
    "HOOK_KINDS",
    "RESID_KINDS",
    "name",
    "names",
    "parse",
    "resid_pre",
    "resid_mid",
    "resid_post",
    "attn_out",
    "mlp_out",
    "FINAL_NORM",
    "check_available",
    "head_z",
]

#: Hooks that read the residual stream (``d_model`` wide) at one layer.
RESID_KINDS: tuple[str, ...] = ("resid_pre", "resid_mid", "resid_post")
#: Every per-layer hook kind interp knows how to name.
HOOK_KINDS: tuple[str, ...] = RESID_KINDS + ("attn_out", "mlp_out")
#: The output of the final norm (what the unembedding reads). Not ``ln_final.hook_normalized``:
#: that is the normalised value before the norm's weight scales it.
FINAL_NORM = "ln_final.hook_out"

_PATTERN = re.compile(r"^blocks\.(\d+)\.hook_(" + "|".join(HOOK_KINDS) + r")$")


def name(kind: str, layer: "numbers.Integral | int") -> str:
    """The hook name of ``kind`` (one of :data:`HOOK_KINDS`) at block ``layer``."""
    if kind not in HOOK_KINDS:
        raise ValueError(f"unknown hook kind {kind!r}; expected one of {', '.join(HOOK_KINDS)}")
    if isinstance(layer, bool) or not isinstance(layer, numbers.Integral) or layer < 0:
        raise ValueError(f"layer must be a non-negative int, got {layer!r}")
    return f"blocks.{int(layer)}.hook_{kind}"


def names(kind: str, layers: Iterable[int]) -> list[str]:
    """Hook names of ``kind`` at each of ``layers``, in order."""
    return [name(kind, layer) for layer in layers]


def parse(hook_name: str) -> tuple[str, int]:
    """Split a per-layer hook name into ``(kind, layer)``."""
    match = _PATTERN.match(hook_name)
    if match is None:
        raise ValueError(
            f"{hook_name!r} is not a per-layer hook name interp builds; "
            f"expected 'blocks.<layer>.hook_<kind>' with kind in {', '.join(HOOK_KINDS)}"
        )
    return match.group(2), int(match.group(1))


def resid_pre(layer: int) -> str:
    """Residual stream entering block ``layer``."""
    return name("resid_pre", layer)


def resid_mid(layer: int) -> str:
    """Residual stream between attention and MLP of block ``layer``."""
    return name("resid_mid", layer)


def resid_post(layer: int) -> str:
    """Residual stream leaving block ``layer``."""
    return name("resid_post", layer)


def attn_out(layer: int) -> str:
    """Attention output of block ``layer`` (added to the residual stream)."""
    return name("attn_out", layer)


def mlp_out(layer: int) -> str:
    """MLP output of block ``layer`` (added to the residual stream)."""
    return name("mlp_out", layer)


def head_z(layer: int) -> str:
    """Per-head attention output of block ``layer`` before the output projection
    (``[batch, pos, n_heads, d_head]``)."""
    name("attn_out", layer)  # validates the layer
    return f"blocks.{layer}.attn.hook_z"


def check_available(available: Iterable[str], wanted: Sequence[str]) -> None:
    """Raise a clear error if any of ``wanted`` is not among a model's hook names."""
    have = set(available)
    missing = [w for w in wanted if w not in have]
    if missing:
        raise ValueError(
            f"hooks not found on the model: {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}; check the layer index against cfg.n_layers"
        )
