"""One check for every public function that takes layers: ints in range, never from the end."""

import numbers
from collections.abc import Iterable

__all__ = ["check_layer", "check_layers"]


def check_layer(layer: "numbers.Integral | int", n_layers: int, what: str = "layer") -> int:
    """``layer`` as an int in ``[0, n_layers)``, or a ``ValueError`` naming the bad value and the
    valid range (negative layers are refused, not counted from the end)."""
    if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
        raise ValueError(f"{what} must be an int, got {layer!r}")
    layer = int(layer)
    if not 0 <= layer < n_layers:
        raise ValueError(f"{what} must be in [0, {n_layers}) for a model with {n_layers} layers, got {layer}; "
                         "pass a layer index counted from 0 (negative indices are not accepted)")
    return layer


def check_layers(layers: "Iterable[int] | int | None", n_layers: int, what: str = "layers") -> list[int]:
    """``layers`` (default: all) as a non-empty list of ints in ``[0, n_layers)``, order kept."""
    if layers is None:
        return list(range(n_layers))
    if isinstance(layers, numbers.Integral):
        raise ValueError(f"{what} must be a sequence of ints, got the int {layers!r}; pass [{layers}]")
    out = [check_layer(x, n_layers, what=f"{what} entry") for x in layers]
    if not out:
        raise ValueError(f"{what} is empty; pass at least one layer (or None for all {n_layers})")
    return out
