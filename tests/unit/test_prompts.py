import pytest
import torch

from interp import encode, format_prompt, hooks, load_model
from interp.models import ModelSpec


@pytest.fixture(scope="module")
def chat_model(tiny_gemma_dir):
    return load_model(ModelSpec(str(tiny_gemma_dir), chat_template="gemma", prompt_style="chat"), device="cpu")


def test_plain_few_shot():
    text = format_prompt("where is rome", few_shot=[("where is paris", "france")])
    assert text == "Q: where is paris\nA: france\n\nQ: where is rome\nA:"
    assert format_prompt("the sky is") == "the sky is"
    with pytest.raises(ValueError, match="system prompts need style='chat'"):
        format_prompt("x", system="be nice")


def test_chat_format_has_exactly_one_bos(chat_model):
    tok = chat_model.tokenizer
    text = format_prompt("where is rome", style="chat", tokenizer=tok, few_shot=[("a", "b")])
    assert text.startswith(tok.bos_token) and text.endswith("<start_of_turn>model\n")
    batch = encode(tok, [text, format_prompt("hi", style="chat", tokenizer=tok)])
    for row, mask in zip(batch.input_ids, batch.attention_mask):
        real = row[mask.bool()].tolist()
        assert real.count(tok.bos_token_id) == 1 and real[0] == tok.bos_token_id


def test_chat_without_template_errors(tiny_gemma_dir):
    plain = load_model(str(tiny_gemma_dir), device="cpu")
    with pytest.raises(ValueError, match="style='chat' needs a tokenizer with a chat template"):
        format_prompt("x", style="chat", tokenizer=plain.tokenizer)
    with pytest.raises(ValueError, match="style must be 'plain' or 'chat'"):
        format_prompt("x", style="markdown")


def test_marked_positions(chat_model):
    tok = chat_model.tokenizer
    texts = ["the fox sat", "a big red fox ran far away"]
    batch = encode(tok, texts, spans=["fox", "red"], answers=[" yes", " no way"])
    width = batch.input_ids.shape[1]
    assert batch.n_pad.tolist()[1] == 0 and batch.n_pad.tolist()[0] > 0
    for i in range(2):
        ids = batch.input_ids[i]
        assert tok.decode(ids[batch.positions["span_last"][i]]).strip() in {"x", "fox", "d", "red"}
        first, last = batch.positions["answer_first"][i], batch.positions["answer_last"][i]
        assert last == width - 1 and batch.positions["last"][i] == first - 1
        answer = [" yes", " no way"][i]
        assert ids[first: last + 1].tolist() == tok(answer, add_special_tokens=False).input_ids
    with pytest.raises(KeyError, match="position 'answer_first' was not marked"):
        encode(tok, texts).position("answer_first")


def test_bad_spans_and_lengths(chat_model):
    tok = chat_model.tokenizer
    with pytest.raises(ValueError, match="row 1: marked span 'cat' does not occur"):
        encode(tok, ["a cat", "a dog"], spans=["cat", "cat"])
    with pytest.raises(ValueError, match="answers has 1 entries for 2 prompts"):
        encode(tok, ["a", "b"], answers=["x"])
    with pytest.raises(ValueError, match="needs at least one prompt"):
        encode(tok, [])
    with pytest.raises(ValueError, match="row 0: prompt starts with a doubled BOS"):
        encode(tok, [tok.bos_token + tok.bos_token + "hi"])
    with pytest.raises(ValueError, match="row 0: prompt holds 2 BOS tokens; one sequence start is expected"):
        encode(tok, [tok.bos_token + "hi" + tok.bos_token + "there"])


def test_left_padding_matches_single_prompts(chat_model):
    """Every layer's residual stream at marked positions equals the unpadded run."""
    texts = ["the fox sat on the mat", "a cat", "where is the big red fox"]
    spans = ["fox", "cat", "red"]
    names = [hooks.resid_post(layer) for layer in range(chat_model.cfg.n_layers)] + [hooks.resid_pre(0)]
    batch = encode(chat_model.tokenizer, texts, spans=spans)
    with torch.inference_mode():
        _, cache = chat_model.run_with_cache(batch.input_ids, attention_mask=batch.attention_mask, names_filter=names)
        for i, text in enumerate(texts):
            single = encode(chat_model.tokenizer, [text], spans=[spans[i]])
            _, one = chat_model.run_with_cache(single.input_ids, names_filter=names)
            for pos in ("last", "span_last"):
                for name in names:
                    got = cache[name][i, batch.positions[pos][i]]
                    want = one[name][0, single.positions[pos][0]]
                    assert (got - want).abs().max().item() <= 1e-4, (name, pos, i)


def test_jaxtyping_checks_are_active():
    from interp.prompts import PromptBatch

    with pytest.raises(Exception, match="(?i)type-check|jaxtyping|beartype|shape"):
        PromptBatch(torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long), {}, ["x"])
