"""Steering with any direction (a difference of means, a probe's weight vector) over a sweep of scales.

At each scale ``s`` the model generates with ``s * unit(direction)`` added to the residual stream
entering ``layer`` (every position after the first, see :func:`interp.patching.added`); each
response is classified (correct / wrong / "I don't know" / refusal, :func:`interp.behavior.classify`)
and the next-token KL against the unsteered model is measured. Scale 0 is always included.

Example:
    >>> result = steering_sweep(pair.aligned, questions, direction, layer=8,
    ...                         scales=[0, 20, 40, 80], answers=aliases)        # doctest: +SKIP
    >>> result.figure()                                                           # doctest: +SKIP
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm
from transformer_lens.model_bridge import TransformerBridge

from interp.behavior import classify, generate
from interp.patching.directions import added, kl_last_token, last_logits
from interp.prompts import encode, format_prompt
from interp.results import Result
from interp.stats import with_rate_ci

__all__ = ["SteeringResult", "steering_sweep"]


@dataclass(repr=False)
class SteeringResult(Result):
    """Rows ``scale, measure, value, n`` (measures: ``correct``, ``wrong``, ``idk``, ``refusal``
    rates and ``kl`` = mean next-token KL(unsteered || steered)); ``examples``: scale -> the first
    responses."""

    frame: pd.DataFrame
    layer: int
    examples: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.frame

    def summary(self) -> dict:
        """The layer, the scales, and every measure at the largest scale."""
        top = self.frame[self.frame.scale == self.frame.scale.max()]
        return {"layer": self.layer, "scales": sorted(float(x) for x in self.frame.scale.unique()),
                **{f"{m}_at_max_scale": float(v) for m, v in zip(top.measure, top.value)}}

    def figure(self, title: str = ""):
        from interp.plots.figures import dose_response

        rates = self.frame[self.frame.measure != "kl"]
        fig = dose_response(rates, title=title or f"steering at layer {self.layer}")
        fig.update_yaxes(title="share of responses", range=[-0.02, 1.02])
        return fig

    def _repr_html_(self) -> str:
        return self.frame.pivot(index="scale", columns="measure", values="value").round(3).to_html()


def steering_sweep(
    model: TransformerBridge,
    questions: Sequence[str],
    direction: Float[Tensor, " d_model"],
    layer: int,
    scales: Iterable[float],
    *,
    answers: Sequence[Sequence[str]] | None = None,
    style: str = "chat",
    normalize: bool = True,
    max_new_tokens: int = 12,
    batch_size: int = 16,
    n_examples: int = 3,
    progress: bool = True,
) -> SteeringResult:
    """Generate with ``scale * direction`` added at ``layer`` for each scale; rates of each response
    class and next-token KL per scale.

    Args:
        questions: raw questions, formatted with ``style`` (``"chat"`` uses the model's template).
        direction: ``[d_model]``; unit-normalised first when ``normalize`` (then a scale is a
            length in the residual stream; compare it with the stream's norm at that layer).
        answers: accepted answers per question (without them ``correct`` and ``wrong`` are not
            told apart: every non-refusal, non-"I don't know" answer counts as ``wrong``).
    """
    n_layers = int(model.cfg.n_layers)
    if not 0 <= layer < n_layers:
        raise ValueError(f"layer must be in [0, {n_layers}), got {layer}")
    if direction.shape != (int(model.cfg.d_model),):
        raise ValueError(f"direction must have shape ({model.cfg.d_model},), got {tuple(direction.shape)}")
    if answers is not None and len(answers) != len(questions):
        raise ValueError(f"answers has {len(answers)} entries for {len(questions)} questions; pass one per question")
    scales = sorted({0.0, *map(float, scales)})
    d = direction.float()
    if normalize:
        d = d / d.norm().clamp_min(1e-12)
    prompts = [format_prompt(q, style=style, tokenizer=model.tokenizer) for q in questions]
    batch = encode(model.tokenizer, prompts)
    base_logits = last_logits(model, batch)
    rows, examples = [], {}
    for scale in tqdm(scales, desc=f"steering at layer {layer}", disable=not progress):
        with added(model, d, layer, scale=scale):
            outs = generate(model, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
            kl = float(kl_last_token(base_logits, last_logits(model, batch)).mean()) if scale else 0.0
        classes = [classify(o, answers[i] if answers is not None else []) for i, o in enumerate(outs)]
        for cls in ("correct", "wrong", "idk", "refusal"):
            rows.append({"scale": scale, "measure": cls, "value": sum(c == cls for c in classes) / len(classes),
                         "n": len(classes)})
        rows.append({"scale": scale, "measure": "kl", "value": kl, "n": len(classes)})
        examples[scale] = outs[:n_examples]
    frame = with_rate_ci(pd.DataFrame(rows), is_rate=lambda r: r.measure != "kl")  # Wilson 95% on the rates
    return SteeringResult(frame, layer, examples)

