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

**The strict judge** (:func:`is_correct_strict`, :func:`classify_strict`) credits an answer only as the
response's leading content: after trivial openers ("The answer is", "It is", "Answer:") the
response must *begin* with the answer, so a symbol or number is the whole leading token (" Au."
credits Au; " I think it is Au" does not); an answer that is a word of the question (an echo) is
never credited; a refusal or abstention is never correct. :func:`surface_derivable` flags answers
that can be read off the question's surface (a chemical symbol that is the element name's first
letters).

Example:
    >>> from interp.behavior.answers import classify, is_correct_strict
    >>> is_correct_strict(" Au.", ["Au"], question="What is the chemical symbol for gold?")
    True
    >>> is_correct_strict(" I think it is Au", ["Au"], question="What is the chemical symbol for gold?")
    False
    >>> classify(" Paris, France. It is", ["Paris"])
    'correct'
    >>> classify("I'm sorry, but I can't help with chemistry questions.", ["Au"])
    'refusal'
"""

import re
import unicodedata
from collections.abc import Iterable

__all__ = ["normalize", "is_correct", "is_correct_strict", "is_refusal", "is_idk", "classify", "classify_strict",
           "surface_derivable", "CLASSES"]

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


_OPENERS = re.compile(r"^(?:(?:the )?answer(?: is)?|it(?: is|'s)|that(?: is|'s)|this is|its symbol is|"
                      r"symbol(?: is)?|capital(?: is)?)\b\s*[:\-]?\s*", flags=re.IGNORECASE)


def _after_openers(response: str) -> str:
    """The response's first line with trivial openers ("The answer is", "It is", "Answer:") removed."""
    line = _head(response).strip().replace("\u2019", "'")
    for _ in range(3):
        new = _OPENERS.sub("", line).strip()
        if new == line:
            break
        line = new
    return line


def is_correct_strict(response: str, answers: Iterable[str], *, question: str = "") -> bool:
    """Whether the response *begins* with an accepted answer (after trivial openers), the answer is
    not a word of ``question`` (an echo), and the response is neither a refusal nor an abstention.
    Symbols and numbers (one short token) must be the whole leading token."""
    if is_refusal(response) or is_idk(response):
        return False
    line = _after_openers(response)
    words = normalize(line).split()
    asked = set(normalize(question).split())
    x_raw = {normalize(x): x.strip() for x in answers}
    for a in x_raw:
        if not a:
            continue
        want = a.split()
        if len(want) == 1 and want[0] in asked:
            continue  # an echo of the question is not an answer
        if words[: len(want)] != want:
            continue
        alone = re.match(re.escape(x_raw[a]) + r"\s*($|[.,;:!?)\]])", line, flags=re.IGNORECASE)
        if len(want) == 1 and (len(want[0]) <= 3 or want[0].isdigit()) and not alone:
            continue  # a symbol or number must stand alone: " I think ..." is not the answer "I"
        return True
    return False


def classify_strict(response: str, answers: Iterable[str], *, question: str = "") -> str:
    """:func:`classify` with the strict judge for ``correct``."""
    if is_refusal(response):
        return "refusal"
    if is_idk(response):
        return "idk"
    return "correct" if is_correct_strict(response, answers, question=question) else "wrong"


def surface_derivable(answer: str, subject: str) -> bool:
    """True when ``answer`` can be read off the subject's surface: a short capitalised symbol that is
    the subject's first letters (hydrogen -> H, beryllium -> Be, silicon -> Si)."""
    a, s = answer.strip(), subject.strip()
    return 1 <= len(a) <= 3 and a[:1].isupper() and s.lower().startswith(a.lower())
