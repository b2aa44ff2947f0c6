"""Model loading: packaged / hub / local / GGUF checkpoints as TransformerBridges, and pairs."""

from interp.models.gguf import convert_gguf
from interp.models.load import default_device, default_dtype, load_hf, load_model, spec_of
from interp.models.pair import SIDES, ModelPair, load_pair
from interp.models.registry import PairSpec, get_pair_spec, list_pairs, register_pair
from interp.models.spec import ModelSpec

__all__ = [
    "ModelSpec",
    "ModelPair",
    "PairSpec",
    "SIDES",
    "convert_gguf",
    "default_device",
    "default_dtype",
    "get_pair_spec",
    "list_pairs",
    "load_hf",
    "load_model",
    "load_pair",
    "register_pair",
    "spec_of",
]
