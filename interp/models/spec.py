"""What a model is and where its weights come from.

A :class:`ModelSpec` names one checkpoint: a packaged model (``"gemma-3-270m"``), a Hugging Face
hub id (``"google/gemma-3-270m-it"``), a local HF directory, or a ``.gguf`` file; optionally a
LoRA adapter merged on top and a chat template attached to the tokenizer.
"""

import os
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = ["ModelSpec", "as_spec", "PROMPT_STYLES"]

PROMPT_STYLES = ("plain", "chat")


@dataclass(frozen=True)
class ModelSpec:
    """One checkpoint and how to present prompts to it.

    Attributes:
        source: packaged model name, hub id, local HF directory or ``.gguf`` path.
        adapter: optional LoRA adapter directory (peft format), merged into the weights on load.
        chat_template: optional template name (``"gemma"``) or Jinja string, attached to the
            tokenizer when it has none.
        prompt_style: ``"plain"`` (raw text, base models) or ``"chat"`` (chat template).
        name: a short label for tables and figures; defaults to the source's last path part.

    Example:
        >>> ModelSpec("gemma-3-270m").label
        'gemma-3-270m'
    """

    source: str
    adapter: str | None = None
    chat_template: str | None = None
    prompt_style: str = "plain"
    name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValueError(f"ModelSpec.source must be a non-empty string, got {self.source!r}")
        if self.prompt_style not in PROMPT_STYLES:
            raise ValueError(
                f"ModelSpec.prompt_style is {self.prompt_style!r}; expected one of {PROMPT_STYLES}"
            )
        if self.adapter is not None and not Path(self.adapter).is_dir():
            raise ValueError(
                f"ModelSpec.adapter {self.adapter!r} is not a directory; pass the folder that "
                "holds adapter_config.json and adapter_model.safetensors"
            )

    @property
    def label(self) -> str:
        """Short human-readable name."""
        if self.name:
            return self.name
        base = Path(self.source.rstrip("/")).name or self.source
        return base + ("+adapter" if self.adapter else "")

    def with_(self, **changes: object) -> "ModelSpec":
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-ready form (for manifests and reports)."""
        return {
            "source": self.source,
            "adapter": self.adapter,
            "chat_template": None if self.chat_template is None else self.chat_template[:40],
            "prompt_style": self.prompt_style,
            "name": self.label,
        }


def as_spec(spec: "str | os.PathLike[str] | ModelSpec") -> ModelSpec:
    """Turn a string or path into a :class:`ModelSpec` (a spec passes through)."""
    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise TypeError(f"model spec must be a str, a path or a ModelSpec, got {type(spec).__name__}")
    return ModelSpec(spec)
