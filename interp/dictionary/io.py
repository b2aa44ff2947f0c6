"""Save and load dictionaries in sae-lens's on-disk layout: ``cfg.json`` + ``sae_weights.safetensors``
with ``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_in]``, ``b_enc [d_sae]``, ``b_dec [d_in]`` (an SAE),
so published SAEs load onto either side of a pair and interp's SAEs travel. A crosscoder uses the
same names with a models axis (``W_enc [n_models, d_in, d_sae]``, ``W_dec [d_sae, n_models, d_in]``,
``b_dec [n_models, d_in]``) and ``"n_models"`` / ``"models"`` in its config.

Example::

    save_dictionary(cc, "out/crosscoder", hook_name="blocks.8.hook_resid_post", hook_layer=8)
    cc = load_dictionary("out/crosscoder")
"""

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from interp.atomic import atomic_path, write_json_atomic
from interp.dictionary.models import BatchTopKSAE, Crosscoder

__all__ = ["save_dictionary", "load_dictionary", "shipped_crosscoder"]

_ARCH = {("sae", True): "batchtopk", ("sae", False): "standard", ("cc", True): "crosscoder-batchtopk",
         ("cc", False): "crosscoder-l1"}


def save_dictionary(model: Crosscoder, folder: "str | os.PathLike[str]", *, hook_name: str, hook_layer: int,
                    model_name: str = "", models: tuple[str, ...] = ("base", "aligned"), extra: dict | None = None,
                    dtype: str = "float32") -> Path:
    """Write ``folder/cfg.json`` and ``folder/sae_weights.safetensors`` (each atomically), the
    weights in ``dtype`` (``"float32"`` or ``"bfloat16"``: half the size, loaded back as float32)."""
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {dtype!r}")
    folder = Path(folder)
    sae = model.n_models == 1
    W_enc, W_dec, b_dec = model.W_enc.detach(), model.W_dec.detach(), model.b_dec.detach()
    tensors = ({"W_enc": W_enc[0], "W_dec": W_dec[:, 0], "b_enc": model.b_enc.detach(), "b_dec": b_dec[0]} if sae else
               {"W_enc": W_enc, "W_dec": W_dec, "b_enc": model.b_enc.detach(), "b_dec": b_dec})
    with atomic_path(folder / "sae_weights.safetensors") as tmp:
        save_file({k: v.to(getattr(torch, dtype)).contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    cfg = {"architecture": _ARCH[("sae" if sae else "cc", model.k is not None)], "d_in": model.d_model,
           "d_sae": model.width, "k": model.k, "threshold": None if torch.isnan(model.threshold) else float(model.threshold),
           "hook_name": hook_name, "hook_layer": int(hook_layer), "model_name": model_name, "dtype": dtype,
           "device": "cpu", "apply_b_dec_to_input": True, "normalize_activations": "none",
           **({} if sae else {"n_models": model.n_models, "models": list(models)[: model.n_models]}), **(extra or {})}
    write_json_atomic(folder / "cfg.json", cfg)
    return folder


def load_dictionary(folder: "str | os.PathLike[str]") -> Crosscoder:
    """A dictionary saved by :func:`save_dictionary`, or an sae-lens SAE of architecture
    ``standard``, ``topk`` or ``batchtopk``; other architectures raise a ``ValueError`` naming them."""
    folder = Path(folder)
    cfg_file, weights = folder / "cfg.json", folder / "sae_weights.safetensors"
    if not cfg_file.is_file() or not weights.is_file():
        raise FileNotFoundError(f"{folder} lacks cfg.json or sae_weights.safetensors (sae-lens layout)")
    cfg = json.loads(cfg_file.read_text())
    t = {k: v.float() for k, v in load_file(str(weights)).items()}
    arch = cfg.get("architecture", "standard")
    if arch in ("standard", "topk", "batchtopk"):
        k = cfg.get("k") or (cfg.get("activation_fn_kwargs") or {}).get("k")
        if arch != "standard" and not k:
            raise ValueError(f"{folder}: a {arch} SAE without k in its config")
        model = BatchTopKSAE(int(cfg["d_in"]), int(cfg["d_sae"]), k=int(k) if k else 1)
        model.k = int(k) if arch != "standard" else None
        model.per_token = arch == "topk"
        with torch.no_grad():
            model.W_enc.copy_(t["W_enc"].unsqueeze(0))
            model.W_dec.copy_(t["W_dec"].unsqueeze(1))
            model.b_enc.copy_(t["b_enc"])
            model.b_dec.copy_(t["b_dec"].unsqueeze(0))
    elif arch in ("crosscoder-batchtopk", "crosscoder-l1"):
        model = Crosscoder(int(cfg["d_in"]), int(cfg["d_sae"]), int(cfg["n_models"]),
                           k=cfg.get("k") if arch == "crosscoder-batchtopk" else None)
        with torch.no_grad():
            for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
                getattr(model, name).copy_(t[name])
    else:
        raise ValueError(f"{folder}: architecture {arch!r} is not supported; interp loads standard, topk, batchtopk "
                         "SAEs and its own crosscoders")
    if cfg.get("threshold") is not None:
        model.threshold.fill_(float(cfg["threshold"]))
    model.cfg = cfg
    return model.eval()


def shipped_crosscoder(pair_name: str = "default") -> Path | None:
    """The folder of the crosscoder shipped with a registered recipe pair (``<adapter>/crosscoder``:
    ``data/aligned/default/crosscoder`` for the default pair), or ``None`` where none is shipped.

    Example::

        cc = load_dictionary(shipped_crosscoder())      # cc.cfg: layer, input scales, held-out statistics
    """
    from interp.models.registry import get_pair_spec

    entry = get_pair_spec(pair_name)
    if not entry.adapter_dir or entry.placeholder:
        return None
    folder = Path(entry.adapter_dir) / "crosscoder"
    return folder if (folder / "cfg.json").is_file() else None
