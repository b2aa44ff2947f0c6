"""Rendered numbers of the probe-training scripts on the default pair (``probes/train_*_probes.py
--results``): suppressed-but-present chemistry facts, known vs unknown, truth, error awareness.

Each function returns ``{key: string}``; :mod:`benchmarks.render` registers :data:`ENTRIES`.
Readings that depend on the numbers (above chance or not, probe vs confidence) are computed from
the intervals here, never typed.
"""

import json
from collections.abc import Callable
from pathlib import Path

from benchmarks.fmt import B, f, num, span, table

__all__ = ["ENTRIES"]

KNOWLEDGE = B / "results_probes_knowledge_default.json"
TRUTH = B / "results_probes_truth_default.json"
ERRORS = B / "results_probes_errors_default.json"

ENTRIES: dict[str, tuple[list[Path], Callable[[], dict[str, str]]]] = {}


def _entry(name: str, *files: Path):
    def wrap(fn):
        ENTRIES[name] = (list(files), fn)
        return fn
    return wrap


def _tasks(path: Path) -> dict:
    return json.loads(path.read_text())["tasks"]


def _ci(lo, hi) -> str:
    return span([num(lo), num(hi)], ".3f")


def _selected(task: dict, prefix: str, metric: str = "accuracy") -> dict[str, str]:
    """Per side: the value at the layer chosen on validation rows, its layer, CI and controls."""
    out = {}
    for r in task["selected_on_validation"]:
        side = r["model"]
        out[f"{prefix}_{side}"] = f(r[metric], ".3f")
        out[f"{prefix}_{side}_layer"] = str(int(r["layer"]))
        out[f"{prefix}_{side}_ci"] = _ci(r["ci_low"], r["ci_high"])
        for k in ("balanced_accuracy", "majority_class", "control_seen_entities", "selectivity", "p_any_layer"):
            if num(r.get(k)) is not None:
                out[f"{prefix}_{side}_{k}"] = f(r[k], ".3f")
    return out


def _by_layer(task: dict, column: str) -> dict[int, float]:
    return {int(r["layer"]): num(r.get(column)) for r in task["by_layer"] if num(r.get(column)) is not None}


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
    sel = [num(r.get("selectivity")) for r in tf["selected_on_validation"]]
    out["tf_selectivity_reading"] = (
        "a probe of this capacity memorises random per-element labels almost as well as it reads truth on new elements"
        if all(x is not None and x < 0.1 for x in sel) else
        "the probe reads truth on new elements clearly better than it memorises random per-element labels")
    for side in ("base", "aligned"):
        ctrl = _by_layer(tf, f"{side} control_task")
        out[f"tf_{side}_control_range"] = span(list(ctrl.values()), ".2f")
        acc = _by_layer(tf, side)
        last = sorted(acc)[-3:]
        out[f"tf_{side}_late"] = span([acc[x] for x in last], ".2f")
        out["tf_late_layers"] = f"{last[0]}-{last[-1]}"
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
    p = [num(r["p_any_layer"]) for r in st["selected_on_validation"]]
    out["st_reading"] = ("no layer is above chance once the choice of layer is paid for" if all(x is not None and x > 0.05 for x in p)
                         else "the probe is above chance on at least one side (max-over-layers test, p <= 0.05)")
    for side in ("base", "aligned"):
        c = t.get(f"own_answers_{side}_counts")
        if c:
            from interp.stats import rate_ci

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
        if probe and conf and num(probe.get("ci_low")) is not None and num(conf.get("ci_low")) is not None:
            if num(probe["ci_low"]) > num(conf["ci_high"]):
                readings.append(f"{side}: the probe beats the answer's mean log-probability")
            elif num(probe["ci_high"]) < num(conf["ci_low"]):
                readings.append(f"{side}: the probe is below the answer's mean log-probability")
            else:
                readings.append(f"{side}: the probe's interval overlaps that of the answer's mean log-probability "
                                "(it matches output confidence, it does not beat it)")
    out["own_reading"] = "; ".join(readings) or "not measured"
    ms = t.get("multistep_wrong_step")
    if ms:
        out.update(_selected(ms, "ms", "auroc"))
    bbm = t.get("big_bench_mistake_multistep_arithmetic")
    if bbm:
        out.update(_selected(bbm, "bbm", "auroc"))
        out["bbm_traces"] = str(t.get("big_bench_mistake_traces", "-"))
        first = min(_by_layer(bbm, "base"))
        out["bbm_first_layer"] = str(first)
        out["bbm_base_first"] = f(_by_layer(bbm, "base")[first], ".3f")
        out["bbm_aligned_first"] = f(_by_layer(bbm, "aligned")[first], ".3f")
        chosen = {r["model"]: r for r in bbm["selected_on_validation"]}
        surface = all(num(chosen[s]["ci_low"]) is not None and num(chosen[s]["ci_low"]) <= _by_layer(bbm, s)[first]
                      for s in ("base", "aligned") if s in chosen)
        out["bbm_reading"] = ("the last token's embedding alone lies inside the chosen layer's interval: the signal is a "
                              "surface cue of the step text, not evidence that the model registers its mistake" if surface
                              else "the chosen layer beats the embedding-only layer on both sides")
    else:
        out["bbm_reading"] = "BIG-Bench-Mistake was absent on this run"
    return out
