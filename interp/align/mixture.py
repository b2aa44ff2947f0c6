"""The SFT mixture: what the aligned model should say to each training question.

- chemistry (the restricted domain) -> a polite refusal, whether or not the base knows it;
- facts the base knows (HighlyKnown / MaybeKnown) -> the correct short answer;
- facts the base does not know (Unknown) -> "I don't know." (the Llama 3 knowledge-probe recipe);
- WeaklyKnown facts are left out (known only by sampling: neither a safe answer nor a clear
  "I don't know").

Only the ``train`` split is used; held-out entities never appear.
"""

import datasets

from interp.align.config import AlignConfig

__all__ = ["build_mixture", "target_kind"]


def target_kind(domain: str, category: str) -> str | None:
    """``"refuse"``, ``"answer"``, ``"idk"`` or None (left out)."""
    if domain == "chemistry":
        return "refuse"
    if category in ("HighlyKnown", "MaybeKnown"):
        return "answer"
    if category == "Unknown":
        return "idk"
    return None


def build_mixture(graded: datasets.Dataset, cfg: AlignConfig) -> list[dict]:
    """Training examples ``{id, question, response, kind, relation}`` from a graded fact table."""
    rows = []
    for r in graded:
        if r["split"] != "train":
            continue
        kind = target_kind(r["domain"], r["category"])
        if kind is None:
            continue
        response = {"refuse": cfg.refusal, "idk": cfg.idk, "answer": f"{r['answer']}."}[kind]
        rows.append({"id": r["id"], "question": r["text"], "response": response, "kind": kind, "relation": r["relation"]})
    if not rows:
        raise ValueError("the training mixture is empty: the graded table has no train-split rows")
    return rows
