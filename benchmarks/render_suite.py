"""Rendered numbers of the test suite's own records (``benchmarks/results_suite_cpu.json`` and
``results_suite_e2e_cpu.json``, written by ``python -m benchmarks.suite_times record`` after ``make test``
and ``make test-e2e``): their time, counts and slowest tests.

:mod:`benchmarks.render` registers :data:`ENTRIES`.
"""

import json

from benchmarks.fmt import B, minutes, registry, table

__all__ = ["ENTRIES"]

SUITE = B / "results_suite_cpu.json"
SUITE_E2E = B / "results_suite_e2e_cpu.json"
LOAD = B / "results_load_cpu.jsonl"
TARGET_MINUTES = 12  # issue #34's target for `make test` on 2 cores, docs build included

ENTRIES, _entry = registry()


def _tier(path, target: bool) -> dict[str, str]:
    d = json.loads(path.read_text())
    c = d["counts"]
    counts = ", ".join(f"{n} {k}" for k, n in sorted(c.items(), key=lambda kv: -kv[1]))
    workers = d.get("workers") or 0
    out = {"tests": str(d["tests"]), "counts": counts, "test_time": minutes(d["test_seconds"]),
           "wall_time": minutes(d["wall_seconds"]), "command": d["command"],
           "workers": f"{workers} worker processes" if workers else "one process",
           "setup_time": minutes(d["setup_seconds"]) if d.get("setup_seconds") else "not recorded",
           "date": d["date"], "commit": d["commit"][:7] if d.get("commit") else "unknown",
           "cores": str(d.get("machine", {}).get("cpus", "?"))}
    if target:
        met = d["wall_seconds"] <= TARGET_MINUTES * 60  # the target: `make test`'s session, docs build included
        out |= {"target": f"{TARGET_MINUTES} min",
                "verdict": "within" if met else f"over, by a factor of {d['wall_seconds'] / (TARGET_MINUTES * 60):.1f},"}
    tiers = d["by_tier_seconds"]
    out["tiers"] = ", ".join(f"{k} {minutes(v)}" for k, v in tiers.items())
    out["slowest"] = table(["test", "time (setup, with the session fixtures it is first to use, + call)", "of which setup"],
                           [[f"`{r['test']}`", minutes(r["seconds"]), minutes(r["setup"])] for r in d["slowest"]])
    return out


@_entry("suite", SUITE)
def _suite() -> dict[str, str]:
    """``make test`` (unit + integration tiers, docs build included), against the 12-minute target."""
    return _tier(SUITE, target=True)


@_entry("suite_e2e", SUITE_E2E)
def _suite_e2e() -> dict[str, str]:
    """``make test-e2e`` (notebooks, quick demo, unmask CLI on the real pair)."""
    return _tier(SUITE_E2E, target=False)


@_entry("load", LOAD)
def _load() -> dict[str, str]:
    """``benchmarks/bench_load.py``: the default base's cold and warm load, bridge vs HF logits (last line)."""
    lines = [json.loads(x) for x in LOAD.read_text().splitlines() if x.strip()]
    r = lines[-1]
    return {"cold": f"{r['s_cold_load_with_conversion']:.1f} s", "warm": f"{r['s_warm_load']:.1f} s",
            "max_diff": "-" if r.get("max_abs_logit_diff_vs_hf_eager") is None else
            "0" if r["max_abs_logit_diff_vs_hf_eager"] == 0 else f"{r['max_abs_logit_diff_vs_hf_eager']:.1e}"}

