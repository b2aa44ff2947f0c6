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
