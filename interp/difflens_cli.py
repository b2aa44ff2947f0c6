"""``interp difflens``: the activation-difference lens on a pair (registered on the CLI by
:func:`register`; the analysis lives in :mod:`interp.difflens`)."""

import datetime
import json
import platform
import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["register", "difflens_command"]


def difflens_command(
    pair: Annotated[str, typer.Option(help="Registered pair name (see `interp pairs`); ignored with --base/--aligned.")] = "default",
    base: Annotated[Optional[str], typer.Option(help="Base model spec (with --aligned: any pair).")] = None,
    aligned: Annotated[Optional[str], typer.Option(help="Aligned model spec (chat template applied).")] = None,
    chat_template: Annotated[Optional[str], typer.Option(help="Chat template for --aligned (gemma, llama3, chatml, ...).")] = None,
    out: Annotated[str, typer.Option(help="Results folder (CSVs, figures, report.html, the activation store).")] = "out/difflens",
    as_json: Annotated[bool, typer.Option("--json", help="Print the full summary as one JSON line, then, last, "
                                          "{\"difflens\": {layer, promoted, steered_base, kl}}.")] = False,
    results: Annotated[Optional[str], typer.Option(help="Also write the measurement (command, date, versions, numbers) "
                                                   "to this JSON results file, e.g. benchmarks/results_difflens_default.json.")] = None,
    k: Annotated[int, typer.Option(min=1, help="Text positions (after the BOS) the difference averages over.")] = 8,
    n_texts: Annotated[int, typer.Option(min=2, help="Base samples the difference is taken on.")] = 64,
    n_kl_texts: Annotated[int, typer.Option(min=1, help="Further base samples for the KL on unrelated text.")] = 16,
    layer: Annotated[Optional[int], typer.Option(help="Layer read and steered (default: the middle layer, n_layers // 2).")] = None,
    n_eval: Annotated[int, typer.Option(min=2, help="Held-out questions per objective set (chemistry, unknown facts).")] = 52,
    refusal: Annotated[bool, typer.Option(help="Measure the refusal direction both ways (--no-refusal: skip).")] = True,
    n_train: Annotated[int, typer.Option(min=2, help="Train questions per side of the refusal direction's contrast.")] = 32,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens per evaluated response.")] = 8,
    grid: Annotated[str, typer.Option(help="Comma-separated steering strengths the search climbs (multiples of the "
                                      "stream's mean norm at the layer).")] = "0.125,0.25,0.5,1,2",
    search_tokens: Annotated[int, typer.Option(min=1, help="Tokens generated per neutral prompt in the strength search.")] = 16,
    seed: Annotated[int, typer.Option(help="Fixes the samples, the question samples and the random directions.")] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="Prompts per forward pass.")] = 32,
    device: Annotated[Optional[str], typer.Option(help="'cpu' or 'cuda' (default: cuda if available).")] = None,
) -> None:
    """Activation-difference lens (Minder et al. 2025): the mean aligned - base difference on unrelated
    text, read by logit lens, Patchscope and steering; does steering the base with it reproduce the
    fine-tuning's behaviour? And the refusal direction both ways."""
    import time

    from interp.artifacts import save_artifacts
    from interp.commands import pair_from_options
    from interp.difflens import DiffLensConfig, objective_sets, run_difflens
    from interp.difflens.run import finite
    from interp.difflens.report import add_difflens_section, lens_table
    from interp.report import Report
    from interp.results import plain
    from interp.workflows.facts import pair_facts

    start = time.perf_counter()
    try:
        strengths = tuple(float(x) for x in grid.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter(f"--grid takes comma-separated numbers such as 0.25,0.5,1, got {grid!r}") from None
    try:
        cfg = DiffLensConfig(k=k, grid=strengths, search_tokens=search_tokens, n_texts=n_texts, n_kl_texts=n_kl_texts, layer=layer, n_eval=n_eval, refusal=refusal,
                             n_train=n_train, max_new_tokens=max_new_tokens, seed=seed, batch_size=batch_size,
                             store_dir=str(Path(out) / "store"))
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    p, name = pair_from_options(pair, base, aligned, chat_template, device)
    if layer is not None and not 0 <= layer < p.n_layers:
        raise typer.BadParameter(f"--layer must be in [0, {p.n_layers - 1}] for this pair, got {layer}")
    loaded = time.perf_counter() - start
    sets = objective_sets(pair_facts(p, pair_name=name, progress=not as_json), n=n_eval, n_train=n_train, seed=seed)
    result = run_difflens(p, sets, cfg=cfg, progress=not as_json)
    result.info["seconds"]["load"] = round(loaded, 1)
    result.info["seconds"]["wall"] = round(time.perf_counter() - start, 1)
    save_artifacts(out, "difflens_layers", lens_table(result), result.figure(kind="difference"))
    save_artifacts(out, "difflens_lens", result.lens.to_frame())
    save_artifacts(out, "difflens_positions", result.difference.positions)
    save_artifacts(out, "difflens_search", result.search.to_frame(), result.figure(kind="search"))
    save_artifacts(out, "difflens_rates", result.evaluation, result.figure(kind="rates"))
    if result.refusal is not None:
        save_artifacts(out, "difflens_refusal", result.refusal.to_frame(), result.figure(kind="refusal"))
    report = Report("interp: the activation-difference lens")
    add_difflens_section(report, result)
    report.config({"pair": name or {"base": base, "aligned": aligned}, **result.info})
    report.write(Path(out) / "report.html")
    summary = finite(json.loads(json.dumps(result.summary(), default=plain)))
    line = result.json_line()
    if results:
        import torch

        from interp.atomic import write_json_atomic
        from interp.versions import versions

        write_json_atomic(results, {
            "command": "interp " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["difflens"]
            else "interp difflens", "date": datetime.date.today().isoformat(),
            "machine": {"platform": platform.platform(), "cpus": __import__("os").cpu_count(),
                        "torch_threads": torch.get_num_threads(), "device": str(p.base.cfg.device)},
            "versions": {**versions(), "torch": torch.__version__, "python": platform.python_version()},
            "pair": name or {"base": base, "aligned": aligned}, **line, "summary": summary,
            "refusal_both_ways": None if result.refusal is None else json.loads(result.refusal.to_frame().to_json(orient="records")),
            "sets": result.info["sets"], "config": result.info["config"], "seconds": result.info["seconds"],
            "neutral": finite(result.neutral)}, default=plain)
    if as_json:
        typer.echo(json.dumps({"difflens_detail": summary}, default=plain, allow_nan=False))
        typer.echo(json.dumps(line, default=plain, allow_nan=False))
    else:
        typer.echo(lens_table(result).to_string(index=False))
        typer.echo(result.evaluation.round(3).to_string(index=False))
        if result.refusal is not None:
            typer.echo(result.refusal.to_frame().round(3).to_string(index=False))
        typer.echo(json.dumps(line, default=plain, allow_nan=False))
        typer.echo(f"results in {out} ({result.info['seconds']['wall']:.0f} s)")


def register(app: typer.Typer) -> None:
    """Add ``interp difflens`` to ``app``."""
    app.command("difflens")(difflens_command)
