"""Dictionaries on disk: sae-lens's layout (read and written), dictionary_learning's crosscoders (read).

sae-lens layout: ``cfg.json`` + ``sae_weights.safetensors`` with ``W_enc [d_in, d_sae]``,
``W_dec [d_sae, d_in]``, ``b_enc [d_sae]``, ``b_dec [d_in]`` (and ``threshold [d_sae]`` for a
JumpReLU SAE). What interp writes for an SAE is what sae-lens's ``SAE.load_from_disk`` reads
(tested against sae-lens itself, ``tests/unit/test_sae_lens_interop.py``):

- a BatchTopK SAE with its fitted threshold is written as ``"jumprelu"``, as sae-lens saves its
  own BatchTopK SAEs (latent j's threshold: interp's threshold over the latent's decoder norm);
  ``cfg.json`` keeps ``k`` and interp's threshold, so interp reads it back as BatchTopK; a
  per-token top-k SAE is written as ``"topk"``, a ReLU / L1 one as ``"standard"``;
- the factors interp multiplied the activations by in training (``input_scale``) are folded into
  the weights (``W_enc * s``, ``W_dec / s``, ``b_dec / s``, what sae-lens's
  ``fold_activation_norm_scaling_factor`` does) and ``normalize_activations`` is ``"none"``: a
  reader that never heard of interp encodes *raw* activations right. interp unfolds on load.

A crosscoder uses the same names with a models axis (``W_enc [n_models, d_in, d_sae]``,
``W_dec [d_sae, n_models, d_in]``, ``b_dec [n_models, d_in]``; ``"n_models"`` / ``"models"`` in
``cfg.json``); sae-lens has no crosscoder class.

Reading sae-lens files, interp honours ``apply_b_dec_to_input``, JumpReLU thresholds, ``topk``'s
``rescale_acts_by_decoder_norm`` and the per-token ``normalize_activations`` (``layer_norm``,
``constant_norm_rescale``); ``expected_average_only_in`` needs its factor (``input_scale=``), which
sae-lens keeps outside the file; head-indexed (``hook_z``) SAEs are refused (interp's pairs cache
residual streams).

Every loaded dictionary has ``model.cfg["input_scale"]`` (one factor per model): multiply the
activations by it before encoding (1 for SAEs from sae-lens). Two files, one artefact: the
weights are written first, then ``cfg.json`` with their SHA-256; a reader refuses a pair whose
checksum differs (a writer killed between the two).

Example::

    save_dictionary(cc, "out/crosscoder", hook_name="blocks.8.hook_resid_post", hook_layer=8, input_scale=factor)
    cc = load_dictionary("out/crosscoder")                   # cc.cfg["input_scale"]: factor
    cc = load_dictionary_learning_crosscoder("ckpt/model.safetensors")
"""

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from interp.atomic import atomic_path, write_json_atomic
from interp.dictionary.models import BatchTopKSAE, Crosscoder

__all__ = ["save_dictionary", "load_dictionary", "load_dictionary_learning_crosscoder", "shipped_crosscoder"]

_PER_TOKEN_NORMS = ("layer_norm", "constant_norm_rescale")


def _sha256(path: "str | os.PathLike[str]") -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _scales(input_scale, n_models: int) -> Tensor:
    s = torch.as_tensor([1.0] * n_models if input_scale is None else input_scale, dtype=torch.float32).flatten().cpu()
    if s.numel() == 1:
        s = s.expand(n_models).clone()
    if s.numel() != n_models or not torch.isfinite(s).all() or (s <= 0).any():
        raise ValueError(f"input_scale: one positive factor per model ({n_models}), got {s.tolist()}")
    return s


def save_dictionary(model: Crosscoder, folder: "str | os.PathLike[str]", *, hook_name: str, hook_layer: int,
                    model_name: str = "", models: tuple[str, ...] = ("base", "aligned"), extra: dict | None = None,
                    dtype: str = "float32", input_scale: "Tensor | list[float] | None" = None) -> Path:
    """Write ``folder/sae_weights.safetensors`` then ``folder/cfg.json`` (each atomically; the
    config carries the weights' checksum), the weights in ``dtype`` (``"float32"`` or
    ``"bfloat16"``: half the size, loaded back as float32). ``input_scale``: the factor per model
    the training activations were multiplied by (``scale_factors``), folded into the weights."""
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {dtype!r}")
    extra = dict(extra or {})
    if "input_scale" in extra:
        raise ValueError("save_dictionary: pass input_scale=... (folded into the weights, so that raw activations "
                         "encode right), not extra={'input_scale': ...}")
    s = _scales(input_scale, model.n_models)
    if model.input_norm != "none" and not torch.all(s == 1):
        raise ValueError(f"save_dictionary: a dictionary with a per-token input_norm ({model.input_norm!r}) ignores a "
                         "constant input scale; pass input_scale=None")
    folder = Path(folder)
    sae = model.n_models == 1
    W_enc = model.W_enc.detach().float().cpu() * s[:, None, None]
    W_dec = model.W_dec.detach().float().cpu() / s[None, :, None]
    b_dec = model.b_dec.detach().float().cpu() / s[:, None]
    b_enc = model.b_enc.detach().float().cpu()
    fitted = not torch.isnan(model.threshold)
    tensors = ({"W_enc": W_enc[0], "W_dec": W_dec[:, 0], "b_enc": b_enc, "b_dec": b_dec[0]} if sae else
               {"W_enc": W_enc, "W_dec": W_dec, "b_enc": b_enc, "b_dec": b_dec})
    more: dict = {}
    if model.jump_threshold is not None:
        arch = "jumprelu" if sae else "crosscoder-jumprelu"
        tensors["threshold"] = model.jump_threshold.detach().float().cpu()
    elif not sae:
        arch = "crosscoder-batchtopk" if model.k is not None else "crosscoder-l1"
    elif model.k is None:
        arch = "standard"
    elif model.per_token:
        arch = "topk"
    elif not fitted:
        raise ValueError("save_dictionary: a BatchTopK SAE without its inference threshold (sae-lens reads it as "
                         "JumpReLU thresholds); call model.fit_threshold(batches) first (train_dictionary does)")
    else:  # sae-lens's own BatchTopK export: a JumpReLU whose thresholds are the pre-activation cut-offs
        arch, more["interp_architecture"] = "jumprelu", "batchtopk"
        norms = model.decoder_norms().detach().float().cpu().sum(-1).clamp_min(1e-12)
        tensors["threshold"] = float(model.threshold) / norms
    with atomic_path(folder / "sae_weights.safetensors") as tmp:
        save_file({k: v.to(getattr(torch, dtype)).contiguous() for k, v in tensors.items()}, str(tmp))
        checksum = _sha256(tmp)
    cfg = {"architecture": arch, "d_in": model.d_model, "d_sae": model.width, "k": model.k,
           "threshold": float(model.threshold) if fitted else None, "hook_name": hook_name, "hook_layer": int(hook_layer),
           "hook_head_index": None, "model_name": model_name, "dtype": dtype, "device": "cpu",
           "apply_b_dec_to_input": bool(model.apply_b_dec_to_input), "normalize_activations": model.input_norm,
           "input_scale": s.tolist(), "input_scale_folded": True, **more,
           **({} if sae else {"n_models": model.n_models, "models": list(models)[: model.n_models]}), **extra,
           "weights_sha256": checksum}
    write_json_atomic(folder / "cfg.json", cfg)  # last: a reader never pairs new weights with an old config
    return folder


def load_dictionary(folder: "str | os.PathLike[str]", *, input_scale: "list[float] | float | None" = None) -> Crosscoder:
    """A dictionary saved by :func:`save_dictionary`, or an sae-lens SAE (``standard``, ``topk``,
    ``jumprelu``; ``batchtopk`` as interp once wrote it). ``input_scale``: the factor the SAE's
    activations must be multiplied by, where the file does not hold it (sae-lens's
    ``expected_average_only_in``). The model works on activations times ``model.cfg["input_scale"]``."""
    folder = Path(folder)
    cfg_file, weights = folder / "cfg.json", folder / "sae_weights.safetensors"
    if not cfg_file.is_file() or not weights.is_file():
        raise FileNotFoundError(f"{folder} lacks cfg.json or sae_weights.safetensors (sae-lens layout)")
    cfg = json.loads(cfg_file.read_text())
    want = cfg.get("weights_sha256")
    if want is not None and _sha256(weights) != want:
        raise ValueError(f"{folder}: sae_weights.safetensors does not belong to cfg.json (checksum differs: the two "
                         "were written by different saves, or a save was interrupted between them); save it again")
    t = {k: v.float() for k, v in load_file(str(weights)).items()}
    meta = cfg.get("metadata") or {}
    head = cfg.get("hook_head_index", meta.get("hook_head_index"))
    hook = str(cfg.get("hook_name", meta.get("hook_name")) or "")
    if head is not None or cfg.get("reshape_activations") == "hook_z" or hook.endswith("hook_z"):
        raise ValueError(f"{folder}: an SAE on attention heads (hook {hook!r}, head index {head}); interp's pairs cache "
                         "residual streams: use an SAE trained on hook_resid_pre / resid_post")
    arch = cfg.get("architecture", "standard")
    d, width = int(cfg["d_in"]), int(cfg["d_sae"])
    if arch in ("standard", "topk", "jumprelu", "batchtopk"):
        k = cfg.get("k") or (cfg.get("activation_fn_kwargs") or {}).get("k")
        batchtopk = arch == "batchtopk" or cfg.get("interp_architecture") == "batchtopk"
        if (arch == "topk" or batchtopk) and not k:
            raise ValueError(f"{folder}: a {arch} SAE without k in its config")
        model: Crosscoder = BatchTopKSAE(d, width, k=int(k) if k else 1)
        model.k = int(k) if arch == "topk" or batchtopk else None
        model.per_token = arch == "topk"
        with torch.no_grad():
            model.W_enc.copy_(t["W_enc"].unsqueeze(0))
            model.W_dec.copy_(t["W_dec"].unsqueeze(1))
            model.b_enc.copy_(t["b_enc"])
            model.b_dec.copy_(t["b_dec"].unsqueeze(0))
        if arch == "jumprelu" and not batchtopk:
            if "threshold" not in t:
                raise ValueError(f"{folder}: a jumprelu SAE without a 'threshold' tensor")
            model.jump_threshold = t["threshold"].clone()
        if arch == "topk" and cfg.get("rescale_acts_by_decoder_norm"):  # fold the norms: same latents, same output
            with torch.no_grad():
                n = model.W_dec.norm(dim=-1).squeeze(1).clamp_min(1e-12)
                model.W_enc.mul_(n)
                model.b_enc.mul_(n)
                model.W_dec.div_(n[:, None, None])
    elif arch in ("crosscoder-batchtopk", "crosscoder-l1", "crosscoder-jumprelu"):
        model = Crosscoder(d, width, int(cfg["n_models"]), k=cfg.get("k") if arch == "crosscoder-batchtopk" else None)
        with torch.no_grad():
            for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
                getattr(model, name).copy_(t[name])
        if arch == "crosscoder-jumprelu":
            model.jump_threshold = t["threshold"].clone()
    else:
        raise ValueError(f"{folder}: architecture {arch!r} is not supported; interp loads sae-lens's standard, topk and "
                         "jumprelu SAEs and its own crosscoders")
    if cfg.get("threshold") is not None and model.jump_threshold is None:
        model.threshold.fill_(float(cfg["threshold"]))
    model.apply_b_dec_to_input = bool(cfg.get("apply_b_dec_to_input", True))
    _input_scaling(model, cfg, folder, input_scale)
    model.cfg = cfg
    return model.eval()


def _input_scaling(model: Crosscoder, cfg: dict, folder: Path, input_scale) -> None:
    """Honour ``normalize_activations``; unfold interp's folded input scale (so the model reads
    activations times ``cfg["input_scale"]``, as it was trained); set ``cfg["input_scale"]``."""
    norm = cfg.get("normalize_activations")
    norm = {None: "none", False: "none", True: "expected_average_only_in"}.get(norm, norm)  # sae-lens < 3: a bool
    if norm in _PER_TOKEN_NORMS:
        model.input_norm = norm
    elif norm == "expected_average_only_in" and input_scale is None:
        raise ValueError(f"{folder}: normalize_activations='expected_average_only_in': the SAE reads activations "
                         "multiplied by a factor the file does not hold (sae-lens folds it only for its registry's "
                         "releases); pass load_dictionary(folder, input_scale=<factor>)")
    elif norm == "covariance_whitening":
        raise ValueError(f"{folder}: normalize_activations='covariance_whitening' and the whitening is not folded into "
                         "the weights; fold it with sae-lens (SAE.fold_activation_whitening) and save again")
    elif norm not in ("none", "expected_average_only_in"):
        raise ValueError(f"{folder}: normalize_activations={norm!r} is not one interp knows (none, "
                         "expected_average_only_in, layer_norm, constant_norm_rescale)")
    if cfg.get("input_scale_folded"):
        s = _scales(cfg["input_scale"], model.n_models)
        with torch.no_grad():
            model.W_enc.div_(s[:, None, None])
            model.W_dec.mul_(s[None, :, None])
            model.b_dec.mul_(s[:, None])
    if input_scale is not None:
        cfg["input_scale"] = _scales(input_scale, model.n_models).tolist()
    cfg.setdefault("input_scale", [1.0] * model.n_models)  # files from elsewhere: raw activations


def load_dictionary_learning_crosscoder(path: "str | os.PathLike[str]") -> Crosscoder:
    """A crosscoder saved by dictionary_learning (``CrossCoder`` / ``BatchTopKCrossCoder`` of the
    science-of-finetuning fork the model-diffing toolkit trains with): a ``.safetensors`` file, a
    hub folder (``model.safetensors`` + ``config.json``) or a ``.pt`` state dict (read with
    ``weights_only=True``). Its encoder reads ``x`` (no decoder bias subtracted); its activation
    normaliser ``(x - mean) * global_scale`` is folded into the biases and the input scale
    (``model.cfg["input_scale"]``; relative decoder norms unchanged); a ``BatchTopKCrossCoder``'s
    threshold compares the activation times the summed decoder norms, as interp's does (other
    code normalisations become per-latent JumpReLU thresholds; ``DECOUPLED`` is refused).

    Example::

        cc = load_dictionary_learning_crosscoder("gemma-2-2b-crosscoder-l13/model.safetensors")
        f = cc.encode(x * torch.tensor(cc.cfg["input_scale"])[None, :, None])   # x [batch, 2, d]
    """
    path = Path(path)
    config: dict = {}
    if path.is_dir():
        if (path / "config.json").is_file():
            config = json.loads((path / "config.json").read_text())
        found = [p for p in (path / "model.safetensors", path / "ae.pt") if p.is_file()]
        if not found:
            raise FileNotFoundError(f"{path} holds neither model.safetensors nor ae.pt (dictionary_learning's files)")
        path = found[0]
    sd = load_file(str(path)) if path.suffix == ".safetensors" else torch.load(path, map_location="cpu", weights_only=True)
    sd = {k.split("_orig_mod.")[-1]: v for k, v in sd.items()}  # saved under torch.compile
    missing = [k for k in ("encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias") if k not in sd]
    if missing:
        raise ValueError(f"{path}: not a dictionary_learning crosscoder (no {missing}; has {sorted(sd)[:8]})")
    W_enc, W_dec = sd["encoder.weight"].float(), sd["decoder.weight"].float()  # [L, d, W], [L, W, d]
    L, d, width = W_enc.shape
    if tuple(W_dec.shape) != (L, width, d):
        raise ValueError(f"{path}: encoder {tuple(W_enc.shape)} and decoder {tuple(W_dec.shape)} read different layers; "
                         "interp reads crosscoders whose encoder and decoder cover the same models")
    names = {1: "CROSSCODER", 2: "SAE", 3: "MIXED", 4: "NONE", 5: "DECOUPLED"}  # dictionary_learning's CodeNormalization
    code = (names[int(sd["code_normalization_id"])] if "code_normalization_id" in sd else
            str(config.get("code_normalization", "CROSSCODER")).upper())
    if code == "DECOUPLED":
        raise ValueError(f"{path}: code normalisation DECOUPLED (a code per layer) has no interp equivalent")
    k = int(sd["k"]) if "k" in sd else None
    model = Crosscoder(d, width, L, k=k)
    model.apply_b_dec_to_input = False
    b_enc, b_dec = sd["encoder.bias"].float().clone(), sd["decoder.bias"].float().clone()
    scale = torch.ones(L)
    mean, std = sd.get("activation_mean"), sd.get("activation_std")
    if mean is not None and std is not None and not (torch.isnan(mean).any() or torch.isnan(std).any()):
        mean, std = mean.float(), std.float()
        g = sd.get("activation_global_scale")
        rms = float(sd.get("target_rms", torch.tensor(1.0)))
        g = (rms / torch.sqrt((std**2).sum(-1) + 1e-8)) if g is None else g.float().reshape(L)
        scale = g + 1e-8  # what its denormalisation divides by: x_hat = decoded / (g + 1e-8) + mean
        W_enc = W_enc * (g / scale)[:, None, None]  # reads scale * x, as the normaliser's g * x
        b_enc = b_enc - torch.einsum("ld,ldw->w", g[:, None] * mean, sd["encoder.weight"].float())
        b_dec = b_dec + scale[:, None] * mean
    with torch.no_grad():
        model.W_enc.copy_(W_enc)
        model.W_dec.copy_(W_dec.permute(1, 0, 2))
        model.b_enc.copy_(b_enc)
        model.b_dec.copy_(b_dec)
    threshold = float(sd["threshold"]) if "threshold" in sd else None
    if code != "CROSSCODER" and threshold is not None:  # its threshold compares f * (its code norm): per latent here
        if code == "SAE":
            norm = W_dec.norm(dim=(0, 2))
        elif code == "NONE":
            norm = torch.ones(width)
        else:  # MIXED
            norm = (float(config.get("code_normalization_alpha_sae", 1.0)) * W_dec.norm(dim=(0, 2))
                    + float(config.get("code_normalization_alpha_cc", 0.1)) * W_dec.norm(dim=2).sum(0))
        model.jump_threshold = threshold / norm.clamp_min(1e-12)
    elif threshold is not None:
        model.threshold.fill_(threshold)
    model.cfg = {"architecture": "dictionary_learning-" + ("BatchTopKCrossCoder" if k is not None else "CrossCoder"),
                 "d_in": d, "d_sae": width, "n_models": L, "k": k, "code_normalization": code,
                 "input_scale": scale.tolist(), "source": str(path)}
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
