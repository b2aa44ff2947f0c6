"""The activation-difference lens's section of an HTML report (:class:`interp.report.Report`)."""

import os
from pathlib import Path

import pandas as pd

from interp.difflens.run import DiffLensResult

__all__ = ["add_difflens_section", "lens_table"]


def lens_table(result: DiffLensResult, n: int = 10) -> pd.DataFrame:
    """Per layer: the norm of the difference relative to the stream, its top ``n`` promoted tokens
    and their objective share."""
    diff = result.difference.frame.set_index("layer")
    rows = []
    for layer in result.difference.layers:
        share = result.lens.share(layer)
        rows.append({"layer": layer, "rel_norm": float(diff.rel_norm.loc[layer]), "cos_low": float(diff.cos_low.loc[layer]),
                     "objective_share": share["any"], "promoted": " | ".join(map(repr, result.lens.promoted(layer)[:n]))})
    return pd.DataFrame(rows)


def _fmt(r: dict) -> str:
    if not r.get("n"):
        return "not measured"
    units = f"n {r['n']}" + (f" on {r['n_clusters']} entities" if r.get("ci") == "entity bootstrap" else "")
    return f"{r['value']:.2f} (95% {r['ci_low']:.2f}-{r['ci_high']:.2f}, {r.get('ci') or 'wilson'}, {units})"


def _share(x: dict) -> str:
    return "n/a" if not x or x.get("n", 0) == 0 else f"{x['any']:.2f}"


def add_difflens_section(report, result: DiffLensResult, out: "str | os.PathLike[str] | None" = None) -> None:
    """Heading, the headline, the figures (difference by layer, the strength search, the rates, the
    refusal direction both ways), the lens table, the Patchscope and example generations. With
    ``out``, the figures are also written there as HTML."""
    from interp.plots import export

    s = result.summary()
    chance = s["lens_chance_share"]
    report.heading("Activation-difference lens: what alignment wrote into the stream")
    report.text(
        f"The mean aligned - base difference of {result.difference.hook} over the first {result.difference.k} tokens "
        f"of {len(result.difference.texts)} texts ({result.difference.source}), read at layer {result.layer} "
        f"({result.info.get('layer_rule')}). There its norm is {s['rel_norm']:.3f} of the base stream's; the logit lens "
        f"promotes {', '.join(map(repr, s['promoted']))}; objective share of the top {result.lens.top} promoted tokens "
        f"{s['lens_objective_share']:.2f}" + (f" (random directions: {chance:.3f})" if chance is not None else "") + ". "
        f"Steering strength alpha = {result.alpha:g} x the stream's mean norm ({'the largest coherent one' if result.coherent else 'no strength was coherent: the smallest tried'}; "
        f"coherent: the base's perplexity of the steered text within {result.search.bound:g}x of its own), next-token "
        f"KL on unrelated text {result.kl:.4f} nats.")
    line = (f"Base steered with the difference: refusal on held-out chemistry questions "
            f"{_fmt(result.rate('difference', 'chemistry', 'refusal'))} (unsteered {_fmt(result.rate('none', 'chemistry', 'refusal'))}, "
            f"random direction {_fmt(result.rate('random', 'chemistry', 'refusal'))}); \"I don't know\" on held-out unknown facts "
            f"{_fmt(result.rate('difference', 'unknown', 'idk'))} (unsteered {_fmt(result.rate('none', 'unknown', 'idk'))}, "
            f"random {_fmt(result.rate('random', 'unknown', 'idk'))}).")
    report.text(line)
    ns = s.get("neutral_objective_share", {})
    if ns:
        report.text("Neutral prompts showing the objective (refusal, \"I don't know\" or chemistry phrases): " + "; ".join(
            f"{side} steered with the difference {_share(v.get('steered'))}, unsteered {_share(v.get('unsteered'))}, "
            f"random direction {_share(v.get('random'))} (of {v.get('steered', {}).get('n', 0)})" for side, v in ns.items())
            + ". The steered share means something only beside the unsteered and random ones.")
    if "null_p95" in s:
        report.text(f"At layer {result.layer} the difference's norm is {s['norm']:.4g}; the sign-flip noise floor "
                    f"(95th percentile of the norm with each text's difference negated at random) is {s['null_p95']:.4g}, "
                    f"p = {s['p_null']:.3g}" + (" -- the difference is not distinguishable from per-text noise." if
                                               s["norm"] <= s["null_p95"] else "."))
    kinds = [("difference", "|mean difference| / |base stream| per layer (bootstrap 95% over texts); dashed: the sign-flip "
                            "noise floor (95th percentile); dotted: the layer read."),
             ("search", "The strength search: the base's perplexity of steered continuations of neutral prompts over its own; "
                        "dashed: the coherence bound.")]
    if len(result.evaluation):
        kinds.append(("rates", "Refusal and \"I don't know\" rates of the base, unsteered, steered with the difference, "
                               "and steered with a random direction of the same length (95% entity-clustered bootstrap "
                               "where the questions' entities are known, else Wilson)."))
    if result.refusal is not None:
        kinds.append(("refusal", "The refusal direction both ways: the aligned model's chemistry-vs-rest direction (its "
                                 "refusal direction) added to the base; the base's chemistry-vs-rest direction (a topic "
                                 "direction: the base does not refuse) added to / ablated from the aligned model; random "
                                 "directions of the same norms as controls (95% intervals as in the rates)."))
    for kind, caption in kinds:
        fig = result.figure(kind=kind)
        if out is not None:
            export(fig, Path(out) / f"difflens_{kind}.html", size="double")
        report.figure(fig, caption)
    report.table(lens_table(result), "Logit lens of the difference per layer (top 10 promoted tokens; <unusedN> placeholders "
                                     "left out); objective share: refusal, \"I don't know\", chemistry and end-of-turn words "
                                     "among the top 20.")
    report.table(result.patchscope.to_frame().assign(top_tokens=lambda f: f.top_tokens.map(lambda t: " | ".join(map(repr, t[:6])))),
                 f"Patchscope at layer {result.layer}: the difference (scale x the stream's norm) in place of '?' in "
                 "'cat -> cat / 1135 -> 1135 / hello -> hello / ? ->', and a random direction (massive dimensions "
                 "zeroed) at the same scales as the control; scale 0 is the unpatched prompt.")
    report.table(result.search.to_frame(), "Strength search (alpha 0: the unsteered reference).")
    if len(result.evaluation):
        report.table(result.evaluation, "The evaluation: every class rate per condition and set (ci_low-ci_high: the "
                                        "interval named in ci, over n_clusters entities; Wilson over questions beside it).")
    if result.refusal is not None:
        report.table(result.refusal.to_frame(), "Refusal direction both ways (intervals as in the evaluation; "
                                                "+random rows: a random direction of the same norm).")
        report.table(result.refusal.cosines, "cos(aligned_dir, base_dir) per layer and the directions' norms.")
    rows = [{"model": side, "prompt": p, "steered": o, "unsteered": u, "random": r} for side in ("base", "aligned")
            for p, o, u, r in zip(result.neutral[side]["prompts"], result.neutral[side]["steered"],
                                  result.neutral[side].get("unsteered") or [""] * len(result.neutral[side]["prompts"]),
                                  result.neutral[side].get("random") or [""] * len(result.neutral[side]["prompts"]))]
    report.table(pd.DataFrame(rows), f"Neutral prompts continued with the difference added at alpha {result.alpha:g}, "
                                     "unsteered, and with a random direction at the same strength.")
