"""An adapter pair that keeps one copy of the base weights.

When the aligned side is the base checkpoint plus a LoRA adapter, :func:`load_adapter_sharing`
builds the aligned model from the already-loaded base: every parameter the adapter does not touch
(embeddings, norms, the untouched projections) is the base's own tensor, and only the matrices
LoRA changes get merged copies. For the default pair in fp32 the aligned side then adds 0.4 GB
instead of 1.07 GB, and loads without reading the checkpoint a second time.

Shared parameters carry a mark; code that edits weights in place (weight orthogonalisation)
calls :func:`unshare` on the module first, so an edit of one side never reaches the other.
:class:`~interp.unmask.localise.WeightRestore` skips tensors the two sides already share.
"""

from typing import Any

import torch
from torch import nn

__all__ = ["load_adapter_sharing", "unshare", "is_shared", "shared_parameters"]

_MARK = "_interp_shared_with_other_side"


def is_shared(p: torch.Tensor) -> bool:
    """True for a parameter held by both sides of an adapter pair."""
    return bool(getattr(p, _MARK, False))


def shared_parameters(model: nn.Module) -> int:
    """How many parameter elements of ``model`` (a bridge or HF model) are shared with the other side."""
    hf = getattr(model, "original_model", model)
    return sum(p.numel() for p in hf.parameters() if is_shared(p))


def unshare(module: nn.Module) -> None:
    """Give ``module`` its own copies of the parameters (its own, not its children's) it shares
    with the other side, so an in-place edit changes only this model."""
    for name, p in list(module.named_parameters(recurse=False)):
        if is_shared(p):
            setattr(module, name, nn.Parameter(p.detach().clone(), requires_grad=p.requires_grad))


def load_adapter_sharing(base_hf: nn.Module, adapter: str) -> nn.Module:
    """The aligned HF model = ``base_hf`` + the LoRA ``adapter`` merged, sharing every parameter
    the adapter leaves alone with ``base_hf`` (which is not modified).

    The skeleton is built on the meta device from the base's config, given the base's parameter
    objects and copies of its buffers; peft then wraps the adapted modules, their base weights are
    replaced by private copies, and the adapter is merged into those copies."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(base_hf.config, dtype=next(base_hf.parameters()).dtype)
    skeleton.config = base_hf.config.__class__.from_dict(base_hf.config.to_dict())
    params = dict(base_hf.named_parameters(remove_duplicate=False))
    buffers = dict(base_hf.named_buffers(remove_duplicate=False))
    for name, _ in list(skeleton.named_parameters(remove_duplicate=False)):
        if name not in params:
            raise ValueError(f"the base model has no parameter {name!r}; pass the adapter's own base checkpoint")
        mod, leaf = _owner(skeleton, name)
        mod._parameters[leaf] = params[name]
    for name, _ in list(skeleton.named_buffers(remove_duplicate=False)):
        mod, leaf = _owner(skeleton, name)
        mod._buffers[leaf] = buffers[name].clone()
    flags = [(p, p.requires_grad) for p in base_hf.parameters()]
    try:
        peft_model = PeftModel.from_pretrained(skeleton, adapter)
        for module in peft_model.modules():
            if isinstance(module, LoraLayer):  # the adapted weights: private copies before the merge
                target = module.get_base_layer()
                for leaf in ("weight", "bias"):
                    p = getattr(target, leaf, None)
                    if isinstance(p, nn.Parameter):
                        setattr(target, leaf, nn.Parameter(p.detach().clone(), requires_grad=p.requires_grad))
        merged: Any = peft_model.merge_and_unload()
    finally:
        for p, flag in flags:  # peft freezes what it wraps; the base's flags stay as they were
            p.requires_grad_(flag)
    base_ids = {id(p) for p in base_hf.parameters()}
    for p in merged.parameters():
        if id(p) in base_ids:
            setattr(p, _MARK, True)  # the same object on both sides: marked for both
    return merged.eval()


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The module holding the parameter or buffer ``name`` and its attribute name there."""
    owner, _, leaf = name.rpartition(".")
    return (model.get_submodule(owner) if owner else model), leaf
