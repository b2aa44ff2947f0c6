"""The runtime layer: architecture adapters and the shared forward helpers every analysis uses.

``interp.runtime.arch`` knows where each family keeps its layers, norms and unembedding;
``interp.runtime.forward`` runs a model's layers (fast residual path, per-layer streams, starting
at a layer, swapping a layer's input) through it; ``interp.runtime.checks`` validates layers.
"""

from interp.runtime.arch import FAMILIES, Arch, Family, arch_of, family_of, original
from interp.runtime.checks import check_layer, check_layers
from interp.runtime.forward import (
    FastPathUnavailable, PassThrough, body_forward, input_device, final_logits, layer_input, layer_output, layer_streams,
    logits_at, normed_logits, on_layer_input, on_layer_output, position_ids, skip_below, unwrapped, use_fast, user_hooks, with_layer_arg,
    with_layer_input, with_layer_output,
)

__all__ = [
    "FAMILIES", "Arch", "Family", "arch_of", "family_of", "original", "check_layer", "check_layers",
    "FastPathUnavailable", "PassThrough", "body_forward", "input_device", "final_logits", "layer_input", "layer_output",
    "layer_streams", "logits_at", "normed_logits", "position_ids", "skip_below", "unwrapped", "use_fast",
    "user_hooks", "with_layer_arg", "with_layer_input", "with_layer_output", "on_layer_input", "on_layer_output",
]
