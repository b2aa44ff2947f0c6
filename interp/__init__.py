"""interp: what did alignment change inside the model?

Load a base and an aligned checkpoint as TransformerLens bridges, format prompts for each side,
and (in the modules built on these) cache activations, fit probes, patch and diff.

Example:
    >>> import interp
    >>> pair = interp.load_pair("default")     # doctest: +SKIP
"""

from interp.versions import check_supported as _check_supported

_check_supported()  # a transformers / TransformerLens / peft outside the tested range is refused here

from interp import hooks  # noqa: E402
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

#: The main entry points of the analyses, importable from ``interp`` directly; each is imported
#: on first use (``interp.probe_store`` loads ``interp.probes`` then), so ``import interp`` stays light.
_LAZY: dict[str, str] = {
    "cache_activations": "interp.cache", "ActivationStore": "interp.cache",
    "probe_store": "interp.probes",
    "resid_pre_sweep": "interp.patching", "hook_sweep": "interp.patching", "head_sweep": "interp.patching",
    "cross_model_sweep": "interp.patching", "clean_resid_pre": "interp.patching", "logit_diff": "interp.patching",
    "answer_vs_token": "interp.patching", "ablated": "interp.patching", "added": "interp.patching",
    "mean_diff_directions": "interp.patching", "refusal_direction": "interp.workflows", "steering_sweep": "interp.workflows",
    "run_diffing": "interp.workflows", "run_demo": "interp.workflows",
    "orthogonalize_weights_inplace": "interp.patching",
    "logit_lens": "interp.lens", "lens_pair": "interp.lens",
    "generate": "interp.behavior", "classify": "interp.behavior",
    "response_shift": "interp.diffing", "knowledge_by_popularity": "interp.diffing",
    "representation_similarity": "interp.diffing", "weight_deltas": "interp.diffing",
    "run_unmask": "interp.unmask",
    "hidden_knowledge": "interp.knowledge",
    "activation_difference": "interp.difflens", "difference_lens": "interp.difflens", "run_difflens": "interp.difflens",
    "arch_of": "interp.runtime", "describe_model": "interp.runtime.describe",
    "export": "interp.plots",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'interp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
    *_LAZY,
]
