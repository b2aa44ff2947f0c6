"""The on-disk activation store: sharded safetensors + a JSON manifest.

Layout of a store folder::

    config.json          the arguments that made it (a rerun with others is refused)
    examples.jsonl       one line per example: id, text, label, ... (labels and metadata)
    manifest.json        lists only complete shards (rewritten after each one)
    shards/<side>-<index>.safetensors
                         tensors "<hook>.<layer>.<position>" of shape [rows, d_model]; for
                         position "all", also "all.example" (the example of each token row)

Reading memory-maps each shard: ``store.get(side, layer, hook)`` is a zero-copy view when the store
has one shard per side, and one concatenated tensor otherwise.

Example:
    >>> from interp.cache import ActivationStore
    >>> store = ActivationStore.open("out/cache")        # doctest: +SKIP
    >>> X = store.get("aligned", layer=6, hook="resid_post")   # [n, d_model]
    >>> y = store.frame()["label"].to_numpy()
"""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor

__all__ = ["ActivationStore", "tensor_name", "read_safetensors_mmap"]

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def tensor_name(hook: str, layer: int, position: str) -> str:
    """The key of one (hook, layer, position) tensor inside a shard."""
    return f"{hook}.{layer}.{position}"


def read_safetensors_mmap(path: Path) -> dict[str, Tensor]:
    """Memory-map every tensor of a safetensors file (copy-on-write pages: reading never copies,
    writing changes memory only, never the file; bf16 is read as a copy)."""
    with path.open("rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(n))
    header.pop("__metadata__", None)
    out = {}
    raw = None
    for name, info in header.items():
        start, stop = info["data_offsets"]
        shape = tuple(info["shape"])
        if info["dtype"] in _DTYPES:
            dt = _DTYPES[info["dtype"]]
            count = int(np.prod(shape)) if shape else 1
            arr = np.memmap(path, dtype=dt, mode="c", offset=8 + n + start, shape=(count,)).reshape(shape)
            out[name] = torch.from_numpy(arr)
        else:  # bf16 and others: through safetensors
            if raw is None:
                from safetensors.torch import load_file

                raw = load_file(str(path))
            out[name] = raw[name]
    return out


class ActivationStore:
    """A finished (or partly finished) cache folder. Open with :meth:`open`."""

    def __init__(self, path: Path, manifest: dict, config: dict):
        self.path = path
        self.manifest = manifest
        self.config = config
        self._shards: dict[str, dict[str, Tensor]] = {}

    @classmethod
    def open(cls, path: "str | os.PathLike[str]") -> "ActivationStore":
        """Open a store folder written by :func:`interp.cache.cache_activations`."""
        path = Path(path)
        manifest_file = path / "manifest.json"
        if not manifest_file.is_file():
            raise FileNotFoundError(f"{path} holds no manifest.json; is it a folder written by cache_activations?")
        manifest = json.loads(manifest_file.read_text())
        config = json.loads((path / "config.json").read_text())
        return cls(path, manifest, config)

    @property
    def complete(self) -> bool:
        """True when every shard of every side is on disk."""
        return bool(self.manifest.get("complete"))

    @property
    def sides(self) -> list[str]:
        return list(self.config["sides"])

    @property
    def layers(self) -> list[int]:
        return list(self.config["layers"])

    @property
    def hooks(self) -> list[str]:
        return list(self.config["hooks"])

    @property
    def positions(self) -> list[str]:
        return list(self.config["positions"])

    def _check(self, side: str, layer: int, hook: str, position: str) -> None:
        for what, value, allowed in (("side", side, self.sides), ("layer", layer, self.layers),
                                     ("hook", hook, self.hooks), ("position", position, self.positions)):
            if value not in allowed:
                raise KeyError(f"{what} {value!r} is not in this store; it has {allowed}")

    def _shard_tensors(self, file: str) -> dict[str, Tensor]:
        if file not in self._shards:
            self._shards[file] = read_safetensors_mmap(self.path / file)
        return self._shards[file]

    def _side_shards(self, side: str) -> list[dict]:
        return sorted((s for s in self.manifest["shards"] if s["side"] == side), key=lambda s: s["start"])

    def _require_complete(self, partial: bool, what: str) -> None:
        if not self.complete and not partial:
            have = len(self.manifest["shards"])
            want = int(self.config["n_shards"]) * len(self.sides)
            raise RuntimeError(
                f"{self.path} is an incomplete store ({have} of {want} shards written): {what} would not line up "
                "with the examples. Resume it with cache_activations (same arguments), or pass partial=True to read "
                "only the written shards, and frame(partial=True, side=...) for their rows")

    def rows(self, side: str) -> list[int]:
        """Example indices of the rows :meth:`get` returns for ``side`` (all of them once complete)."""
        return [i for s in self._side_shards(side) for i in range(s["start"], s["stop"])]

    def get(self, side: str, layer: int, hook: str = "resid_post", position: str | None = None, *,
            partial: bool = False) -> Float[Tensor, "n d_model"]:
        """Activations ``[n, d_model]`` of one side, layer, hook and position (rows in example
        order; for ``"all"`` one row per real token, see :meth:`token_examples`). An incomplete
        store raises unless ``partial=True`` (then the rows of the written shards, see :meth:`rows`)."""
        position = position or self.positions[0]
        self._check(side, layer, hook, position)
        self._require_complete(partial, "its rows")
        parts = [self._shard_tensors(s["file"])[tensor_name(hook, layer, position)] for s in self._side_shards(side)]
        if not parts:
            raise KeyError(f"no complete shards for side {side!r} yet")
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def token_examples(self, side: str) -> Int[Tensor, " n_tokens"]:
        """For position ``"all"``: the example index of each token row."""
        if "all" not in self.positions:
            raise KeyError("this store has no position 'all'")
        return torch.cat([self._shard_tensors(s["file"])["all.example"] for s in self._side_shards(side)])

    def frame(self, *, partial: bool = False, side: str | None = None) -> pd.DataFrame:
        """Labels and metadata, one row per example (same order as :meth:`get`), read back exactly as
        written (a string stays a string). For an incomplete store pass ``partial=True`` and the
        ``side`` whose written rows you read."""
        with (self.path / "examples.jsonl").open() as fh:
            frame = pd.DataFrame.from_records([json.loads(line) for line in fh if line.strip()])
        if self.complete:
            return frame
        self._require_complete(partial, "the frame")
        if side is None:
            raise ValueError("frame(partial=True) needs side=: each side's written shards cover different rows")
        self._check(side, self.layers[0], self.hooks[0], self.positions[0])
        return frame.iloc[self.rows(side)].reset_index(drop=True)

    def info(self) -> dict:
        """A summary: sides, layers, hooks, positions, examples, shards, bytes on disk, models."""
        # The shards the manifest lists: a temporary file left by a killed writer is not the store's.
        files = [self.path / sh["file"] for sh in self.manifest["shards"] if (self.path / sh["file"]).is_file()]
        return {
            "path": str(self.path),
            "complete": self.complete,
            "sides": self.sides,
            "models": self.config.get("models"),
            "layers": self.layers,
            "hooks": self.hooks,
            "positions": self.positions,
            "examples": self.config["n_examples"],
            "d_model": self.config["d_model"],
            "dtype": self.config["dtype"],
            "shards": len(self.manifest["shards"]),
            "bytes": sum(f.stat().st_size for f in files),
            "dataset_fingerprint": self.config["dataset_fingerprint"],
        }

    def _repr_html_(self) -> str:
        info = self.info()
        rows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in info.items())
        return f"<b>ActivationStore</b><table>{rows}</table>"

    def __repr__(self) -> str:
        i = self.info()
        return (f"ActivationStore({i['path']!r}, sides={i['sides']}, examples={i['examples']}, layers={len(i['layers'])}, "
                f"hooks={i['hooks']}, positions={i['positions']}, complete={i['complete']})")
