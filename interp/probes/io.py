"""Save and load probe sets: safetensors for the weights, JSON for what they were fitted on."""

import json
import os
from pathlib import Path

from safetensors.torch import load_file, save_file

from interp.atomic import atomic_path, write_json_atomic
from interp.probes.evaluate import ProbeSet

__all__ = ["save_probes", "load_probes", "check_compatible"]


def save_probes(probe: ProbeSet, path: "str | os.PathLike[str]", *, hook: str, model: dict | None = None,
                dataset_fingerprint: str = "", metrics: dict | None = None) -> Path:
    """Write ``<path>.safetensors`` and ``<path>.json`` (each to a temporary name, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors, meta = path.with_suffix(".safetensors"), path.with_suffix(".json")
    with atomic_path(tensors) as tmp_t:
        save_file({"w": probe.w.detach().cpu().contiguous(), "b": probe.b.detach().cpu().contiguous()}, str(tmp_t))
    write_json_atomic(meta, {"kind": probe.kind, "layers": probe.layers, "hook": hook, "d_model": int(probe.w.shape[-1]),
                             "C": probe.C, "model": model or {}, "dataset_fingerprint": dataset_fingerprint, "metrics": metrics or {}})
    return tensors


def load_probes(path: "str | os.PathLike[str]") -> tuple[ProbeSet, dict]:
    """Read a probe set and its metadata."""
    path = Path(path)
    meta_file, tensor_file = path.with_suffix(".json"), path.with_suffix(".safetensors")
    if not meta_file.is_file() or not tensor_file.is_file():
        raise FileNotFoundError(f"no probe at {path}: expected {tensor_file.name} and {meta_file.name}")
    meta = json.loads(meta_file.read_text())
    t = load_file(str(tensor_file))
    return ProbeSet(meta["kind"], meta["layers"], t["w"], t["b"], meta.get("C")), meta


def check_compatible(meta: dict, *, hook: str, d_model: int) -> None:
    """Refuse activations of another hook or width than the probe was fitted on."""
    if meta["hook"] != hook:
        raise ValueError(f"probe was fitted on hook {meta['hook']!r}, activations are from {hook!r}; use the same hook")
    if meta["d_model"] != d_model:
        raise ValueError(f"probe expects width {meta['d_model']}, activations have width {d_model}; use the same model")
