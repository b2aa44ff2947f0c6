"""The unmasking section of an HTML report (:class:`interp.report.Report`)."""

import os
from pathlib import Path

import pandas as pd

from interp.unmask.run import TARGETS, UnmaskResult

__all__ = ["add_unmask_section", "results_table"]

_COLS = ["method", "setting", "rank", "gap_recovered", "ci_low", "ci_high", "kl", "guard_accuracy", "guard_accuracy_drop",
         "guard_drop_low", "guard_drop_high", "abstention_kept", "abstention_kept_low", "abstention_kept_high", "n"]


def results_table(result: UnmaskResult, mask: str) -> pd.DataFrame:
    """One row per intervention on ``mask``, best gap first within each method."""
    f = result.frame[result.frame["mask"] == mask][[c for c in _COLS if c in result.frame]]
    return f.sort_values(["method", "gap_recovered"], ascending=[True, False], kind="stable")


def add_unmask_section(report, result: UnmaskResult, out: "str | os.PathLike[str] | None" = None) -> None:
    """Headings, a text with the headline per mask, the gap-vs-KL and dose-response figures,
    the results table, the localisation screens and example answers. With ``out``, the figures
    are also written there as HTML."""
    from interp.plots import export

    report.heading("Unmasking: how much of the base's knowledge comes back")
    sizes = ", ".join(f"{k}: {len(v)}" for k, v in result.sets.masks.items())
    report.text(
        "Held-out facts the base answers correctly (plain few-shot prompt) and the aligned model masks (refuses, or "
        f"says \"I don't know\"), per mask ({sizes}); guard: {len(result.sets.guard)} held-out facts the aligned model "
        "answers correctly. gap_recovered = (acc_intervened - acc_aligned) / (acc_base - acc_aligned), bootstrap 95% CI. "
        f"Targets for a headline intervention: activation-space rank <= {TARGETS['max_rank']}, gap >= "
        f"{TARGETS['gap_recovered']}, next-token KL <= {TARGETS['kl']} nats, guard accuracy within "
        f"{100 * TARGETS['guard_accuracy_drop']:.0f} points. Everything is fitted on train facts only; the rows below the pre-registered headline were read "
        "on the evaluation facts and are exploratory.")
    for mask, s in result.summary().items():
        best, anyway = s["best"], s["best_ignoring_guards"]
        if best is not None:
            line = (f"{mask}: best rank <= {TARGETS['max_rank']} intervention within the guards: {best['method']} "
                    f"({best['setting']}), gap recovered {best['gap_recovered']:.2f} (95% CI {best['ci_low']:.2f}-"
                    f"{best['ci_high']:.2f}), KL {best['kl']:.3f}, guard drop {best['guard_accuracy_drop']:+.2f}; "
                    f"targets {'met' if s['meets_targets'] else 'not met'}.")
        else:
            line = f"{mask}: no rank <= {TARGETS['max_rank']} intervention stays within the KL and guard targets."
        if anyway is not None and (best is None or anyway["setting"] != best["setting"]):
            line += (f" Ignoring the guards: {anyway['method']} ({anyway['setting']}) recovers {anyway['gap_recovered']:.2f} "
                     f"at KL {anyway['kl']:.3f}, guard drop {anyway['guard_accuracy_drop']:+.2f}.")
        report.text(line)
    _headline(report, result)
    for mask in result.sets.masks:
        for kind, caption in (
            ("gap_vs_kl", f"'{mask}': gap recovered (95% CI) against next-token KL on the guard prompts, every intervention; "
                          "open markers: prompt baselines (no KL). Shaded: the target region."),
            ("dose_response", f"'{mask}': gap recovered and guard accuracy as the ablated subspace grows (k) and as base "
                              "weights are restored for more layers (ranked by the weight screen)."),
        ):
            fig = result.figure(kind, mask=mask)
            if out is not None:
                export(fig, Path(out) / f"unmask_{kind}_{mask}.html", size="double")
            report.figure(fig, caption)
        report.table(results_table(result, mask), f"'{mask}': every intervention (rank: activation-space rank; none for "
                                                  "localisation and prompt baselines).")
    if len(result.weight_screen):  # screens run only when weight restores / patches were asked for
        screen = result.weight_screen.sort_values("gain", ascending=False).groupby("mask").head(5)
        report.table(screen, "Weight screen: the base's weights of one layer and block restored in the aligned model; gain "
                             "in the answer's mean log-probability per token (top 5 per mask).")
    if len(result.patch_screen):
        patch = result.patch_screen.sort_values("value", ascending=False).groupby("mask").head(5)
        report.table(patch, "Cross-model resid_pre sweep (base -> aligned) on the mask facts: logit(answer) - logit('I'); "
                            "top 5 cells per mask.")
    pf = result.per_fact
    examples = pf[pf.set.str.startswith("mask:")].groupby(["method", "set"]).head(2)
    report.table(examples[["method", "setting", "set", "question", "answer", "base_answer", "aligned_answer",
                           "intervened_answer", "class"]].head(60), "Example answers per method (the first two facts per mask).")


def _headline(report, result: UnmaskResult) -> None:
    """The pre-registered method per mask, its controls and held-out phrasings (strict judge)."""
    if result.headline is None or result.headline.frame.empty:
        report.text("Pre-registered headline: not measured (the fit names no pre-registered method, or it was "
                    "switched off); every row below is exploratory.")
        return
    for mask in result.sets.masks:
        pre, ctrl = result.preregistered(mask), result.controls(mask)
        if pre is None:
            continue
        fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
        report.text(
            f"{mask}, pre-registered on train facts: {pre['method']} ({pre['setting']}): strict accuracy "
            f"{fmt(pre['gap_recovered'])} (Wilson 95% {fmt(pre['ci'][0])}-{fmt(pre['ci'][1])}, n {pre['n']}), on held-out "
            f"phrasings {fmt(pre['heldout_templates'].get('strict_accuracy'))} (n {pre['heldout_templates'].get('n')}), "
            f"KL {fmt(pre['kl'])}, guard drop {fmt(pre['guard_accuracy_drop'])} on {pre['n_guard']} facts; controls with "
            f"the same budget: never-knew {fmt(ctrl['never_knew'])}, shuffled targets {fmt(ctrl['shuffled'])}, random "
            f"{fmt(ctrl['random'])}, unrelated facts {fmt(ctrl['unrelated'])}, 8-bit {fmt(ctrl['quantized_8bit'])}, 4-bit "
            f"{fmt(ctrl['quantized_4bit'])}; in-domain ceiling (facts the base does not know) "
            f"{fmt(ctrl['in_domain_ceiling'])}. Targets {'met' if pre['meets_targets'] else 'not met'}.")
    cols = ["mask", "role", "method", "setting", "strict_accuracy", "strict_low", "strict_high", "strict_rest",
            "never_known_strict", "kl", "guard_accuracy_drop", "guard_drop_low", "guard_drop_high", "n", "n_guard",
            "n_never_known"]
    f = result.headline.frame
    report.table(f[[c for c in cols if c in f]], "Pre-registered headline and its controls (strict judge; Wilson 95% on "
                 "rates, paired bootstrap on the guard drop). never_known_strict: accuracy on held-out facts the base does "
                 "not know (what an edit gets there, it taught).")
    info = result.headline.phrasing_info
    if len(info):
        report.table(info, "Held-out phrasings (never seen by any fit or selection): facts asked, how many the base answers "
                           "that way, how often the aligned model masks them, how many were kept.")
    if len(result.headline.phrasings):
        report.table(result.headline.phrasings[[c for c in ("mask", "phrasing", "strict_accuracy", "strict_low",
                                                            "strict_high", "n") if c in result.headline.phrasings]],
                     "The pre-registered method on each held-out phrasing (strict judge).")
