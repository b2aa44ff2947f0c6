"""Chat formats as data: each family's template with the facts the prompt encoder needs.

A chat template is a Jinja string; what the encoder must also know is which token starts a
sequence (and whether the template writes it), which tokens mark turns (ChatML writes
``<|im_start|>`` at every turn, and some tokenizers call that token their BOS), and which tokens
end a response (generation stops there). :data:`FORMATS` holds those facts for the families
whose base/chat pairs researchers use; :func:`format_of` finds the format of a tokenizer from its
template; :func:`stop_token_ids` and :func:`turn_token_ids` give ids.

The templates are text-only renderings of each family's turn layout (system turns folded the way
the family does it), enough to format prompts exactly as the chat model was trained on.

Example::

    tok.chat_template = FORMATS["chatml"].template
    format_of(tok).end_of_turn            # ('<|im_end|>',)
"""

from dataclasses import dataclass
from typing import Any

__all__ = ["ChatFormat", "FORMATS", "format_of", "stop_token_ids", "turn_token_ids", "bos_is_turn_marker", "render_exchange"]

_ALTERNATE = ("{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
              "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
              "{%- endif -%}")


@dataclass(frozen=True)
class ChatFormat:
    """One chat format.

    Attributes:
        name: registry key (``"gemma"``, ``"llama3"``, ``"mistral"``, ``"chatml"``, ``"phi3"``, ``"olmo2"``).
        template: the Jinja chat template.
        families: model families whose chat checkpoints use it.
        start: the token that starts a sequence (``None``: none, as in Qwen's ChatML).
        writes_start: the template writes ``start`` itself (tokenize its output without special tokens).
        turn_tokens: tokens that open or close turns (they may repeat in a prompt).
        end_of_turn: tokens that end a response (generation stops at them).
        marker: a literal that identifies the format in a template string.
    """

    name: str
    template: str
    families: tuple[str, ...]
    start: str | None
    writes_start: bool
    turn_tokens: tuple[str, ...]
    end_of_turn: tuple[str, ...]
    marker: str


GEMMA = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}" + _ALTERNATE +
    "{%- if message['role'] == 'assistant' -%}{%- set role = 'model' -%}"
    "{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)

LLAMA3 = (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif -%}"
)

MISTRAL = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set prefix = messages[0]['content'] + '\n\n' -%}{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}" + _ALTERNATE +
    "{%- if message['role'] == 'user' -%}"
    "{{ '[INST] ' + (prefix if loop.first else '') + message['content'] | trim + ' [/INST]' }}"
    "{%- else -%}{{ ' ' + message['content'] | trim + eos_token }}{%- endif -%}"
    "{%- endfor -%}"
)

CHATML = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] | trim + '<|im_end|>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)

PHI3 = (
    "{%- for message in messages -%}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] | trim + '<|end|>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\n' }}{%- endif -%}"
)

OLMO2 = (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<|assistant|>\n' + message['content'] | trim + eos_token + '\n' }}"
    "{%- else -%}{{ '<|' + message['role'] + '|>\n' + message['content'] | trim + '\n' }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\n' }}{%- endif -%}"
)

FORMATS: dict[str, ChatFormat] = {f.name: f for f in (
    ChatFormat("gemma", GEMMA, ("gemma", "gemma2", "gemma3"), "<bos>", True,
               ("<start_of_turn>", "<end_of_turn>"), ("<end_of_turn>",), "<start_of_turn>"),
    ChatFormat("llama3", LLAMA3, ("llama",), "<|begin_of_text|>", True,
               ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"), ("<|eot_id|>",), "<|start_header_id|>"),
    ChatFormat("mistral", MISTRAL, ("mistral",), "<s>", True, ("[INST]", "[/INST]"), ("</s>",), "[INST]"),
    ChatFormat("chatml", CHATML, ("qwen2", "qwen3", "llama"), None, False,
               ("<|im_start|>", "<|im_end|>"), ("<|im_end|>",), "<|im_start|>"),
    ChatFormat("phi3", PHI3, ("phi3",), "<s>", False,
               ("<|user|>", "<|assistant|>", "<|system|>", "<|end|>"), ("<|end|>",), "<|end|>"),
    ChatFormat("olmo2", OLMO2, ("olmo2",), "<|endoftext|>", True,
               ("<|user|>", "<|assistant|>", "<|system|>"), ("<|endoftext|>",), "<|user|>"),
)}


def format_of(tokenizer: Any) -> ChatFormat | None:
    """The registered format a tokenizer's chat template follows (by its marker), else ``None``."""
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str):
        return None
    for fmt in FORMATS.values():
        if template == fmt.template:
            return fmt
    for name in ("gemma", "llama3", "mistral", "chatml", "phi3", "olmo2"):  # most specific markers first
        if FORMATS[name].marker in template:
            return FORMATS[name]
    return None


def _id(tokenizer: Any, token: str | None) -> int | None:
    if not token:
        return None
    tid = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(tid, int) or (tid == tokenizer.unk_token_id and token != tokenizer.unk_token):
        return None
    return tid


def turn_token_ids(tokenizer: Any) -> set[int]:
    """Ids of the turn-marking tokens of the tokenizer's chat format (empty for none)."""
    fmt = format_of(tokenizer)
    return {t for t in (_id(tokenizer, x) for x in (fmt.turn_tokens if fmt else ())) if t is not None}


def bos_is_turn_marker(tokenizer: Any) -> bool:
    """The tokenizer's BOS token also marks turns (a ChatML tokenizer whose ``bos_token`` is
    ``<|im_start|>``), or its template writes the BOS text literally rather than once through
    ``bos_token``: then it may occur once per turn."""
    bos = getattr(tokenizer, "bos_token", None)
    if bos is None:
        return False
    if tokenizer.bos_token_id in turn_token_ids(tokenizer):
        return True
    template = getattr(tokenizer, "chat_template", None)
    return isinstance(template, str) and bos in template


def stop_token_ids(tokenizer: Any) -> list[int]:
    """Token ids that end a response: EOS and the end-of-turn tokens of the tokenizer's format (or
    of every registered format, for a tokenizer without a known template)."""
    fmt = format_of(tokenizer)
    ends = fmt.end_of_turn if fmt else tuple(t for f in FORMATS.values() for t in f.end_of_turn)
    out = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for token in ends:
        tid = _id(tokenizer, token)
        if tid is not None and tid not in out:
            out.append(tid)
    return out


def render_exchange(tokenizer: Any, user: str, response: str) -> tuple[str, tuple[int, int] | None, tuple[int, int] | None]:
    """One user turn and the model's response through the tokenizer's chat template, as text
    without the leading BOS (the prompt encoder adds it): ``(text, user_span, response_span)``,
    the spans being character ranges of the two contents in ``text`` (``None`` where the template
    rewrote a content so that it cannot be found)."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("render_exchange needs a tokenizer with a chat template (load the aligned side)")
    text = tokenizer.apply_chat_template([{"role": "user", "content": user}, {"role": "assistant", "content": response}],
                                         tokenize=False)
    bos = getattr(tokenizer, "bos_token", None)
    if bos and text.startswith(bos):
        text = text[len(bos):]
    u = text.find(user) if user else -1
    r = text.find(response, u + len(user) if u >= 0 else 0) if response else -1
    return text, ((u, u + len(user)) if u >= 0 else None), ((r, r + len(response)) if r >= 0 else None)
