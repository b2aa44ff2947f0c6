"""Shared plumbing for the probe-training scripts: arguments, artifacts, summaries."""

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ALIGNED_FACTS = ROOT / "data" / "aligned" / "default" / "facts.jsonl"


def parser(description: str, default_run: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--pair", default="default", help="registered pair name (default: the embedded pair)")
    ap.add_argument("--run", default=default_run, help="artifact folder name under probes/artifacts/")
    ap.add_argument("--layers", default="all", help="'all' or comma-separated layer indices")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples for confidence intervals")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--results", default=None,
                    help="also write every task's selected layer, per-layer table and extra numbers (command, date, "
                         "machine, versions) to this JSON results file, e.g. benchmarks/results_probes_knowledge_default.json")
    return ap


#: What this run measured, task by task (``write`` and ``record`` add to it; ``finish`` writes it once, at the end).
RESULTS: dict = {}


def record(name: str, payload) -> None:
    """Keep ``payload`` (a DataFrame or anything JSON-ready) under ``name`` for the results file."""
    if isinstance(payload, pd.DataFrame):
        payload = json.loads(payload.to_json(orient="records"))
    RESULTS[name] = payload


def finish(args: argparse.Namespace, script: str, started: float) -> None:
    """Write the results file named by ``--results`` (nothing without it): one JSON file, written
    atomically at the end of a run that completed, so a crashed run leaves the previous file intact."""
    if not args.results:
        return
    import shlex

    from interp.results import write_results

    argv = " ".join(shlex.quote(a) for a in sys.argv[1:])
    write_results(args.results, "", {"script": script, "args": {k: v for k, v in vars(args).items() if k != "results"},
                                     "seconds": round(time.time() - started, 1), "tasks": RESULTS},
                  command=f"python probes/{script} {argv}".strip(), device=getattr(args, "device", None))
    print(f"results: {args.results}")


def layers_arg(spec: str, n_layers: int) -> list[int]:
    if spec == "all":
        return list(range(n_layers))
    layers = [int(x) for x in spec.split(",")]
    bad = [x for x in layers if not 0 <= x < n_layers]
    if bad:
        raise SystemExit(f"--layers: {bad} out of range for a model with {n_layers} layers")
    return layers


def out_dir(run: str) -> Path:
    path = ROOT / "probes" / "artifacts" / run
    path.mkdir(parents=True, exist_ok=True)
    return path


def aligned_facts() -> pd.DataFrame:
    if not ALIGNED_FACTS.is_file():
        raise SystemExit(f"{ALIGNED_FACTS} is missing: run `interp align` first (it writes the knowledge grades)")
    return pd.read_json(ALIGNED_FACTS, lines=True)


def summary(frame: pd.DataFrame, metric: str = "accuracy", probe: str = "logistic") -> pd.DataFrame:
    """Per-layer table of test rows: base, aligned, transfer, controls (the control task on held-out
    rows of seen entities)."""
    f = frame[(frame.metric == metric) & (frame.split != "val")]
    cols = {}
    for model in ("base", "aligned", "base->aligned", "aligned->base"):
        part = f[(f.model == model) & (f.probe == probe)].set_index("layer")["value"]
        if not part.empty:
            cols[model] = part
    for model in ("base", "aligned"):
        for ctrl in ("control_task", "random_direction", "majority_class"):
            part = f[(f.model == model) & (f.probe == ctrl)].set_index("layer")["value"]
            if not part.empty:
                cols[f"{model} {ctrl}"] = part
    return pd.DataFrame(cols).round(3)


def write(out: Path, name: str, frame: pd.DataFrame, started: float, extra: dict | None = None,
          metric: str = "accuracy") -> None:
    from interp.plots import export, probe_accuracy_by_layer

    frame.to_csv(out / f"{name}.csv", index=False)
    export(probe_accuracy_by_layer(frame, metric=metric, title=name.replace("_", " ")), out / f"{name}.html", size="double")
    table = summary(frame, metric=metric)
    (out / f"{name}.md").write_text(table.to_markdown() if _has_tabulate() else table.to_string())
    chosen = selected(frame, metric)
    meta = {"name": name, "seconds": round(time.time() - started, 1), "selected_on_validation": chosen.to_dict("records"),
            **(extra or {})}
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1))
    record(name, {**meta, "by_layer": json.loads(table.reset_index().to_json(orient="records"))})
    print(f"\n== {name} (logistic probe {metric} by layer; test split) ==")
    print(table.to_string())
    if not chosen.empty:
        print(f"-- layer chosen on validation entities, its test {metric} (95% entity-bootstrap CI) --")
        print(chosen.round(3).to_string(index=False))


def selected(frame: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Per model, the logistic probe at the layer chosen on validation rows, with its test figures."""
    from interp.probes import selected_layers

    sel = selected_layers(frame, metric=metric)
    if sel.empty:
        return sel
    sel = sel[sel.probe == "logistic"]
    cols = ["model", "layer", f"val_{metric}", metric, "ci_low", "ci_high", "accuracy", "balanced_accuracy",
            "majority_class", "control_seen_entities", "selectivity", "p_any_layer"]
    return sel[[c for c in dict.fromkeys(cols) if c in sel]]


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True
