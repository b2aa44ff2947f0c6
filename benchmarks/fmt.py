"""Formatting helpers for the rendered documentation numbers (:mod:`benchmarks.render` and the entry
modules beside it): reading results files, numbers for prose, Markdown tables."""

import csv
import json
import math
import re
from pathlib import Path

from benchmarks import provenance

B = provenance.ROOT / "benchmarks"

__all__ = ["B", "jsonl", "rows_csv", "num", "f", "g", "rng", "table", "wilson", "span", "pct", "minutes", "registry"]


def jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in (B / name).read_text().splitlines() if line.strip()]


def rows_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(x) -> float | None:
    if x is None or x == "":
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def f(x, spec: str = ".2f") -> str:
    v = num(x)
    return "-" if v is None else format(v, spec)


def g(x) -> str:
    """A small difference in scientific notation: ``6e-08``, ``0`` for zero."""
    v = num(x)
    if v is None:
        return str(x)
    return "0" if v == 0 else f"{v:.0e}"


def rng(values, spec: str = ".2f") -> str:
    vals = [num(v) for v in values if num(v) is not None]
    if not vals:
        return "-"
    lo, hi = min(vals), max(vals)
    return format(lo, spec) if format(lo, spec) == format(hi, spec) else f"{lo:{spec}}-{hi:{spec}}"


def table(header: list[str], rows: list[list]) -> str:
    def cell(v):
        return str(v).replace("|", "\\|").replace("\n", " ")
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def wilson(p: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    k = p * n
    den = 1 + z * z / n
    centre = (k / n + z * z / (2 * n)) / den
    half = z * math.sqrt(k / n * (1 - k / n) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def span(values, spec: str) -> str:
    """``low to high`` (readable with negative numbers); one value where they round alike."""
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return "-"
    lo, hi = (re.sub(r"^-(0\.0*)$", r"\1", format(v, spec)) for v in (vals[0], vals[-1]))
    return lo if lo == hi else f"{lo} to {hi}"


def pct(x, spec: str = ".0f") -> str:
    v = num(x)
    return "-" if v is None else format(100 * v, spec) + "%"


def minutes(seconds: float) -> str:
    """``43 min 32 s`` (``12 s`` under a minute)."""
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s} s" if m else f"{s} s"


def registry():
    """An entry module's ``(ENTRIES, entry)``: ``@entry(name, *files)`` adds ``name -> (files, fn)``;
    :mod:`benchmarks.render` registers the module's ``ENTRIES``."""
    entries: dict = {}

    def entry(name: str, *files: Path):
        def wrap(fn):
            entries[name] = (list(files), fn)
            return fn
        return wrap
    return entries, entry
