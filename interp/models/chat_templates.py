"""Chat templates that interp can attach to a tokenizer that lacks one.

The default base (Gemma-3-270M from GGUF) has Gemma's turn tokens (``<start_of_turn>`` = 105,
``<end_of_turn>`` = 106) but no chat template; the aligned side of a pair must format prompts as
its instruction-tuned sibling does, so interp carries Gemma's template (text-only form of the one
shipped with ``google/gemma-3-270m-it``), and the other families' templates by the names of
:data:`interp.chat_formats.FORMATS` (``"llama3"``, ``"mistral"``, ``"chatml"``, ``"phi3"``,
``"olmo2"``). Templates that write the BOS token themselves are tokenized with
``add_special_tokens=False``.
"""

from interp.chat_formats import FORMATS

__all__ = ["GEMMA", "TEMPLATES", "resolve_template"]

TEMPLATES: dict[str, str] = {name: fmt.template for name, fmt in FORMATS.items()}
GEMMA = FORMATS["gemma"].template


def resolve_template(template: str) -> str:
    """A registered template name (``"gemma"``) or a Jinja string, returned as Jinja."""
    if template in TEMPLATES:
        return TEMPLATES[template]
    if "{{" in template or "{%" in template:
        return template
    raise ValueError(
        f"unknown chat template {template!r}; pass one of {', '.join(TEMPLATES)} or a Jinja string"
    )
