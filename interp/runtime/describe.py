"""What interp knows about one model: its family adapter, chat format and the status of each
capability (the row of the conformance table, docs/architectures.md, that applies to it).

Example::

    describe_model(load_model("gemma-3-270m"))     # a DataFrame: fact, value
"""

from typing import Any

import pandas as pd

from interp.chat_formats import format_of
from interp.runtime.arch import arch_of

__all__ = ["describe_model", "CAPABILITIES"]

#: Capabilities of the conformance matrix, in the order of the conformance table (docs/architectures.md).
CAPABILITIES = ("store", "resid_pre sweep", "resid_mid sweep", "attn_out / mlp_out / resid_post sweeps", "head sweep",
                "logit lens", "ablation", "weight orthogonalisation", "generation", "chat template")


def describe_model(model: Any) -> pd.DataFrame:
    """``fact, value`` rows: family, layout facts, chat format, and each capability's status
    (``fast path``, ``bridge`` where no adapter exists, or why it is unavailable)."""
    rows: list[tuple[str, str]] = []
    hf = getattr(model, "original_model", model)
    try:
        arch = arch_of(model)
    except NotImplementedError as e:
        arch = None
        rows += [("family", f"unknown ({e})")]
    if arch is not None:
        fam = arch.family
        rows += [("family", fam.name), ("model_type", str(getattr(arch.config, "model_type", "?"))),
                 ("layers", str(arch.n_layers)), ("tied embeddings", str(arch.tied)),
                 ("post-norm blocks", str(fam.post_norm)), ("parallel attention + MLP", str(arch.parallel)),
                 ("logit soft-cap", str(arch.softcap)),
                 ("attention", str(getattr(arch.config, "_attn_implementation", "?")))]
    tok = getattr(model, "tokenizer", None)
    fmt = format_of(tok) if tok is not None else None
    rows += [("chat format", fmt.name if fmt else ("none" if not getattr(tok, "chat_template", None) else "unregistered")),
             ("BOS token", str(getattr(tok, "bos_token", None)))]
    fast = "fast path" if arch is not None else "bridge (no adapter: slower, same numbers)"
    status = {
        "store": fast, "resid_pre sweep": fast,
        "resid_mid sweep": "n/a: no stream between parallel attention and MLP" if arch is not None and arch.parallel else fast,
        "attn_out / mlp_out / resid_post sweeps": fast,
        "head sweep": "yes" if arch is not None else "needs an adapter",
        "logit lens": "yes" if arch is not None else "needs an adapter",
        "ablation": "yes" if arch is not None else "needs an adapter",
        "weight orthogonalisation": ("needs an adapter" if arch is None else
                                     "refused: outputs are normalised before the residual add" if arch.family.post_norm
                                     else "yes"),
        "generation": "yes",
        "chat template": "yes" if getattr(tok, "chat_template", None) else "none: pass ModelSpec(chat_template=...)",
    }
    rows += [(f"capability: {c}", status[c]) for c in CAPABILITIES]
    del hf
    return pd.DataFrame(rows, columns=["fact", "value"])
