"""The test suite's time, as results files: ``make test`` leaves ``out/pytest_session.json`` and
``make test-e2e`` ``out/pytest_session_e2e.json`` (every test's time and outcome, the session's wall
time and workers; written by ``tests/conftest.py``), and

    python -m benchmarks.suite_times record [out/pytest_session.json] [--setup-seconds S]
    python -m benchmarks.suite_times record out/pytest_session_e2e.json

turn them into ``benchmarks/results_suite_cpu.json`` (``make test``) and
``benchmarks/results_suite_e2e_cpu.json`` (``make test-e2e``) with their provenance sidecars, which the
Tests page renders (total, counts per outcome, per tier, the slowest tests). Refuses a record of a
partial run (other files named, tests left out, an early stop): only a whole tier is `make test` or `make test-e2e`.
"""

import argparse
import json
from pathlib import Path

from benchmarks import provenance

OUT = provenance.ROOT / "benchmarks" / "results_suite_cpu.json"
#: the results file of each tier's record
OUTS = {"test": OUT, "e2e": provenance.ROOT / "benchmarks" / "results_suite_e2e_cpu.json"}
COMMANDS = {"test": "make test", "e2e": "make test-e2e"}
#: What the suite's time depends on, for the staleness rule: the test command and its configuration
#: (the code under test changes with nearly every commit; the page shows the commit it was measured at).
DEPENDS_ON = ["Makefile", "pyproject.toml", "tests/conftest.py"]


def summarise(session: dict, top: int = 15) -> dict:
    """Counts, totals per tier and the ``top`` slowest tests of a session record."""
    tests = session["tests"]
    counts: dict[str, int] = {}
    tiers: dict[str, float] = {}

    def total(t: dict) -> float:
        return t["setup"] + t["call"] + t["teardown"]
    for nodeid, t in tests.items():
        counts[t["outcome"]] = counts.get(t["outcome"], 0) + 1
        tier = nodeid.split("/")[1] if nodeid.startswith("tests/") and nodeid.count("/") >= 2 else "other"
        tiers[tier] = tiers.get(tier, 0.0) + total(t)
    slowest = sorted(tests.items(), key=lambda kv: -total(kv[1]))[:top]
    return {"tests": len(tests), "counts": counts, "test_seconds": round(sum(total(t) for t in tests.values()), 1),
            "wall_seconds": session["wall_seconds"], "by_tier_seconds": {k: round(v, 1) for k, v in sorted(tiers.items())},
            "slowest": [{"test": k, "seconds": round(total(v), 1), "setup": v["setup"], "call": v["call"]} for k, v in slowest],
            "exit_status": session["exit_status"], "date": session["date"], "commit": session["commit"],
            "tier": session.get("tier") or "test", "workers": session.get("workers", 0)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record", help="write the tier's benchmarks/results_suite_*.json from its session record")
    rec.add_argument("session", nargs="?", default=str(provenance.ROOT / "out" / "pytest_session.json"))
    rec.add_argument("--setup-seconds", type=float, default=None,
                     help="seconds spent building the environment before the tests (a clean clone's `make test`), as "
                          "the `time` of the whole command minus the session's wall time")
    rec.add_argument("--command", default=None, help="the command the session ran under (default: the tier's make target)")
    args = ap.parse_args(argv)
    session = json.loads(Path(args.session).read_text())
    if not session.get("whole_suite"):
        raise SystemExit(f"{args.session} records a partial run (arguments {session.get('args')}); run a whole tier "
                         "(`make test` or `make test-e2e`) to record its time")
    tier = session.get("tier") or "test"
    out, command = OUTS[tier], args.command or COMMANDS[tier]
    if session["exit_status"] not in (0, 1):  # 1: some tests failed (counted); anything else: the run did not complete
        raise SystemExit(f"{args.session}: pytest exited with status {session['exit_status']} (interrupted or broken); "
                         "record a completed run")
    import os
    import platform

    from interp.atomic import write_json_atomic

    payload = {"command": command,
               "machine": {"platform": platform.platform(), "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()},
               **summarise(session), "setup_seconds": args.setup_seconds}
    write_json_atomic(out, payload)
    provenance.record(out, command, DEPENDS_ON, session_commit=session["commit"])
    print(f"wrote {out}: {payload['tests']} tests, {payload['test_seconds']:.0f} s of tests, {payload['wall_seconds']:.0f} s wall")


if __name__ == "__main__":
    main()
