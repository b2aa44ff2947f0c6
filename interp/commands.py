"""The analysis commands of the ``interp`` CLI: ``cache``, ``probe``, ``patch``, ``diff``,
``knowledge`` and ``report``.

Each command writes its results into an output folder as ``<name>.csv`` (tables) and
``<name>.fig.json`` (plotly figures, written atomically); ``interp report <folder>`` assembles
whatever a folder holds into one self-contained ``report.html``.
"""

import enum
import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from interp.artifacts import save_artifacts  # noqa: F401  (re-exported: stage commands write through it)

__all__ = ["register", "save_artifacts", "report_from_folder", "pair_from_options", "cache_command", "probe_command", "patch_command", "diff_command", "knowledge_command", "report_command"]


class Dataset(str, enum.Enum):
    chemistry = "chemistry"
    cities = "cities"
    arithmetic = "arithmetic"
    facts = "facts"


class Side(str, enum.Enum):
    both = "both"
    base = "base"
    aligned = "aligned"


class Kind(str, enum.Enum):
    resid_pre = "resid_pre"
    resid_mid = "resid_mid"
    resid_post = "resid_post"
    attn_out = "attn_out"
    mlp_out = "mlp_out"
    head = "head"


class Direction(str, enum.Enum):
    base_to_aligned = "base->aligned"
    aligned_to_base = "aligned->base"


def report_from_folder(folder: "str | os.PathLike[str]", title: str = "") -> Path:
    """One ``report.html`` from the ``*.fig.json`` figures and ``*.csv`` tables of a folder."""
    import pandas as pd
    import plotly.io as pio

    from interp.report import Report

    folder = Path(folder)
    figs, tables = sorted(folder.glob("*.fig.json")), sorted(folder.glob("*.csv"))
    if not figs and not tables:
        raise FileNotFoundError(f"{folder} holds no *.fig.json or *.csv results; run interp cache/probe/patch/diff there first")
    report = Report(title or f"interp results: {folder.name}")
    for path in figs:
        report.heading(path.name.removesuffix(".fig.json").replace("_", " "))
        report.figure(pio.read_json(path))
    for path in tables:
        frame = pd.read_csv(path)
        report.heading(path.stem.replace("_", " "))
        report.table(frame.head(200), f"{len(frame)} rows" + (" (first 200 shown)" if len(frame) > 200 else "") + f"; {path.name}")
    report.config({"folder": str(folder.resolve())})
    return report.write(folder / "report.html")


def _layers(spec: str, n_layers: int) -> list[int]:
    try:
        if spec == "all":
            return list(range(n_layers))
        out = []
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        raise typer.BadParameter(f"--layers must be 'all' or like '0-5,8', got {spec!r}") from None
    bad = [x for x in out if not 0 <= x < n_layers]
    if bad or not out:
        raise typer.BadParameter(f"--layers must lie in [0, {n_layers - 1}], got {spec!r}")
    return sorted(set(out))


def _dataset(which: Dataset, limit: int | None):
    from interp import data
    from interp.data.facts import CHEMISTRY_RELATIONS

    ds = {Dataset.chemistry: lambda: data.fact_statements(CHEMISTRY_RELATIONS),
          Dataset.cities: lambda: data.city_statements(500),
          Dataset.arithmetic: lambda: data.arithmetic_statements(800, digits=(1, 2, 3)),
          Dataset.facts: lambda: data.facts(n_cities=600).map(lambda r: {"label": 1})}[which]()
    return ds.shuffle(seed=0).select(range(min(limit, len(ds)))) if limit else ds


BaseOpt = Annotated[Optional[str], typer.Option(help="Base model spec (with --aligned: any pair; --pair is then ignored).")]
AlignedOpt = Annotated[Optional[str], typer.Option(help="Aligned model spec (formats prompts with its chat template).")]
TemplateOpt = Annotated[Optional[str], typer.Option(help="Chat template for --aligned when its tokenizer has none "
                                                    "(gemma, llama3, mistral, chatml, phi3, olmo2, or Jinja).")]
ResultsOpt = Annotated[Optional[str], typer.Option(help="Also write the measurement (command, date, machine, versions, "
                                                  "numbers) to this JSON results file, e.g. benchmarks/results_diff_default.json.")]


def pair_from_options(pair: str, base: str | None, aligned: str | None, chat_template: str | None, device: str | None):
    """``(ModelPair, registered name or None)`` from ``--pair`` or ``--base`` + ``--aligned``."""
    from interp.models import ModelSpec, load_pair

    if (base is None) != (aligned is None):
        raise typer.BadParameter("pass both --base and --aligned, or neither (then --pair is used)")
    if base is None:
        return load_pair(pair, device=device), pair
    spec = ModelSpec(aligned, chat_template=chat_template, prompt_style="chat")
    return load_pair((base, spec), device=device), None



def cache_command(
    dataset: Annotated[Dataset, typer.Option(help="Built-in dataset to cache.")] = Dataset.chemistry,
    out: Annotated[str, typer.Option(help="Folder for the sharded store.")] = "out/cache",
    pair: Annotated[str, typer.Option(help="Registered pair name (see `interp pairs`).")] = "default",
    side: Annotated[Side, typer.Option(help="Which model(s) to run.")] = Side.both,
    hook: Annotated[str, typer.Option(help="resid_pre, resid_mid or resid_post.")] = "resid_post",
    position: Annotated[str, typer.Option(help="Marked position: last or span_last.")] = "last",
    layers: Annotated[str, typer.Option(help="'all' or a list like '0-5,8'.")] = "all",
    limit: Annotated[Optional[int], typer.Option(min=1, help="Cache only this many examples (shuffled, seed 0).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Prompts per forward pass.")] = 16,
    device: Annotated[Optional[str], typer.Option(help="'cpu' or 'cuda' (default: cuda if available).")] = None,
    base: BaseOpt = None, aligned: AlignedOpt = None, chat_template: TemplateOpt = None,
) -> None:
    """Cache residual streams of the pair over a dataset (resumable; memory-mapped reads)."""
    from interp import hooks as hk
    from interp.cache import cache_activations

    if hook not in hk.RESID_KINDS:
        raise typer.BadParameter(f"--hook must be one of {', '.join(hk.RESID_KINDS)}, got {hook!r}")
    if position not in ("last", "span_last"):
        raise typer.BadParameter(f"--position must be 'last' or 'span_last', got {position!r}")
    p, _ = pair_from_options(pair, base, aligned, chat_template, device)
    ds = _dataset(dataset, limit)
    if position == "span_last":
        ds = ds.map(lambda r: {"subject": r.get("subject") or r["text"]})
    sides = ["base", "aligned"] if side == Side.both else [side.value]
    store = cache_activations(p, ds, layers=_layers(layers, p.n_layers), hooks=[hook], positions=[position],
                              sides=sides, batch_size=batch_size, out_dir=out)
    typer.echo(json.dumps(store.info(), indent=1, default=str))

def probe_command(
    store: Annotated[str, typer.Option(help="A store written by `interp cache`.")] = "out/cache",
    out: Annotated[str, typer.Option(help="Folder for probes.csv and the figure.")] = "out/results",
    n_boot: Annotated[int, typer.Option(min=0, help="Bootstrap resamples for the CIs (0: none).")] = 200,
    kinds: Annotated[str, typer.Option(help="Comma-separated probe kinds: logistic, mass_mean, mass_mean_cov.")] = "logistic,mass_mean",
) -> None:
    """Fit per-layer probes on a cached store (train/test from its split column), with controls and transfer."""
    from interp.cache import ActivationStore
    from interp.plots import probe_accuracy_by_layer
    from interp.probes import probe_store

    chosen = [k.strip() for k in kinds.split(",") if k.strip()]
    bad = [k for k in chosen if k not in ("logistic", "mass_mean", "mass_mean_cov")]
    if bad or not chosen:
        raise typer.BadParameter(f"--kinds accepts logistic, mass_mean and mass_mean_cov, got {kinds!r}")
    if not (Path(store) / "manifest.json").is_file():
        raise typer.BadParameter(f"--store {store!r} is not a finished store (no manifest.json); run `interp cache` first")
    result = probe_store(ActivationStore.open(store), n_boot=n_boot, kinds=tuple(chosen))
    frame = result.frame
    fig = probe_accuracy_by_layer(frame, title=f"probes on {Path(store).name}")
    for path in save_artifacts(out, "probes", frame, fig):
        typer.echo(f"wrote {path}")
    sel = result.selected()
    save_artifacts(out, "probes_selected", sel)
    typer.echo("layer chosen on validation entities; test accuracy with its 95% entity-bootstrap CI:")
    typer.echo(sel[["model", "probe", "layer", "val_accuracy", "accuracy", "ci_low", "ci_high", "majority_class",
                    "control_seen_entities", "p_any_layer"]].round(3).to_string(index=False))

def patch_command(
    out: Annotated[str, typer.Option(help="Folder for the results.")] = "out/results",
    pair: Annotated[str, typer.Option(help="Registered pair name (see `interp pairs`).")] = "default",
    kind: Annotated[Kind, typer.Option(help="Hook to patch ('head': per attention head).")] = Kind.resid_pre,
    direction: Annotated[Direction, typer.Option(help="Whose activations go into whose run.")] = Direction.base_to_aligned,
    n: Annotated[int, typer.Option(min=1, help="Held-out refused chemistry questions to patch over.")] = 8,
    attribution: Annotated[bool, typer.Option(help="Also run attribution patching and compare it with the exact sweep.")] = False,
    device: Annotated[Optional[str], typer.Option(help="'cpu' or 'cuda' (default: cuda if available).")] = None,
    base: BaseOpt = None, aligned: AlignedOpt = None, chat_template: TemplateOpt = None,
    results: ResultsOpt = None,
) -> None:
    """Cross-model patching on held-out questions the aligned model refuses (metric: logit of the
    answer's first token minus that of "I")."""
    import time

    from interp.patching import answer_vs_token, compare_attribution, cross_model_attribution, cross_model_sweep
    from interp.workflows.facts import pair_facts, refused_questions

    p, name = pair_from_options(pair, base, aligned, chat_template, device)
    try:
        q, what = refused_questions(pair_facts(p, pair_name=name), n)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    typer.echo(f"patching over {len(q)} held-out element-symbol questions ({what})")
    metric = answer_vs_token(p.aligned.tokenizer, q.answer.tolist())
    args = dict(spans=q.subject.tolist(), direction=direction.value, kind=kind.value)
    if attribution:  # warm both models up (first forward passes) so neither timed method pays for it
        cross_model_sweep(p, q.text.tolist()[:1], answer_vs_token(p.aligned.tokenizer, q.answer.tolist()[:1]),
                          spans=q.subject.tolist()[:1], direction=direction.value, kind=kind.value)
    t0 = time.perf_counter()
    exact = cross_model_sweep(p, q.text.tolist(), metric, **args)
    t_exact = time.perf_counter() - t0
    stem = f"patching_{kind.value}_{direction.value.replace('->', '_to_')}"
    save_artifacts(out, stem, exact.to_frame(), exact.figure())
    typer.echo(f"{stem}: clean {exact.clean:.3f}, best cell {exact.to_frame().sort_values('value').iloc[-1].to_dict()}"
               f" ({t_exact:.1f} s)")
    if attribution:
        if kind == Kind.head:
            raise typer.BadParameter("--attribution covers the hook kinds, not --kind head")
        t0 = time.perf_counter()
        est = cross_model_attribution(p, q.text.tolist(), metric, **args)
        t_est = time.perf_counter() - t0
        stats = compare_attribution(exact.values, exact.clean, est.values - est.clean)
        stats.update(seconds_exact=round(t_exact, 2), seconds_attribution=round(t_est, 2),
                     cost_ratio=round(t_exact / t_est, 2))
        save_artifacts(out, f"attribution_{kind.value}", est.to_frame(), est.figure())
        (Path(out) / f"attribution_{kind.value}.json").write_text(json.dumps(stats, indent=1))
        typer.echo(f"attribution vs exact: {json.dumps(stats)}")
    if results:
        from interp.results import write_results

        payload = {"pair": name or {"base": base, "aligned": aligned}, "kind": kind.value, "direction": direction.value,
                   "n": len(q), "questions": what, "clean": exact.clean, "seconds_exact": round(t_exact, 2),
                   "exact": json.loads(exact.to_frame().to_json(orient="records"))}
        if attribution:
            payload["attribution"] = stats
        write_results(results, "patch", payload, device=device)
        typer.echo(f"results: {results}")

def diff_command(
    out: Annotated[str, typer.Option(help="Folder for the results.")] = "out/results",
    pair: Annotated[str, typer.Option(help="Registered pair name (see `interp pairs`).")] = "default",
    n: Annotated[int, typer.Option(min=1, help="Questions / statements per analysis.")] = 48,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Aligned response length for KL / token shift.")] = 32,
    device: Annotated[Optional[str], typer.Option(help="'cpu' or 'cuda' (default: cuda if available).")] = None,
    base: BaseOpt = None, aligned: AlignedOpt = None, chat_template: TemplateOpt = None,
    results: ResultsOpt = None,
) -> None:
    """Model diffing: weight deltas, representation similarity, per-position KL and token shift,
    logit lens on refused questions."""
    from interp.workflows.diffing import run_diffing
    p, name = pair_from_options(pair, base, aligned, chat_template, device)
    summary = run_diffing(p, out, pair_name=name, n=n, max_new_tokens=max_new_tokens)
    if results:
        from interp.results import write_results

        import pandas as pd

        tables = {t: pd.read_csv(Path(out) / f"{t}.csv").to_dict(orient="records")
                  for t in ("logit_lens", "representation_similarity", "response_kl_by_position")}
        write_results(results, "diff", {"pair": name or {"base": base, "aligned": aligned}, "n": n,
                                        "max_new_tokens": max_new_tokens, "summary": summary, "tables": tables},
                      device=str(p.base.cfg.device))
    typer.echo(json.dumps(summary, indent=1))

def knowledge_command(
    out: Annotated[str, typer.Option(help="Folder for the results.")] = "out/results",
    pair: Annotated[str, typer.Option(help="Registered pair name (see `interp pairs`).")] = "default",
    side: Annotated[Side, typer.Option(help="Which model(s) to grade; a recipe pair's base grading is reused.")] = Side.both,
    limit: Annotated[Optional[int], typer.Option(min=10, help="Grade a random sample of this many facts.")] = None,
    n_bins: Annotated[int, typer.Option(min=2, help="Popularity bins (quantiles).")] = 10,
    device: Annotated[Optional[str], typer.Option(help="'cpu' or 'cuda' (default: cuda if available).")] = None,
    base: BaseOpt = None, aligned: AlignedOpt = None, chat_template: TemplateOpt = None,
    results: ResultsOpt = None,
) -> None:
    """Knowledge vs popularity: SliCK categories per popularity bin and a logistic fit, per model."""
    from interp.data import facts as fact_table
    from interp.diffing import grade_pair, knowledge_by_popularity
    from interp.plots import popularity_curves
    from interp.workflows.facts import recipe_facts

    recorded = recipe_facts(pair) if base is None else None
    facts = recorded if recorded is not None else fact_table(n_cities=1000).to_pandas()
    facts = facts[facts.popularity > 0].reset_index(drop=True)
    if recorded is None and limit is None:
        limit = 200
        typer.echo("no recipe record for this pair: grading a sample of 200 facts on both sides (--limit to change)")
    if limit and recorded is not None:
        facts = facts.sample(min(limit, len(facts)), random_state=0).reset_index(drop=True)
    elif limit:  # grading now: each relation keeps enough facts for its few-shot exemplars (3 at least)
        share = limit / len(facts)
        keep = [i for _, g in facts.groupby("relation")
                for i in g.sample(min(len(g), max(3, round(share * len(g)))), random_state=0).index]
        facts = facts.loc[sorted(keep)].reset_index(drop=True)
    sides = ["base", "aligned"] if side == Side.both else [side.value]
    known = {"base": facts.category} if recorded is not None else {}
    p = pair_from_options(pair, base, aligned, chat_template, device)[0] if set(sides) - set(known) else None
    table = grade_pair(p, facts, sides=sides, known=known)
    result = knowledge_by_popularity(table, n_bins=n_bins)
    save_artifacts(out, "knowledge_graded", table)
    save_artifacts(out, "knowledge_by_popularity", result.bins, result.figure())
    save_artifacts(out, "knowledge_fit", result.fits, popularity_curves(result))
    typer.echo(result.fits.round(4).to_string(index=False))
    if not result.comparison.empty:  # one fit with a model x popularity interaction: do the slopes differ?
        save_artifacts(out, "knowledge_slope_difference", result.comparison)
        typer.echo(result.comparison.round(4).to_string(index=False))
    if results:
        from interp.results import write_results

        write_results(results, "knowledge", {
            "pair": pair if base is None else {"base": base, "aligned": aligned}, "sides": sides, "facts": len(facts),
            "graded_now": sorted(set(sides) - set(known)), "summary": result.summary(),
            "bins": result.bins.to_dict(orient="records"), "fits": result.fits.to_dict(orient="records"),
            "comparison": result.comparison.to_dict(orient="records")})

def report_command(
    folder: Annotated[str, typer.Argument(help="A folder of results from cache/probe/patch/diff/knowledge.")] = "out/results",
    title: Annotated[str, typer.Option(help="Report title.")] = "",
) -> None:
    """Assemble the figures (*.fig.json) and tables (*.csv) of a folder into one self-contained report.html."""
    if not Path(folder).is_dir():
        raise typer.BadParameter(f"FOLDER {folder!r} does not exist")
    try:
        path = report_from_folder(folder, title)
    except FileNotFoundError as err:
        raise typer.BadParameter(str(err)) from None
    typer.echo(f"report: {path}")


def register(app: typer.Typer) -> None:
    """Add the analysis commands to ``app`` (each is also a plain function, ``<name>_command``)."""
    app.command(name="cache")(cache_command)
    app.command(name="probe")(probe_command)
    app.command(name="patch")(patch_command)
    app.command(name="diff")(diff_command)
    app.command(name="knowledge")(knowledge_command)
    app.command(name="report")(report_command)
