"""Every registered chat format on a tokenizer that has its special tokens: the BOS rule (one
sequence start, never doubled, turn markers allowed) and the marked positions."""

import copy

import pytest

from interp.chat_formats import FORMATS, format_of, stop_token_ids
from interp.models.chat_templates import resolve_template
from interp.prompts import encode, format_prompt, token_ids

# (format, tokenizer's BOS token or None, whether a BOS may repeat in a multi-turn prompt)
CASES = [
    ("gemma", "<bos>", False),
    ("llama3", "<|begin_of_text|>", False),
    ("mistral", "<s>", False),
    ("chatml", None, False),  # Qwen2/2.5/3: no BOS at all
    ("chatml", "<|im_start|>", True),  # SmolLM2-style: the turn marker is the BOS
    ("phi3", "<s>", False),
    ("olmo2", "<|endoftext|>", True),  # BOS is also EOS, which ends each assistant turn
]


@pytest.fixture(scope="module")
def base_tokenizer(tiny_llama_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama_dir)


def _tokenizer(base, name: str, bos: str | None):
    tok = copy.deepcopy(base)
    fmt = FORMATS[name]
    specials = [t for t in {*fmt.turn_tokens, *fmt.end_of_turn, *([fmt.start] if fmt.start else []), *([bos] if bos else [])}
                if t not in tok.get_vocab()]
    tok.add_special_tokens({"additional_special_tokens": specials})
    tok.bos_token = bos
    if name == "olmo2":
        tok.eos_token = bos
    tok.chat_template = resolve_template(name)
    return tok


@pytest.mark.parametrize("name,bos,repeats", CASES, ids=[f"{n}-{b}" for n, b, _ in CASES])
def test_template_bos_rule_and_marked_positions(base_tokenizer, name, bos, repeats):
    tok = _tokenizer(base_tokenizer, name, bos)
    assert format_of(tok) is FORMATS[name]
    texts = [format_prompt("where is the fox?", style="chat", tokenizer=tok, few_shot=[("where is a cat?", "mat.")]),
             format_prompt("is the dog red?", style="chat", tokenizer=tok)]
    b = encode(tok, texts, spans=["fox", "dog"], answers=[" hall.", " yes."])
    for i, text in enumerate(texts):
        ids = b.input_ids[i, int(b.n_pad[i]):].tolist()
        if bos is None:
            assert tok.bos_token_id is None
        else:
            assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id  # one sequence start, never doubled
            if not repeats:
                assert ids.count(tok.bos_token_id) == 1
        # the prompt is exactly the template's text (plus a BOS where the template does not write one)
        assert token_ids(tok, text) == ids[: int(b.positions["last"][i] - b.n_pad[i]) + 1]
        body = tok(text, add_special_tokens=False).input_ids
        assert token_ids(tok, text)[-len(body):] == body
        # marked positions
        assert tok.decode(b.input_ids[i, b.positions["span_last"][i]]).strip() in ("x", "g", "fox", "dog")
        answer = tok.decode(b.input_ids[i, b.positions["answer_first"][i]: b.positions["answer_last"][i] + 1])
        assert answer.strip() == ["hall.", "yes."][i]
        last = tok.decode(b.input_ids[i, : b.positions["last"][i] + 1], skip_special_tokens=False)
        assert last.endswith(text[-3:])
    stops = stop_token_ids(tok)
    assert all(tok.convert_tokens_to_ids(t) in stops for t in FORMATS[name].end_of_turn)


def test_chatml_bos_as_turn_marker_is_allowed_but_other_repeats_are_not(base_tokenizer):
    tok = _tokenizer(base_tokenizer, "chatml", "<|im_start|>")
    text = format_prompt("hi", style="chat", tokenizer=tok, few_shot=[("a", "b.")], system="be brief")
    ids = encode(tok, [text]).input_ids[0].tolist()
    assert ids.count(tok.bos_token_id) == 5  # system, user, assistant, user, generation prompt: one per turn
    gemma = _tokenizer(base_tokenizer, "gemma", "<bos>")
    with pytest.raises(ValueError, match="starts with a doubled BOS"):
        encode(gemma, ["<bos>" + format_prompt("hi", style="chat", tokenizer=gemma)])
    with pytest.raises(ValueError, match="holds 2 BOS tokens"):
        encode(gemma, [format_prompt("hi", style="chat", tokenizer=gemma) * 2])


def test_every_format_is_found_from_its_template_and_registered_by_name():
    for name, fmt in FORMATS.items():
        assert resolve_template(name) == fmt.template
        assert format_of(type("T", (), {"chat_template": fmt.template})()) is fmt
    assert format_of(type("T", (), {"chat_template": None})()) is None
