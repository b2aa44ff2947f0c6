"""Rendered numbers of the test suite's own record (``benchmarks/results_suite_cpu.json``, written by
``python -m benchmarks.suite_times record`` after ``make test``): its time, counts and slowest tests.

:mod:`benchmarks.render` registers :data:`ENTRIES`.
"""

import json
from collections.abc import Callable
from pathlib import Path

from benchmarks.fmt import B, table

__all__ = ["ENTRIES"]

SUITE = B / "results_suite_cpu.json"
TARGET_MINUTES = 12  # issue #34's target for `make test` on 2 cores, docs build included

ENTRIES: dict[str, tuple[list[Path], Callable[[], dict[str, str]]]] = {}


def _minutes(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s} s" if m else f"{s} s"


def _suite() -> dict[str, str]:
    d = json.loads(SUITE.read_text())
    c = d["counts"]
    counts = ", ".join(f"{n} {k}" for k, n in sorted(c.items(), key=lambda kv: -kv[1]))
    met = d["test_seconds"] <= TARGET_MINUTES * 60
    out = {"tests": str(d["tests"]), "counts": counts, "test_time": _minutes(d["test_seconds"]),
           "wall_time": _minutes(d["wall_seconds"]), "target": f"{TARGET_MINUTES} min",
           "verdict": "within" if met else f"over, by a factor of {d['test_seconds'] / (TARGET_MINUTES * 60):.1f},",
           "setup_time": _minutes(d["setup_seconds"]) if d.get("setup_seconds") else "not recorded",
           "date": d["date"]}
    tiers = d["by_tier_seconds"]
    out["tiers"] = ", ".join(f"{k} {_minutes(v)}" for k, v in tiers.items())
    out["slowest"] = table(["test", "time"], [[f"`{r['test']}`", _minutes(r["seconds"])] for r in d["slowest"]])
    return out


ENTRIES["suite"] = ([SUITE], _suite)
