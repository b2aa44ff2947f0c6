"""interp: what did alignment change inside the model?

Load a base and an aligned checkpoint as TransformerLens bridges, format prompts for each side,
and (in the modules built on these) cache activations, fit probes, patch and diff.

Example:
    >>> import interp
    >>> pair = interp.load_pair("default")     # doctest: +SKIP
"""

from interp import hooks
from interp.models import (
    SIDES,
    ModelPair,
    ModelSpec,
    PairSpec,
    convert_gguf,
    list_pairs,
    load_hf,
    load_model,
    load_pair,
    register_pair,
)
from interp.prompts import PromptBatch, encode, format_prompt, format_prompts

__version__ = "0.1.0"

__all__ = [
    "SIDES",
    "ModelPair",
    "ModelSpec",
    "PairSpec",
    "PromptBatch",
    "convert_gguf",
    "encode",
    "format_prompt",
    "format_prompts",
    "hooks",
    "list_pairs",
    "load_hf",
    "load_model",
    "load_pair",
    "register_pair",
]
