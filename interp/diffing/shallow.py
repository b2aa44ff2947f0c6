"""Shallow alignment and token distribution shift, measured on the aligned model's own responses.

The aligned model answers each question greedily; then both models score the *same* token
sequence (prompt + that response) and, at each response position ``t``:

- ``kl`` = KL(aligned || base) of the next-token distributions (after Qi et al. 2024: alignment
  concentrates in the first few response tokens);
- ``base_rank`` = rank of the aligned model's token under the base model (after Lin et al. 2024,
  "The Unlocking Spell on Base LLMs"): *unshifted* (rank 1), *marginal* (2-3), *shifted* (> 3).

``base_format="chat"`` (default) gives the base model the aligned side's chat-formatted prompt,
token for token (the two models see identical inputs); ``"own"`` gives it its own plain prompt
followed by the same response tokens.

Example:
    >>> result = response_shift(pair, ["What is the capital of France?"])   # doctest: +SKIP
    >>> result.first_k_share(5), result.rates()                              # doctest: +SKIP
"""

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from tqdm.auto import tqdm

from interp.behavior.generate import generate
from interp.models import ModelPair
from interp.runtime import input_device, arch_of, body_forward, final_logits, unwrapped
from interp.chat_formats import stop_token_ids
from interp.prompts import format_prompt, token_ids
from interp.results import Result

__all__ = ["ShiftResult", "response_shift", "SHIFT_CLASSES"]

SHIFT_CLASSES = ("unshifted", "marginal", "shifted")


def shift_class(rank: int) -> str:
    """``unshifted`` (rank 1), ``marginal`` (2-3) or ``shifted`` (> 3)."""
    return "unshifted" if rank == 1 else "marginal" if rank <= 3 else "shifted"


@dataclass(repr=False)
class ShiftResult(Result):
    """One row per (prompt, response position): ``prompt, position, token, token_text, kl,
    base_rank, base_prob, aligned_prob, shift_class, is_stop``. ``responses`` holds the decoded responses."""

    tokens: pd.DataFrame
    responses: list[str]

    def to_frame(self) -> pd.DataFrame:
        return self.tokens

    def kl_by_position(self, max_position: int | None = None) -> pd.DataFrame:
        """Mean, median and count of KL(aligned || base) per response position (0 = first token)."""
        t = self.tokens if max_position is None else self.tokens[self.tokens.position < max_position]
        g = t.groupby("position").kl
        return pd.DataFrame({"mean_kl": g.mean(), "median_kl": g.median(), "n": g.size()}).reset_index()

    def first_k_share(self, k: int = 5, *, exclude_stop: bool = False) -> float:
        """Share of the total KL (summed over prompts and positions) that falls in the first ``k`` tokens."""
        t = self.tokens[~self.tokens.is_stop] if exclude_stop else self.tokens
        total = float(t.kl.sum())
        return float(t[t.position < k].kl.sum()) / total if total > 0 else float("nan")

    def token_share_first_k(self, k: int = 5) -> float:
        """Share of response tokens in the first ``k`` positions (what ``first_k_share`` would be if
        KL were spread evenly over tokens)."""
        return float((self.tokens.position < k).mean())

    def rates(self, *, exclude_stop: bool = False) -> pd.Series:
        """Fractions of response tokens that are unshifted / marginal / shifted (``exclude_stop``:
        leave out the end-of-turn / EOS token that closes each response)."""
        t = self.tokens[~self.tokens.is_stop] if exclude_stop else self.tokens
        return t["shift_class"].value_counts(normalize=True).reindex(list(SHIFT_CLASSES), fill_value=0.0)

    def top_shifted(self, n: int = 15) -> pd.DataFrame:
        """The tokens most often shifted (base rank > 3), with counts."""
        s = self.tokens[self.tokens["shift_class"] == "shifted"]
        return s.token_text.value_counts().head(n).rename_axis("token").rename("count").reset_index()

    def _headline(self, t: pd.DataFrame) -> dict:
        total = float(t.kl.sum())
        rates = t["shift_class"].value_counts(normalize=True)
        return {"mean_kl": float(t.kl.mean()), "kl_share_first_5": float(t[t.position < 5].kl.sum()) / total if total > 0 else float("nan"),
                **{f"{k}_rate": float(rates.get(k, 0.0)) for k in SHIFT_CLASSES}}

    def intervals(self, *, n_boot: int = 500, level: float = 0.95, seed: int = 0) -> dict:
        """95% intervals of the mean KL, the first-5 KL share and the shift rates from a bootstrap
        that resamples whole responses (tokens of one response are not independent)."""
        from interp.stats import frame_bootstrap_ci

        return frame_bootstrap_ci(self._headline, self.tokens.reset_index(drop=True), "prompt", n_boot=n_boot, level=level,
                                  seed=seed)

    def summary(self) -> dict:
        """Headline numbers, each rate and share with a ``<name>_ci`` (response bootstrap, 95%)."""
        r, rs = self.rates(), self.rates(exclude_stop=True)
        ci = self.intervals() if len(self.tokens) else {}
        return {"prompts": len(self.responses), "tokens": len(self.tokens), "mean_kl": float(self.tokens.kl.mean()),
                "kl_share_first_5": self.first_k_share(5),
                "kl_share_first_5_without_stop": self.first_k_share(5, exclude_stop=True), "token_share_first_5": self.token_share_first_k(5),
                **{f"{k}_rate": float(v) for k, v in r.items()},
                **{f"{k}_rate_without_stop": float(v) for k, v in rs.items()},
                **{f"{k}_ci": [round(lo, 4), round(hi, 4)] for k, (lo, hi) in ci.items()}}

    def figure(self, title: str = ""):
        from interp.plots.figures import kl_by_position

        return kl_by_position(self.kl_by_position(), title=title)

    def shift_figure(self, title: str = ""):
        from interp.plots.figures import token_shift_histogram

        return token_shift_histogram(self.tokens, title=title)

    def _repr_html_(self) -> str:
        shown = {k: (f"{v[0]:.3f} - {v[1]:.3f}" if isinstance(v, list) else round(v, 4)) for k, v in self.summary().items()}
        return pd.Series(shown, dtype=object).to_frame("value").to_html()


def _padded(seqs: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(s)
        mask[i, width - len(s):] = 1
    return ids, mask


def _score(model, seqs: list[list[int]], starts: list[int], pad: int) -> list[torch.Tensor]:
    """Per sequence, log-probabilities ``[n_response, vocab]`` predicting tokens ``starts[i]:``."""
    ids, mask = _padded(seqs, pad)
    device = input_device(model)
    ids, mask = ids.to(device), mask.to(device)
    width = ids.shape[1]
    with torch.inference_mode(), unwrapped(model):
        arch = arch_of(model)
        hidden = body_forward(arch, ids, mask)
        out = []
        for i, (s, st) in enumerate(zip(seqs, starts)):
            offset = width - len(s)
            at = torch.arange(offset + st - 1, offset + len(s) - 1, device=device)
            out.append(torch.log_softmax(final_logits(arch, hidden[i, at]).float(), -1))
    return out


def response_shift(
    pair: ModelPair,
    questions: Sequence[str],
    *,
    max_new_tokens: int = 32,
    base_format: str = "chat",
    batch_size: int = 8,
    progress: bool = True,
) -> ShiftResult:
    """Greedy aligned responses to ``questions``, scored by both models token by token.

    Args:
        pair: the base / aligned pair.
        questions: raw questions (formatted here for each side).
        max_new_tokens: response length cap (a response also ends at end of turn / EOS).
        base_format: ``"chat"`` (the base scores the aligned side's exact tokens) or ``"own"``
            (the base's plain prompt, then the same response tokens).
        batch_size: sequences per forward pass.
    """
    if base_format not in ("chat", "own"):
        raise ValueError(f"base_format must be 'chat' or 'own', got {base_format!r}")
    if not questions:
        raise ValueError("response_shift needs at least one question")
    tok = pair.aligned.tokenizer
    aligned_prompts = [format_prompt(q, style=pair.style("aligned"), tokenizer=tok) for q in questions]
    responses = generate(pair.aligned, aligned_prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                         return_ids=True, progress="aligned responses" if progress else False)

    def prompt_ids(text: str) -> list[int]:
        return token_ids(tok, text)

    a_prompts = [prompt_ids(p) for p in aligned_prompts]
    b_prompts = a_prompts if base_format == "chat" else [
        prompt_ids(format_prompt(q, style=pair.style("base"), tokenizer=pair.base.tokenizer)) for q in questions]
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    stops = set(stop_token_ids(tok))
    rows = []
    keep = [i for i, r in enumerate(responses) if r]
    bar = tqdm(total=len(keep), desc="scoring responses", unit="prompt", disable=not progress)
    for s in range(0, len(keep), batch_size):
        idx = keep[s: s + batch_size]
        lp_a = _score(pair.aligned, [a_prompts[i] + responses[i] for i in idx], [len(a_prompts[i]) for i in idx], pad)
        lp_b = _score(pair.base, [b_prompts[i] + responses[i] for i in idx], [len(b_prompts[i]) for i in idx], pad)
        for i, a, b in zip(idx, lp_a, lp_b):
            target = torch.tensor(responses[i], device=a.device)
            kl = (a.exp() * (a - b)).sum(-1)
            tb = b.gather(-1, target[:, None]).squeeze(-1)
            rank = (b > tb[:, None]).sum(-1) + 1
            pa = a.gather(-1, target[:, None]).squeeze(-1).exp()
            for t, tid in enumerate(responses[i]):
                rows.append({"prompt": i, "position": t, "token": tid, "token_text": tok.decode([tid]),
                             "kl": float(kl[t]), "base_rank": int(rank[t]), "base_prob": float(tb[t].exp()),
                             "aligned_prob": float(pa[t]), "shift_class": shift_class(int(rank[t])),
                             "is_stop": t == len(responses[i]) - 1 and tid in stops})
        bar.update(len(idx))
    bar.close()
    texts = [tok.decode(r, skip_special_tokens=True) for r in responses]
    return ShiftResult(pd.DataFrame(rows), texts)
