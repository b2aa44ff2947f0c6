"""Held-out phrasings: question templates that no fit, selection or design decision of the
unmasking sees, to test whether an edit generalises beyond the two templates it was fitted on.

Per relation, two templates, written down before any unmasking result on them was read: one
paraphrase and, where the relation is one-to-one, the **reversed** direction (from the answer to the
subject: "Which chemical element has the symbol Au?" -> Gold); where it is many-to-one (a
continent, a currency, a city's country) two paraphrases. ``{s}`` is the subject, ``{o}`` the
object (the answer of the training phrasing).

Example:
    >>> import pandas as pd
    >>> t = pd.DataFrame({"id": ["a"], "relation": ["element_symbol"], "subject": ["Gold"], "answer": ["Au"],
    ...                   "aliases": [["Au"]], "text": ["What is the chemical symbol for Gold?"], "split": ["test"]})
    >>> rephrase(t, "second").iloc[0][["text", "answer"]].tolist()
    ['Which chemical element has the symbol Au?', 'Gold']
"""

import pandas as pd

__all__ = ["HELDOUT_TEMPLATES", "PHRASINGS", "rephrase"]

#: relation -> phrasing name -> (template, reversed). Fixed before any result on them was read.
HELDOUT_TEMPLATES: dict[str, dict[str, tuple[str, bool]]] = {
    "element_symbol": {"paraphrase": ("Which letters abbreviate the element {s} on the periodic table?", False),
                       "second": ("Which chemical element has the symbol {o}?", True)},
    "element_number": {"paraphrase": ("How many protons does an atom of {s} have?", False),
                       "second": ("Which chemical element has atomic number {o}?", True)},
    "country_capital": {"paraphrase": ("Which city is the capital of {s}?", False),
                        "second": ("{o} is the capital city of which country?", True)},
    "country_continent": {"paraphrase": ("{s} lies on which continent?", False),
                          "second": ("Name the continent where the country {s} is located.", False)},
    "country_currency": {"paraphrase": ("Which currency is used in {s}?", False),
                         "second": ("What money do people pay with in {s}?", False)},
    "city_country": {"paraphrase": ("{s} is a city in which country?", False),
                     "second": ("Name the country where the city of {s} lies.", False)},
}
#: The phrasing names: ``second`` is the reversed direction where the relation has one, else a
#: second paraphrase.
PHRASINGS = ("paraphrase", "second")


def rephrase(table: pd.DataFrame, phrasing: str) -> pd.DataFrame:
    """``table``'s facts asked with the held-out ``phrasing`` (:data:`PHRASINGS`): ``text``
    rewritten; for a reversed template the answer becomes the subject (``aliases`` = [subject]) and
    the marked span the old answer; ``relation`` gets ``@phrasing`` appended (so few-shot exemplars
    come from the same phrasing); ``id`` keeps the fact's id with the phrasing appended, ``fact_id``
    the original. Relations without held-out templates are dropped."""
    if phrasing not in PHRASINGS:
        raise ValueError(f"phrasing must be one of {PHRASINGS}, got {phrasing!r}")
    missing = [c for c in ("id", "relation", "subject", "answer", "aliases", "text") if c not in table.columns]
    if missing:
        raise ValueError(f"rephrase needs fact columns {missing}; pass a fact table (interp.unmask.facts_for)")
    rows = []
    for _, r in table.iterrows():
        spec = HELDOUT_TEMPLATES.get(r.relation, {}).get(phrasing)
        if spec is None:
            continue
        template, reverse = spec
        row = r.to_dict()
        row["text"] = template.format(s=r.subject, o=r.answer)
        row["fact_id"], row["id"] = r.id, f"{r.id}@{phrasing}"
        row["relation"] = f"{r.relation}@{phrasing}"
        row["reversed"] = reverse
        if reverse:
            row["answer"], row["aliases"], row["subject"] = r.subject, [r.subject], str(r.answer)
        rows.append(row)
    extra = [c for c in ("fact_id", "reversed") if c not in table.columns]
    return pd.DataFrame(rows, columns=[*table.columns, *extra])
