"""``interp demo``: the main job, end to end on the embedded default pair.

1. the pair and its behaviour table (from the alignment recipe's record);
2. suppressed-but-present: true/false probes on held-out chemistry facts the aligned model refuses,
   every layer, both models, with controls and base<->aligned transfer;
3. cross-model patching: base residuals into the aligned run, layer x position, on held-out
   chemistry questions (metric: logit of the answer's first token minus that of "I", which opens
   the refusal);
4. the refusal direction: difference of means, selected by ablation with a KL guard, then
   ablated on held-out chemistry questions and added to geography questions;
5. diffing: knowledge vs popularity (the recipe's grading of the base), weight deltas,
   representation similarity, per-position KL and token shift, the logit lens on refused questions;
6. unmasking: how much of the base's knowledge small interventions bring back on held-out facts
   the aligned model refuses or abstains on (:mod:`interp.unmask`, with the pair's shipped fit);
7. feature-level diffing with the pair's shipped crosscoder (:mod:`interp.dictionary`): latent
   classes after Latent Scaling, the causal test on held-out chat interactions, the latents that
   fire on refused chemistry, and a latent browser;
8. figures (HTML) and one self-contained report, and a printed summary.
"""

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

__all__ = ["DemoConfig", "run_demo", "probe_summary", "results_payload"]


@dataclass
class DemoConfig:
    """Sizes of the demo. ``quick`` shrinks everything for a few-minute run."""

    out_dir: str = "out/demo"
    quick: bool = False
    device: str | None = None
    batch_size: int = 16
    n_boot: int = 200
    patch_prompts: int = 8
    direction_layers: tuple[int, ...] = (6, 8, 10, 12)
    diff_prompts: int = 24
    unmask_n: int = 24
    unmask_doses: tuple[int, ...] = (1, 2, 4, 8)
    unmask_guard: int = 100  # guard facts of the pre-registered headline (a drop of a few points is visible)
    #: intervention families of the unmasking step (None: every one); quick leaves out the weight restores
    #: and activation patches, whose localisation screens run every layer (`interp unmask` runs them)
    unmask_methods: tuple[str, ...] | None = None
    crosscoder_exchanges: int = 48

    def __post_init__(self) -> None:
        if self.quick:
            self.n_boot = min(self.n_boot, 50)
            self.patch_prompts = min(self.patch_prompts, 4)
            self.diff_prompts = min(self.diff_prompts, 6)
            self.unmask_n = min(self.unmask_n, 3)
            self.unmask_doses = (1, 4)
            self.unmask_guard = self.unmask_n
            self.unmask_methods = ("direction", "subspace", "steering", "lowrank", "prefill", "few_shot")
            self.crosscoder_exchanges = min(self.crosscoder_exchanges, 8)
            self.direction_layers = tuple(self.direction_layers[1:3]) or self.direction_layers
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


def probe_summary(result) -> dict:
    """The demo's probe headline: per side, the logistic probe at the layer chosen on validation
    entities (never on the test rows), its test accuracy with the 95% entity-bootstrap CI, the
    controls beside it, and the max-over-layers p-value."""
    sel = result.selected()
    out = {}
    for _, r in sel[sel.probe == "logistic"].iterrows():
        out[r.model] = {"layer": int(r.layer), "val_accuracy": round(float(r.val_accuracy), 3),
                        "accuracy": round(float(r.accuracy), 3), "ci": [round(float(r.ci_low), 3), round(float(r.ci_high), 3)],
                        "balanced_accuracy": round(float(r.balanced_accuracy), 3),
                        "majority_class": round(float(r.majority_class), 3),
                        "control_seen_entities": round(float(r.control_seen_entities), 3),
                        "selectivity": round(float(r.selectivity), 3), "p_any_layer": round(float(r.p_any_layer), 4)}
    return out


def results_payload(cfg: DemoConfig, summary: dict) -> dict:
    """What ``interp demo --results FILE`` records beside the command and the machine: the sizes, the
    summary and the tables the documentation renders (the refusal direction's layer selection and
    held-out measures, the patching sweep per layer and position, the probes at every layer)."""
    out = Path(cfg.out_dir)
    tables = {}
    for name in ("refusal_direction", "refusal_direction_selection", "patching", "probes_chemistry"):
        path = out / f"{name}.csv"
        if path.is_file():
            frame = pd.read_csv(path)
            tables[name] = json.loads(frame.to_json(orient="records"))
    return {"config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
            "summary": summary, "tables": tables}


def _step(msg: str) -> None:
    print(f"\n[interp demo] {msg}", flush=True)


def run_demo(cfg: DemoConfig) -> dict:
    """Run the pipeline; returns the headline numbers (also written to ``summary.json``)."""
    from interp.behavior import is_correct
    from interp.cache import cache_activations
    from interp.data import fact_statements, facts
    from interp.data.facts import CHEMISTRY_RELATIONS
    from interp.models import load_pair
    from interp.models.registry import get_pair_spec
    from interp.patching import answer_vs_token, cross_model_sweep
    from interp.workflows.refusal import refusal_direction
    from interp.plots import export, probe_accuracy_by_layer
    from interp.probes import probe_store
    from interp.report import Report
    from interp.stats import with_rate_ci

    start = time.time()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = Report("interp demo: what did alignment change inside Gemma-3-270M?")
    summary: dict = {}

    _step("1/8 loading the default pair")
    pair = load_pair("default", device=cfg.device)
    from interp.behavior.selfcheck import check_generation

    checks = {side: check_generation(pair.side(side)) for side in ("base", "aligned")}
    v = checks["base"]["versions"]
    print(f"generation self-check passed on both sides (KV cache + left padding = uncached forward pass; "
          f"{sum(c['seconds'] for c in checks.values()):.1f} s) with transformers {v['transformers']}, "
          f"transformer-lens {v['transformer-lens']}, peft {v['peft']}, torch {v['torch']}")
    summary["selfcheck"] = {"ok": True, "versions": v}
    entry = get_pair_spec("default")
    recipe_file = Path(entry.adapter_dir or "") / "recipe.json"
    graded_file = Path(entry.adapter_dir or "") / "facts.jsonl"
    if entry.placeholder or not graded_file.is_file():
        raise SystemExit("the default pair has no aligned adapter yet: run `interp align` first")
    recipe = json.loads(recipe_file.read_text())
    behavior = pd.DataFrame(recipe["behavior"])
    if "ci_low" not in behavior:  # a record written before the intervals were stored
        behavior = with_rate_ci(behavior)
    graded = pd.read_json(graded_file, lines=True)
    report.heading("The pair and what alignment did to its behaviour")
    report.text(f"base: {pair.base_spec.source} (plain prompts); aligned: the same weights + LoRA adapter "
                f"{entry.adapter_dir} (chat template). Behaviour on held-out questions (from the recipe's record):")
    report.table(behavior)
    print(behavior.to_string(index=False))

    _step("2/8 suppressed-but-present: chemistry true/false probes, every layer, both models")
    refused = {(r, s) for r, s, c, sp in zip(graded.relation, graded.subject, graded.aligned_class, graded.split)
               if c == "refusal" and sp == "test"}
    st = fact_statements(CHEMISTRY_RELATIONS).map(lambda r: {"subject": r["object_shown"]})
    if cfg.quick:
        st = st.select([i for i in range(len(st)) if (i // 2) % 2 == 0 or (st[i]["relation"], st[i]["entity"]) in refused])
    store = cache_activations(pair, st, layers=range(pair.n_layers), positions=["span_last"], batch_size=cfg.batch_size,
                              out_dir=out / "cache_chemistry")
    meta = store.frame()
    test = [(r, e) in refused and s == "test" for r, e, s in zip(st["relation"], st["entity"], meta["split"])]
    probes = probe_store(store, test_mask=test, n_boot=cfg.n_boot)
    frame = probes.frame
    frame.to_csv(out / "probes_chemistry.csv", index=False)
    fig = probe_accuracy_by_layer(frame, title="Held-out chemistry facts the aligned model refuses: true/false probe")
    export(fig, out / "probes_chemistry.html", size="double")
    summary["probe"] = probe_summary(probes)
    summary["probe_n_test"] = int(sum(test))
    report.heading("Suppressed but present: the aligned model still represents the facts it refuses")
    report.figure(fig, f"Logistic probes per layer, fitted on train-split chemistry statements, tested on {sum(test)} "
                       "statements about held-out elements the aligned model refuses to discuss; bands are 95% CIs from a "
                       "bootstrap over elements; grey: the control task (random labels per element, on held-out statements "
                       "of training elements), a random direction and the majority class.")
    report.table(probes.selected().round(3), "The layer each model's probe reports, chosen on validation elements carved "
                                             "from the training split (the test statements are read once, at that layer); "
                                             "p_any_layer: max-over-layers permutation test.")

    _step("3/8 cross-model patching: base -> aligned on held-out chemistry questions")
    held = [(q, a) for q, a, r, s in zip(graded.subject, graded.answer, graded.relation, graded.split)
            if (r, q) in refused and r == "element_symbol"][: cfg.patch_prompts]
    table = facts(["element_symbol"]).to_pandas().set_index("subject")
    questions = [table.loc[s, "text"] for s, _ in held]
    tok = pair.aligned.tokenizer
    patch = cross_model_sweep(pair, questions, answer_vs_token(tok, [a for _, a in held]), spans=[s for s, _ in held],
                              positions=("span_last", "last"), max_batch=128, per_prompt=True)
    patch.to_frame().to_csv(out / "patching.csv", index=False)
    pfig = patch.figure("base -> aligned patching: logit(answer) - logit('I') at the last prompt token")
    export(pfig, out / "patching.html", size="double")
    peak = patch.to_frame().sort_values("value").iloc[-1]
    summary["patching"] = {"clean_logit_diff": round(patch.clean, 3), "prompts": len(held),
                           "best_cell": {"layer": int(peak.layer), "position": peak.position, "logit_diff": round(float(peak.value), 3),
                                         "ci": [round(float(peak.ci_low), 3), round(float(peak.ci_high), 3)]}}
    report.heading("Masking, not erasing: patching base activations into the aligned model")
    report.figure(pfig, f"Mean over {len(held)} held-out chemistry questions (each cell's 95% prompt-bootstrap interval in "
                        f"its hover text and in patching.csv); the unpatched aligned run gives {patch.clean:.2f}. Positions are matched by marked position (the element's last token, the last "
                        "prompt token), since the two sides see different prompt formats.")

    _step("4/8 the refusal direction: select by ablation, then ablate and add")
    gt = facts(n_cities=600).to_pandas()
    gt["category"] = gt.id.map(dict(zip(graded.id, graded.category)))
    gt["base_greedy"] = gt.id.map(dict(zip(graded.id, graded.base_greedy)))
    n_train = 32 if cfg.quick else 64
    chem_tr = gt[(gt.domain == "chemistry") & (gt.split == "train")].sample(n_train, random_state=0)
    geo_tr = gt[(gt.domain == "geography") & (gt.split == "train") & (gt.category == "HighlyKnown")].sample(n_train, random_state=0)
    chem_te = gt[(gt.domain == "chemistry") & (gt.split == "test")]
    geo_te = gt[(gt.domain == "geography") & (gt.split == "test") & (gt.category == "HighlyKnown")]
    if cfg.quick:
        chem_te, geo_te = chem_te.head(16), geo_te.head(16)
    else:
        geo_te = geo_te.sample(min(50, len(geo_te)), random_state=0)
    ref = refusal_direction(pair, chem_tr.text.tolist(), geo_tr.text.tolist(), chem_te.text.tolist(), [list(a) for a in chem_te.aliases],
                            geo_te.text.tolist(), [list(a) for a in geo_te.aliases],
                            base_correct_on_refused_test=[is_correct(b, a) for b, a in zip(chem_te.base_greedy, chem_te.aliases)],
                            layers=cfg.direction_layers, n_val=8 if cfg.quick else 16, batch_size=cfg.batch_size)
    ref.measures.to_csv(out / "refusal_direction.csv", index=False)
    ref.selection.to_csv(out / "refusal_direction_selection.csv", index=False)
    summary["refusal_direction"] = {"layer": ref.layer, **{m: v for m, v in zip(ref.measures.measure, ref.measures.value)},
                                    "ci": {m: [round(float(lo), 3), round(float(hi), 3)] for m, lo, hi
                                           in zip(ref.measures.measure, ref.measures.ci_low, ref.measures.ci_high) if lo == lo}}
    report.heading("One direction mediates the refusal")
    report.text(f"Difference-of-means direction (massive dimensions excluded), selected at layer {ref.layer} by ablation "
                "with a next-token KL guard on answered questions.")
    report.table(ref.selection, "Candidate layers: refusal rate (95% Wilson CI) on validation chemistry prompts with the "
                                "direction ablated, and mean next-token KL on validation geography prompts; both sets are "
                                "held out of the direction's estimate.")
    report.table(ref.measures)
    print(ref.measures.to_string(index=False))

    _step("5/8 diffing: knowledge vs popularity, weights, representations, responses, logit lens")
    from interp.diffing import knowledge_by_popularity
    from interp.workflows.diffing import run_diffing
    from interp.plots import popularity_curves

    known = gt[gt.popularity > 0].assign(model="base")
    pop = knowledge_by_popularity(known, n_bins=10)
    pop.bins.to_csv(out / "knowledge_by_popularity.csv", index=False)
    fit = pop.fits.iloc[0]
    from interp.stats import frame_bootstrap_ci

    known_ci = frame_bootstrap_ci(lambda t: {"known": (t.category != "Unknown").mean()}, known.reset_index(drop=True),
                                  "entity")["known"]  # whole entities resampled
    summary["knowledge_popularity"] = {"facts": int(fit.n), "entities": int(fit.clusters), "known": round(float(fit.known), 3),
                                       "known_ci": [round(known_ci[0], 3), round(known_ci[1], 3)],
                                       "slope_per_decade": round(float(fit.slope), 3),
                                       "slope_ci": [round(float(fit.slope_low), 3), round(float(fit.slope_high), 3)]}
    report.heading("Rare facts are not known")
    report.figure(pop.figure(), f"SliCK categories of {int(fit.n)} geography facts under the base model, by population "
                                f"decile of the country or city; logistic fit of P(known) on log10 population: slope "
                                f"{fit.slope:.2f} per decade (95% CI {fit.slope_low:.2f} to {fit.slope_high:.2f}, "
                                f"cluster-robust over {int(fit.clusters)} entities: a country's three facts are not "
                                "independent).")
    report.figure(popularity_curves(pop), "Fitted P(known) with its 95% band, and the known share per decile.")
    diff = run_diffing(pair, out / "diffing", n=cfg.diff_prompts, max_new_tokens=16 if cfg.quick else 32)
    summary["diffing"] = diff
    import plotly.io as pio

    report.heading("What changed: weights, representations, responses")
    w = diff["weights"]
    for name, caption in (
        ("weight_deltas", f"{w['changed_matrices']} weight matrices changed, by {100 * w['mean_rel_norm']:.1f}% of their norm on "
                          f"average; every delta has effective rank <= {w['max_effective_rank']:.1f} (LoRA rank 8)."),
        ("representation_similarity", "Cosine and linear CKA of base vs aligned resid_post on the same held-out statements."),
        ("response_kl_by_position", f"KL(aligned || base) along the aligned model's own responses; share of the total in the "
                                    f"first 5 tokens {diff['shallow']['kl_share_first_5']:.2f} (their share of tokens "
                                    f"{diff['shallow']['token_share_first_5']:.2f})."),
        ("token_shift", f"Rank of each aligned response token under the base model: shifted (rank > 3) "
                        f"{diff['shallow']['shifted_rate']:.2f}, unshifted {diff['shallow']['unshifted_rate']:.2f}."),
        ("logit_lens", "Refused element-symbol questions: the answer's rank by layer (base reads the statement, aligned the "
                       "chat question)."),
    ):
        report.figure(pio.read_json(out / "diffing" / f"{name}.fig.json"), caption)

    _step("6/8 unmasking: how much of the base's knowledge small interventions bring back")
    from interp.unmask import default_fit_dir, facts_for, run_unmask
    from interp.unmask.report import add_unmask_section

    um = run_unmask(pair, facts_for("default"), n=cfg.unmask_n, fit=default_fit_dir("default"), ks=cfg.unmask_doses,
                    restore_ks=cfg.unmask_doses, n_guard=max(cfg.unmask_guard, cfg.unmask_n), quantize=not cfg.quick,
                    methods=cfg.unmask_methods,
                    headline=not cfg.quick, progress=False)  # quick: the headline's controls and phrasings take ~10 min
    um.frame.to_csv(out / "unmask.csv", index=False)
    um.per_fact.to_csv(out / "unmask_facts.csv", index=False)
    summary["unmask"] = um.summary()
    add_unmask_section(report, um, out)
    print(um.frame[["method", "setting", "mask", "gap_recovered", "kl", "guard_accuracy_drop", "n"]].round(3).to_string(index=False))

    _step("7/8 feature-level diffing: the pair's shipped crosscoder")
    from interp.dictionary.explain import add_dictionary_section, explain_crosscoder
    from interp.dictionary.io import load_dictionary, shipped_crosscoder

    folder = shipped_crosscoder("default")
    if folder is None:
        print("no crosscoder shipped with the default pair: skipped (interp dictionary --corpus makes one)")
    else:
        cc = load_dictionary(folder)
        found = explain_crosscoder(pair, cc, layer=int(cc.cfg["hook_layer"]), scale=cc.cfg["input_scale"],
                                   n_exchanges=cfg.crosscoder_exchanges, n_random=1 if cfg.quick else 3,
                                   n_boot=cfg.n_boot, progress=False)
        found.classes.to_csv(out / "crosscoder_latents.csv", index=False)
        found.causal.to_csv(out / "crosscoder_causal.csv", index=False)
        summary["crosscoder"] = {**found.summary(), "held_out": cc.cfg.get("held_out")}
        add_dictionary_section(report, found, out, stats=cc.cfg.get("held_out"))
        print(found.causal[found.causal.kind == "all"][["set", "n_latents", "closed", "closed_low", "closed_high"]]
              .round(3).to_string(index=False))

    _step("8/8 writing the report")
    summary["seconds"] = round(time.time() - start, 1)
    report.config({**asdict(cfg), "pair": pair.name})
    path = report.write(out / "report.html")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\nreport: {path}\nsummary: {json.dumps(summary)}")
    return summary
