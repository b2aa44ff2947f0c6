"""A crosscoder for a pair from its paired corpus, end to end (``interp dictionary --corpus``,
and the default artefact shipped in ``data/crosscoder``):

1. the layer, by measuring (:func:`choose_layer`: of the middle third of the layers, the one
   where base and aligned streams agree least by linear CKA on held-out statements);
2. the corpus's activations at that layer, both models reading the same tokens
   (``cache_activations(..., style="plain")``, resumable);
3. training on the rows of the first 90% of the texts, the statistics on the last 10%;
4. the sae-lens folder (the input scales folded into the weights, so raw activations encode
   right; ``cfg.json`` records them and the held-out statistics), the training
   curve, the findings (:func:`interp.dictionary.explain.explain_crosscoder`) as CSV + figures and
   a report.

:func:`read_crosscoder` reads a trained crosscoder again (classes, causal test, statistics) on a
corpus it never saw, without training: what the analysis code gives for a shipped artefact after
that code changed (``interp dictionary --read``).
"""

import json
import os
import time
from pathlib import Path

import torch

__all__ = ["choose_layer", "run_crosscoder", "read_crosscoder"]


def choose_layer(pair, *, n: int = 48, progress: bool = False) -> tuple[int, "object"]:
    """``(layer, similarity frame)``: among the middle third of the layers, the one with the lowest
    linear CKA between the two models' ``resid_post`` on ``n`` held-out geography statements."""
    from interp.data import facts
    from interp.diffing.represent import representation_similarity

    table = facts().to_pandas()
    test = table[(table.split == "test") & (table.domain == "geography")]
    texts = test.statement.sample(min(n, len(test)), random_state=0).tolist()
    sim = representation_similarity(pair, texts, progress=progress).to_frame()
    L = pair.n_layers
    middle = sim[(sim.layer >= L // 3) & (sim.layer < L - L // 3)]
    return int(middle.sort_values("cka").iloc[0].layer), sim


def run_crosscoder(pair, corpus_dir: "str | os.PathLike[str]", out: "str | os.PathLike[str]", *, layer: int | None = None,
                   width: int = 4096, k: int = 32, steps: int = 4000, batch_size: int = 1024, lr: float = 4e-4,
                   store_dir: "str | os.PathLike[str] | None" = None, dtype: str = "float32", n_exchanges: int = 48,
                   progress: bool = True) -> dict:
    """Train and read a crosscoder on the corpus in ``corpus_dir`` (:func:`interp.dictionary.corpus.build_corpus`);
    everything is written under ``out`` (the crosscoder in ``dtype``); returns the headline numbers."""
    from interp.artifacts import save_artifacts
    from interp.atomic import write_json_atomic
    from interp.cache import cache_activations
    from interp.dictionary import Crosscoder, TrainConfig, reconstruction_stats, train_dictionary
    from interp.dictionary.corpus import load_corpus
    from interp.dictionary.data import paired_batches, paired_rows, row_examples, scale_factors
    from interp.dictionary.explain import add_dictionary_section, explain_crosscoder
    from interp.dictionary.io import save_dictionary
    from interp.prompts import token_ids
    from interp.report import Report

    t0 = time.perf_counter()
    out = Path(out)
    corpus = load_corpus(corpus_dir)
    summary: dict = {"corpus_texts": len(corpus), "corpus_tokens": int(corpus.n_tokens.sum()),
                     "corpus_tokens_by_kind": {k_: int(v) for k_, v in corpus.groupby("kind").n_tokens.sum().items()}}
    if layer is None:
        layer, sim = choose_layer(pair, progress=progress)
        save_artifacts(out, "layer_choice", sim)
    summary["layer"] = layer
    store_dir = Path(store_dir) if store_dir is not None else Path(corpus_dir) / f"store-layer{layer}"
    store = cache_activations(pair, list(corpus.text), layers=[layer], positions=["all"], style="plain",
                              out_dir=store_dir, dtype="float16", batch_size=8, progress=progress)
    rows, examples = paired_rows(store, layer), row_examples(store)
    n_texts = len(corpus)
    cut = int(n_texts * 0.9)
    train, held = rows[examples < cut], rows[examples >= cut]
    factor = scale_factors(train)
    model = Crosscoder(rows.shape[-1], width, 2, k=k)
    cfg = TrainConfig(steps=steps, lr=lr, dead_after=50 * batch_size)
    t1 = time.perf_counter()
    history = train_dictionary(model, paired_batches(train, batch_size, scale=factor), cfg, progress=progress)
    train_s = time.perf_counter() - t1
    held_batches = [held[s: s + 8192].float() * factor[None, :, None] for s in range(0, len(held), 8192)]
    stats = reconstruction_stats(model, held_batches)
    summary.update({"train_tokens": len(train), "held_out_tokens": len(held), "held_out": stats,
                    "train_seconds": round(train_s, 1), "steps": steps, "width": width, "k": k})
    save_dictionary(model, out / "crosscoder", hook_name=f"blocks.{layer}.hook_resid_post", hook_layer=layer,
                    dtype=dtype, input_scale=factor, extra={"held_out": stats,
                                        "corpus": {k_: v for k_, v in summary.items() if k_.startswith("corpus")},
                                        "train": {"steps": steps, "batch_size": batch_size, "lr": lr,
                                                  "tokens": len(train)}})
    save_artifacts(out, "training", history)
    tokens = [token_ids(pair.aligned.tokenizer, t) for t in corpus.text]
    sample = torch.randperm(len(held), generator=torch.Generator().manual_seed(0))[: 65536]
    found = explain_crosscoder(pair, model, layer=layer, scale=factor, rows=train, examples=examples[examples < cut],
                               tokens=tokens, ls_rows=held[sample], n_exchanges=n_exchanges, progress=progress)
    save_artifacts(out, "latent_classes", found.classes, found.figure("classes"))
    save_artifacts(out, "causal_test", found.causal, found.figure("causal"))
    save_artifacts(out, "latent_contexts", found.contexts)
    save_artifacts(out, "latent_effects", found.effects)
    summary["findings"] = found.summary()
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    report = Report("interp: a crosscoder of the base and aligned models")
    add_dictionary_section(report, found, out, stats=stats)
    report.config(summary)
    report.write(out / "report.html")
    write_json_atomic(out / "summary.json", json.loads(json.dumps(summary, default=str)))
    return summary


def read_crosscoder(pair, crosscoder: "str | os.PathLike[str]", corpus_dir: "str | os.PathLike[str]",
                    out: "str | os.PathLike[str]", *, store_dir: "str | os.PathLike[str] | None" = None,
                    n_exchanges: int = 48, n_ls: int = 65536, progress: bool = True) -> dict:
    """Read the crosscoder in ``crosscoder`` (a :func:`~interp.dictionary.io.save_dictionary` folder)
    with the current analysis code, on the corpus in ``corpus_dir``, which it must not have been
    trained on (e.g. ``interp corpus --seed 1``): every text of that corpus is held out. Writes the
    reconstruction statistics on the fresh text, the latent classes (Latent Scaling on ``n_ls``
    sampled rows), the causal test on ``n_exchanges`` held-out interactions, contexts, effects, a
    report and ``summary.json`` under ``out``; returns the summary.

    Example::

        from interp.dictionary.io import shipped_crosscoder
        summary = read_crosscoder(pair, shipped_crosscoder(), "out/corpus_eval", "out/crosscoder_read")
        summary["findings"]["closed_by_every_latent"]
    """
    from interp.artifacts import save_artifacts
    from interp.atomic import write_json_atomic
    from interp.cache import cache_activations
    from interp.dictionary import reconstruction_stats
    from interp.dictionary.corpus import load_corpus
    from interp.dictionary.data import paired_rows, row_examples
    from interp.dictionary.explain import add_dictionary_section, explain_crosscoder
    from interp.dictionary.io import load_dictionary
    from interp.prompts import token_ids
    from interp.report import Report

    t0 = time.perf_counter()
    out = Path(out)
    model = load_dictionary(crosscoder)
    if model.n_models != 2 or model.cfg.get("hook_layer") is None:
        raise ValueError(f"{crosscoder}: not a two-model crosscoder with a hook_layer in cfg.json; read_crosscoder "
                         "reads crosscoders saved by interp (interp dictionary --corpus)")
    layer = int(model.cfg["hook_layer"])
    factor = torch.as_tensor(model.cfg["input_scale"], dtype=torch.float32)
    corpus = load_corpus(corpus_dir)
    summary: dict = {"crosscoder": str(crosscoder), "trained": {k_: model.cfg.get(k_) for k_ in ("held_out", "corpus", "train")},
                     "corpus_texts": len(corpus), "corpus_tokens": int(corpus.n_tokens.sum()),
                     "corpus_tokens_by_kind": {k_: int(v) for k_, v in corpus.groupby("kind").n_tokens.sum().items()},
                     "layer": layer, "width": model.width, "k": model.k}
    store_dir = Path(store_dir) if store_dir is not None else Path(corpus_dir) / f"store-layer{layer}"
    store = cache_activations(pair, list(corpus.text), layers=[layer], positions=["all"], style="plain",
                              out_dir=store_dir, dtype="float16", batch_size=8, progress=progress)
    rows, examples = paired_rows(store, layer), row_examples(store)
    batches = [rows[s: s + 8192].float() * factor[None, :, None] for s in range(0, len(rows), 8192)]
    summary["fresh_text"] = reconstruction_stats(model, batches)
    tokens = [token_ids(pair.aligned.tokenizer, t) for t in corpus.text]
    sample = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))[: n_ls]
    found = explain_crosscoder(pair, model, layer=layer, scale=factor, rows=rows, examples=examples, tokens=tokens,
                               ls_rows=rows[sample], n_exchanges=n_exchanges, progress=progress)
    save_artifacts(out, "latent_classes", found.classes, found.figure("classes"))
    save_artifacts(out, "causal_test", found.causal, found.figure("causal"))
    save_artifacts(out, "latent_contexts", found.contexts)
    save_artifacts(out, "latent_effects", found.effects)
    summary["findings"] = found.summary()
    summary["ls_rows"] = int(len(sample))
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    report = Report("interp: a shipped crosscoder read again")
    add_dictionary_section(report, found, out, stats=summary["fresh_text"])
    report.config(summary)
    report.write(out / "report.html")
    write_json_atomic(out / "summary.json", json.loads(json.dumps(summary, default=str)))
    return summary
