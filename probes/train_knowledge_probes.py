"""Suppressed-but-present: decode chemistry facts the aligned model refuses from its residual stream.

On the default pair, for held-out chemistry facts (never trained on; the aligned model refuses
every one of them):
1. true/false: "The chemical symbol for gold is Au." vs a wrong symbol, probe at the claimed
   object's last token, every layer, both models, with controls and base<->aligned transfer;
2. multiple choice: which of 4 candidate answers is right, by scoring each candidate statement
   with the true/false probe (chance = 0.25);
3. known vs unknown: does the model represent whether it knows a geography fact (the base's own
   knowledge category), probe at the last prompt token.

Writes probes/artifacts/<run>/ (CSV, HTML figure, Markdown table, probe weights) and prints the
per-layer numbers.

    .venv/bin/python probes/train_knowledge_probes.py
"""

import random
import time

import numpy as np
import pandas as pd
import torch

from _common import aligned_facts, finish, layers_arg, out_dir, parser, selected, write

from interp import load_pair
from interp.cache import cache_activations
from interp.data import facts, fact_statements
from interp.data.facts import CHEMISTRY_RELATIONS
from interp.probes import probe_store, save_probes, stack_layers
from interp.stats import rate_ci


def main() -> None:
    args = parser(__doc__.splitlines()[0], "knowledge").parse_args()
    started = time.time()
    pair = load_pair(args.pair, device=args.device)
    layers = layers_arg(args.layers, pair.n_layers)
    out = out_dir(args.run)
    graded = aligned_facts()
    refused = set(zip(graded.relation[(graded.aligned_class == "refusal") & (graded.split == "test")],
                      graded.subject[(graded.aligned_class == "refusal") & (graded.split == "test")]))

    # 1. true / false statements about chemistry, span = the claimed object
    st = fact_statements(CHEMISTRY_RELATIONS)
    st = st.map(lambda r: {"subject": r["object_shown"]})
    if args.quick:  # keep whole true/false pairs
        st = st.select([i for i in range(len(st)) if (i // 2) % 4 == 0])
    store = cache_activations(pair, st, layers=layers, positions=["span_last"], batch_size=args.batch_size,
                              out_dir=out / "cache_truth")
    meta = store.frame()
    held_out_refused = np.array([(r, e) in refused for r, e in zip(st["relation"], st["entity"])])
    test = held_out_refused & (meta["split"] == "test").to_numpy()
    frame, probes = probe_store(store, test_mask=test, n_boot=args.n_boot)
    frame["task"] = "chemistry true/false (held-out, refused)"
    for side, fitted in probes.items():
        save_probes(fitted["logistic"], out / f"truth_{side}", hook="resid_post", model=pair.spec(side).to_dict(),
                    dataset_fingerprint=store.info()["dataset_fingerprint"])
    write(out, "chemistry_true_false", frame, started, {"n_train": int((meta.split == "train").sum()), "n_test": int(test.sum())})

    # 2. multiple choice over 4 candidates, scored by the true/false probe
    rng = random.Random(0)
    table = facts(CHEMISTRY_RELATIONS).to_pandas()
    held = table[[(r, s) in refused for r, s in zip(table.relation, table.subject)]]
    rows = []
    for _, f in held.iterrows():
        pool = sorted(set(table[table.relation == f.relation].answer) - {f.answer})
        cands = [f.answer] + rng.sample(pool, 3)
        for k, c in enumerate(cands):
            rows.append({"id": f"{f.id}-{k}", "text": f"{f.statement} {c}.", "subject": c, "entity": f.subject,
                         "label": int(k == 0), "question": f.id})
    from datasets import Dataset

    mc = Dataset.from_list(rows)
    mc_store = cache_activations(pair, mc, layers=layers, positions=["span_last"], batch_size=args.batch_size,
                                 out_dir=out / "cache_mc")
    q = np.array(mc["question"])
    mc_rows = []
    for side in ("base", "aligned"):
        scores = probes[side]["logistic"].scores(stack_layers(mc_store, side, "resid_post", "span_last"))  # [L, 4Q]
        s = scores.reshape(len(layers), -1, 4)
        acc = (s.argmax(-1) == 0).float().mean(-1)
        for i, layer in enumerate(layers):
            mc_rows.append({"model": side, "layer": layer, "probe": "logistic", "split": "test", "metric": "accuracy",
                            "value": float(acc[i]), "ci_low": float("nan"), "ci_high": float("nan")})
    mc_frame = pd.DataFrame(mc_rows)
    mc_frame["task"] = "chemistry 4-way multiple choice (chance 0.25)"
    # Reported: the layer the true/false probe chose on validation elements (never the best test layer).
    n_q = len(set(q))
    at_chosen = {}
    for _, r in selected(frame).iterrows():
        acc = float(mc_frame[(mc_frame.model == r.model) & (mc_frame.layer == r.layer)].value.iloc[0])
        at_chosen[r.model] = {"layer": int(r.layer), "accuracy": acc, "ci": list(rate_ci(round(acc * n_q), n_q))}
    print("multiple choice at the layer chosen on validation (95% Wilson CI):", at_chosen)
    write(out, "chemistry_multiple_choice", mc_frame, started, {"questions": n_q, "at_selected_layer": at_chosen})

    # 3. known vs unknown (geography, base's knowledge category)
    geo = facts(n_cities=600).filter(lambda d: d == "geography", input_columns="domain")
    cat = dict(zip(graded.id, graded.category))
    geo = geo.filter(lambda i: cat.get(i) in ("HighlyKnown", "MaybeKnown", "Unknown"), input_columns="id")
    geo = geo.map(lambda i: {"label": int(cat[i] != "Unknown")}, input_columns="id")
    if args.quick:
        geo = geo.select(range(0, len(geo), 4))
    ku = cache_activations(pair, geo, layers=layers, positions=["last"], batch_size=args.batch_size,
                           out_dir=out / "cache_known")
    ku_frame, _ = probe_store(ku, n_boot=args.n_boot)
    ku_frame["task"] = "known vs unknown (geography questions)"
    write(out, "known_vs_unknown", ku_frame, started, {"n": len(geo), "known_share": float(np.mean(geo["label"]))})
    finish(args, "train_knowledge_probes.py", started)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
