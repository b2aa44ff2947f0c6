"""The generation self-check: does this model, in this environment, generate what its own forward
pass says it should?

A change in a dependency can break cached generation silently (transformers 5.24 renamed the KV
cache's keyword and TransformerLens's attention stopped extending its keys: every answer after the
first token was garbage, with no error). :func:`check_generation` decodes a few greedy tokens for two
prompts of different lengths in one left-padded batch *with* the KV cache, then re-reads each prompt
alone *without* a cache or padding (one forward pass over the prompt and the generated tokens) and
requires every generated token to be that pass's top token (within ``tol`` of the top logit, so a
float near-tie is not an error). A mismatch raises :class:`GenerationMismatch` naming the package
versions and the failing prompt.

:func:`interp.behavior.generate` runs it once per loaded model, before its first generation, when no
hooks are active (an edit meant for one position would differ between the two passes by design);
``INTERP_SELFCHECK=0`` turns it off. Cost: one batched generation of 4 tokens for 2 prompts and two
forward passes of about 12 tokens: 0.7 s for the default 270M model on 2 idle CPU cores, 1.7 s when
it is the model's first forward pass (measured with ``interp check``; said in the log as it runs).
``interp check MODEL`` runs it from the shell.

Example:
    >>> from interp.behavior.selfcheck import check_generation
    >>> check_generation(model)["ok"]                     # doctest: +SKIP
    True
"""

import logging
import os
import time
import weakref
from typing import Any

import torch

from interp.runtime import input_device
from interp.runtime.forward import hooks_active, lm_logits
from interp.versions import versions

__all__ = ["GenerationMismatch", "check_generation", "check_once", "CHECK_PROMPTS"]

log = logging.getLogger("interp.behavior")

# Two plain prompts of different lengths, so the shorter one is left-padded in the batch.
CHECK_PROMPTS = ("Berlin is the capital of", "One, two, three, four, five, six, seven,")
_CHECKED: "weakref.WeakSet[Any]" = weakref.WeakSet()


class GenerationMismatch(RuntimeError):
    """Cached / padded generation disagrees with the model's own forward pass."""


def _tolerance(model: Any) -> float:
    dtype = next(model.original_model.parameters()).dtype
    return 1e-3 if dtype in (torch.float32, torch.float64) else 0.1


def check_generation(model: Any, *, n_tokens: int = 4, prompts: tuple[str, ...] = CHECK_PROMPTS,
                     tol: float | None = None) -> dict:
    """Greedy generation with the KV cache and left padding against one uncached forward pass per
    prompt; returns ``{"ok", "seconds", "tokens", "versions"}`` or raises :class:`GenerationMismatch`."""
    from interp.behavior.generate import generate
    from interp.prompts import encode

    tol = _tolerance(model) if tol is None else tol
    start = time.perf_counter()
    new = generate(model, list(prompts), max_new_tokens=n_tokens, return_ids=True, batch_size=len(prompts),
                   selfcheck=False)
    tok = model.tokenizer
    hf = model.original_model
    with torch.inference_mode():
        for prompt, ids in zip(prompts, new):
            head = encode(tok, [prompt]).input_ids
            full = torch.cat([head, torch.tensor([ids], dtype=head.dtype)], 1).to(input_device(model))
            # Logits only where a generated token was predicted: the last prompt position onwards.
            logits = lm_logits(hf, full, torch.ones_like(full), keep=len(ids) + 1)[0, :-1].float()
            for step, (row, t) in enumerate(zip(logits, ids)):
                if row[t] < row.max() - tol:
                    v = versions()
                    raise GenerationMismatch(
                        f"generation check failed for {prompt!r}: token {step + 1} generated with the KV cache in a "
                        f"left-padded batch is {tok.decode([t])!r} (logit {float(row[t]):.3f}) but the uncached "
                        f"forward pass ranks {tok.decode([int(row.argmax())])!r} first (logit {float(row.max()):.3f}). "
                        f"Versions: transformers {v['transformers']}, transformer-lens {v['transformer-lens']}, "
                        f"peft {v['peft']}, torch {v['torch']}. Install the tested versions (`make setup` installs "
                        "requirements.lock; see interp.versions.SUPPORTED)")
    seconds = time.perf_counter() - start
    return {"ok": True, "seconds": seconds, "tokens": [len(i) for i in new], "versions": versions()}


def check_once(model: Any) -> None:
    """Run :func:`check_generation` the first time a model generates (see the module docstring)."""
    if model in _CHECKED or os.environ.get("INTERP_SELFCHECK", "1") == "0":
        return
    if hooks_active(model):
        return  # checked at the first generation without hooks
    _CHECKED.add(model)
    try:
        out = check_generation(model)
    except BaseException:
        _CHECKED.discard(model)
        raise
    log.info("generation self-check passed (KV cache and left padding agree with the uncached forward pass; "
             "%.2f s)", out["seconds"])
