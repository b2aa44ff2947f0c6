"""``interp dictionary``: train a crosscoder on a pair's cached activations, or run the
planted-feature benchmark. Registered on the CLI by :func:`register`; the models live in
:mod:`interp.dictionary`."""

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["register", "dictionary_command", "corpus_command"]


def dictionary_command(
    store: Annotated[Optional[str], typer.Option(help="A store cached with one format for both sides "
                                                 "(cache_activations(..., positions=['all'], style='chat')).")] = None,
    layer: Annotated[Optional[int], typer.Option(help="Layer to train on (default: the store's middle layer; with --corpus, measured).")] = None,
    width: Annotated[int, typer.Option(min=2, help="Latents.")] = 2048,
    k: Annotated[int, typer.Option(min=1, help="Active latents per token (BatchTopK).")] = 32,
    l1: Annotated[bool, typer.Option("--l1", help="Train an L1 crosscoder instead of BatchTopK.")] = False,
    steps: Annotated[int, typer.Option(min=1, help="Optimiser steps.")] = 2000,
    batch_size: Annotated[int, typer.Option(min=8, help="Token rows per step.")] = 1024,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 4e-4,
    out: Annotated[str, typer.Option(help="Folder for the crosscoder (sae-lens layout) and its tables.")] = "out/crosscoder",
    planted: Annotated[bool, typer.Option("--planted", help="Run the planted-feature benchmark instead (no store).")] = False,
    corpus: Annotated[Optional[str], typer.Option(help="A paired corpus (`interp corpus`): cache it at the layer, "
                                                  "train, and read the crosscoder (classes, causal test, latent "
                                                  "browser, report) into --out.")] = None,
    corpus_tokens: Annotated[Optional[int], typer.Option(min=1, help="With --corpus: first build (or resume) the corpus "
                                                         "to this many tokens (`interp corpus`'s defaults).")] = None,
    pair: Annotated[str, typer.Option(help="Registered pair (with --corpus).")] = "default",
    dtype: Annotated[str, typer.Option(help="Saved weights: float32 or bfloat16 (with --corpus).")] = "float32",
    corpus_seed: Annotated[int, typer.Option(help="With --corpus-tokens: the corpus's seed (`interp corpus --seed`).")] = 0,
    read: Annotated[Optional[str], typer.Option(help="With --corpus: read this trained crosscoder folder again (no training) "
                                                "on the corpus, which it must not have been trained on (build it with "
                                                "another --corpus-seed); classes, causal test and statistics into --out.")] = None,
    results: Annotated[Optional[str], typer.Option(help="With --read: also write the measurement (command, date, versions, "
                                                   "numbers, causal table, class counts) to this JSON results file.")] = None,
) -> None:
    """Feature-level diffing: a crosscoder on base and aligned activations (latent classes, Latent
    Scaling, reconstruction), or the planted-feature benchmark."""
    from interp.artifacts import save_artifacts

    if planted:
        from interp.dictionary import planted_benchmark

        result = {kind: planted_benchmark(l1=kind == "l1") for kind in ("batchtopk", "l1")}
        typer.echo(json.dumps(result, indent=1))
        return
    if corpus is not None:
        from interp.commands import pair_from_options
        from interp.workflows.crosscoder import run_crosscoder

        if dtype not in ("float32", "bfloat16"):
            raise typer.BadParameter(f"--dtype is float32 or bfloat16, got {dtype!r}")
        if corpus_tokens is None and not (Path(corpus) / "corpus.json").is_file():
            raise typer.BadParameter(f"--corpus {corpus!r} holds no corpus.json; build one with `interp corpus --out {corpus}` "
                                     "or pass --corpus-tokens")
        if read is not None and not (Path(read) / "cfg.json").is_file():
            raise typer.BadParameter(f"--read {read!r} holds no cfg.json: pass a crosscoder folder written by "
                                     "`interp dictionary --corpus` (e.g. data/aligned/default/crosscoder)")
        p, _ = pair_from_options(pair, None, None, None, None)
        if corpus_tokens is not None:
            from interp.dictionary.corpus import CorpusConfig, build_corpus

            try:
                build_corpus(p, corpus, CorpusConfig(tokens=corpus_tokens, seed=corpus_seed))
            except ValueError as err:
                raise typer.BadParameter(str(err)) from None
        if read is not None:
            from interp.workflows.crosscoder import read_crosscoder

            try:
                summary = read_crosscoder(p, read, corpus, out)
            except ValueError as err:
                raise typer.BadParameter(str(err)) from None
            if results:
                import pandas as pd

                from interp.results import write_results

                classes = pd.read_csv(Path(out) / "latent_classes.csv")
                write_results(results, "dictionary", {
                    **summary, "causal": pd.read_csv(Path(out) / "causal_test.csv").to_dict(orient="records"),
                    "classes_by_norm": classes["class"].value_counts().to_dict(),
                    "classes_after_latent_scaling": classes.final_class.value_counts().to_dict()})
            typer.echo(json.dumps(summary, indent=1, default=str))
            return
        summary = run_crosscoder(p, corpus, out, layer=layer, width=width, k=k, steps=steps, batch_size=batch_size, lr=lr,
                                 dtype=dtype)
        typer.echo(json.dumps(summary, indent=1, default=str))
        return
    if store is None:
        raise typer.BadParameter("pass --store (a cached store with both sides in one format), --corpus or --planted")
    from interp.cache import ActivationStore
    from interp.dictionary import Crosscoder, TrainConfig, latent_classes, latent_scaling, reconstruction_stats
    from interp.dictionary import train_dictionary
    from interp.dictionary.data import paired_batches, paired_rows, row_examples, scale_factors, split_by_text
    from interp.dictionary.io import save_dictionary
    from interp.plots import latent_class_histogram

    import torch

    if not (Path(store) / "manifest.json").is_file():
        raise typer.BadParameter(f"--store {store!r} is not a finished store (no manifest.json)")
    s = ActivationStore.open(store)
    layer = s.layers[len(s.layers) // 2] if layer is None else layer
    if layer not in s.layers:
        raise typer.BadParameter(f"--layer {layer} is not in the store (it has {s.layers})")
    try:
        rows = paired_rows(s, layer, hook=s.hooks[0], position=s.positions[0])
        examples = row_examples(s) if s.positions[0] == "all" else torch.arange(len(rows))  # one row per text otherwise
        train, test = split_by_text(examples)  # the last 10% of the texts held out whole for the statistics
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    train_rows, test_rows = rows[train], rows[test]
    model = Crosscoder(rows.shape[-1], width, 2, k=None if l1 else k)
    factor = scale_factors(train_rows)
    history = train_dictionary(model, paired_batches(train_rows, batch_size, scale=factor),
                               TrainConfig(steps=steps, lr=lr, dead_after=50 * batch_size))
    held = [test_rows.float() * factor[None, :, None]]  # held-out rows, training's scale
    stats = reconstruction_stats(model, held)
    classes = latent_scaling(model, held, latent_classes(model))
    split = {"train_texts": int(examples[train].unique().numel()), "held_out_texts": int(examples[test].unique().numel()),
             "train_tokens": int(train.sum()), "held_out_tokens": int(test.sum())}
    save_dictionary(model, out, hook_name=f"blocks.{layer}.hook_{s.hooks[0]}", hook_layer=layer, input_scale=factor,
                    extra={"store": str(Path(store).resolve()), "held_out": stats, "split": split})
    save_artifacts(out, "training", history)
    save_artifacts(out, "latent_classes", classes, latent_class_histogram(classes))
    typer.echo(json.dumps({"layer": layer, **split, **stats, "classes": classes["class"].value_counts().to_dict(),
                           "after_latent_scaling": classes.final_class.value_counts().to_dict()}, indent=1))


def corpus_command(
    out: Annotated[str, typer.Option(help="Folder of the corpus (parts are added; a killed build resumes).")] = "out/corpus",
    tokens: Annotated[int, typer.Option(min=1, help="Stop once the corpus holds this many tokens.")] = 2_000_000,
    pair: Annotated[str, typer.Option(help="Registered pair name; ignored with --base/--aligned.")] = "default",
    base: Annotated[Optional[str], typer.Option(help="Base model spec (with --aligned: any pair).")] = None,
    aligned: Annotated[Optional[str], typer.Option(help="Aligned model spec (chat template applied).")] = None,
    chunk: Annotated[int, typer.Option(min=1, help="Rows sampled per part.")] = 64,
    seed: Annotated[int, typer.Option(help="Fixes instructions and samples.")] = 0,
    shared: Annotated[bool, typer.Option("--shared", help="Add instructions from ../shared/datasets loaders present.")] = False,
) -> None:
    """A paired corpus for crosscoders: half text the base writes from its BOS, half the aligned
    model's chat responses to the project's instructions (see interp.dictionary.corpus)."""
    from interp.commands import pair_from_options
    from interp.dictionary.corpus import CorpusConfig, build_corpus

    p, _ = pair_from_options(pair, base, aligned, None, None)
    try:
        frame = build_corpus(p, out, CorpusConfig(tokens=tokens, chunk=chunk, seed=seed, use_shared=shared))
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    typer.echo(json.dumps({"out": out, "texts": len(frame), "tokens": int(frame.n_tokens.sum()),
                           "by_kind": {k: int(v) for k, v in frame.groupby("kind").n_tokens.sum().items()}}))


def register(app: typer.Typer) -> None:
    app.command(name="dictionary")(dictionary_command)
    app.command(name="corpus")(corpus_command)
