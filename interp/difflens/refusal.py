"""The refusal direction both ways: is the mechanism older than the alignment?

After Arditi et al. (2024) and Kissane et al. (2024, "base LLMs refuse too"):

* ``aligned_dir``: per layer, the aligned model's mean ``resid_pre`` at the last prompt token over
  chemistry questions (which it was trained to refuse) minus over other questions, in its chat
  format (:func:`interp.patching.mean_diff_directions`, massive dimensions zeroed);
* ``base_dir``: the same contrast in the *base* model, on the same questions in the base's prompt
  format (``Q: ...\\nA:``): the base's own chemistry-vs-rest direction, which predates the fine-tuning.

Both are taken from train questions and used at one ``layer`` (the difference lens's layer, by the
rule fixed in :mod:`interp.difflens.run`), added at strength 1 (the mean difference itself, as in
Arditi et al.'s activation addition, at every position after the first) or ablated (projected out
of every layer's input, mid-block stream and output, :func:`interp.patching.ablated`). On held-out
questions, each a Wilson 95% rate:

* base + ``aligned_dir``: refusal on other questions (induced) and on chemistry;
* aligned + ``base_dir``: refusal on other questions (induced);
* the control of each added direction: a seeded random direction of the same norm with the same
  dimensions zeroed (the massive ones :func:`~interp.patching.mean_diff_directions` zeroes), added
  the same way (``+random (|aligned_dir|)``, ``+random (|base_dir|)``): what any push of that size
  does to the refusal rate;
* aligned with ``base_dir`` ablated: refusal on chemistry (bypassed if the base's direction carries
  the aligned model's refusal), beside the aligned model with its own ``aligned_dir`` ablated;
* the references: base and aligned unedited on both sets; ``cos(aligned_dir, base_dir)`` per layer.

Example:
    >>> both = refusal_both_ways(pair, chem_train, other_train, chem_test, other_test, layer=9)  # doctest: +SKIP
    >>> both.to_frame()[["model", "edit", "set", "measure", "value", "ci_low", "ci_high"]]        # doctest: +SKIP
"""

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import pandas as pd
import torch

from interp.difflens.steer import response_rates
from interp.patching.directions import ablated, added, mean_diff_directions
from interp.prompts import encode, format_prompt
from interp.results import Result
from interp.runtime import check_layer

__all__ = ["RefusalBothWays", "refusal_both_ways", "question_prompts"]


def question_prompts(pair, side: str, questions: Sequence[str]) -> list[str]:
    """The questions as ``side`` reads them: ``Q: ...\\nA:`` for a plain side, its chat template otherwise."""
    model = pair.side(side)
    if pair.style(side) == "plain":
        return [f"Q: {q}\nA:" for q in questions]
    return [format_prompt(q, style="chat", tokenizer=model.tokenizer) for q in questions]


@dataclass(repr=False)
class RefusalBothWays(Result):
    """Rows ``model, edit, set, measure, value, k, n, ci_low, ci_high``; ``cosines``: per layer
    ``cos(aligned_dir, base_dir)`` and each direction's norm; ``examples``: the first responses per row."""

    frame: pd.DataFrame
    cosines: pd.DataFrame
    layer: int
    aligned_dir: torch.Tensor
    base_dir: torch.Tensor
    examples: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.frame

    def rate(self, model: str, edit: str, set_: str, measure: str = "refusal") -> float:
        f = self.frame
        row = f[(f.model == model) & (f.edit == edit) & (f.set == set_) & (f.measure == measure)]
        if row.empty:
            raise KeyError(f"no row {model}/{edit}/{set_}/{measure}; rows: {sorted(set(zip(f.model, f.edit, f.set)))}")
        return float(row.value.iloc[0])

    def summary(self) -> dict:
        out = {"layer": self.layer,
               "cos_at_layer": float(self.cosines.set_index("layer").cos.loc[self.layer])}
        for r in self.frame[self.frame.measure == "refusal"].itertuples():
            out[f"{r.model}|{r.edit}|{r.set}"] = round(float(r.value), 4)
        return out

    def figure(self, title: str = ""):
        from interp.plots import measure_bars

        f = self.frame[self.frame.measure == "refusal"].copy()
        f["measure"] = f.model + " " + f.edit + " (" + f.set + ")"
        return measure_bars(f, title=title or f"refusal direction both ways, layer {self.layer}")


def refusal_both_ways(
    pair, chem_train: Sequence[str], other_train: Sequence[str], chem_test: Sequence[str], other_test: Sequence[str],
    *, layer: int, max_new_tokens: int = 8, batch_size: int = 16, reference: dict | None = None,
    chem_entities: Sequence | None = None, other_entities: Sequence | None = None, seed: int = 0,
) -> RefusalBothWays:
    """The measures of the module docs. ``reference``: rates already measured for the unedited
    models, ``{(model, set): rates}`` as :func:`~interp.difflens.steer.response_rates` returns them
    (not generated again). ``chem_entities`` / ``other_entities``: the entity of each test question
    (rates then get entity-clustered intervals); ``seed`` fixes the random control directions."""
    check_layer(layer, pair.n_layers)
    short = [n for n, xs in (("chem_train", chem_train), ("other_train", other_train), ("chem_test", chem_test),
                             ("other_test", other_test)) if len(xs) < 2]
    if short:
        raise ValueError(f"{', '.join(short)}: need >= 2 questions each; pass more questions")
    dirs = {}
    for side in ("aligned", "base"):
        tok = pair.side(side).tokenizer
        dirs[side] = mean_diff_directions(pair.side(side), encode(tok, question_prompts(pair, side, chem_train)),
                                          encode(tok, question_prompts(pair, side, other_train))).float().cpu()
    a, b = dirs["aligned"], dirs["base"]
    cosines = pd.DataFrame({"layer": range(pair.n_layers),
                            "cos": torch.nn.functional.cosine_similarity(a, b, dim=-1).numpy(),
                            "aligned_norm": a.norm(dim=-1).numpy(), "base_norm": b.norm(dim=-1).numpy()})
    prompts = {(side, s): question_prompts(pair, side, qs) for side in ("base", "aligned")
               for s, qs in (("chemistry", chem_test), ("other", other_test))}
    clusters = {"chemistry": chem_entities, "other": other_entities}
    g = torch.Generator().manual_seed(seed + 2)

    def control(v: torch.Tensor) -> torch.Tensor:
        r = torch.randn(len(v), generator=g).masked_fill(v == 0, 0.0)
        return r * (v.norm() / r.norm().clamp_min(1e-12))

    ra, rb = control(a[layer]), control(b[layer])
    runs = [
        ("base", "none", "chemistry", nullcontext), ("base", "none", "other", nullcontext),
        ("aligned", "none", "chemistry", nullcontext), ("aligned", "none", "other", nullcontext),
        ("base", "+aligned_dir", "other", lambda: added(pair.base, a[layer], layer)),
        ("base", "+aligned_dir", "chemistry", lambda: added(pair.base, a[layer], layer)),
        ("base", "+random (|aligned_dir|)", "other", lambda: added(pair.base, ra, layer)),
        ("base", "+random (|aligned_dir|)", "chemistry", lambda: added(pair.base, ra, layer)),
        ("aligned", "+base_dir (chemistry-vs-rest)", "other", lambda: added(pair.aligned, b[layer], layer)),
        ("aligned", "+random (|base_dir|)", "other", lambda: added(pair.aligned, rb, layer)),
        ("aligned", "-base_dir (chemistry-vs-rest, ablated)", "chemistry", lambda: ablated(pair.aligned, b[layer])),
        ("aligned", "-aligned_dir (ablated)", "chemistry", lambda: ablated(pair.aligned, a[layer])),
    ]
    rows, examples = [], {}
    for model, edit, set_, ctx in runs:
        if edit == "none" and reference and (model, set_) in reference:
            rates, outs = reference[(model, set_)], []
        else:
            rates, outs = response_rates(pair.side(model), prompts[(model, set_)], edit=ctx, clusters=clusters[set_],
                                         max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed)
        examples[f"{model}|{edit}|{set_}"] = outs[:3]
        rows += [{"model": model, "edit": edit, "set": set_, "measure": m, **r} for m, r in rates.items()
                 if m in ("refusal", "idk")]
    return RefusalBothWays(pd.DataFrame(rows), cosines, layer, a[layer], b[layer], examples)
