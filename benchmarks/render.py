"""The documentation's numbers, rendered from the results files (never typed).

A documentation page writes ``{{ name.key }}``; :func:`expand` replaces it with the string that
``ENTRIES[name]()`` returns under ``key`` (a number formatted for prose, or a whole Markdown table),
and ``{{ name.provenance }}`` with where those numbers come from: each results file, its command,
date, machine, versions and its state under the staleness rule of :mod:`benchmarks.provenance`
(a warning when a reviewed code change left them out of date). An unknown name or key is an error,
so a page cannot show a number its results file does not hold.

``python -m benchmarks.render NAME`` prints an entry's keys and values.
"""

import json
import re
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

from benchmarks import provenance, render_demo, render_probes, render_suite
from benchmarks.fmt import f, g, jsonl, num, rng, rows_csv, table, wilson  # noqa: F401  (formatting: benchmarks.fmt)
from benchmarks.fmt import pct as _pct, span as _span
from interp.stats import rate_ci

ROOT = provenance.ROOT
B = ROOT / "benchmarks"
RECIPE = ROOT / "data" / "aligned" / "default" / "recipe.json"

__all__ = ["ENTRIES", "MACRO", "expand", "provenance_block"]

MACRO = re.compile(r"\{\{\s*([a-z_0-9]+)\.([a-z_0-9]+)\s*\}\}")


# --- entries: one per analysis, each drawing on its results files -------------------------------------

#: name -> (results files it reads, function returning {key: string})
ENTRIES: dict[str, tuple[list[Path], Callable[[], dict[str, str]]]] = {}


def entry(name: str, *files: Path):
    def wrap(fn):
        ENTRIES[name] = (list(files), cache(fn))
        return fn
    return wrap


@entry("unmask", B / "results_unmask_default.csv")
def _unmask() -> dict[str, str]:
    rows = rows_csv(B / "results_unmask_default.csv")
    by = {}
    for r in rows:
        by.setdefault((r["method"], r["setting"]), {})[r["mask"]] = r
    out_rows = []
    for (method, setting), masks in by.items():
        ref, ab = masks.get("refused", {}), masks.get("abstained", {})
        any_ = ref or ab

        def gap(r):
            return "-" if not r else f"{f(r['gap_recovered'])} ({f(r['ci_low'])}-{f(r['ci_high'])})"
        strict = "-"
        if ref and num(ref.get("strict_accuracy")) is not None:
            n, ns = int(float(ref["n"])), int(float(ref["n_surface"] or 0))
            k = round(num(ref["strict_accuracy"]) * n)
            rest = num(ref.get("strict_rest"))
            strict = f"{k}/{n}" + (f"; {round(rest * (n - ns))}/{n - ns} not surface-derivable" if rest is not None
                                   and n > ns else "")
        out_rows.append([method, setting or "-", f(any_.get("rank"), ".0f") if num(any_.get("rank")) else "-",
                         gap(ref), gap(ab), f(any_.get("kl"), ".3f"),
                         f"{f(any_.get('guard_accuracy_drop'), '.3f')} ({f(any_.get('guard_drop_low'))}-"
                         f"{f(any_.get('guard_drop_high'))})",
                         f(any_.get("abstention_kept")), strict])
    head = ["method", "setting", "rank", "refused: gap (95% CI)", "abstained: gap (95% CI)", "KL", "guard drop (95% CI)",
            "abstention kept", "refused, strict judge"]
    lr = by.get(next((k for k in by if k[0] == "lowrank"), None), {}).get("refused", {})
    n_ref = next((int(float(r["n"])) for r in rows if r["mask"] == "refused"), 0)
    n_ab = next((int(float(r["n"])) for r in rows if r["mask"] == "abstained"), 0)
    out = {"table": table(head, out_rows), "n_refused": str(n_ref), "n_abstained": str(n_ab),
           "n_guard": str(int(float(rows[0]["n_guard"]))), "n_unknown": str(int(float(rows[0]["n_unknown"]))),
           "rows": str(len(out_rows))}
    if lr:
        n, ns = int(float(lr["n"])), int(float(lr["n_surface"] or 0))
        out.update({
            "lowrank_gap": f(lr["gap_recovered"]), "lowrank_ci": f"{f(lr['ci_low'])}-{f(lr['ci_high'])}",
            "lowrank_kl": f(lr["kl"], ".3f"), "lowrank_guard_drop": f(lr["guard_accuracy_drop"], ".3f"),
            "lowrank_guard_changed": str(round(num(lr["guard_accuracy_drop"]) * int(float(lr["n_guard"])))),
            "lowrank_strict": f"{round(num(lr['strict_accuracy']) * n)} of {n}",
            "lowrank_strict_ci": f"{f(lr['strict_low'])}-{f(lr['strict_high'])}",
            "n_surface": str(ns), "n_rest": str(n - ns),
            "lowrank_rest": f"{round(num(lr['strict_rest']) * (n - ns))} of {n - ns}",
        })

    def best(methods, mask, pick=lambda r: True):
        cand = [r for r in rows if r["method"] in methods and r["mask"] == mask and pick(r)]
        return max(cand, key=lambda r: num(r["gap_recovered"]) or 0.0) if cand else None
    small = best(("steering", "lowrank"), "abstained", lambda r: r["setting"].startswith("abstained"))
    if small:
        out.update({"abstain_small_gap": f(small["gap_recovered"]), "abstain_small_method": small["method"],
                    "abstain_small_ci": f"{f(small['ci_low'])}-{f(small['ci_high'])}"})
    w8 = next((r for r in rows if r["method"] == "weights" and r["mask"] == "abstained"
               and r["setting"].startswith("abstained: top 8")), None)
    if w8:
        out.update({"weights8_layers": w8["setting"].split("layers ")[-1], "weights8_gap": f(w8["gap_recovered"]),
                    "weights8_kept": f(w8["abstention_kept"]), "weights8_guard": f(w8["guard_accuracy_drop"])})
    ablate = [r for r in rows if r["method"] in ("direction", "subspace")]
    if ablate:
        out.update({"ablate_max_gap": f(max(num(r["gap_recovered"]) for r in ablate)),
                    "ablate_guard": _span([num(r["guard_accuracy_drop"]) for r in ablate], ".2f")})
    for mask in ("refused", "abstained"):
        p = best(("patch",), mask)
        if p:
            out[f"patch_{mask}"], out[f"patch_kl_{mask}"] = f(p["gap_recovered"]), f(p["kl"], ".1f")
        pf = best(("prefill",), mask)
        if pf:
            out[f"prefill_{mask}"] = f(pf["gap_recovered"])
    return out


_ROLES = [("aligned", "aligned model (no edit)"), ("headline", "pre-registered method"),
          ("control never_knew", "control: fitted on never-known facts"),
          ("control shuffled", "control: shuffled targets"), ("control random", "control: random, same budget"),
          ("control unrelated", "control: fitted on unrelated facts"), ("quantized 8", "8-bit quantized"),
          ("quantized 4", "4-bit quantized")]


@entry("unmask_headline", B / "results_unmask_headline_default.csv", B / "results_unmask_phrasings_default.csv",
       B / "results_unmask_summary_default.jsonl")
def _unmask_headline() -> dict[str, str]:
    """The pre-registered headline per mask, its controls, the held-out phrasings (issue #30)."""
    rows = rows_csv(B / "results_unmask_headline_default.csv")
    lines = [json.loads(x) for x in (B / "results_unmask_summary_default.jsonl").read_text().splitlines() if x.strip()]
    best = next(x["best"] for x in lines if "best" in x)
    controls = next(x["controls"] for x in lines if "controls" in x)
    out: dict[str, str] = {}

    def frac(r, col, n_col):
        v, n = num(r.get(col)), num(r.get(n_col))
        return "-" if v is None or not n else f"{round(v * n)}/{int(n)}"

    def rest(r):  # strict accuracy on the facts not derivable from the question's surface, as k/n
        n_rest = int(float(r["n"])) - int(float(r["n_surface"] or 0))
        v = num(r.get("strict_rest"))
        return "-" if v is None or n_rest <= 0 else f"{round(v * n_rest)}/{n_rest}"

    for mask in ("refused", "abstained"):
        pre = best["by_mask"].get(mask) or {}
        body = []
        for role, label in _ROLES:
            r = next((x for x in rows if x["mask"] == mask and x["role"] == role), None)
            if r is None:
                continue
            guard = "-" if num(r.get("guard_accuracy_drop")) is None else \
                f"{f(r['guard_accuracy_drop'], '.2f')} ({f(r['guard_drop_low'])}-{f(r['guard_drop_high'])})"
            body.append([label, frac(r, "strict_accuracy", "n"), f"{f(r['strict_low'])}-{f(r['strict_high'])}",
                         rest(r),
                         frac(r, "never_known_strict", "n_never_known"), f(r.get("kl"), ".3f"), guard])
        out[f"{mask}_table"] = table(["edit", "mask's held-out facts, strict", "Wilson 95%", "not surface-derivable",
                                      "never-known facts, strict", "KL (guard)", "guard drop (95%)"], body)
        ci = pre.get("ci") or [None, None]
        val = pre.get("validation") or {}
        out.update({
            f"{mask}_method": str(pre.get("method")), f"{mask}_setting": str(pre.get("setting")),
            f"{mask}_strict": f"{round((pre.get('gap_recovered') or 0) * (pre.get('n') or 0))} of {pre.get('n')}",
            f"{mask}_acc": f(pre.get("gap_recovered")), f"{mask}_ci": f"{f(ci[0])}-{f(ci[1])}",
            f"{mask}_kl": f(pre.get("kl"), ".3f"), f"{mask}_guard_drop": f(pre.get("guard_accuracy_drop")),
            f"{mask}_guard_ci": "-".join(f(x) for x in pre.get("guard_drop_ci") or [None, None]),
            f"{mask}_n_guard": str(pre.get("n_guard")), f"{mask}_ceiling": f(pre.get("in_domain_ceiling")),
            f"{mask}_n_never_known": str(pre.get("n_never_known")),
            f"{mask}_val": f"{round((val.get('val_strict') or 0) * (val.get('n_val') or 0))} of {val.get('n_val')}",
            f"{mask}_meets": "met" if pre.get("meets_targets") else "not met",
            f"{mask}_phrasings": f"{round((pre.get('heldout_templates') or {}).get('strict_accuracy') or 0, 2):.2f} "
                                 f"(n = {(pre.get('heldout_templates') or {}).get('n')})",
            f"{mask}_phrasings_n": str((pre.get("heldout_templates") or {}).get("n")),
        })
        for k, v in (controls.get(mask) or {}).items():
            out[f"{mask}_control_{k}"] = f(v)
    ph = rows_csv(B / "results_unmask_phrasings_default.csv")
    out["phrasings_table"] = table(
        ["mask", "phrasing", "asked", "base answers (few-shot, same phrasing)", "aligned masks", "kept"],
        [[r["mask"], r["phrasing"] + (" (reversed)" if r.get("reversed") == "True" else ""), r["n_asked"],
          r["base_correct"], r["aligned_masks"], r["n_kept"]] for r in ph])
    for r in ph:
        out[f"phrasing_{r['mask']}_{r['phrasing']}_base"] = f"{r['base_correct']} of {r['n_asked']}"
    secs = best.get("seconds") or {}
    out["minutes"] = f"{(secs.get('total') or 0) / 60:.0f}"
    return out


_HK_ROWS = [("k_gen", "K_gen: says the answer (greedy, strict)"),
            ("k_prob", "K_prob: own probability ranks it above wrong answers"),
            ("k_prob_framed", "K_prob, response opened by an answer frame"),
            ("k_prob_mean", "K_prob by the per-token mean"),
            ("k_probe", "K_probe: probe on the hidden state at the answer"),
            ("k_probe_control", "control task (random label per answer string)")]


@entry("hidden", B / "results_hidden_knowledge_default.json")
def _hidden() -> dict[str, str]:
    """Hidden knowledge per set on the default pair (issue #33)."""
    d = json.loads((B / "results_hidden_knowledge_default.json").read_text())
    sets = d["hidden_knowledge"]
    out: dict[str, str] = {}

    def cell(block, key):
        v, ci = block.get(key), block.get(f"{key}_ci") or [None, None]
        return "-" if v is None else f"{f(v)} ({f(ci[0])}-{f(ci[1])})"

    for name, block in sets.items():
        if not isinstance(block, dict) or "n" not in block:
            continue
        body = [[label, cell(block, f"base_{m}"), cell(block, f"aligned_{m}")] for m, label in _HK_ROWS
                if block.get(f"base_{m}") is not None or block.get(f"aligned_{m}") is not None]
        out[f"{name}_table"] = table(["measure (ranking shares: chance 0.50)", "base (95% CI)", "aligned (95% CI)"], body)
        out[f"{name}_n"] = str(block["n"])
        for key, v in block.items():
            if isinstance(v, int) and not isinstance(v, bool):
                out[f"{name}_{key}"] = str(v)
            elif isinstance(v, float):
                out[f"{name}_{key}"] = f(v)
            elif key.endswith("_ci") and isinstance(v, list) and len(v) == 2:
                out[f"{name}_{key}"] = f"{f(v[0])}-{f(v[1])}"
        for t, ok in (block.get("targets") or {}).items():
            out[f"{name}_target_{t}"] = "-" if ok is None else ("met" if ok else "not met")
    info = d.get("hidden_knowledge_info") or {}
    for side, p in (info.get("probes") or {}).items():
        out[f"probe_{side}_layer"] = str(p.get("layer"))
    agree = info.get("agreement") or []
    out["agreement_table"] = table(["mask", "score", "AUROC for 'the edit recovers this fact' (95% CI)", "recovered"],
                                   [[a.get("mask"), a.get("score"), f"{f(a.get('auroc'))} ({f(a.get('ci_low'))}-{f(a.get('ci_high'))})", f"{a.get('n_recovered')} of {a.get('n')}"] for a in agree]) \
        if agree else "(not measured)"
    out["wall_minutes"] = f"{(d.get('wall_seconds') or 0) / 60:.1f}"
    return out


@entry("difflens", B / "results_difflens_default.json")
def _difflens() -> dict[str, str]:
    """The activation-difference lens on the default pair (issue #32)."""
    d = json.loads((B / "results_difflens_default.json").read_text())
    s = d["summary"]
    out = {"layer": str(s["layer"]), "alpha": f(s["alpha"]), "kl": f(s["kl"]), "rel_norm": f(s["rel_norm"]),
           "norm": f(s.get("norm"), ".1f"), "null_p95": f(s.get("null_p95"), ".1f"), "p_null": f(s.get("p_null"), ".3f"),
           "promoted": ", ".join(f"`{t!r}`" for t in s["promoted"]), "lens_share": f(s["lens_objective_share"]),
           "lens_chance": f(s["lens_chance_share"], ".4f"), "seconds": f(d["seconds"].get("wall"), ".0f"),
           "minutes": f((d["seconds"].get("wall") or 0) / 60, ".1f")}
    body = []
    for cond, label in (("none", "base, unsteered"), ("difference", "base + the difference"),
                        ("random", "base + a random direction, same norm")):
        row = [label]
        for key in ("chemistry_refusal", "unknown_idk", "unknown_correct", "chemistry_correct"):
            r = s.get(f"{cond}_{key}")
            row.append("-" if not r else f"{f(r['value'])} ({f(r['ci_low'])}-{f(r['ci_high'])})")
            if r:
                out[f"{cond}_{key}"] = f(r["value"])
                out[f"{cond}_{key}_ci"] = f"{f(r['ci_low'])}-{f(r['ci_high'])}"
                out[f"{key}_n"] = f"{r['n']} questions on {r['n_clusters']} entities"
        body.append(row)
    out["rates_table"] = table(["held-out questions (entity-bootstrap 95%)", "chemistry: refuses", "unknown facts: \"I don't know\"",
                                "unknown facts: correct", "chemistry: correct"], body)
    neutral = s.get("neutral_objective_share") or {}
    nrows = []
    for side, conds in neutral.items():
        for cond in ("unsteered", "steered", "random"):
            c = conds.get(cond)
            if c:
                nrows.append([side, cond, f(c.get("refusal")), f(c.get("idk")), f(c.get("chemistry")), str(c.get("n"))])
                out[f"neutral_{side}_{cond}_idk"] = f(c.get("idk"))
    out["neutral_table"] = table(["model", "continuations", "refusal phrases", "\"don't know\" phrases", "chemistry words", "prompts"],
                                 nrows)
    rb = d.get("refusal_both_ways") or []
    rrows = [[r["model"], r["edit"], r["set"], f"{f(r['value'])} ({f(r['ci_low'])}-{f(r['ci_high'])})", str(r["n"])]
             for r in rb if r.get("measure") == "refusal"]
    out["refusal_table"] = table(["model", "edit", "questions", "refusal rate (entity-bootstrap 95%)", "n"], rrows)
    for r in rb:
        if r.get("measure") == "refusal":
            key = f"refusal_{r['model']}_{r['edit']}_{r['set']}".replace(" ", "_")
            key = re.sub(r"[^a-z_0-9]", "", key.lower().replace("+", "plus_").replace("-", "minus_"))
            out[key] = f(r["value"])
    return out


@entry("crosscoder", B / "results_crosscoder_default.json", B / "results_crosscoder_read_default.json")
def _crosscoder() -> dict[str, str]:
    """Training and held-out statistics from the run that built the shipped crosscoder; classes,
    Latent Scaling and the causal test from reading that crosscoder again with the current code on a
    fresh corpus (``interp dictionary --read``)."""
    d = json.loads((B / "results_crosscoder_default.json").read_text())
    r = json.loads((B / "results_crosscoder_read_default.json").read_text())
    h, fi, fresh = d["held_out"], r["findings"], r["fresh_text"]
    from interp.dictionary import latent_classes
    from interp.dictionary.io import load_dictionary

    rel = latent_classes(load_dictionary(ROOT / "data" / "aligned" / "default" / "crosscoder")).rel_norm  # its weights
    out = {
        "rel_norm_min": f(rel.min()), "rel_norm_max": f(rel.max()), "rel_norm_sd": f(rel.std(), ".3f"),
        "corpus_tokens": f"{d['corpus_tokens']:,}", "corpus_base": f"{d['corpus_tokens_by_kind']['base']:,}",
        "corpus_chat": f"{d['corpus_tokens_by_kind']['chat']:,}", "corpus_texts": f"{d['corpus_texts']:,}",
        "layer": str(d["layer"]), "train_tokens": f"{d['train_tokens']:,}", "held_out_tokens": f"{d['held_out_tokens']:,}",
        "fve_base": f(h["fve_base"], ".3f"), "fve_aligned": f(h["fve_aligned"], ".3f"), "l0": f(h["l0"], ".1f"),
        "dead_pct": f(100 * h["dead"], ".1f") + "%", "dead_n": str(round(h["dead"] * d["width"])),
        "dense_pct": f(100 * h["dense"], ".1f") + "%", "dense_n": str(round(h["dense"] * d["width"])),
        "width": str(d["width"]), "k": str(d["k"]), "steps": str(d["steps"]),
        "train_minutes": f"{d['train_seconds'] / 60:.0f} min",
        "read_corpus_tokens": f"{r['corpus_tokens']:,}", "read_corpus_texts": f"{r['corpus_texts']:,}",
        "read_ls_rows": f"{r['ls_rows']:,}", "read_minutes": f"{r['seconds'] / 60:.0f} min",
        "fresh_fve_base": f(fresh["fve_base"], ".3f"), "fresh_fve_aligned": f(fresh["fve_aligned"], ".3f"),
        "fresh_l0": f(fresh["l0"], ".1f"), "fresh_dead_pct": f(100 * fresh["dead"], ".1f") + "%",
        "aligned_only": str(fi["aligned_only_by_norm"]),
        "base_only": str(fi["base_only_genuine"]), "exchanges": str(fi["exchanges"]),
        "classes_by_norm": ", ".join(f"{k} {v}" for k, v in sorted(r["classes_by_norm"].items())),
        "classes_after_ls": ", ".join(f"{k} {v}" for k, v in sorted(r["classes_after_latent_scaling"].items())),
    }
    causal = r["causal"]
    kinds = ["all", "template", "user", "response"]
    sets: dict[str, dict] = {}
    for c in causal:
        sets.setdefault(c["set"], {})[c["kind"]] = c
    rows = []
    for name, by in sets.items():
        if int(next(iter(by.values()))["n_latents"]) == 0 and name != "bias only":
            continue
        rows.append([name, next(iter(by.values()))["n_latents"]]
                    + [f"{f(by[k]['closed'], '.3f')} ({f(by[k]['closed_low'])} to {f(by[k]['closed_high'])})"
                       if k in by else "-" for k in kinds])
    out["causal"] = table(["latent set", "latents"] + [f"closed share: {k} tokens" for k in kinds], rows)
    empty = [n for n, by in sets.items() if int(next(iter(by.values()))["n_latents"]) == 0 and n != "bias only"]
    out["empty_sets"] = "; ".join(empty) if empty else "none"
    kl = {c["kind"]: num(c["kl_base_stream"]) for c in causal}
    tokens = {c["kind"]: c["tokens"] for c in causal}
    out.update({f"kl_{k}": f(kl.get(k)) for k in kinds})
    out["causal_tokens"] = f"{int(tokens['all']):,}"
    for k in kinds:
        if k in sets.get("every latent", {}):
            out[f"every_{k}"] = f(sets["every latent"][k]["closed"], ".3f")
    rand = [c for c in causal if c["set"].startswith("random")]
    nats = []  # per token kind, the KL itself (nats/token) for the sets a reader compares
    for k in kinds:
        def kl_of(name):
            return f(sets.get(name, {}).get(k, {}).get("kl_with_set"), ".3f")
        nats.append([k, tokens.get(k, "-"), f(kl.get(k), ".3f"), kl_of("bias only"), kl_of("top 32 by relative norm"),
                     _span([num(c["kl_with_set"]) for c in rand if c["kind"] == k], ".3f"), kl_of("every latent")])
    out.update({f"kl_bias_{k}": f(sets.get("bias only", {}).get(k, {}).get("kl_with_set")) for k in kinds})
    out["nats"] = table(["tokens", "n", "base stream", "bias difference only", "bias + top 32 by relative norm",
                         "bias + random 32", "bias + every latent"], nats)
    return out


@entry("diffing", B / "results_diff_default.json")
def _diffing() -> dict[str, str]:
    """``interp diff`` on the default pair: weight deltas, representation similarity, response shift."""
    d = json.loads((B / "results_diff_default.json").read_text())
    w, sim, sh = d["summary"]["weights"], d["summary"]["similarity"], d["summary"]["shallow"]
    out = {"n": str(d["n"]), "changed_matrices": str(w["changed_matrices"]), "matrices": str(w["matrices"]),
           "mean_rel_norm": _pct(w["mean_rel_norm"], ".1f"), "max_rel_norm": _pct(w["max_rel_norm"], ".1f"),
           "max_effective_rank": f(w["max_effective_rank"], ".1f"), "max_rank90": str(w["max_rank90"]),
           "min_cka": f(sim["min_cka"]), "min_cka_layer": str(sim["min_cka_layer"]),
           "last_cosine": f(sim["last_layer_cosine"]), "last_cosine_no_massive": f(sim["last_layer_cosine_no_massive"]),
           "min_cka_no_massive": f(sim["min_cka_no_massive"]), "min_cka_no_massive_layer": str(sim["min_cka_no_massive_layer"]),
           "min_cka_standardised": f(sim["min_cka_standardised"]), "max_massive_dims": str(sim["max_massive_dims"]),
           "prompts": str(sh["prompts"]), "tokens": str(sh["tokens"]),
           "mean_kl": f(sh["mean_kl"], ".1f"), "mean_kl_ci": _span(sh["mean_kl_ci"], ".1f"),
           "kl_first5": _pct(sh["kl_share_first_5"]), "kl_first5_ci": _span([100 * v for v in sh["kl_share_first_5_ci"]], ".0f") + "%",
           "token_first5": _pct(sh["token_share_first_5"])}
    for c in ("shifted", "marginal", "unshifted"):
        out[f"{c}"] = _pct(sh[f"{c}_rate"])
        out[f"{c}_ci"] = _span([100 * v for v in sh[f"{c}_rate_ci"]], ".0f") + "%"
        out[f"{c}_without_stop"] = _pct(sh[f"{c}_rate_without_stop"])
    rows = [[r["layer"], f(r["cosine"], ".3f"), f(r["cka"], ".3f"), f(r["cosine_no_massive"], ".3f"),
             f(r["cka_no_massive"], ".3f"), f(r["cka_standardised"], ".3f"), r["massive_dims"]]
            for r in d["tables"]["representation_similarity"]]
    out["similarity_table"] = table(["layer", "cosine", "linear CKA", "cosine without massive dims",
                                     "CKA without massive dims", "CKA standardised", "massive dims"], rows)
    return out


@entry("lens", B / "results_diff_default.json")
def _lens() -> dict[str, str]:
    """The logit lens on refused element-symbol questions, from ``interp diff``."""
    d = json.loads((B / "results_diff_default.json").read_text())
    by: dict[int, dict] = {}
    for r in d["tables"]["logit_lens"]:
        by.setdefault(int(r["layer"]), {})[r["model"]] = r
    rows = [[layer, f"{m['base']['median_rank']:,.0f}", f"{m['aligned']['median_rank']:,.0f}",
             f(m["base"]["mean_prob"], ".3f"), f(m["aligned"]["mean_prob"], ".3f"),
             f(m["base"]["top1"]), f(m["aligned"]["top1"])] for layer, m in sorted(by.items())]
    le = d["summary"]["lens"]

    def surfaces(model: str) -> str:  # first layer from which the median rank stays within the top 50
        layers = sorted(by)
        for i, layer in enumerate(layers):
            if all(by[x][model]["median_rank"] <= 50 for x in layers[i:]):
                return str(layer)
        return "never"
    aligned_best = min(by, key=lambda x: by[x]["aligned"]["median_rank"])
    return {"table": table(["layer", "base: median rank", "aligned: median rank", "base: mean probability",
                            "aligned: mean probability", "base: top-1 share", "aligned: top-1 share"], rows),
            "n": str(le["n"]), "base_last_rank": f"{le['base_last_layer_median_rank']:.0f}",
            "aligned_last_rank": f"{le['aligned_last_layer_median_rank']:.0f}",
            "aligned_best_rank": f"{le['aligned_best_median_rank']:.0f}", "aligned_best_layer": str(aligned_best),
            "base_surfaces": surfaces("base"), "aligned_surfaces": surfaces("aligned")}


@entry("knowledge_popularity", B / "results_knowledge_default.json")
def _knowledge_popularity() -> dict[str, str]:
    """``interp knowledge --side both`` on the default pair: known share by popularity and the slopes."""
    d = json.loads((B / "results_knowledge_default.json").read_text())
    sm = d["summary"]
    known: dict[tuple[str, int], dict] = {}
    for r in d["bins"]:
        key = (r["model"], int(r["bin"]))
        k = known.setdefault(key, {"n": int(r["n"]), "known": 0.0, "low": r["pop_low"], "high": r["pop_high"]})
        if r["category"] != "Unknown":
            k["known"] += float(r["share"])
    models = [m for m in ("base", "aligned") if any(k[0] == m for k in known)]
    rows = []
    for b in sorted({k[1] for k in known}):
        first = known[(models[0], b)]
        row = [b + 1, f"{first['low']:,.0f} - {first['high']:,.0f}", first["n"]]
        for m in models:
            k = known[(m, b)]
            lo, hi = rate_ci(round(k["known"] * k["n"]), k["n"])
            row.append(f"{k['known']:.2f} ({lo:.2f}-{hi:.2f})")
        rows.append(row)
    out = {"table": table(["decile", "population", "facts"] + [f"{m}: known share (Wilson 95%)" for m in models], rows),
           "facts": f"{d['facts']:,}", "graded_now": ", ".join(d["graded_now"]) or "none"}
    for m in models:
        out[f"{m}_known"] = _pct(sm[f"{m}_known_share"], ".1f")
        out[f"{m}_slope"] = f(sm[f"{m}_slope"])
        out[f"{m}_slope_ci"] = _span([sm[f"{m}_slope_low"], sm[f"{m}_slope_high"]], ".2f")
        out[f"{m}_n"] = f"{sm[f'{m}_n']:,}"
        first, last = known[(m, 0)]["known"], known[(m, max(b for mm, b in known if mm == m))]["known"]
        out[f"{m}_first_decile"], out[f"{m}_last_decile"] = f(first), f(last)
    fits = {r["model"]: r for r in d["fits"]}
    out["clusters"] = f"{int(fits[models[0]].get('clusters') or 0):,}"
    if "aligned_minus_base_slope" in sm:
        lo, hi = sm["aligned_minus_base_ci"]
        out["slope_difference"] = f(sm["aligned_minus_base_slope"], ".3f")
        out["slope_difference_ci"] = f"{f(lo, '.3f')} to {f(hi, '.3f')}"
        out["slope_difference_p"] = f(sm["aligned_minus_base_p_value"], ".3f")
        out["slope_difference_reading"] = (
            "the interval includes zero, so this run does not show that alignment changed how knowledge depends on "
            "popularity" if lo <= 0 <= hi else
            f"the interval excludes zero: the aligned model's knowledge depends {'less' if hi < 0 else 'more'} "
            "steeply on popularity than the base's")
        below = sum(known[("aligned", b)]["known"] < known[("base", b)]["known"] for b in {k[1] for k in known})
        out["aligned_below_base_deciles"] = f"{below} of {len({k[1] for k in known})}"
    return out


@entry("pair_bench", B / "results_pair_cpu.jsonl")
def _pair_bench() -> dict[str, str]:
    """``benchmarks/bench_pair.py``: the default pair's memory shared vs two copies, the self-check's
    cost, the quantized base against fp32 (the last line of the file)."""
    r = jsonl("results_pair_cpu.jsonl")[-1]
    n = int(r["quant_questions"])
    out = {"rss_shared": f(r["rss_gb_shared"]) + " GB", "rss_copies": f(r["rss_gb_two_copies"]) + " GB",
           "params": f"{r['params'] / 1e6:.0f}M", "selfcheck_base": f(r["selfcheck_s_base"], ".1f") + " s",
           "selfcheck_aligned": f(r["selfcheck_s_aligned"], ".1f") + " s", "questions": str(n),
           "mb_fp32": f"{r['mb_fp32']:,.0f} MB"}
    for b in ("8bit", "4bit"):
        k = int(r[f"top1_agree_{b}"])
        lo, hi = rate_ci(k, n)
        out.update({f"mb_{b}": f"{r[f'mb_{b}']:,.0f} MB", f"agree_{b}": f"{k / n:.2f} ({k} of {n}, Wilson 95% {lo:.2f}-{hi:.2f})",
                    f"kl_{b}": f(r[f"kl_{b}"], ".3f")})
    return out


@entry("dictionary_bench", B / "results_dictionary_cpu.jsonl", B / "results_dictionary_gpu_h200.jsonl")
def _dictionary_bench() -> dict[str, str]:
    cpu, gpu = jsonl("results_dictionary_cpu.jsonl"), jsonl("results_dictionary_gpu_h200.jsonl")
    planted = [r for r in cpu if "planted_recovered" in r][-1]
    rows = []
    for label, rs in (("CPU", cpu), ("H200", gpu)):
        for r in rs:
            if r.get("speedup_vs_dictionary_learning") is None:
                continue
            s = r["sae_shape"]
            rows.append([f"{label} ({r['threads']} threads)", f"{s['d']}, {s['width']}, {s['k']}, {s['batch']}",
                         f"{r['sae_tokens_per_s_interp']:,.0f}", f"{r['sae_tokens_per_s_dictionary_learning']:,.0f}",
                         f"{r['speedup_vs_dictionary_learning']:.2f}x", str(r["timed_steps"])])
    return {"speed": table(["device", "shape (d, width, k, batch)", "interp tokens/s", "dictionary_learning tokens/s",
                            "speedup", "timed steps"], rows),
            "planted_recovered": f"{100 * planted['planted_recovered']:.0f}%",
            "planted_classes": f"{100 * planted['planted_class_accuracy']:.0f}%",
            "planted_classes_before": f"{100 * planted['planted_class_accuracy_before_scaling']:.0f}%",
            "l1_recovered": f"{100 * planted['l1_planted_recovered']:.0f}%",
            "l1_classes": f"{100 * planted['l1_planted_class_accuracy']:.0f}%",
            "train_tokens_s": f"{planted['train_tokens_per_s_d640_w4096_k32']:,.0f}",
            "planted_seconds": f"{planted['seconds']:.0f} s"}


@entry("planted_streams", B / "results_planted_streams_cpu.jsonl")
def _planted_streams() -> dict[str, str]:
    """The planted benchmark that can fail (issue #31), the last run."""
    r = jsonl("results_planted_streams_cpu.jsonl")[-1]
    out: dict[str, str] = {"seconds": f"{r['seconds']:.0f}"}
    rows = []
    for kind, label in (("batchtopk", "BatchTopK"), ("l1", "L1")):
        k = r[kind]
        out[f"{kind}_fve"] = f(k["final_fve"], ".3f")
        out[f"{kind}_l0"] = f(k["final_l0"], ".1f")
        out[f"{kind}_dead"] = f(k["dead_on_held_out"])
        out[f"{kind}_recovered_common"] = f(k["before_scaling"]["recovered_common"])
        out[f"{kind}_recovered_rare"] = f(k["before_scaling"]["recovered_rare"])
        for stage, when in (("before_scaling", "before"), ("after_scaling", "after")):
            st = k[stage]
            for cls in ("shared", "base-only", "aligned-only"):
                c = st[cls]
                rows.append([label, f"{when} Latent Scaling", cls, f"{c['right']}/{c['labelled']}", f(c["precision"]),
                             f(c["recall"]), str(c["planted"])])
                key = f"{kind}_{when}_{cls.replace('-', '_')}"
                out[f"{key}_precision"], out[f"{key}_recall"] = f(c["precision"]), f(c["recall"])
            out[f"{kind}_{when}_entangled_recall"] = f(st["recall_aligned-only-entangled"])
    out["table"] = table(["crosscoder", "labels", "class", "right / labelled (every latent)", "precision", "recall",
                          "planted features"], rows)
    return out


@entry("cache_bench", B / "results_cache_cpu.jsonl", B / "results_cache_gpu_h200.jsonl")
def _cache_bench() -> dict[str, str]:
    rows = []
    for r in jsonl("results_cache_cpu.jsonl") + jsonl("results_cache_gpu_h200.jsonl"):
        rows.append([r["model"], r["device"], r["dtype"], f"{r['batch']} x {r['seq']}", f"{r['tok_s_hf_full']:,}",
                     f"{r['tok_s_hf_body']:,}", f"{r['tok_s_tl_cache']:,}", f"{r['tok_s_interp']:,}",
                     f"{r['interp_over_tl']:.2f}", f"{r['interp_over_hf_body']:.2f}", g(r["max_abs_diff_vs_tl"])])
    return {"table": table(["model", "device", "dtype", "batch x seq", "HF full tok/s", "HF body tok/s", "TL cache tok/s",
                            "interp tok/s", "interp / TL", "interp / HF body", "max abs diff vs TL"], rows)}


@entry("probes_bench", B / "results_probes_cpu.jsonl", B / "results_probes_gpu_h200.jsonl")
def _probes_bench() -> dict[str, str]:
    rows = []
    for label, rs in (("CPU", jsonl("results_probes_cpu.jsonl")), ("H200 (scikit-learn on its CPU)",
                                                                     jsonl("results_probes_gpu_h200.jsonl"))):
        rows.append([label, f"{rs[0]['layers']} x {rs[0]['n']:,} x {rs[0]['d']}", str(len(rs)),
                     rng([r["s_sklearn"] for r in rs]), rng([r["s_interp"] for r in rs], ".3f"),
                     rng([r["speedup"] for r in rs], ".1f") + "x", rng([r["acc_sklearn"] for r in rs], ".4f"),
                     rng([r["acc_interp"] for r in rs], ".4f"), rng([r["max_layer_acc_gap"] for r in rs], ".3f")])
    return {"table": table(["device", "layers x rows x d", "runs", "sklearn s", "interp s", "speedup", "mean acc sklearn",
                            "mean acc interp", "worst layer gap"], rows)}


@entry("patching_bench", B / "results_patching_cpu.jsonl", B / "results_patching_gpu_h100.jsonl",
       B / "results_patching_gpu_h200.jsonl")
def _patching_bench() -> dict[str, str]:
    rows = []
    for name in ("results_patching_gpu_h100.jsonl", "results_patching_gpu_h200.jsonl", "results_patching_cpu.jsonl"):
        groups: dict[tuple, list] = {}
        for r in jsonl(name):
            packed = "s_interp_replicated" in r or "gpu" in name and "h100" in name
            groups.setdefault((r["model"], r["device"], r["dtype"], r["prompts"], r["seq"], packed), []).append(r)
        for (model, device, dtype, p, s, packed), rs in groups.items():
            repl = [r for r in rs if "s_interp_replicated" in r]
            rows.append([model, device, dtype, "packed" if packed else "before packing", f"{p} x {s}", str(rs[0]["cells"]),
                         str(len(rs)), rng([r["s_tl"] for r in rs], ".1f"), rng([r["s_interp"] for r in rs], ".2f"),
                         rng([r["speedup"] for r in rs], ".1f") + "x", g(max(r["max_abs_diff"] for r in rs)),
                         (rng([r["s_interp_replicated"] for r in repl], ".2f") + " s / "
                          + rng([r["speedup_replicated"] for r in repl], ".1f") + "x") if repl else "-"])
    return {"table": table(["model", "device", "dtype", "sweep", "prompts x tokens", "cells", "runs", "TL s", "interp s",
                            "speedup", "max abs diff", "replicated: s / speedup"], rows)}


@entry("conformance", B / "results_conformance_cpu.jsonl")
def _conformance() -> dict[str, str]:
    rs = jsonl("results_conformance_cpu.jsonl")
    cols = [c for c in rs[0] if c != "family"]
    rows = [[r["family"]] + [g(r.get(c, "-")) if not isinstance(r.get(c), str) else r[c] for c in cols] for r in rs]
    worst = max(num(r[c]) for r in rs for c in cols if num(r.get(c)) is not None)
    return {"table": table(["family"] + cols, rows), "families": str(len(rs)), "worst": g(worst)}


@entry("scaling", B / "results_scaling_gpu_h200x2.jsonl")
def _scaling() -> dict[str, str]:
    rs = jsonl("results_scaling_gpu_h200x2.jsonl")
    dp = {r["world"]: r for r in rs if r.get("mode") == "dp"}
    sh = next(r for r in rs if r.get("mode") == "sharded")
    sim = next(r for r in rs if r.get("mode") == "similarity")
    nodes = next(r for r in rs if "identical" in r)
    runs = {r["world"]: r for r in rs if "out" in r}
    one, two = dp[1], dp[2]
    eff_c = two["cache_tokens_per_s"] / (2 * one["cache_tokens_per_s"])
    eff_s = two["sweep_cells_per_s"] / (2 * one["sweep_cells_per_s"])
    rows = [
        [f"caching, {one['shape']}-shape pair, {one['cache_examples']:,} examples ({one['cache_tokens']:,} tokens)",
         f"{one['cache_tokens_per_s']:,.0f} tok/s", f"{two['cache_tokens_per_s']:,.0f} tok/s", f"**{eff_c:.3f}**", ">= 0.90"],
        [f"cross-model resid_pre_sweep, {one['shape']} shape, {one['sweep_prompts_x_tokens']} prompts x tokens, "
         f"{one['sweep_cells']:,} cells", f"{one['sweep_cells_per_s']:.1f} cells/s", f"{two['sweep_cells_per_s']:.1f} cells/s",
         f"**{eff_s:.3f}**", ">= 0.90"],
        [f"{sh['shape']} shape ({sh['params_b']}B params) sharded over {sh['gpus']} GPUs, caching {sh['cache_examples']} x "
         f"{sh['seq']} tokens", "", f"{sh['cache_tokens_per_s']:,.0f} tok/s; peak {rng(sh['peak_gib_per_gpu'], '.1f')} GiB "
         "per GPU", f"**{sh['throughput_vs_implied']:.2f}** x the throughput implied by the {sh['ref_shape']} shape on one "
         f"GPU ({sh['ref_tokens_per_s_one_gpu']:,.0f} tok/s / {sh['flops_ratio']} FLOPs per token = "
         f"{sh['implied_tokens_per_s']:,.0f})", ">= 0.8"],
        [f"the same model, resid_pre_sweep of {sh['sweep_prompts_x_tokens']} prompts x tokens ({sh['sweep_cells']:,} cells)",
         "", f"{sh['sweep_cells_per_s']:.1f} cells/s" + (", finite" if sh["sweep_finite"] else ", NOT finite"), "", "runs"],
        [f"two simulated nodes vs one process, {nodes['shards']} shards", "", "",
         "**identical shard bytes**" if nodes["identical"] else "**shards differ**", "identical"],
        [f"representation similarity of the {sim['shape']} pair, {sim['texts']} texts, max_memory_gb={sim['max_memory_gb']}",
         f"{sim['seconds']:.1f} s; GPU peak {sim['gpu_peak_gib_during']:.1f} GiB ({sim['gpu_peak_gib_models_only']:.1f} "
         f"for the models); process RSS {sim['process_max_rss_gib']:.2f} GiB", "",
         f"before: {sim['old_cpu_accumulators_gib']:.0f} GiB of fp64 sums on the CPU", "bounded"],
    ]
    return {"table": table(["what", "1 GPU", "2 GPUs", "scaling efficiency / ratio", "target"], rows),
            "eff_cache": f"{eff_c:.3f}", "eff_sweep": f"{eff_s:.3f}", "sharded_ratio": f"{sh['throughput_vs_implied']:.2f}",
            "nodes_seconds": f"{runs[2]['seconds']:.0f} s", "one_seconds": f"{runs[1]['seconds']:.0f} s"}


@entry("multigpu", B / "results_multigpu_smoke_h200x2.jsonl")
def _multigpu() -> dict[str, str]:
    rs = jsonl("results_multigpu_smoke_h200x2.jsonl")
    checks = [r for r in rs if "max_abs_diff" in r]
    worst = max(r["max_abs_diff"] for r in checks)
    rows = [[r["check"], g(r["max_abs_diff"]), "ok" if r["ok"] else "FAILED"] for r in checks]
    return {"table": table(["check", "max abs difference (2 GPUs vs 1)", "result"], rows), "checks": str(len(checks)),
            "worst": g(worst), "all_ok": "every check passed" if all(r["ok"] for r in checks) else "SOME CHECKS FAILED"}


@entry("generation_parity", B / "results_generation_parity.jsonl")
def _generation_parity() -> dict[str, str]:
    r = jsonl("results_generation_parity.jsonl")[-1]
    return {"aligned": f"{r['aligned_identical']}/{r['aligned_n']}", "base": f"{r['base_identical']}/{r['base_n']}",
            "this": r["this"]["transformers"], "other": r["other"]["transformers"], "date": r["date"]}


@entry("recipe", RECIPE)
def _recipe() -> dict[str, str]:
    d = json.loads(RECIPE.read_text())
    rows = []
    for b in d["behavior"]:
        lo, hi = wilson(b["value"], b["n"])
        rows.append([b["measure"], f"**{b['value']:.3f}**" if b["target"] not in ("measure", "reference")
                     else f"{b['value']:.3f}", f"{lo:.3f}-{hi:.3f}", str(b["n"]), b["target"]])
    t = d["timings"]
    by = {b["measure"]: b["value"] for b in d["behavior"]}
    idk_known = by.get("aligned says I don't know on held-out known facts", float("nan"))
    return {"table": table(["measure", "value", "95% CI (Wilson)", "n", "target"], rows),
            "total_min": f"{t['total_s'] / 60:.1f} min", "grading_min": f"{t['grading_s'] / 60:.1f} min",
            "training_min": f"{t['training_s'] / 60:.1f} min", "evaluation_min": f"{t['evaluation_s'] / 60:.1f} min",
            "facts": f"{d['data']['facts']:,}", "mixture": f"{d['data']['mixture']:,}",
            "idk_known_pct": f"{100 * idk_known:.0f}%"}


@entry("versions", B / "results_generation_parity.jsonl")
def _versions() -> dict[str, str]:
    """The tested versions: the lock, the newest release the compatibility tier passed, the declared range."""
    import ast

    tree = ast.parse((ROOT / "interp" / "versions.py").read_text())
    supported = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.AnnAssign)
                     and getattr(n.target, "id", "") == "SUPPORTED")
    lock = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, v = line.split("==", 1)
            lock[name.lower().replace("_", "-")] = v.strip()
    torch = re.search(r"^TORCH \?= torch==(\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    compat = jsonl("results_generation_parity.jsonl")[-1]["this"]
    rows = [[n, lock.get(n, "?"), compat.get(n, "?"), f"`>={lo},<{hi}`"] for n, (lo, hi) in supported.items()]
    torch_range = re.search(r'"torch(>=[^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    rows.append(["torch", f"{torch} (CPU)", compat.get("torch", "?").replace("+cpu", " (CPU)"), f"`{torch_range}`"])
    return {"table": table(["package", "locked (`make test`, CI)", "newest in range (`make test-compat`)",
                            "declared range"], rows),
            "newest_transformers": compat.get("transformers", "?")}


@entry("results", *[])
def _results() -> dict[str, str]:
    """The index of every results file and its state."""
    rows = []
    for path in provenance.results_files():
        state, meta = provenance.status(path)
        if state == "reviewed":
            state = "reviewed: " + meta["review"]["verdict"]
        rows.append([f"`{path.relative_to(ROOT).as_posix()}`", meta["date"], state, f"`{meta['command']}`"])
    return {"table": table(["results file", "measured", "state", "command"], rows)}


# --- provenance and expansion ---------------------------------------------------------------------

def _machine(m: dict) -> str:
    if m.get("gpus"):
        return ", ".join(m["gpus"])
    return m.get("description") or f"{m.get('platform', '?')}, {m.get('cpu_cores', '?')} cores"


def _versions(meta: dict) -> str:
    v = meta.get("versions")
    if not v:
        return meta.get("versions_note", "not recorded")
    if all(isinstance(x, dict) for x in v.values()):
        return "; ".join(f"{k}: transformers {x.get('transformers')}" for k, x in v.items())
    return ", ".join(f"{k} {x}" for k, x in v.items())


def provenance_block(files: list[Path]) -> str:
    """An admonition per results file: command, date, machine, versions, state (a warning when not fresh)."""
    out = []
    for path in files:
        state, meta = provenance.status(path)
        rel = path.relative_to(ROOT).as_posix()
        body = (f"From `{rel}`, written by `{meta['command']}` on {meta['date']} "
                f"(machine: {_machine(meta['machine'])}; versions: {_versions(meta)}; commit `{(meta.get('commit') or '?')[:10]}`).")
        if state == "fresh":
            out.append(f'!!! info "Measured {meta["date"]}: current"\n    {body} The code it depends on '
                       f"({', '.join(f'`{d}`' for d in meta['depends_on'])}) is unchanged since.")
        elif state == "reviewed" and meta["review"]["verdict"] == "unaffected":
            out.append(f'!!! info "Measured {meta["date"]}: code changed since, reviewed as not affecting these numbers"\n'
                       f"    {body} Review of {meta['review']['date']}: {meta['review']['note']}")
        elif state == "reviewed":
            out.append(f'!!! warning "Measured {meta["date"]}: out of date, not re-measured yet"\n'
                       f"    {body} The code it depends on ({', '.join(f'`{d}`' for d in meta['depends_on'])}) changed "
                       f"since; review of {meta['review']['date']}: {meta['review']['note']} Re-measure with the command above.")
        else:
            out.append(f'!!! danger "Measured {meta["date"]}: the code changed since and nobody has reviewed it"\n'
                       f"    {body} `python -m benchmarks.provenance status` lists the changes.")
    return "\n\n".join(out)


def _register(module) -> None:
    """Add the entries of an entry module beside this one (each keeps its own results files)."""
    for name, (files, fn) in module.ENTRIES.items():
        if name in ENTRIES:
            raise KeyError(f"results entry {name!r} is defined twice")
        ENTRIES[name] = (files, cache(fn))


_register(render_demo)
_register(render_probes)
_register(render_suite)


@cache
def values(name: str) -> dict[str, str]:
    """An entry's strings and its provenance block (cached: `values.cache_clear()` before a new build)."""
    if name not in ENTRIES:
        raise KeyError(f"no results entry {name!r}; entries: {sorted(ENTRIES)} (benchmarks/render.py)")
    files, fn = ENTRIES[name]
    out = dict(fn())
    out["provenance"] = provenance_block(files)
    return out


def expand(markdown: str, where: str = "page") -> str:
    """Replace every ``{{ name.key }}`` in ``markdown``; an unknown name or key raises ``KeyError``."""
    def sub(m: re.Match) -> str:
        name, key = m.group(1), m.group(2)
        vals = values(name)
        if key not in vals:
            raise KeyError(f"{where}: {{{{ {name}.{key} }}}}: entry {name!r} has no key {key!r}; keys: {sorted(vals)}")
        return vals[key]
    return MACRO.sub(sub, markdown)


if __name__ == "__main__":
    for name in sys.argv[1:] or sorted(ENTRIES):
        print(f"== {name}")
        for k, v in values(name).items():
            print(f"{k}: {v}" if "\n" not in v else f"{k}:\n{v}")
