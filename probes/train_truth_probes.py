"""Truth probes, both models: train on "The city of X is in Y." and test how they generalise.

Fitted on the train split of city statements (interp's generator), evaluated on held-out cities,
on negated statements ("... is not in ..."), on numeric comparisons ("86 is larger than 59."),
and, when ../shared/datasets is present, on the geometry-of-truth files (cities, neg_cities,
larger_than, sp_en_trans). Probe at the statement's last token, every layer, both sides.

    .venv/bin/python probes/train_truth_probes.py
"""

import time

import pandas as pd
import torch

from _common import ROOT, finish, layers_arg, out_dir, parser, record, selected, write

from interp import load_pair
from interp.cache import cache_activations
from interp.data import city_statements, comparison_statements, load_geometry_of_truth
from interp.probes import metric_rows, probe_store, stack_layers

SHARED = ROOT.parent / "shared" / "datasets" / "geometry_of_truth"


def main() -> None:
    args = parser(__doc__.splitlines()[0], "truth").parse_args()
    started = time.time()
    pair = load_pair(args.pair, device=args.device)
    layers = layers_arg(args.layers, pair.n_layers)
    out = out_dir(args.run)
    n = 60 if args.quick else 300
    train_set = city_statements(n)
    tests = {"neg_cities": city_statements(n, negated=True), "larger_than": comparison_statements(2 * n)}
    if SHARED.is_dir():
        for name in ("cities", "neg_cities", "larger_than", "sp_en_trans"):
            ds = load_geometry_of_truth(SHARED / f"{name}.csv")
            tests[f"got_{name}"] = ds.shuffle(seed=0).select(range(min(len(ds), 2 * n)))
    else:
        print(f"(geometry-of-truth files not found at {SHARED}; skipping them)")
    kw = dict(layers=layers, positions=["last"], batch_size=args.batch_size)
    store = cache_activations(pair, train_set, out_dir=out / "cache_cities", **kw)
    frame, probes = probe_store(store, n_boot=args.n_boot)
    frame["dataset"] = "cities (held-out)"
    frames = [frame[frame.split == "test"]]
    for name, ds in tests.items():
        test_store = cache_activations(pair, ds, out_dir=out / f"cache_{name}", **kw)
        meta = test_store.frame()
        y = torch.as_tensor(meta["label"].to_numpy().copy())
        rows = []
        for side in ("base", "aligned"):  # the probes fitted on the cities' train split, C chosen on its validation split
            probe = probes[side]["logistic"]
            rows += metric_rows(side, layers, "logistic", "test", probe.scores(stack_layers(test_store, side, "resid_post", "last")),
                                y, args.n_boot, meta["entity"].astype(str).tolist())
        frames.append(pd.DataFrame(rows).assign(dataset=name))
    result = pd.concat(frames, ignore_index=True)
    write(out, "truth_cities_heldout", frame, started)
    gen = result[(result.metric == "accuracy") & (result.probe == "logistic") & result.model.isin(["base", "aligned"])]
    table = gen.pivot_table(index="layer", columns=["dataset", "model"], values="value").round(3)
    # Reported per dataset: the layer chosen on the cities' validation split (one layer per model).
    chosen = {r.model: int(r.layer) for _, r in selected(frame).iterrows()}
    at = gen[gen.apply(lambda r: chosen.get(r.model) == r.layer, axis=1)][["dataset", "model", "layer", "value", "ci_low", "ci_high"]]
    at.to_csv(out / "truth_at_selected_layer.csv", index=False)
    print("\n== at the layer chosen on the cities' validation split (95% entity-bootstrap CI) ==")
    print(at.round(3).to_string(index=False))
    result.to_csv(out / "truth_generalisation.csv", index=False)
    (out / "truth_generalisation.txt").write_text(table.to_string())
    print("\n== truth probe (fitted on cities) accuracy on other datasets ==")
    print(table.to_string())
    record("truth_at_selected_layer", at)
    record("truth_datasets", {name: len(ds) for name, ds in tests.items()})
    finish(args, "train_truth_probes.py", started)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
