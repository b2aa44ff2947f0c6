"""The ``interp`` command line.

``interp demo`` is the main job: the pipeline end to end on the embedded default pair (see
:mod:`interp.workflows.demo`). ``interp complete`` loads one model and prints a greedy completion and the
shape of its residual stream; ``interp align`` makes the aligned adapter; ``interp pairs`` lists
the registered pairs. ``interp cache | probe | patch | diff | knowledge | report`` run one stage
each and write into a results folder (:mod:`interp.commands`).
"""

import time
from typing import Annotated, Optional

import typer

app = typer.Typer(
    help="interp: mechanistic interpretability of alignment (base vs aligned checkpoints).",
    no_args_is_help=True,
    add_completion=False,
)

_DEFAULT_PROMPT = "The Eiffel Tower is located in the city of"


@app.command()
def demo(
    out: Annotated[str, typer.Option(help="Output folder for figures, CSVs, caches and report.html.")] = "out/demo",
    quick: Annotated[bool, typer.Option(help="Small sizes: a few-minute run instead of ~15 minutes on 2 CPU cores.")] = False,
    device: Annotated[
        Optional[str], typer.Option(help="'cpu' or 'cuda' (default: cuda if available).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Prompts per forward pass.")] = 16,
    results: Annotated[Optional[str], typer.Option(help="Also write the headline numbers and the refusal-direction "
                                                   "and patching tables (command, date, machine, versions) to this "
                                                   "JSON results file, e.g. benchmarks/results_demo_default.json.")] = None,
) -> None:
    """Run the pipeline on the default pair: probes, patching, refusal direction, report."""
    from interp.workflows.demo import DemoConfig, run_demo

    cfg = DemoConfig(out_dir=out, quick=quick, device=device, batch_size=batch_size)
    summary = run_demo(cfg)
    if results:
        from interp.workflows.demo import results_payload
        from interp.results import write_results

        write_results(results, "demo", results_payload(cfg, summary), device=device)
        typer.echo(f"results: {results}")


@app.command()
def complete(
    prompt: Annotated[str, typer.Option(help="Prompt for the greedy completion.")] = _DEFAULT_PROMPT,
    model: Annotated[
        str, typer.Option(help="Model spec: packaged name, hub id, HF folder or .gguf file.")
    ] = "gemma-3-270m",
    max_new_tokens: Annotated[int, typer.Option(min=1, max=512, help="Tokens to generate.")] = 12,
    device: Annotated[
        Optional[str], typer.Option(help="'cpu' or 'cuda' (default: cuda if available).")
    ] = None,
    layer: Annotated[int, typer.Option(help="Layer whose resid_post shape is printed (-1 = last).")] = -1,
) -> None:
    """Load one model (default: the packaged base), print a greedy completion and its residual-stream shape."""
    import torch

    from interp import hooks
    from interp.models import load_model

    start = time.perf_counter()
    bridge = load_model(model, device=device)
    loaded = time.perf_counter() - start
    n_layers = int(bridge.cfg.n_layers)
    if not -n_layers <= layer < n_layers:
        raise typer.BadParameter(f"--layer must be in [{-n_layers}, {n_layers - 1}], got {layer}")
    layer = layer % n_layers
    with torch.inference_mode():
        text = bridge.generate(prompt, max_new_tokens=max_new_tokens, do_sample=False, verbose=False)
        tokens = bridge.to_tokens(prompt)
        _, cache = bridge.run_with_cache(tokens, names_filter=hooks.resid_post(layer))
    resid = cache[hooks.resid_post(layer)]
    typer.echo(f"model      {model} ({bridge.cfg.architecture}, {n_layers} layers, d_model {bridge.cfg.d_model})")
    typer.echo(f"loaded in  {loaded:.1f} s on {bridge.cfg.device}, {bridge.cfg.dtype}")
    typer.echo(f"prompt     {prompt!r}")
    typer.echo(f"greedy     {text[len(prompt):]!r}")
    typer.echo(f"{hooks.resid_post(layer)} shape {tuple(resid.shape)} [batch, pos, d_model]")


@app.command()
def check(
    model: Annotated[str, typer.Argument(help="Model spec: packaged name, hub id, HF folder or .gguf file, or 'default' "
                                              "for both sides of the default pair.")] = "default",
    device: Annotated[Optional[str], typer.Option(help="'cpu' or 'cuda' (default: cuda if available).")] = None,
) -> None:
    """Check that cached, left-padded greedy generation equals the model's uncached forward pass
    (interp.behavior.selfcheck); exits 1 naming the package versions on a mismatch."""
    from interp.behavior.selfcheck import GenerationMismatch, check_generation
    from interp.models import load_model, load_pair

    if model == "default":
        pair = load_pair("default", device=device)
        models = {"base": pair.base, "aligned": pair.aligned}
    else:
        models = {model: load_model(model, device=device)}
    for name, m in models.items():
        try:
            out = check_generation(m)
        except GenerationMismatch as e:
            typer.echo(f"FAILED {name}: {e}", err=True)
            raise typer.Exit(1)
        typer.echo(f"ok     {name}: cached + left-padded generation = uncached forward pass ({out['seconds']:.2f} s)")
    v = out["versions"]
    typer.echo(f"versions transformers {v['transformers']}, transformer-lens {v['transformer-lens']}, peft {v['peft']}, "
               f"torch {v['torch']}")


@app.command()
def align(
    name: Annotated[str, typer.Option(help="Adapter name: written to data/aligned/<name>/.")] = "default",
    base: Annotated[str, typer.Option(help="Model spec to align (packaged name, hub id, folder, .gguf).")] = "gemma-3-270m",
    seed: Annotated[int, typer.Option(help="Seed for facts, splits, exemplars, shuffling and LoRA init.")] = 0,
    n_cities: Annotated[int, typer.Option(min=1, help="Cities in the fact table (population-stratified).")] = 600,
    epochs: Annotated[int, typer.Option(min=1, help="SFT epochs over the mixture.")] = 2,
    lr: Annotated[float, typer.Option(min=1e-6, max=0.5, help="AdamW learning rate for the LoRA weights.")] = 1e-3,
    lora_r: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 8,
    n_prompts: Annotated[int, typer.Option(min=1, help="Few-shot prompts per question when grading knowledge.")] = 3,
    k_samples: Annotated[int, typer.Option(min=1, help="Samples per prompt (T=0.5) for never-greedy-correct facts.")] = 2,
    out_root: Annotated[
        Optional[str], typer.Option(help="Folder for adapters (default: the repository's data/aligned).")
    ] = None,
    device: Annotated[str, typer.Option(help="'cpu' or 'cuda'.")] = "cpu",
) -> None:
    """Align the base with the project's recipe (grade knowledge, SFT a LoRA adapter, evaluate)."""
    from interp.align import AlignConfig, run_recipe

    cfg = AlignConfig(name=name, base=base, seed=seed, n_cities=n_cities, epochs=epochs, lr=lr, lora_r=lora_r,
                      lora_alpha=2 * lora_r, n_prompts=n_prompts, k_samples=k_samples)
    result = run_recipe(cfg, out_root=out_root, device=device)
    typer.echo(f"adapter written to {result.out_dir} in {result.record['timings']['total_s']:.0f} s")
    typer.echo(result.behavior.to_string(index=False))


@app.command()
def pairs() -> None:
    """List the registered base / aligned pairs."""
    from interp.models import list_pairs

    typer.echo(list_pairs().to_string(index=False))


@app.command()
def arch(
    model: Annotated[str, typer.Argument(help="Model spec: packaged name, hub id, HF folder or .gguf.")] = "gemma-3-270m",
    chat_template: Annotated[Optional[str], typer.Option(help="Attach a registered template (gemma, llama3, mistral, "
                                                         "chatml, phi3, olmo2) before describing.")] = None,
) -> None:
    """What interp knows about a model: its family adapter, chat format and which capabilities run
    on it (fast path, bridge, or why not)."""
    from interp.models import ModelSpec, load_model
    from interp.runtime.describe import describe_model

    m = load_model(ModelSpec(model, chat_template=chat_template), device="cpu")
    typer.echo(describe_model(m).to_string(index=False))


from interp.commands import register  # noqa: E402  (the analysis commands: cache, probe, patch, diff, knowledge, report)

register(app)

from interp.unmask_cli import register as register_unmask  # noqa: E402

register_unmask(app)

from interp.dictionary_cli import register as register_dictionary  # noqa: E402

register_dictionary(app)

from interp.knowledge_cli import register as register_hidden  # noqa: E402

register_hidden(app)

from interp.difflens_cli import register as register_difflens  # noqa: E402

register_difflens(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
