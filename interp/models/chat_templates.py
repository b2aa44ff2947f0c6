"""Chat templates that interp can attach to a tokenizer that lacks one.

The default base (Gemma-3-270M from GGUF) has Gemma's turn tokens (``<start_of_turn>`` = 105,
``<end_of_turn>`` = 106) but no chat template; the aligned side of a pair must format prompts as
its instruction-tuned sibling does, so interp carries Gemma's template (text-only form of the one
shipped with ``google/gemma-3-270m-it``). The template writes the BOS token itself, so tokenize
its output with ``add_special_tokens=False``.
"""

__all__ = ["GEMMA", "TEMPLATES", "resolve_template"]

GEMMA = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- if message['role'] == 'assistant' -%}{%- set role = 'model' -%}"
    "{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)

TEMPLATES: dict[str, str] = {"gemma": GEMMA}


def resolve_template(template: str) -> str:
    """A registered template name (``"gemma"``) or a Jinja string, returned as Jinja."""
    if template in TEMPLATES:
        return TEMPLATES[template]
    if "{{" in template or "{%" in template:
        return template
    raise ValueError(
        f"unknown chat template {template!r}; pass one of {', '.join(TEMPLATES)} or a Jinja string"
    )
