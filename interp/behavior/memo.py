"""Greedy answers remembered on disk, keyed by the model's weights.

Selecting evaluation sets asks a model the same held-out questions again and again (the demo, a
notebook and the CLI each ask the aligned model every base-known fact). :func:`remembered_answers`
generates only the prompts it has not answered before for *these weights* (the fingerprint of
:func:`interp.models.load.weights_fingerprint`), at this ``max_new_tokens``, and keeps the rest in
``$INTERP_CACHE/answers/<fingerprint>-<max_new_tokens>.json`` (written atomically). Another
adapter, a fine-tune or an in-place edit gives another fingerprint, so nothing stale is reused.

Greedy decoding only. An answer was generated in whatever batch the prompt first came in: under
fp32 a different batch (other padding) can, rarely, flip a near-tie token; the same holds for
:func:`interp.behavior.generate` itself.

Example::

    answers = remembered_answers(pair.aligned, prompts, max_new_tokens=6)
"""

import json
from collections.abc import Sequence
from typing import Any

from interp import distributed
from interp.atomic import atomic_write
from interp.behavior.generate import generate

__all__ = ["remembered_answers"]


def remembered_answers(model: Any, prompts: Sequence[str], *, max_new_tokens: int, batch_size: int = 32,
                       progress: "bool | str" = False, remember: bool = True) -> list[str]:
    """Greedy answers to formatted ``prompts``: earlier ones read back, new ones generated (one
    :func:`~interp.behavior.generate` call over the missing prompts) and added to the file.
    ``remember=False``: generate everything and touch no file."""
    if not remember:
        return generate(model, list(prompts), max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress)
    from interp.models.load import weights_fingerprint
    from interp.paths import cache_dir

    path = cache_dir("answers") / f"{weights_fingerprint(model)}-{max_new_tokens}.json"
    known: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
    missing = list(dict.fromkeys(p for p in prompts if p not in known))
    if missing:
        new = generate(model, missing, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress)
        known.update(zip(missing, new))
        if distributed.is_main():
            fresh = json.loads(path.read_text()) if path.is_file() else {}  # another process may have added some
            atomic_write(path, json.dumps({**fresh, **known}))
    return [known[p] for p in prompts]
