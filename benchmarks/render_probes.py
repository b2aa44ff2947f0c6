"""Rendered numbers of the probe-training scripts on the default pair (``probes/train_*_probes.py
--results``): suppressed-but-present chemistry facts, known vs unknown, truth, error awareness.

Each function returns ``{key: string}``; :mod:`benchmarks.render` registers :data:`ENTRIES`.
Readings that depend on the numbers (above chance or not, probe vs confidence) are computed from
the intervals here, never typed.
"""

import json
from pathlib import Path

from benchmarks.fmt import B, f, num, registry, span, table
from interp.stats import rate_ci

__all__ = ["ENTRIES"]

KNOWLEDGE = B / "results_probes_knowledge_default.json"
TRUTH = B / "results_probes_truth_default.json"
ERRORS = B / "results_probes_errors_default.json"

ENTRIES, _entry = registry()


def _tasks(path: Path) -> dict:
    d = json.loads(path.read_text())
    args = d.get("args", {})
    if args.get("quick") or args.get("layers", "all") != "all":
        raise ValueError(f"{path.name} holds a --quick or --layers run; the documentation renders the full run "
                         "(every layer, full sizes)")
    return d["tasks"]


def _ci(lo, hi) -> str:
    return span([num(lo), num(hi)], ".3f")


def _selected(task: dict, prefix: str, metric: str = "accuracy") -> dict[str, str]:
    """Per side: the value at the layer chosen on validation rows, its layer, CI and controls."""
    out = {}
    rows = {r["model"]: r for r in (task or {}).get("selected_on_validation", [])}
    for side in ("base", "aligned"):
        r = rows.get(side, {})
        out[f"{prefix}_{side}"] = f(r.get(metric), ".3f")
        out[f"{prefix}_{side}_layer"] = str(int(r["layer"])) if "layer" in r else "-"
        out[f"{prefix}_{side}_ci"] = _ci(r.get("ci_low"), r.get("ci_high"))
        for k in ("balanced_accuracy", "majority_class", "control_seen_entities", "selectivity", "p_any_layer"):
            out[f"{prefix}_{side}_{k}"] = f(r.get(k), ".3f")  # "-" where the run has no such row
    return out


def _by_layer(task: dict, column: str) -> dict[int, float]:
    return {int(r["layer"]): num(r.get(column)) for r in task["by_layer"] if num(r.get(column)) is not None}


def _max_over_layers_reading(task: dict | None) -> str:
    """Whether any layer is above chance once the choice among all layers is paid for (``p_any_layer``)."""
    p = [num(r.get("p_any_layer")) for r in (task or {}).get("selected_on_validation", [])]
    return ("the max-over-layers test was not run" if not p or any(x is None for x in p) else
            "on neither side is any layer above chance once the choice of layer is paid for (p > 0.05)"
            if all(x > 0.05 for x in p) else
            "on both sides some layer is above chance after paying for the choice of layer (p <= 0.05)"
            if all(x <= 0.05 for x in p) else
            "on one side some layer is above chance after paying for the choice of layer (p <= 0.05), on the other not")


def _layer_table(task: dict | None) -> str:
    """Test value of each side's probe at every layer, the base's probe read on the aligned model, and
    each side's random-direction control (for reading: the reported layer is the one chosen on
    validation rows)."""
    if not task:
        return "*Not measured on this run.*"
    cols = [("base", "base"), ("aligned", "aligned"), ("base probe on aligned", "base->aligned"),
            ("base: random direction", "base random_direction"), ("aligned: random direction", "aligned random_direction")]
    cols = [(name, key) for name, key in cols if any(key in r for r in task["by_layer"])]
    return table(["layer"] + [name for name, _ in cols],
                 [[int(r["layer"])] + [f(r.get(key), ".3f") for _, key in cols] for r in task["by_layer"]])


@_entry("probes_knowledge", KNOWLEDGE)
def _knowledge() -> dict[str, str]:
    t = _tasks(KNOWLEDGE)
    tf, mc, ku = t["chemistry_true_false"], t["chemistry_multiple_choice"], t["known_vs_unknown"]
    out = {**_selected(tf, "tf"), **_selected(ku, "ku")}
    out["tf_n_test"], out["tf_n_train"] = str(tf["n_test"]), str(tf["n_train"])
    for side, r in mc["at_selected_layer"].items():
        out[f"mc_{side}"] = f(r["accuracy"], ".3f")
        out[f"mc_{side}_ci"] = _ci(*r["ci"])
    out["mc_questions"] = str(mc["questions"])
    out["ku_n"], out["ku_known_share"] = str(ku["n"]), f(ku["known_share"])
    ps = {r["model"]: num(r.get("p_any_layer")) for r in ku["selected_on_validation"]}
    above = [m for m, p in ps.items() if p is not None and p <= 0.05]
    out["ku_reading"] = (
        "the max-over-layers test puts both sides above the majority class (p <= 0.05)" if len(above) == 2 else
        f"the max-over-layers test puts only the {above[0]} model's probe above chance (p <= 0.05); the other's best layer "
        "is within what picking the best of all layers gives by chance" if len(above) == 1 else
        "on neither side does the max-over-layers test reject chance (p > 0.05)")
    sel = [num(r.get("selectivity")) for r in tf["selected_on_validation"]]
    out["tf_selectivity_reading"] = (
        "selectivity not measured" if not sel or any(x is None for x in sel) else
        "below 0.1 on both sides: a probe of this capacity fits random per-element labels nearly as well as it reads "
        "truth on new elements" if all(x < 0.1 for x in sel) else
        "at least 0.1 on both sides" if all(x >= 0.1 for x in sel) else "below 0.1 on one side")
    for side in ("base", "aligned"):
        ctrl = _by_layer(tf, f"{side} control_task")
        out[f"tf_{side}_control_range"] = span(list(ctrl.values()), ".2f")
    rows = []
    for r in tf["by_layer"]:
        rows.append([int(r["layer"]), f(r.get("base"), ".3f"), f(r.get("aligned"), ".3f"), f(r.get("base->aligned"), ".3f"),
                     f(r.get("base control_task"), ".3f"), f(r.get("aligned control_task"), ".3f")])
    out["tf_table"] = table(["layer", "base", "aligned", "base probe on aligned", "base: control task",
                             "aligned: control task"], rows)
    return out


@_entry("probes_truth", TRUTH)
def _truth() -> dict[str, str]:
    t = _tasks(TRUTH)
    out = _selected(t["truth_cities_heldout"], "cities")
    names = {"cities (held-out)": "interp's cities, held out", "neg_cities": "interp's negated cities",
             "larger_than": "interp's comparisons", "got_cities": "geometry of truth: cities",
             "got_neg_cities": "geometry of truth: negated cities", "got_larger_than": "geometry of truth: larger_than",
             "got_sp_en_trans": "geometry of truth: Spanish-English translations"}
    at: dict[str, dict[str, dict]] = {}
    for r in t["truth_at_selected_layer"]:
        at.setdefault(r["dataset"], {})[r["model"]] = r
    rows = []
    for ds, by in at.items():
        rows.append([names.get(ds, ds)] + [f"{f(by[m]['value'], '.3f')} ({_ci(by[m]['ci_low'], by[m]['ci_high'])})"
                                           if m in by else "-" for m in ("base", "aligned")])
    out["table"] = table(["test set (probe fitted on interp's cities)", "base (95% CI)", "aligned (95% CI)"], rows)
    out["datasets"] = str(len(at))
    got = [d for d in at if d.startswith("got_")]
    out["got_note"] = ("" if got else " The geometry-of-truth files were absent on this run (`../shared/datasets`), "
                       "so only interp's own sets appear.")
    return out


@_entry("probes_errors", ERRORS)
def _errors() -> dict[str, str]:
    t = _tasks(ERRORS)
    out: dict[str, str] = {}
    st = t["arithmetic_statements"]
    out.update(_selected(st, "st"))
    out["st_reading"] = _max_over_layers_reading(st)
    for side in ("base", "aligned"):
        c = t.get(f"own_answers_{side}_counts")
        if c:
            lo, hi = rate_ci(c["right"], c["numeric_answers"]) if c["numeric_answers"] else (float("nan"), float("nan"))
            out[f"own_{side}_right"] = str(c["right"])
            out[f"own_{side}_answers"] = str(c["numeric_answers"])
            out[f"own_{side}_questions"] = str(c["questions"])
            out[f"own_{side}_rate"] = f"{100 * c['right'] / max(c['numeric_answers'], 1):.0f}%"
            out[f"own_{side}_rate_ci"] = f"{100 * lo:.0f}-{100 * hi:.0f}%"
    rows = []
    own = t.get("own_answers_vs_confidence", [])
    for r in own:
        rows.append([r["model"], r["baseline"], f(r["auroc"], ".3f"), _ci(r.get("ci_low"), r.get("ci_high")), r["n_test"]])
    out["own_table"] = table(["model", "score", "AUROC", "95% CI", "test answers"], rows)
    readings = []
    for side in ("base", "aligned"):
        probe = next((r for r in own if r["model"] == side and "chosen on validation" in r["baseline"]), None)
        conf = next((r for r in own if r["model"] == side and r["baseline"] == "mean_logprob"), None)
        if probe and conf and None not in (num(probe.get("ci_low")), num(conf.get("ci_low"))):
            if num(probe["ci_low"]) > num(conf["ci_high"]):
                readings.append(f"{side}: the probe's interval lies above the mean log-probability's")
            elif num(probe["ci_high"]) < num(conf["ci_low"]):
                readings.append(f"{side}: the probe's interval lies below the mean log-probability's")
            else:
                readings.append(f"{side}: the two intervals overlap, so this run does not show the probe beating "
                                "output confidence (nor that they are equal: the intervals are not paired)")
    out["own_reading"] = "; ".join(readings) or "not measured"
    for prefix, task in (("st", st), ("ms", t.get("multistep_wrong_step")),
                         ("bbm", t.get("big_bench_mistake_multistep_arithmetic"))):
        out[f"{prefix}_table"] = _layer_table(task)
    out.update(_selected(t.get("multistep_wrong_step"), "ms", "auroc"))
    out["ms_reading"] = _max_over_layers_reading(t.get("multistep_wrong_step"))
    bbm = t.get("big_bench_mistake_multistep_arithmetic")
    out.update(_selected(bbm, "bbm", "auroc"))
    out["bbm_traces"] = str(t.get("big_bench_mistake_traces", "-"))
    out["bbm_first_layer"], out["bbm_base_first"], out["bbm_aligned_first"] = "-", "-", "-"
    out["bbm_reading"] = "BIG-Bench-Mistake was absent on this run"
    if bbm:
        first = min(_by_layer(bbm, "base"))
        out["bbm_first_layer"] = str(first)
        out["bbm_base_first"] = f(_by_layer(bbm, "base").get(first), ".3f")
        out["bbm_aligned_first"] = f(_by_layer(bbm, "aligned").get(first), ".3f")
        chosen = {r["model"]: r for r in bbm["selected_on_validation"]}
        where = {}
        for side in ("base", "aligned"):
            lo, hi = (num(chosen.get(side, {}).get(k)) for k in ("ci_low", "ci_high"))
            v = _by_layer(bbm, side).get(first)
            if None not in (lo, hi, v):
                where[side] = "inside" if lo <= v <= hi else "above" if v > hi else "below"
        inside = [s for s, w in where.items() if w == "inside"]
        above = [s for s, w in where.items() if w == "above"]
        below = [s for s, w in where.items() if w == "below"]
        parts = []
        if inside:
            parts.append(f"layer {first}'s value lies inside the chosen layer's interval on {' and '.join(inside)}, so "
                         "there the chosen layer does not show more than what the step text's first block already carries")
        if above:
            parts.append(f"layer {first}'s value lies above the chosen layer's interval on {' and '.join(above)}")
        if below:
            parts.append(f"the chosen layer's interval lies above layer {first}'s value on {' and '.join(below)}")
        out["bbm_reading"] = "; ".join(parts) or "the intervals were not measured"
    return out
