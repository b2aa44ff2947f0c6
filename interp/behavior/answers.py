"""Classify a model's response: correct answer / wrong answer / "I don't know" / refusal.

Rules (applied to the response's first line, at most its first 20 words):

1. **refusal** if it matches a refusal phrase ("I'm sorry", "I can't help", "I cannot", "I won't",
   "I am unable", "as an AI", ...);
2. **idk** if it matches an abstention phrase ("I don't know", "I do not know", "I'm not sure",
   "no idea", "unknown");
3. **correct** if any accepted answer (the object or one of its aliases), normalised, occurs in
   the normalised response as whole words;
4. **wrong** otherwise (including empty responses).

Normalisation: Unicode NFKD without accents, lower case, punctuation to spaces, the articles
"the / a / an" dropped, whitespace collapsed.

Example:
    >>> from interp.behavior.answers import classify
    >>> classify(" Paris, France. It is", ["Paris"])
    'correct'
    >>> classify("I'm sorry, but I can't help with chemistry questions.", ["Au"])
    'refusal'
"""

import re
import unicodedata
from collections.abc import Iterable

__all__ = ["normalize", "is_correct", "is_refusal", "is_idk", "classify", "CLASSES"]

CLASSES: tuple[str, ...] = ("correct", "wrong", "idk", "refusal")

_REFUSAL = re.compile(
    r"\b(i'?m sorry|i am sorry|i apologi[sz]e|i can'?t help|i cannot|i can ?not|i won'?t|i will not|"
    r"i am unable|i'?m unable|i'?m not able to|i am not able to|as an ai|can'?t assist|cannot assist|"
    r"can'?t provide|cannot provide|not able to help)\b"
)
_IDK = re.compile(r"\b(i don'?t know|i do not know|i'?m not sure|i am not sure|no idea|not certain|unknown)\b")
_ARTICLES = re.compile(r"\b(the|a|an)\b")


def normalize(text: str) -> str:
    """Lower-case, accent-free, punctuation-free, article-free, single-spaced."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"[^\w\s]", " ", text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _head(response: str) -> str:
    line = next((ln for ln in response.strip().splitlines() if ln.strip()), "")
    return " ".join(line.split()[:20])


def _plain(response: str) -> str:
    return _head(response).lower().replace("\u2019", "'")


def is_refusal(response: str) -> bool:
    return bool(_REFUSAL.search(_plain(response)))


def is_idk(response: str) -> bool:
    return bool(_IDK.search(_plain(response)))


def is_correct(response: str, answers: Iterable[str]) -> bool:
    """Whether any accepted answer occurs (as whole words) in the response's first line."""
    head = f" {normalize(_head(response))} "
    return any(f" {a} " in head for a in (normalize(x) for x in answers) if a)


def classify(response: str, answers: Iterable[str]) -> str:
    """One of :data:`CLASSES` (rules in the module docstring)."""
    if is_refusal(response):
        return "refusal"
    if is_idk(response):
        return "idk"
    return "correct" if is_correct(response, answers) else "wrong"
