"""``cache_activations``: run one or both models of a pair over a dataset, write a store.

Examples are cut into fixed shards of ``shard_size`` rows (the same cut on every run), each shard
into batches; a shard is written to a temporary name and renamed, and the manifest (rewritten after
each shard) lists only complete shards. A run killed mid-way and started again with the same
arguments skips the shards already on disk and ends with the same bytes as an uninterrupted run.
Under ``torchrun --nproc-per-node N`` each rank takes every N-th shard and rank 0 writes the final
manifest after all ranks are done.
"""

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm
from transformer_lens.model_bridge import TransformerBridge

from interp import distributed
from interp.cache.capture import POSITIONS, capture
from interp.atomic import atomic_path, write_json_atomic
from interp.cache.store import ActivationStore, tensor_name
from interp.data.schema import fingerprint
from interp.hooks import HOOK_KINDS
from interp.models import ModelPair, spec_of
from interp.models.load import weights_fingerprint
from interp.prompts import encode, format_prompt

__all__ = ["CacheConfig", "cache_activations"]

_STORE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class CacheConfig:
    """What to cache.

    Attributes:
        layers: block indices.
        hooks: hook kinds from :data:`interp.hooks.HOOK_KINDS`.
        positions: from :data:`interp.cache.capture.POSITIONS`.
        sides: ``("base", "aligned")`` for a pair; ``("model",)`` for a single model.
        batch_size: examples per forward pass.
        shard_size: examples per shard (bounds the memory of a run).
        dtype: storage dtype, ``"float32"``, ``"float16"`` or ``"bfloat16"``.
    """

    layers: Sequence[int]
    hooks: Sequence[str] = ("resid_post",)
    positions: Sequence[str] = ("last",)
    sides: Sequence[str] = ("base", "aligned")
    batch_size: int = 16
    shard_size: int = 512
    dtype: str = "float32"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.layers = sorted({int(x) for x in self.layers})
        # Repeats removed, order kept: a side, hook or position named twice would write every shard
        # twice and read its rows twice, out of line with the store's frame().
        self.hooks, self.positions, self.sides = (list(dict.fromkeys(x)) for x in (self.hooks, self.positions, self.sides))
        if not self.layers or self.layers[0] < 0:
            raise ValueError(f"layers must be non-negative block indices, got {self.layers}")
        for h in self.hooks:
            if h not in HOOK_KINDS:
                raise ValueError(f"unknown hook {h!r}; expected one of {HOOK_KINDS}")
        for p in self.positions:
            if p not in POSITIONS:
                raise ValueError(f"unknown position {p!r}; expected one of {POSITIONS}")
        if self.dtype not in _STORE_DTYPES:
            raise ValueError(f"dtype must be one of {list(_STORE_DTYPES)}, got {self.dtype!r}")
        if self.batch_size < 1 or self.shard_size < 1:
            raise ValueError(f"batch_size and shard_size must be >= 1, got {self.batch_size}, {self.shard_size}")


def _as_dataset(prompts: "datasets.Dataset | Sequence[str]") -> datasets.Dataset:
    if isinstance(prompts, datasets.Dataset):
        if "text" not in prompts.column_names:
            raise ValueError("the dataset needs a 'text' column (see interp.data.schema)")
        return prompts
    texts = list(prompts)
    return datasets.Dataset.from_dict({"id": [str(i) for i in range(len(texts))], "text": texts})


def _models(model_or_pair: "TransformerBridge | ModelPair", sides: Sequence[str]) -> dict[str, tuple[TransformerBridge, str]]:
    if isinstance(model_or_pair, ModelPair):
        for s in sides:
            model_or_pair.side(s)
        return {s: (model_or_pair.side(s), model_or_pair.style(s)) for s in sides}
    spec = spec_of(model_or_pair)
    return {"model": (model_or_pair, spec.prompt_style if spec else "plain")}


def _encode_rows(model: TransformerBridge, style: str, rows: dict, positions: Sequence[str], template_tok=None):
    tok = model.tokenizer
    texts = [format_prompt(t, style=style, tokenizer=template_tok or tok) for t in rows["text"]]
    spans = rows["subject"] if "span_last" in positions else None
    answers = None
    if {"answer_first", "answer_last"} & set(positions):
        fmt = " {}" if style == "plain" else "{}"
        answers = [fmt.format(a) for a in rows["answer"]]
    return encode(tok, texts, spans=spans, answers=answers)


def cache_activations(
    model_or_pair: "TransformerBridge | ModelPair",
    prompts: "datasets.Dataset | Sequence[str]",
    *,
    layers: Sequence[int],
    hooks: Sequence[str] = ("resid_post",),
    positions: Sequence[str] = ("last",),
    sides: Sequence[str] | None = None,
    batch_size: int = 16,
    shard_size: int = 512,
    dtype: str = "float32",
    out_dir: "str | os.PathLike[str]",
    progress: bool = True,
    style: str | None = None,
) -> ActivationStore:
    """Cache residual-stream activations of one model or both sides of a pair.

    Each side formats the ``text`` column its own way (plain for the base, chat template for the
    aligned side) unless ``style`` (``"plain"`` or ``"chat"``) sets one format for every side, so
    that row ``i`` of each side is the same token of the same text (what a crosscoder trains on);
    ``span_last`` marks the ``subject`` column, ``answer_*`` append the ``answer``.

    Example:
        >>> store = cache_activations(pair, fact_statements(), layers=range(18),
        ...                           positions=["last"], out_dir="out/cache")      # doctest: +SKIP
        >>> store.get("aligned", 6).shape                                           # doctest: +SKIP
        torch.Size([472, 640])
    """
    is_pair = isinstance(model_or_pair, ModelPair)
    sides = list(sides) if sides is not None else (["base", "aligned"] if is_pair else ["model"])
    cfg = CacheConfig(layers, hooks, positions, sides, batch_size, shard_size, dtype)
    ds = _as_dataset(prompts)
    if ("span_last" in cfg.positions and "subject" not in ds.column_names) or (
        {"answer_first", "answer_last"} & set(cfg.positions) and "answer" not in ds.column_names
    ):
        raise ValueError("positions span_last / answer_* need 'subject' / 'answer' columns in the dataset")
    if style not in (None, "plain", "chat"):
        raise ValueError(f"style must be None, 'plain' or 'chat', got {style!r}")
    models = {s: (m, style or st) for s, (m, st) in _models(model_or_pair, cfg.sides).items()}
    # One chat format for every side: the template of a side that has one (a pair shares its vocabulary).
    template_tok = next((m.tokenizer for m, _ in models.values() if getattr(m.tokenizer, "chat_template", None)),
                        None) if style == "chat" else None
    any_model = next(iter(models.values()))[0]
    if cfg.layers[-1] >= any_model.cfg.n_layers:
        raise ValueError(f"layer {cfg.layers[-1]} is out of range for a model with {any_model.cfg.n_layers} layers")
    rank, world = distributed.rank_and_world()
    out = Path(out_dir)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    n = len(ds)
    n_shards = (n + cfg.shard_size - 1) // cfg.shard_size
    config = {
        **{k: v for k, v in asdict(cfg).items() if k != "extra"},
        "n_examples": n,
        "n_shards": n_shards,
        "d_model": int(any_model.cfg.d_model),
        "dataset_fingerprint": fingerprint(ds),
        "models": {s: (spec_of(m).to_dict() if spec_of(m) else {"name": str(m.cfg.model_name)})
                   | {"prompt_style": st, "weights": weights_fingerprint(m)}
                   for s, (m, st) in models.items()},
    }
    config_file = out / "config.json"
    if config_file.is_file():
        old = json.loads(config_file.read_text())
        diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        if diff:
            what = ", ".join(diff) + (" (the weights differ, not only the names)" if diff == ["models"] and
                                      {s: {**v, "weights": None} for s, v in old.get("models", {}).items()} ==
                                      {s: {**v, "weights": None} for s, v in config["models"].items()} else "")
            raise ValueError(
                f"{out} holds a cache made with different arguments ({what} differ); "
                "pass another out_dir, or delete this folder to start over"
            )
        if rank == 0 and not (out / "examples.jsonl").is_file():  # a store from before examples came first
            _write_examples(out, ds)
    elif rank == 0:
        _write_examples(out, ds)  # first: a store with a config always has its examples
        write_json_atomic(config_file, config)
    distributed.barrier()

    todo = [(s, k) for s in cfg.sides for k in range(n_shards) if k % world == rank]
    store_dtype = _STORE_DTYPES[cfg.dtype]
    sites = [(h, layer) for h in cfg.hooks for layer in cfg.layers]
    start, tokens, done_examples = time.perf_counter(), 0, 0
    bar = tqdm(total=len(todo) and sum(min(cfg.shard_size, n - k * cfg.shard_size) for _, k in todo),
               desc=f"cache{'' if world == 1 else f' r{rank}'}", unit="ex", disable=not progress)
    for side, k in todo:
        lo, hi = k * cfg.shard_size, min(n, (k + 1) * cfg.shard_size)
        final = out / "shards" / f"{side}-{k:05d}.safetensors"
        if final.is_file():  # complete by construction (written under a temporary name, renamed)
            bar.update(hi - lo)
            continue
        model, style = models[side]
        parts: dict[str, list[torch.Tensor]] = {}
        for b in range(lo, hi, cfg.batch_size):
            rows = ds[b: min(hi, b + cfg.batch_size)]
            batch = _encode_rows(model, style, rows, cfg.positions, template_tok)
            got = capture(model, batch, sites, cfg.positions)
            for (h, layer, p), t in got.items():
                parts.setdefault(tensor_name(h, layer, p), []).append(t.to("cpu", store_dtype))
            if "all" in cfg.positions:
                ex = torch.arange(b, b + len(batch)).unsqueeze(1).expand_as(batch.attention_mask)[batch.attention_mask.bool()]
                parts.setdefault("all.example", []).append(ex.clone())
            tokens += int(batch.attention_mask.sum())
            done_examples += len(batch)
            bar.update(len(batch))
            bar.set_postfix(ex_s=f"{done_examples / (time.perf_counter() - start):.1f}")
        with atomic_path(final) as tmp:
            save_file({name: torch.cat(ts).contiguous() for name, ts in parts.items()}, str(tmp))
        if world == 1:
            _write_manifest(out, cfg.sides, n_shards, n, cfg.shard_size)
    bar.close()
    distributed.barrier()
    if rank == 0:
        _write_manifest(out, cfg.sides, n_shards, n, cfg.shard_size)
    distributed.barrier()
    seconds = time.perf_counter() - start
    store = ActivationStore.open(out)
    if progress and rank == 0:
        gb = store.info()["bytes"] / 1e9
        print(f"cached {done_examples} examples ({tokens} tokens) on rank 0 of {world} in {seconds:.1f} s; "
              f"{gb:.3f} GB in {out}")
    return store


def _write_examples(out: Path, ds: datasets.Dataset) -> None:
    scalar = ("string", "int64", "int32", "float64", "float32", "bool")
    keep = [c for c in ds.column_names if getattr(ds.features[c], "dtype", None) in scalar]
    with atomic_path(out / "examples.jsonl") as tmp, tmp.open("w") as fh:
        for row in ds.select_columns(keep):
            fh.write(json.dumps(row, default=str) + "\n")


def _write_manifest(out: Path, sides: Sequence[str], n_shards: int, n: int, shard_size: int) -> None:
    shards = []
    for side in sides:
        for k in range(n_shards):
            f = out / "shards" / f"{side}-{k:05d}.safetensors"
            if f.is_file():
                shards.append({"side": side, "index": k, "start": k * shard_size, "stop": min(n, (k + 1) * shard_size),
                               "file": f"shards/{f.name}"})
    digest = hashlib.sha256(json.dumps(shards).encode()).hexdigest()[:12]
    write_json_atomic(out / "manifest.json", {"version": 1, "complete": len(shards) == n_shards * len(sides),
                                             "shards": shards, "digest": digest})
