"""The text the difference is taken on: unrelated to the fine-tuning, never chat data.

Minder et al. (2025) average over the first tokens of pretraining web text. No web text is
reachable here, so the default is what the paired corpus (:mod:`interp.dictionary.corpus`) uses
for its base half: text the base model samples from its BOS alone at temperature 1
(:func:`base_samples`); a built corpus's base rows can be read instead (:func:`corpus_texts`), or
any texts a user passes. Every text is cut to its first ``k`` tokens (:func:`first_tokens`): only
those positions are read.

Example:
    >>> texts = base_samples(pair, n=128, k=8)             # doctest: +SKIP
    >>> first_tokens(pair.base.tokenizer, ["a b c d"], 2)  # doctest: +SKIP
    ['a b']
"""

from collections.abc import Sequence
from pathlib import Path

__all__ = ["base_samples", "corpus_texts", "first_tokens"]


def first_tokens(tokenizer, texts: Sequence[str], k: int) -> list[str]:
    """Each text cut to its first ``k`` tokens (no BOS counted), decoded; empty texts are dropped."""
    if k < 1:
        raise ValueError(f"k must be >= 1 (positions after BOS), got {k}")
    out = []
    for t in texts:
        ids = tokenizer(str(t), add_special_tokens=False).input_ids[:k]
        text = tokenizer.decode(ids, skip_special_tokens=True)
        if text.strip():
            out.append(text)
    return out


def base_samples(pair, *, n: int = 128, k: int = 8, seed: int = 0, temperature: float = 1.0,
                 batch_size: int = 64) -> list[str]:
    """``n`` texts the base samples from its BOS alone (as the paired corpus's base half is made),
    ``k`` tokens each (texts that end at once are dropped, so a few fewer may come back)."""
    from interp.behavior import generate

    if n < 2:
        raise ValueError(f"n must be >= 2 texts (intervals resample them), got {n}")
    texts = generate(pair.base, [""] * n, max_new_tokens=k, do_sample=True, temperature=temperature,
                     batch_size=batch_size, seed=seed)
    return first_tokens(pair.base.tokenizer, texts, k)


def corpus_texts(corpus_dir: "str | Path", *, n: int | None = None) -> list[str]:
    """The base rows (never the chat rows) of a paired corpus built by
    :func:`interp.dictionary.corpus.build_corpus`, the first ``n`` of them."""
    from interp.dictionary.corpus import load_corpus

    frame = load_corpus(corpus_dir)
    rows = frame[frame.kind == "base"].text.tolist()
    if not rows:
        raise ValueError(f"{corpus_dir} holds no base rows; build the corpus with build_corpus(pair, {str(corpus_dir)!r})")
    return rows[:n] if n else rows
