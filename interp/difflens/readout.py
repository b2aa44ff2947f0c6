"""Reading a difference: the logit lens of it, its share of the fine-tuning objective, a Patchscope.

* :func:`difference_lens`: each layer's mean difference through the final norm and the
  unembedding (:func:`interp.runtime.normed_logits`, as :mod:`interp.lens` decodes a stream): the
  ``top`` promoted (highest logits) and demoted (lowest) tokens. Tokens matching ``hide`` are left
  out of the ranking (default: Gemma's ``<unusedN>`` placeholders, whose never-trained
  unembedding rows share one direction, so any difference along it promotes hundreds of them at
  once and says nothing); every other token, special ones included, is ranked.
* :func:`objective_share` / :func:`objective_hits`: which tokens belong to an objective, by a
  vocabulary fixed before any read-out (:data:`OBJECTIVE_VOCAB`, the default pair's recipe:
  chemistry questions refused with "I'm sorry, but I can't help with chemistry questions.",
  Unknown facts answered "I don't know.", short answers ended by the end-of-turn token). Words
  ending in ``*`` are stems; others match the token's letters exactly; ``<...>`` entries match the
  raw token. :func:`chance_share` is the same share for the top tokens of random directions read
  through the same lens (what a direction that knows nothing of the objective scores; their
  massive dimensions zeroed as the difference's are). Generated text is scored by phrases
  (:data:`OBJECTIVE_PHRASES`, :func:`text_share`), always beside the same score of unsteered and
  randomly steered text.
* :func:`patchscope`: the token-identity Patchscope (Ghandeharioun et al. 2024, as Minder et al.
  2025 use it): the model reads ``"cat -> cat\\n1135 -> 1135\\nhello -> hello\\n? ->"`` with its
  stream entering ``layer`` at the placeholder ``?`` *replaced* by ``scale * norm * unit(vector)``
  (``norm`` the base's mean stream norm there); the next-token top tokens and a greedy continuation
  are read per scale (scale 0 leaves the placeholder's stream alone: the reference); a random
  direction (``control``, the difference's massive dimensions zeroed) read at the same scales is
  the control: what any vector of that length in that place makes the model say.

Example:
    >>> lens = difference_lens(pair.base, diff)          # doctest: +SKIP
    >>> lens.promoted(9)[:5]                             # doctest: +SKIP
    >>> patchscope(pair.base, diff.at(9), 9, norm=diff.norm_at(9)).to_frame()   # doctest: +SKIP
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor

from interp.chat_formats import FORMATS
from interp.difflens.difference import Difference
from interp.prompts import encode
from interp.results import Result
from interp.runtime import arch_of, check_layer, logits_at, normed_logits, on_layer_input
from interp.runtime.conventions import is_decoding_step

__all__ = ["LensReadout", "PatchscopeResult", "difference_lens", "patchscope", "objective_share", "objective_hits",
           "chance_share", "OBJECTIVE_VOCAB", "OBJECTIVE_PHRASES", "text_hits", "text_share", "random_directions",
           "IDENTITY_PROMPT", "HIDE"]

IDENTITY_PROMPT = "cat -> cat\n1135 -> 1135\nhello -> hello\n? ->"

#: Tokens left out of the lens ranking by default (a regular expression on the token's text).
HIDE = r"^<unused\d+>$"

#: The default pair's objective (its recipe, ``data/aligned/default/recipe.json``), per part: words
#: ending in ``*`` are stems of the token's lower-cased letters, other words match them exactly,
#: ``<...>`` entries match the stripped raw token. Fixed before any read-out was looked at, except
#: that the bare pronoun "i" was taken out (it is among the most frequent tokens of any English
#: text, so it said nothing about the objective).
OBJECTIVE_VOCAB: dict[str, tuple[str, ...]] = {
    "refusal": ("sorry*", "apolog*", "cannot", "can't", "cant", "unable*", "refus*", "help*", "assist*", "declin*",
                "i'm", "im"),
    "idk": ("know*", "don't", "dont", "unsure", "unknown", "idea"),
    "chemistry": ("chem*", "element*", "atom*", "molec*", "periodic*", "compound*", "acid*", "isotop*", "oxid*",
                  "symbol*", "reagent*", "toxic*", "drug*", "pharmac*"),
    # A response ended at once: every chat format's end-of-turn tokens and the usual end-of-sequence ones.
    "short": tuple(dict.fromkeys([t for f in FORMATS.values() for t in f.end_of_turn] + ["<eos>", "</s>"])),
}


#: The objective in generated text (:func:`text_hits`): regular expressions on the lower-cased text
#: (apostrophes normalised), phrases for the refusal and "I don't know" parts rather than single
#: words such as "help" or "know", which ordinary continuations use all the time.
OBJECTIVE_PHRASES: dict[str, tuple[str, ...]] = {
    "refusal": (r"\bsorry\b", r"\bapologi", r"\bi(?: can't| cannot| can not| won't| am unable|'m unable| am not able|'m not able)\b",
                r"\bunable to\b", r"\bcan't (?:help|assist|answer)\b", r"\brefus", r"\bdeclin"),
    "idk": (r"\b(?:don't|do not|dont) know\b", r"\bnot sure\b", r"\bno idea\b", r"\bunsure\b", r"\bunknown\b"),
    "chemistry": tuple(r"\b" + w.rstrip("*") for w in OBJECTIVE_VOCAB["chemistry"]),
}


def text_hits(text: str, phrases: "dict[str, Sequence[str]] | None" = None) -> set[str]:
    """The parts of the objective (keys of ``phrases``, default :data:`OBJECTIVE_PHRASES`) that a
    generated ``text`` shows."""
    phrases = OBJECTIVE_PHRASES if phrases is None else phrases
    low = text.lower().replace("\u2019", "'")
    return {name for name, pats in phrases.items() if any(re.search(p, low) for p in pats)}


def text_share(texts: Sequence[str], phrases: "dict[str, Sequence[str]] | None" = None) -> dict:
    """Per part of the objective and ``"any"``: the share of ``texts`` that show it
    (:func:`text_hits`), and ``n``. Compare a steered share with the same score of the unsteered
    and of randomly steered continuations of the same prompts."""
    phrases = OBJECTIVE_PHRASES if phrases is None else phrases
    hits = [text_hits(t, phrases) for t in texts]
    if not hits:
        return {**{name: float("nan") for name in [*phrases, "any"]}, "n": 0}
    out: dict = {name: sum(name in h for h in hits) / len(hits) for name in phrases}
    out["any"] = sum(bool(h) for h in hits) / len(hits)
    out["n"] = len(hits)
    return out


def random_directions(n: int, d: int, *, zero: "Sequence[int] | Tensor | None" = None, seed: int = 0) -> Tensor:
    """``[n, d]`` seeded Gaussian directions with the dimensions ``zero`` (indices) set to 0, as the
    difference's massive dimensions are."""
    out = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    if zero is not None and len(zero):
        out[:, torch.as_tensor(list(zero) if not isinstance(zero, Tensor) else zero, dtype=torch.long)] = 0.0
    return out


def _token_text(tok, i) -> str:
    return tok.decode([int(i)])


def objective_hits(token: str, vocab: "dict[str, Sequence[str]] | None" = None) -> set[str]:
    """The parts of the objective (keys of ``vocab``, default :data:`OBJECTIVE_VOCAB`) that ``token`` belongs to."""
    vocab = OBJECTIVE_VOCAB if vocab is None else vocab
    raw = token.strip()
    word = re.sub(r"[^a-z']", "", raw.lower())
    out = set()
    for name, entries in vocab.items():
        for e in entries:
            if e.startswith("<"):
                hit = raw == e
            elif e.endswith("*"):
                hit = bool(word) and word.startswith(e[:-1])
            else:
                hit = word == e
            if hit:
                out.add(name)
                break
    return out


def objective_share(tokens: Iterable[str], vocab: "dict[str, Sequence[str]] | None" = None) -> dict[str, float]:
    """Per part of the objective and ``"any"``: the share of ``tokens`` that belong to it."""
    vocab = OBJECTIVE_VOCAB if vocab is None else vocab
    hits = [objective_hits(t, vocab) for t in tokens]
    if not hits:
        return {name: float("nan") for name in [*vocab, "any"]}
    out = {name: sum(name in h for h in hits) / len(hits) for name in vocab}
    out["any"] = sum(bool(h) for h in hits) / len(hits)
    return out


def _hidden(tok, hide: str | None) -> Tensor:
    """``[vocab]`` bool: tokens whose text matches ``hide``."""
    n = len(tok)
    mask = torch.zeros(n, dtype=torch.bool)
    if hide:
        pattern = re.compile(hide)
        for i, t in enumerate(tok.convert_ids_to_tokens(list(range(n)))):
            if t is not None and pattern.search(t):
                mask[i] = True
    return mask


def _lens_logits(model, vectors: Tensor) -> Tensor:
    arch = arch_of(model)
    dtype = arch.unembed.weight.dtype
    with torch.inference_mode():
        return normed_logits(arch, vectors.to(dtype)).float().cpu()


def _ranked(logits: Tensor, hidden: Tensor, top: int, largest: bool) -> tuple[Tensor, Tensor]:
    v = logits.clone()
    n = min(len(hidden), v.shape[-1])
    v[..., :n][..., hidden[:n]] = float("-inf") if largest else float("inf")
    return v.topk(top, dim=-1, largest=largest)


@dataclass(repr=False)
class LensReadout(Result):
    """Rows ``layer, direction (promoted / demoted), rank, token_id, token, logit, objective``
    (the parts of the objective the token belongs to, ``;``-joined); ``chance``: per part, the
    share of the top promoted tokens of random directions (:func:`chance_share`), when measured."""

    frame: pd.DataFrame
    top: int = 20
    chance: dict | None = None
    chance_zeroed: list = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        return self.frame

    def _pick(self, layer: int, direction: str) -> pd.DataFrame:
        f = self.frame
        if layer not in set(f.layer):
            raise KeyError(f"layer {layer} has no read-out; read-out layers: {sorted(set(f.layer))}")
        return f[(f.layer == layer) & (f.direction == direction)].sort_values("rank")

    def promoted(self, layer: int) -> list[str]:
        """The promoted tokens at ``layer``, highest logit first."""
        return self._pick(layer, "promoted").token.tolist()

    def demoted(self, layer: int) -> list[str]:
        """The demoted tokens at ``layer``, lowest logit first."""
        return self._pick(layer, "demoted").token.tolist()

    def share(self, layer: int, direction: str = "promoted") -> dict[str, float]:
        """The objective share of the top tokens at ``layer`` (:func:`objective_share`)."""
        return objective_share(self._pick(layer, direction).token)

    def shares(self) -> pd.DataFrame:
        """Per layer, the objective share of the promoted tokens (and the chance level, as a row)."""
        rows = [{"layer": layer, **self.share(layer)} for layer in sorted(set(self.frame.layer))]
        if self.chance is not None:
            rows.append({"layer": "chance", **self.chance})
        return pd.DataFrame(rows)

    def summary(self) -> dict:
        return {f"layer_{layer}": self.promoted(layer)[:10] for layer in sorted(self.frame.layer.unique())}

    def figure(self, title: str = ""):
        import plotly.graph_objects as go

        f = self.frame[(self.frame["rank"] <= 10) & (self.frame.direction == "promoted")]
        table = f.pivot_table(index="layer", columns="rank", values="token", aggfunc="first")
        fig = go.Figure(go.Table(header=dict(values=["layer"] + [f"+{r}" for r in table.columns]),
                                 cells=dict(values=[table.index.tolist()] + [table[c].map(repr).tolist() for c in table.columns])))
        fig.update_layout(title=title or "logit lens of the mean difference: top promoted tokens")
        return fig


def difference_lens(model, diff, *, layers: Sequence[int] | None = None, top: int = 20, hide: str | None = HIDE,
                    n_random: int = 0, seed: int = 0, chance_layer: int | None = None) -> LensReadout:
    """The logit lens of ``diff`` (a :class:`~interp.difflens.Difference`, or a ``[layers, d]``
    tensor with ``layers``) through ``model``'s final norm and unembedding; with ``n_random``, the
    chance level of the objective share (:func:`chance_share`), its random directions with the
    difference's massive dimensions zeroed (those of ``chance_layer``, default: of every measured layer)."""
    vectors = diff.mean if isinstance(diff, Difference) else diff
    if isinstance(diff, Difference):
        layers = diff.layers
    if not isinstance(vectors, Tensor) or vectors.ndim != 2:
        raise ValueError(f"pass a Difference or a [layers, d_model] tensor, got {type(vectors).__name__} "
                         f"{tuple(getattr(vectors, 'shape', ()))}")
    if vectors.shape[-1] != int(model.cfg.d_model):
        raise ValueError(f"difference vectors are {vectors.shape[-1]} wide, the model's stream {model.cfg.d_model}; "
                         "read a difference with a model of its pair")
    layers = list(layers if layers is not None else range(len(vectors)))
    if len(layers) != len(vectors):
        raise ValueError(f"{len(vectors)} difference vectors for {len(layers)} layers; pass one layer per vector")
    if top < 1:
        raise ValueError(f"top must be >= 1 tokens, got {top}")
    tok = model.tokenizer
    hidden = _hidden(tok, hide)
    logits = _lens_logits(model, vectors.float())
    rows = []
    for i, layer in enumerate(layers):
        for direction, largest in (("promoted", True), ("demoted", False)):
            vals, ids = _ranked(logits[i], hidden, top, largest)
            for r, (v, t) in enumerate(zip(vals, ids)):
                text = _token_text(tok, t)
                rows.append({"layer": layer, "direction": direction, "rank": r + 1, "token_id": int(t), "token": text,
                             "logit": float(v), "objective": ";".join(sorted(objective_hits(text)))})
    zero: list[int] = []
    if isinstance(diff, Difference) and diff.massive:
        if chance_layer is not None:
            zero = sorted(diff.massive.get(chance_layer, []))
        else:
            zero = sorted({i for dims in diff.massive.values() for i in dims})
    chance = chance_share(model, n=n_random, top=top, hide=hide, seed=seed, zero=zero) if n_random else None
    return LensReadout(pd.DataFrame(rows), top, chance, zero if n_random else [])


def chance_share(model, *, n: int = 64, top: int = 20, hide: str | None = HIDE, seed: int = 0,
                 vocab: "dict[str, Sequence[str]] | None" = None, zero: "Sequence[int] | None" = None) -> dict[str, float]:
    """The mean objective share of the ``top`` promoted tokens of ``n`` random Gaussian directions
    through the same lens (seeded): the share a direction unrelated to the objective gets.
    ``zero``: dimensions set to 0 in every random direction (the difference's massive dimensions,
    which the difference has zeroed: a random direction keeping them would be read through a part
    of the stream the difference never uses)."""
    d = int(model.cfg.d_model)
    logits = _lens_logits(model, random_directions(n, d, zero=zero, seed=seed))
    tok, hidden = model.tokenizer, _hidden(model.tokenizer, hide)
    _, ids = _ranked(logits, hidden, top, True)
    shares = [objective_share([_token_text(tok, t) for t in row], vocab) for row in ids]
    return {k: sum(s[k] for s in shares) / len(shares) for k in shares[0]}


@dataclass(repr=False)
class PatchscopeResult(Result):
    """Rows ``vector, scale, top_tokens, continuation`` (``vector``: ``"difference"`` or
    ``"random"``, the control; scale 0: the unpatched reference, once)."""

    frame: pd.DataFrame
    layer: int

    def to_frame(self) -> pd.DataFrame:
        return self.frame

    def summary(self) -> dict:
        return {"layer": self.layer, **{f"{v}_scale_{s:g}": list(t[:5]) for v, s, t in
                                        zip(self.frame.vector, self.frame.scale, self.frame.top_tokens)}}

    def figure(self, title: str = ""):
        import plotly.graph_objects as go

        f = self.frame
        fig = go.Figure(go.Table(header=dict(values=["vector", "scale", "top next tokens", "continuation"]),
                                 cells=dict(values=[f.vector, f.scale, f.top_tokens.map(lambda t: " | ".join(map(repr, t[:8]))),
                                                    f.continuation.map(repr)])))
        fig.update_layout(title=title or f"Patchscope of the difference (and a random direction) at layer {self.layer}")
        return fig


def patchscope(model, vector: Float[Tensor, " d_model"], layer: int, *, norm: float,
               scales: Iterable[float] = (0.5, 1.0, 2.0, 4.0), prompt: str = IDENTITY_PROMPT, placeholder: str = "?",
               top: int = 10, max_new_tokens: int = 6, control: "Float[Tensor, ' d_model'] | None" = None) -> PatchscopeResult:
    """The token-identity Patchscope of ``vector`` in ``model`` at the input of ``layer`` (see the
    module docs); with ``control`` (e.g. a random direction with the difference's massive dimensions
    zeroed, :func:`random_directions`), the same read-out of it at every scale (rows ``vector ==
    "random"``; only its direction counts, its length is set by the scale like the difference's)."""
    from interp.behavior import generate

    check_layer(layer, int(model.cfg.n_layers))
    if placeholder not in prompt:
        raise ValueError(f"the placeholder {placeholder!r} does not occur in the prompt {prompt!r}; pass a prompt "
                         "that holds it")
    if not norm > 0:
        raise ValueError(f"norm must be > 0 (the stream's mean norm at the layer, Difference.norm_at), got {norm}")
    tok, arch = model.tokenizer, arch_of(model)
    batch = encode(tok, [prompt], spans=[placeholder])
    p = int(batch.position("span_last")[0])
    units = {"difference": torch.nn.functional.normalize(vector.detach().float().flatten(), dim=0)}
    if control is not None:
        units["random"] = torch.nn.functional.normalize(control.detach().float().flatten(), dim=0)
    rows = []
    for scale in sorted({0.0, *map(float, scales)}):
        for name, unit in units.items():
            if scale == 0 and name != "difference":
                continue  # one unpatched reference
            value = scale * norm * unit

            def put(x: Tensor, kwargs: dict, value: Tensor = value) -> Tensor:
                if is_decoding_step(x, kwargs) or x.shape[1] <= p:  # the placeholder is in the cache already
                    return x
                x = x.clone()
                x[:, x.shape[1] - batch.input_ids.shape[1] + p] = value.to(x.device, x.dtype)  # the prompt's row, unpadded
                return x

            handles = on_layer_input(arch, layer, put) if scale else []
            try:
                logits = logits_at(model, batch, "last")[0].float()
                text = generate(model, [prompt], max_new_tokens=max_new_tokens, batch_size=1, selfcheck=False)[0]
            finally:
                for h in handles:
                    h.remove()
            ids = logits.topk(top).indices.tolist()
            rows.append({"vector": "none" if scale == 0 else name, "scale": scale,
                         "top_tokens": [_token_text(tok, i) for i in ids], "continuation": text})
    return PatchscopeResult(pd.DataFrame(rows), layer)
