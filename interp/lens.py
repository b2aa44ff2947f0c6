"""Logit lens: read each layer's residual stream through the final norm and the unembedding.

For a batch and one marked position, :func:`logit_lens` returns, per layer, the rank (1 = top) and
probability of each row's answer token when ``resid_post`` of that layer is decoded as if it were
the last layer. The last layer's decoding is the model's own output.

:func:`lens_pair` runs it on both models of a pair (each with its own prompt format) for questions
and their answers, and returns a :class:`LensResult` (frame, per-layer summary, figure): the
"present in the middle, masked at the end" picture for questions the aligned model refuses.

Example:
    >>> frame = logit_lens(pair.aligned, batch, answer_ids)     # doctest: +SKIP
    >>> frame.groupby("layer")[["rank", "prob"]].median()       # doctest: +SKIP
    >>> lens_pair(pair, ["What is the chemical symbol for iron?"], ["Fe"]).by_layer()  # doctest: +SKIP
"""

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from transformer_lens.model_bridge import TransformerBridge

from interp.cache.capture import capture
from interp.models import ModelPair
from interp.prompts import PromptBatch, encode, format_prompt
from interp.results import Result
from interp.runtime import input_device, arch_of, check_layers, normed_logits

__all__ = ["logit_lens", "lens_pair", "LensResult"]


def logit_lens(
    model: TransformerBridge, batch: PromptBatch, answer_ids: Sequence[int], *, position: str = "last",
    layers: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Rows ``(example, layer, rank, prob, logit)`` for the answer token of each example."""
    if len(answer_ids) != len(batch):
        raise ValueError(f"{len(answer_ids)} answer ids for {len(batch)} prompts; pass one per prompt")
    layers = check_layers(layers, int(model.cfg.n_layers))
    acts = capture(model, batch, [("resid_post", layer) for layer in layers], [position])
    device = input_device(model)
    ids = torch.as_tensor(list(answer_ids), device=device)
    rows = []
    arch = arch_of(model)
    with torch.inference_mode():
        for layer in layers:
            logits = normed_logits(arch, acts[("resid_post", layer, position)]).float()
            ids = ids.to(logits.device)  # the unembedding's GPU under a device_map split
            target = logits.gather(-1, ids[:, None]).squeeze(-1)
            rank = (logits > target[:, None]).sum(-1) + 1
            prob = torch.softmax(logits, -1).gather(-1, ids[:, None]).squeeze(-1)
            for i in range(len(batch)):
                rows.append({"example": i, "layer": layer, "rank": int(rank[i]), "prob": float(prob[i]),
                             "logit": float(target[i])})
    return pd.DataFrame(rows)


@dataclass(repr=False)
class LensResult(Result):
    """Logit-lens rows for both models: ``model, example, layer, rank, prob, logit``."""

    frame: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.frame

    def by_layer(self) -> pd.DataFrame:
        """Per model and layer: median rank, mean probability, share of examples with rank 1."""
        g = self.frame.groupby(["model", "layer"])
        out = pd.DataFrame({"median_rank": g["rank"].median(), "mean_prob": g["prob"].mean(),
                            "top1": g["rank"].apply(lambda r: float((r == 1).mean())), "n": g.size()})
        return out.reset_index()

    def figure(self, title: str = ""):
        from interp.plots.figures import logit_lens_curves

        return logit_lens_curves(self.by_layer(), title=title)

    def summary(self) -> dict:
        """Per model, at the last layer: the answer's median rank and the share ranked first; and
        the layer where each model's median rank is lowest."""
        s, out = self.by_layer(), {"examples": int(self.frame.example.nunique())}
        for model, part in s.groupby("model", sort=False):
            last = part[part.layer == part.layer.max()].iloc[0]
            out[f"{model}_median_rank_last_layer"] = float(last.median_rank)
            out[f"{model}_top1_last_layer"] = float(last.top1)
            out[f"{model}_best_layer"] = int(part.sort_values(["median_rank", "layer"]).iloc[0].layer)
        return out

    def _repr_html_(self) -> str:
        return (f"<b>{self!r}</b>"
                + self.by_layer().pivot(index="layer", columns="model", values="median_rank").to_html())


def lens_pair(
    pair: ModelPair, questions: Sequence[str], answers: Sequence[str], *, base_texts: Sequence[str] | None = None,
    layers: Sequence[int] | None = None,
) -> LensResult:
    """Logit lens at the last prompt token for the first token of each answer, base and aligned.

    Each side sees its own prompt format (plain / chat). ``base_texts`` gives the base model other
    text than the questions, e.g. the completion form "The chemical symbol for iron is" that a base
    model continues with the answer. The answer's first token is taken as the tokenizer encodes
    ``" " + answer`` on the plain side and ``answer`` on the chat side (what each model would emit
    next).
    """
    if len(questions) != len(answers) or not questions:
        raise ValueError(f"lens_pair needs one answer per question, got {len(questions)} questions and {len(answers)} answers")
    if base_texts is not None and len(base_texts) != len(questions):
        raise ValueError(f"base_texts has {len(base_texts)} entries for {len(questions)} questions; pass one per question")
    frames = []
    for side in ("base", "aligned"):
        model = pair.side(side)
        tok = model.tokenizer
        style = pair.style(side)
        src = base_texts if side == "base" and base_texts is not None else questions
        texts = [format_prompt(q, style=style, tokenizer=tok) for q in src]
        lead = " " if style == "plain" else ""
        ids = []
        for a in answers:
            enc = tok(lead + str(a).strip(), add_special_tokens=False).input_ids
            if not enc:
                raise ValueError(f"answer {a!r} encodes to no tokens")
            ids.append(enc[0])
        frames.append(logit_lens(model, encode(tok, texts), ids, layers=layers).assign(model=side))
    return LensResult(pd.concat(frames, ignore_index=True))
