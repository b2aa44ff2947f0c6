"""Greedy answers remembered on disk, keyed by everything that decides them.

Selecting evaluation sets asks a model the same held-out questions again and again (the demo, a
notebook and the CLI each ask the aligned model every base-known fact). :func:`remembered_answers`
generates only the prompts it has not answered before under the same :func:`outputs_key`, and keeps
the rest in ``$INTERP_CACHE/answers/<key>.json`` (written atomically). The key is a hash of

- the weights (:func:`interp.models.load.weights_fingerprint`: another adapter, a fine-tune or an
  in-place edit gives another key) and the tokenizer (vocabulary size, stop tokens);
- the generation settings (``max_new_tokens``, greedy);
- the code that generates (the source of :mod:`interp.behavior.generate`, the prompt encoder, the
  chat formats and the runtime's calling conventions);
- the versions of the packages that compute the answers (:func:`interp.versions.versions`:
  torch, transformers, TransformerLens, peft, ...).

So an answer generated under another transformers, or by code that has since been fixed, is never
served. While hooks are active on the model (a TransformerLens hook, an intervention) nothing is read
or written: the answers are generated afresh, as they depend on the hook.

Greedy decoding only. An answer was generated in whatever batch the prompt first came in: under
fp32 a different batch (other padding) can, rarely, flip a near-tie token; the same holds for
:func:`interp.behavior.generate` itself.

Example::

    answers = remembered_answers(pair.aligned, prompts, max_new_tokens=6)
"""

import functools
import hashlib
import inspect
import json
from collections.abc import Sequence
from typing import Any

from interp import distributed
from interp.atomic import atomic_write
from interp.behavior.generate import generate

__all__ = ["remembered_answers", "outputs_key", "code_digest"]


@functools.lru_cache(maxsize=None)
def code_digest(*modules: str) -> str:
    """A hash of the source of the named modules (what a cache of their outputs depends on)."""
    import importlib

    digest = hashlib.sha256()
    for name in modules:
        digest.update(name.encode())
        digest.update(inspect.getsource(importlib.import_module(name)).encode())
    return digest.hexdigest()[:16]


# The modules whose code decides a generated answer.
GENERATION_CODE = ("interp.behavior.generate", "interp.prompts", "interp.chat_formats", "interp.runtime.conventions")


def outputs_key(model: Any, **settings: Any) -> str:
    """The key of a cache of ``model``'s outputs: weights, tokenizer, ``settings``, the generation
    code and the package versions (see the module docstring)."""
    from interp.chat_formats import stop_token_ids
    from interp.models.load import weights_fingerprint
    from interp.versions import versions

    tok = model.tokenizer
    record = {"weights": weights_fingerprint(model), "vocab": len(tok), "stops": sorted(stop_token_ids(tok)),
              "settings": settings, "code": code_digest(*GENERATION_CODE), "versions": versions()}
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:20]


def remembered_answers(model: Any, prompts: Sequence[str], *, max_new_tokens: int, batch_size: int = 32,
                       progress: "bool | str" = False, remember: bool = True) -> list[str]:
    """Greedy answers to formatted ``prompts``: earlier ones read back, new ones generated (one
    :func:`~interp.behavior.generate` call over the missing prompts) and added to the file.
    ``remember=False`` (or hooks active on the model): generate everything and touch no file."""
    from interp.runtime.forward import hooks_active

    if not remember or hooks_active(model):
        return generate(model, list(prompts), max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress)
    from interp.paths import cache_dir

    path = cache_dir("answers") / f"{outputs_key(model, max_new_tokens=max_new_tokens, greedy=True)}.json"
    known: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
    missing = list(dict.fromkeys(p for p in prompts if p not in known))
    if missing:
        new = generate(model, missing, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress)
        known.update(zip(missing, new))
        if distributed.is_main():
            fresh = json.loads(path.read_text()) if path.is_file() else {}  # another process may have added some
            atomic_write(path, json.dumps({**fresh, **known}))
    return [known[p] for p in prompts]
