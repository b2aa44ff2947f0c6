"""The hidden-knowledge section of an HTML report (:class:`interp.report.Report`)."""

import os
from pathlib import Path

import pandas as pd

from interp.knowledge.measure import CHANCE, TARGETS, HiddenKnowledge

__all__ = ["add_hidden_section", "headline_table"]


def headline_table(result: HiddenKnowledge) -> pd.DataFrame:
    """Base vs aligned per set: K_gen, K_prob (framed for the aligned side), K_probe and its
    control, hidden knowledge and the share ranked first while masked, each ``value [lo, hi]``."""
    t = result.table
    fmt = lambda r: f"{r.value:.3f} [{r.ci_low:.2f}, {r.ci_high:.2f}]" if r.ci_low == r.ci_low else f"{r.value:.3f}"  # noqa: E731
    cells = t.assign(cell=[fmt(r) for r in t.itertuples()])
    wide = cells.pivot_table(index=["set", "side"], columns="measure", values="cell", aggfunc="first", sort=False)
    order = [m for m in ("k_gen", "k_prob", "k_prob_mean", "k_prob_framed", "k_prob_framed_mean", "k_probe", "k_probe_control",
                         "hidden_prob", "hidden_probe", "first_while_masked_prob", "first_while_masked_probe") if m in wide.columns]
    n = t.groupby(["set", "side"], sort=False).n.max()
    return wide[order].assign(n=n).reset_index()


def add_hidden_section(report, result: HiddenKnowledge, out: "str | os.PathLike[str] | None" = None) -> None:
    """A heading, the reading of the refused set against the targets, the figure, the headline
    table, the probes' layers, the agreement with unmasking and example facts."""
    report.heading("Hidden knowledge: what each model ranks correctly inside vs what it says")
    s = result.summary()
    report.text(
        "Per held-out fact (the unmasking sets: chemistry the aligned model refuses, geography it abstains on, and facts it "
        "answers), the gold answer against wrong answers of the same relation drawn from the fact table. K_gen: the "
        "greedy answer is correct (strict judge). K_prob: share of (correct, wrong) pairs the model's own probability of "
        "the answer (log-probability summed over its tokens) ranks correctly (base: few-shot; aligned: chat prompt, and "
        "'framed' with its response opened by 'Sure! The answer is'); k_prob_mean: the same by the mean log-probability "
        "per token. K_probe: the same ranking by a logistic probe on the residual stream at the answer's last token, "
        "trained on base-known train facts, layer chosen on validation entities; control (Hewitt & Liang): the same probe "
        "trained on a fixed random label per answer string and scored against those labels, which only a probe that "
        "memorises answer strings can beat. Wrong answers of train facts come from train facts only, those of evaluated "
        "facts from held-out facts only. 95% intervals resample whole entities. The ranking shares' floor is chance, "
        f"{CHANCE}; K_gen's is 0, so hidden = K - K_gen is {CHANCE} for a fact neither known nor said: read the "
        "above-chance values (K - 0.5).")
    r = s.get("refused")
    if r is not None:
        f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        t = r["targets"]
        report.text(
            f"Refused chemistry ({r['n']} facts): aligned K_prob {f(r['aligned_k_prob'])} vs base {f(r['base_k_prob'])} "
            f"(above chance: {f(r['aligned_k_prob_above_chance'])} vs {f(r['base_k_prob_above_chance'])}), "
            f"aligned K_probe {f(r['aligned_k_probe'])} vs base {f(r['base_k_probe'])} "
            f"(above chance: {f(r['aligned_k_probe_above_chance'])} vs {f(r['base_k_probe_above_chance'])}), probe control "
            f"{f(r['aligned_k_probe_control'])}, aligned K_gen {f(r['aligned_k_gen'])}. Targets: within "
            f"{TARGETS['within_base']} of the base (K_prob {t['k_prob_within_base']}, K_probe {t['k_probe_within_base']}), "
            f"above chance (K_prob {t['k_prob_above_chance']}, K_probe {t['k_probe_above_chance']}), probe beats control "
            f"by >= {TARGETS['probe_over_control']} ({t['probe_beats_control']}).")
    fig = result.figure()
    if out is not None:
        from interp.plots import export

        export(fig, Path(out) / "hidden_knowledge.html", size="double")
    report.figure(fig, "K_gen, K_prob and K_probe per set, base vs aligned (95% CI over entities; dotted: chance).")
    report.table(headline_table(result), "Headline: value [95% CI]; hidden_* = K_prob / K_probe minus K_gen (the "
                                         "ranking shares' floor is 0.5, K_gen's 0); first_while_masked_*: share of facts "
                                         "ranked first while the model refuses or abstains.")
    report.table(result.probes, "The probe of each model: layer and C chosen on validation entities of the train facts.")
    if result.agreement is not None:
        report.table(result.agreement, "Agreement with unmasking: AUROC of the aligned model's internal score for 'the "
                                        "pre-registered edit recovers this fact' (strict judge), 95% CI over entities.")
    else:
        report.text("Agreement with unmasking: not measured (no unmasking per-fact table was given).")
    pf = result.per_fact
    report.table(pf[pf.side == "aligned"].groupby("set").head(4)[["set", "question", "answer", "response", "strict_class",
                                                                  "k_prob", "k_prob_framed", "k_probe"]],
                 "Examples: the aligned model's answer and its internal ranking of the gold answer (first four per set).")
