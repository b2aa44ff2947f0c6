"""The refusal-direction experiment on a pair (after Arditi et al. 2024).

1. Candidate directions: per layer, mean ``resid_pre`` at the last prompt token of the aligned
   model over prompts it refuses minus over prompts it answers (the training prompts after the
   first ``n_val`` of each set).
2. Selection: for each candidate layer, ablate that direction everywhere and measure the refusal
   rate on validation prompts of the refused set (the first ``n_val`` refused training prompts,
   never used to estimate the directions, as in Arditi et al. 2024); keep the layer with the
   lowest rate among those whose ablation keeps the next-token KL on the first ``n_val`` answered
   training prompts (also left out of the estimate) under ``kl_max``.
3. Report on held-out prompts: refusal rate and accuracy with the direction ablated, next to the
   unablated aligned model and the base; induced refusal rate when the direction is added to
   prompts it normally answers; KL on those answered prompts under ablation.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from interp.behavior import classify, generate
from interp.models import ModelPair
from interp.patching.directions import ablated, added, kl_last_token, last_logits, mean_diff_directions
from interp.prompts import encode, format_prompt
from interp.results import Result
from interp.stats import with_rate_ci
from interp.runtime import check_layers

__all__ = ["RefusalResult", "refusal_direction"]


@dataclass(repr=False)
class RefusalResult(Result):
    layer: int
    directions: torch.Tensor  # [layers, d]
    selection: pd.DataFrame  # per candidate layer: refusal rate under ablation, KL
    measures: pd.DataFrame  # the reported measures: measure, value, n, ci_low, ci_high (Wilson 95%, rates)

    def to_frame(self) -> pd.DataFrame:
        return self.measures

    def summary(self) -> dict:
        return {"layer": self.layer, **{m: float(v) for m, v in zip(self.measures.measure, self.measures.value)}}

    def figure(self, title: str = ""):
        from interp.plots import measure_bars

        return measure_bars(self.measures, title=title or f"refusal direction from layer {self.layer}")

    def _repr_html_(self) -> str:
        return f"<b>refusal direction</b> from layer {self.layer}" + self.measures.to_html(index=False)


def _rate(xs: list[bool]) -> float:
    return round(sum(xs) / len(xs), 4) if xs else float("nan")


def refusal_direction(
    pair: ModelPair,
    refused_train: Sequence[str], answered_train: Sequence[str],
    refused_test: Sequence[str], refused_test_answers: Sequence[Sequence[str]],
    answered_test: Sequence[str], answered_test_answers: Sequence[Sequence[str]],
    *, base_correct_on_refused_test: Sequence[bool] | None = None,
    layers: Sequence[int] | None = None, n_val: int = 16, kl_max: float = 1.0, max_new_tokens: int = 10,
    batch_size: int = 16,
) -> RefusalResult:
    """Find, select and test a refusal direction in ``pair.aligned`` (see module docs)."""
    model, tok = pair.aligned, pair.aligned.tokenizer

    def chat(texts: Sequence[str]) -> list[str]:
        return [format_prompt(t, style="chat", tokenizer=tok) for t in texts]

    refused_train, answered_train = list(refused_train), list(answered_train)
    short = [name for name, xs in (("refused_train", refused_train), ("answered_train", answered_train)) if len(xs) < n_val + 2]
    if short or n_val < 1:
        raise ValueError(f"{', '.join(short) or 'n_val'}: need n_val >= 1 validation prompts plus >= 2 prompts to estimate the "
                         f"direction from (n_val={n_val}, refused_train {len(refused_train)}, answered_train {len(answered_train)}); "
                         "pass more training prompts or a smaller n_val")
    # Validation prompts are held out of the estimate: selection is not judged on its own data.
    dirs = mean_diff_directions(model, encode(tok, chat(refused_train[n_val:])), encode(tok, chat(answered_train[n_val:])))
    layers = check_layers(layers, pair.n_layers) if layers is not None else list(range(1, pair.n_layers - 1))
    val = chat(refused_train[:n_val])
    kl_batch = encode(tok, chat(answered_train[:n_val]))
    clean_kl_logits = last_logits(model, kl_batch)
    rows = []
    for layer in layers:
        with ablated(model, dirs[layer]):
            outs = generate(model, val, max_new_tokens=max_new_tokens, batch_size=batch_size)
            kl = kl_last_token(clean_kl_logits, last_logits(model, kl_batch)).mean().item()
        rows.append({"layer": layer, "refusal_rate_ablated": _rate([classify(o, []) == "refusal" for o in outs]), "n": len(outs),
                     "kl": kl})
    selection = with_rate_ci(pd.DataFrame(rows), value="refusal_rate_ablated", is_rate=lambda r: True)
    ok = selection[selection.kl <= kl_max]
    best = int((ok if not ok.empty else selection).sort_values(["refusal_rate_ablated", "kl"]).iloc[0].layer)

    r_test, a_test = chat(refused_test), chat(answered_test)
    plain = generate(model, r_test, max_new_tokens=max_new_tokens, batch_size=batch_size)
    with ablated(model, dirs[best]):
        abl = generate(model, r_test, max_new_tokens=max_new_tokens, batch_size=batch_size)
    abl_kl = _kl_answered(model, tok, a_test, dirs[best])
    with added(model, dirs[best], best):
        induced = generate(model, a_test, max_new_tokens=max_new_tokens, batch_size=batch_size)
    plain_answered = generate(model, a_test, max_new_tokens=max_new_tokens, batch_size=batch_size)
    cls = lambda outs, answers: [classify(o, a) for o, a in zip(outs, answers)]  # noqa: E731
    c_plain, c_abl = cls(plain, refused_test_answers), cls(abl, refused_test_answers)
    c_ind, c_pa = cls(induced, answered_test_answers), cls(plain_answered, answered_test_answers)
    measures = [
        ("aligned refuses held-out refused-set prompts", _rate([c == "refusal" for c in c_plain]), len(c_plain)),
        ("... with the direction ablated: refuses", _rate([c == "refusal" for c in c_abl]), len(c_abl)),
        ("... with the direction ablated: answers correctly", _rate([c == "correct" for c in c_abl]), len(c_abl)),
    ]
    if base_correct_on_refused_test is not None:
        measures.append(("base answers the same prompts correctly", _rate(list(base_correct_on_refused_test)), len(c_abl)))
    measures += [
        ("aligned refuses answered-set prompts", _rate([c == "refusal" for c in c_pa]), len(c_pa)),
        ("... with the direction added: refuses (induced)", _rate([c == "refusal" for c in c_ind]), len(c_ind)),
        ("KL(aligned || ablated), next token, answered-set prompts", round(abl_kl, 4), len(a_test)),
    ]
    summary = with_rate_ci(pd.DataFrame(measures, columns=["measure", "value", "n"]),
                           is_rate=lambda r: not r.measure.startswith("KL"))  # Wilson 95% on every rate
    summary.attrs["examples"] = {"ablated": list(zip(refused_test[:5], abl[:5])), "induced": list(zip(answered_test[:5], induced[:5]))}
    return RefusalResult(best, dirs.cpu(), selection, summary)


def _kl_answered(model, tok, prompts: list[str], direction: torch.Tensor) -> float:
    batch = encode(tok, prompts)
    clean = last_logits(model, batch)
    with ablated(model, direction):
        abl = last_logits(model, batch)
    return kl_last_token(clean, abl).mean().item()
