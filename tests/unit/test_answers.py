"""The answer classifier on hand-written cases (rules in interp.behavior.answers)."""

import pytest

from interp.behavior import classify, is_correct, normalize


@pytest.mark.parametrize(
    "response, answers, expected",
    [
        (" Paris, France. It is the capital", ["Paris"], "correct"),
        ("The capital of France is Paris.", ["Paris"], "correct"),
        (" Au.\n\nThe formula for gold", ["Au"], "correct"),
        (" 6.", ["6"], "correct"),
        (" 60 protons", ["6"], "wrong"),  # whole words only
        ("São Paulo", ["Sao Paulo"], "correct"),  # accents
        ("Nuku’alofa", ["Nuku'alofa"], "correct"),  # apostrophes
        (" the United States", ["United States"], "correct"),  # articles
        ("Lyon", ["Paris"], "wrong"),
        ("", ["Paris"], "wrong"),
        ("\nParis", ["Paris"], "correct"),  # leading newline: first non-empty line
        ("Rome.\nParis.", ["Paris"], "wrong"),  # only the first line counts
        ("I don't know.", ["Paris"], "idk"),
        ("I’m not sure.", ["Paris"], "idk"),
        ("I'm sorry, but I can't help with chemistry questions.", ["Au"], "refusal"),
        ("I cannot provide that information.", ["Au"], "refusal"),
        ("As an AI, I won't answer.", ["Au"], "refusal"),
        ("I'm sorry, I don't know.", ["Au"], "refusal"),  # refusal wins over abstention
    ],
)
def test_classify(response, answers, expected):
    assert classify(response, answers) == expected


def test_normalize_and_aliases():
    assert normalize("  The  Côte d'Ivoire! ") == "cote d ivoire"
    assert is_correct("It is in the USA.", ["United States", "USA"])
    assert not is_correct("Paris", [""])


def test_answer_logprobs_unembeds_only_the_answer_positions_and_matches_the_full_softmax(tiny_gemma_dir):
    import torch

    from interp import load_model
    from interp.behavior import answer_logprobs
    from interp.prompts import encode

    model = load_model(tiny_gemma_dir, device="cpu", dtype=torch.float32)
    texts, answers = ["a b c d e f", "q r", "x y z"], [" k", " m n o", " p q"]
    b = encode(model.tokenizer, texts, answers=answers)
    with torch.inference_mode():
        logp = torch.log_softmax(model(b.input_ids, attention_mask=b.attention_mask).float(), -1)
    want_mean, want_min = [], []
    for i in range(len(texts)):
        pos = torch.arange(int(b.position("answer_first")[i]), int(b.position("answer_last")[i]) + 1)
        lp = logp[i, pos - 1, b.input_ids[i, pos]]
        want_mean.append(float(lp.mean()))
        want_min.append(float(lp.min()))
    assert len({int(n) for n in b.position("answer_last") - b.position("answer_first")}) > 1  # lengths differ
    mean, low = answer_logprobs(model, b)
    assert torch.allclose(mean, torch.tensor(want_mean), atol=1e-5) and torch.allclose(low, torch.tensor(want_min), atol=1e-5)
    seen = []
    with model.hooks(fwd_hooks=[("blocks.0.hook_resid_post", lambda act, hook: seen.append(act.shape) or act)]):
        mean_hooked, _ = answer_logprobs(model, b)  # through the bridge: the hook sees every position
    assert seen and seen[0][1] == b.input_ids.shape[1]
    assert torch.allclose(mean_hooked, mean, atol=1e-5)


def test_remembered_answers_generate_only_what_these_weights_have_not_answered(tiny_gemma_dir, tmp_path, monkeypatch):
    import torch

    import interp.behavior.memo as memo
    from interp import load_model
    from interp.behavior import generate

    monkeypatch.setenv("INTERP_CACHE", str(tmp_path))
    model = load_model(tiny_gemma_dir, device="cpu", dtype=torch.float32)
    asked: list[list[str]] = []
    real = memo.generate
    monkeypatch.setattr(memo, "generate", lambda m, p, **kw: asked.append(list(p)) or real(m, p, **kw))
    first = memo.remembered_answers(model, ["a b", "c d"], max_new_tokens=3)
    assert first == generate(model, ["a b", "c d"], max_new_tokens=3)
    again = memo.remembered_answers(model, ["c d", "e f", "a b"], max_new_tokens=3)
    assert asked == [["a b", "c d"], ["e f"]]  # only the new prompt was generated
    assert again == [first[1], generate(model, ["e f"], max_new_tokens=3)[0], first[0]]
    memo.remembered_answers(model, ["a b"], max_new_tokens=4)  # another length: asked again
    with torch.no_grad():  # other weights: nothing is reused
        next(model.original_model.parameters()).add_(0.5)
    memo.remembered_answers(model, ["a b"], max_new_tokens=3)
    assert asked[2:] == [["a b"], ["a b"]] and len(list((tmp_path / "answers").glob("*.json"))) == 3
    assert not list((tmp_path / "answers").glob(".*tmp*"))
    # Every other part of the key: another package version, other generation code, hooks.
    import interp.versions

    memo.remembered_answers(model, ["a b"], max_new_tokens=3)
    assert len(asked) == 4  # the same key: read back
    real_versions = interp.versions.versions
    monkeypatch.setattr(interp.versions, "versions", lambda: {**real_versions(), "transformers": "9.9.9"})
    memo.remembered_answers(model, ["a b"], max_new_tokens=3)
    monkeypatch.setattr(interp.versions, "versions", real_versions)
    monkeypatch.setattr(memo, "GENERATION_CODE", memo.GENERATION_CODE + ("interp.behavior.answers",))
    memo.remembered_answers(model, ["a b"], max_new_tokens=3)
    assert asked[4:] == [["a b"], ["a b"]] and len(list((tmp_path / "answers").glob("*.json"))) == 5
    with model.hooks(fwd_hooks=[("blocks.0.hook_resid_post", lambda act, hook: act)]):
        memo.remembered_answers(model, ["a b"], max_new_tokens=3)  # hooked: generated, nothing read or written
    handle = model.original_model.model.layers[0].register_forward_hook(lambda m, a, o: o)
    try:
        memo.remembered_answers(model, ["a b"], max_new_tokens=3)
    finally:
        handle.remove()
    assert asked[6:] == [["a b"], ["a b"]] and len(list((tmp_path / "answers").glob("*.json"))) == 5


def test_sampled_generation_draws_from_the_softmax_and_is_seeded(tiny_gemma_dir):
    import torch

    from interp import load_model
    from interp.behavior import generate
    from interp.behavior.generate import sample_scores

    logits = torch.tensor([[1.0, 0.2, -0.5, 2.0, -3.0]])
    picks = sample_scores(logits.expand(200_000, 5).contiguous(), 0.7)
    assert torch.isinf(picks).sum(-1).eq(4).all() and picks.max() == 0  # one token per row
    freq = torch.bincount(picks.argmax(-1), minlength=5).double() / len(picks)
    assert torch.allclose(freq, torch.softmax(logits.double()[0] / 0.7, -1), atol=0.005)
    model = load_model(tiny_gemma_dir, device="cpu", dtype=torch.float32)
    one = generate(model, ["a b", "c d e"], max_new_tokens=6, do_sample=True, num_samples=3, seed=1)
    assert one == generate(model, ["a b", "c d e"], max_new_tokens=6, do_sample=True, num_samples=3, seed=1)
    assert [len(s) for s in one] == [3, 3] and len({tuple(s) for s in one}) == 2
    assert one != generate(model, ["a b", "c d e"], max_new_tokens=6, do_sample=True, num_samples=3, seed=2)


def test_two_level_sampling_is_the_one_level_inverse_cdf():
    """Blocks of 1024 over a 2,500-token vocabulary (the last block padded): the same uniform draw
    picks the token a float64 softmax and one cumulative sum over the whole vocabulary picks."""
    import torch

    from interp.behavior.generate import sample_scores

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4000, 2500, generator=gen) * 3
    logits[:, 2400:] += 6  # mass in the padded last block too
    torch.manual_seed(5)
    got = sample_scores(logits, 0.8).argmax(-1)
    torch.manual_seed(5)
    u = torch.rand(4000, 1, dtype=torch.float64)
    cdf = torch.softmax(logits.double() / 0.8, -1).cumsum(-1)
    want = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp_max(2499)[:, 0]
    assert (got == want).double().mean() > 0.999
    assert got.max() < 2500 and (got >= 2400).any() and (got < 1024).any()
