"""``interp hidden``: internal vs expressed knowledge per fact for both models, on the unmasking sets.

Registered on the CLI by :func:`register`; the analysis lives in :mod:`interp.knowledge`.
"""

import json
import time
from typing import Annotated, Optional

import typer

__all__ = ["register", "hidden_command", "json_line", "info_line", "EXTRAS", "SET_KEYS"]

#: The summary's entries that are not sets: printed in :func:`info_line`, never in :func:`json_line`.
EXTRAS: tuple[str, ...] = ("probes", "agreement", "seconds")
#: The keys every set of the last line holds (issue 33's interface), besides the rest of the summary.
SET_KEYS: tuple[str, ...] = ("base_k_prob", "aligned_k_prob", "aligned_k_probe", "aligned_k_probe_control", "aligned_k_gen", "n")


def json_line(summary: dict) -> dict:
    """The command's last ``--json`` line: ``{"hidden_knowledge": {set: {base_k_prob, aligned_k_prob,
    aligned_k_probe, aligned_k_probe_control, aligned_k_gen, ..., n}}}``, sets only (``refused``
    and ``abstained`` always, ``None`` numbers and ``n`` 0 when empty); the rest is :func:`info_line`.
    ``summary``: :meth:`interp.knowledge.HiddenKnowledge.summary`."""
    from interp.knowledge import SETS

    sets = {k: v for k, v in summary.items() if k not in EXTRAS}
    for name in SETS:
        sets.setdefault(name, {k: None for k in SET_KEYS} | {"n": 0})
    return {"hidden_knowledge": {name: sets[name] for name in dict.fromkeys([*SETS, *sets])}}


def info_line(summary: dict) -> dict:
    """The ``--json`` line printed just before the last: ``{"hidden_knowledge_info": {"probes",
    "agreement", "seconds"}}`` (the probes' layers, the agreement with unmasking, timings)."""
    return {"hidden_knowledge_info": {k: summary.get(k) for k in EXTRAS}}


def hidden_command(
    pair: Annotated[str, typer.Option(help="Registered pair name (see `interp pairs`); ignored with --base/--aligned.")] = "default",
    base: Annotated[Optional[str], typer.Option(help="Base model spec (with --aligned: any pair).")] = None,
    aligned: Annotated[Optional[str], typer.Option(help="Aligned model spec (chat template applied).")] = None,
    chat_template: Annotated[Optional[str], typer.Option(help="Chat template for --aligned when its tokenizer has none.")] = None,
    n: Annotated[int, typer.Option(min=1, help="Held-out facts per mask (the unmasking sets' --n).")] = 24,
    answered: Annotated[int, typer.Option(min=1, help="Held-out facts the aligned model answers (the guard, cut to this).")] = 24,
    n_train: Annotated[int, typer.Option(min=2, help="Train facts for the probe (base-known, spread over relations).")] = 144,
    k_wrong: Annotated[int, typer.Option(min=1, help="Wrong answers per fact (same relation, from the fact table).")] = 4,
    unmask_facts: Annotated[Optional[str], typer.Option(help="The unmasking per-fact outcome: DIR/unmask_headline_facts.csv "
                                                        "from `interp unmask --out DIR` (or DIR); gives the agreement AUROC.")] = None,
    out: Annotated[str, typer.Option(help="Results folder (CSVs, figure, report.html).")] = "out/hidden",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line per set, a hidden_knowledge_info line (probes, agreement, seconds), then, last, the hidden_knowledge line (sets only).")] = False,
    device: Annotated[Optional[str], typer.Option(help="'cpu' or 'cuda' (default: cuda if available).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Facts per forward pass (their candidates ride along).")] = 16,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens of the aligned model's answers (as `interp unmask`: its sets, its memo).")] = 6,
    seed: Annotated[int, typer.Option(help="Wrong answers, train sample, validation split, control labels, bootstrap.")] = 0,
) -> None:
    """Hidden knowledge: K_gen (says it), K_prob (its own probability ranks the answer first), K_probe (a
    probe on its hidden state does), base vs aligned, on facts the aligned model refuses, abstains on, answers."""
    from interp.artifacts import save_artifacts
    from interp.commands import pair_from_options
    from interp.knowledge import HiddenConfig, hidden_knowledge, read_unmask_facts
    from interp.knowledge.report import add_hidden_section, headline_table
    from interp.report import Report
    from interp.results import plain
    from interp.unmask import facts_for, unmask_sets

    start = time.perf_counter()
    try:
        outcome = read_unmask_facts(unmask_facts) if unmask_facts else None
    except (FileNotFoundError, ValueError) as e:
        raise typer.BadParameter(str(e), param_hint="--unmask-facts") from None
    p, name = pair_from_options(pair, base, aligned, chat_template, device)
    table = facts_for(name)
    loaded = time.perf_counter()
    sets = unmask_sets(p, table, n=n, max_new_tokens=max_new_tokens, progress=not as_json).with_guard(answered)
    ready = time.perf_counter()
    result = hidden_knowledge(p, sets, table, config=HiddenConfig(k_wrong=k_wrong, n_train=n_train, batch_size=batch_size,
                                                                  seed=seed),
                              unmask_facts=outcome, progress=not as_json)
    result.info["seconds"].update({"load": loaded - start, "sets": ready - loaded,
                                   "command": time.perf_counter() - start})
    save_artifacts(out, "hidden_knowledge", result.table, result.figure())
    save_artifacts(out, "hidden_knowledge_facts", result.per_fact)
    save_artifacts(out, "hidden_knowledge_probes", result.probes)
    if result.agreement is not None:
        save_artifacts(out, "hidden_knowledge_agreement", result.agreement)
    report = Report(f"interp hidden: {name or 'custom pair'}")
    add_hidden_section(report, result, out)
    report.config({"pair": name or f"{base} / {aligned}", **result.info["config"], "n": n, "answered": answered,
                   "unmask_facts": unmask_facts or "not given (agreement not measured)"})
    report.write(f"{out}/report.html")
    summary = result.summary()
    if as_json:
        for s in (k for k in summary if k not in EXTRAS):
            typer.echo(json.dumps({"set": s, "rows": [{k: plain(v) for k, v in r.items()} for r in
                                                      result.table[result.table.set == s].to_dict("records")]}))
        typer.echo(json.dumps(info_line(summary)))
        typer.echo(json.dumps(json_line(summary)))
    else:
        typer.echo(headline_table(result).to_string(index=False))
        typer.echo(result.probes.to_string(index=False))
        if result.agreement is not None:
            typer.echo(result.agreement.round(3).to_string(index=False))
        else:
            typer.echo("agreement with unmasking: not measured (pass --unmask-facts DIR/unmask_headline_facts.csv)")
        typer.echo(f"results in {out} ({result.info['seconds']['command']:.0f} s; the table "
                   f"{result.info['seconds']['total']:.0f} s)")


def register(app: typer.Typer) -> None:
    """Add ``interp hidden`` to ``app``."""
    app.command("hidden")(hidden_command)
