"""Rendered numbers of ``interp demo`` (full sizes) and ``interp patch --attribution`` on the default
pair: the refusal direction's selection and held-out measures, the base -> aligned patching curve,
the demo's probe headline, and attribution patching against the exact sweep.

Each function returns ``{key: string}``; :mod:`benchmarks.render` registers them in its
``ENTRIES`` (with :data:`ENTRIES` here) and pages write ``{{ name.key }}``.
"""

import json

from benchmarks.fmt import B, f, minutes, num, span, table, registry

__all__ = ["ENTRIES"]

DEMO = B / "results_demo_default.json"
ATTRIBUTION = {kind: B / f"results_patch_{kind}_default.json" for kind in ("resid_pre", "attn_out", "mlp_out")}

ENTRIES, _entry = registry()


def _ci(lo, hi, spec: str = ".2f") -> str:
    return "-" if num(lo) is None or num(hi) is None else f"{format(num(lo), spec)}-{format(num(hi), spec)}"


@_entry("demo", DEMO)
def _demo() -> dict[str, str]:
    """``interp demo --results``: the refusal direction, the patching curve, the probe headline."""
    d = json.loads(DEMO.read_text())
    if d["config"].get("quick"):
        raise ValueError(f"{DEMO.name} holds an `interp demo --quick` run; the documentation renders the full-size demo")
    sm, tables = d["summary"], d["tables"]
    out = {"seconds": minutes(sm["seconds"]), "quick": "yes" if d["config"]["quick"] else "no"}
    # The refusal direction: candidate layers (validation sets) and the held-out measures.
    layer = int(sm["refusal_direction"]["layer"])
    rows = []
    for r in tables["refusal_direction_selection"]:
        mark = (lambda s: f"**{s}**") if int(r["layer"]) == layer else (lambda s: s)
        rows.append([mark(f"{int(r['layer'])}{' (selected)' if int(r['layer']) == layer else ''}"),
                     mark(f"{f(r['refusal_rate_ablated'])} ({_ci(r['ci_low'], r['ci_high'])})"), mark(f(r["kl"]))])
    n_val = int(tables["refusal_direction_selection"][0]["n"])
    out["selection_table"] = table(["candidate layer", f"refusal rate on validation chemistry, direction ablated "
                                    f"(n = {n_val}, Wilson 95%)", "next-token KL on validation geography"], rows)
    measures = {r["measure"]: r for r in tables["refusal_direction"]}
    out["measures_table"] = table(["measure (held-out)", "value", "95% CI", "n"], [
        [m, f(r["value"], ".3f"), _ci(r["ci_low"], r["ci_high"], ".3f"), int(r["n"])] for m, r in measures.items()])
    out["layer"] = str(layer)
    out["n_val"] = str(n_val)

    def row(prefix: str) -> dict:
        return next(r for m, r in measures.items() if m.startswith(prefix))

    def rate(prefix: str) -> str:
        r = row(prefix)
        return f"{f(r['value'])} (Wilson {_ci(r['ci_low'], r['ci_high'])}, n = {int(r['n'])})"
    out["ablated_refuses"] = f(row("... with the direction ablated: refuses")["value"])
    out["ablated_correct"] = f(row("... with the direction ablated: answers correctly")["value"])
    out["ablation_reading"] = (
        f"Ablating the direction takes the held-out refusal rate from {rate('aligned refuses held-out refused')} to "
        f"{rate('... with the direction ablated: refuses')}; the ablated model answers "
        f"{rate('... with the direction ablated: answers correctly')} of those questions correctly (the base, graded "
        f"in its own plain few-shot format, {rate('base answers the same prompts correctly')}: another prompt format, "
        f"so a guide, not a like-for-like comparison). Adding the direction to answered questions: the aligned model "
        f"refuses {rate('... with the direction added: refuses')} of them, against "
        f"{rate('aligned refuses answered-set prompts')} without it.")
    # The demo's probe headline (the layer chosen on validation elements).
    for side in ("base", "aligned"):
        p = sm["probe"][side]
        out[f"probe_{side}"] = f(p["accuracy"], ".3f")
        out[f"probe_{side}_layer"] = str(p["layer"])
        out[f"probe_{side}_ci"] = _ci(*p["ci"], ".3f")
        out[f"probe_{side}_control"] = f(p["control_seen_entities"])
        out[f"probe_{side}_p"] = f(p["p_any_layer"], ".3f")
        out[f"probe_{side}_selectivity"] = f(p["selectivity"], ".3f")
    out["probe_n_test"] = str(sm["probe_n_test"])
    # Base -> aligned patching, every layer at the two marked positions.
    pt = sm["patching"]
    out["patch_prompts"] = str(pt["prompts"])
    out["patch_clean"] = f(pt["clean_logit_diff"])
    curve: dict[int, dict[str, dict]] = {}
    for r in tables["patching"]:
        curve.setdefault(int(r["layer"]), {})[r["position"]] = r
    out["patch_table"] = table(
        ["layer", "patched at the last prompt token (95% CI over prompts)", "patched at the element's last token"],
        [[layer_, f"{f(c['last']['value'])} ({span([c['last']['ci_low'], c['last']['ci_high']], '.2f')})",
          f"{f(c['span_last']['value'])} ({span([c['span_last']['ci_low'], c['span_last']['ci_high']], '.2f')})"]
         for layer_, c in sorted(curve.items())])
    clean = float(pt["clean_logit_diff"])
    out["patch_span_max_move"] = f(max(abs(float(c["span_last"]["value"]) - clean) for c in curve.values()), ".1f")
    out["patch_last_final"] = f(curve[max(curve)]["last"]["value"])
    out["patch_last_final_layer"] = str(max(curve))
    moved = [layer_ for layer_, c in sorted(curve.items())
             if num(c["last"]["ci_low"]) is not None and not num(c["last"]["ci_low"]) <= clean <= num(c["last"]["ci_high"])]
    out["patch_last_first_moved"] = str(moved[0]) if moved else "no layer"
    span_moved = [layer_ for layer_, c in sorted(curve.items()) if num(c["span_last"]["ci_low"]) is not None
                  and not num(c["span_last"]["ci_low"]) <= clean <= num(c["span_last"]["ci_high"])]
    out["patch_span_moved_layers"] = (", ".join(str(x) for x in span_moved) or "none") if len(span_moved) < 8 else \
        f"{len(span_moved)} of {len(curve)}"
    return out


@_entry("attribution", *ATTRIBUTION.values())
def _attribution() -> dict[str, str]:
    """``interp patch --attribution --kind K --results ...`` for the three hook kinds."""
    rows, out, same = [], {}, set()
    for kind, path in ATTRIBUTION.items():
        d = json.loads(path.read_text())
        a = d["attribution"]
        same.add((d["n"], round(float(d["clean"]), 4), a["cells"], d["direction"]))
        best = max(d["exact"], key=lambda r: float(r["value"]))
        rows.append([kind, f"{f(a['pearson'])} ({span(a['pearson_ci'], '.2f')})",
                     f"{f(a['spearman'])} ({span(a['spearman_ci'], '.2f')})", f(a["sign_agreement"]),
                     "yes" if a["same_top_cell"] else "no", f"{f(a['seconds_exact'], '.1f')} s / {f(a['seconds_attribution'], '.1f')} s",
                     f"{f(a['cost_ratio'], '.1f')}x", f"layer {int(best['layer'])} at {best['position']}: {f(best['value'])}"])
        out[f"{kind}_best_layer"] = str(int(best["layer"]))
        out[f"{kind}_best_position"] = str(best["position"])
        out[f"{kind}_best"] = f(best["value"])
        out["clean"] = f(d["clean"])
        out["n"] = str(d["n"])
        out["cells"] = str(a["cells"])
    if len(same) != 1:
        raise ValueError(f"the attribution results files were measured on different questions or directions: {same}")
    out["table"] = table(["hook", "Pearson (95% Fisher-z, cells treated as independent)", "Spearman (95%)",
                          "sign agreement", "same top cell (largest \\|effect\\|)", "time: exact / attribution",
                          "exact over attribution", "highest patched value (exact)"], rows)
    return out
