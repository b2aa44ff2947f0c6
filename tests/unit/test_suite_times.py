"""The suite's own record (tests/conftest.py) and its results file (benchmarks/suite_times.py)."""

import json

import pytest

from benchmarks import suite_times


def _session(**over):
    tests = {"tests/unit/test_a.py::test_x": {"setup": 1.0, "call": 2.0, "teardown": 0.0, "outcome": "passed"},
             "tests/unit/test_a.py::test_y": {"setup": 0.0, "call": 0.5, "teardown": 0.0, "outcome": "skipped"},
             "tests/integration/test_b.py::test_z": {"setup": 10.0, "call": 30.0, "teardown": 1.0, "outcome": "failed"}}
    return {"args": [], "whole_suite": True, "exit_status": 1, "python": "3.11", "date": "2026-12-04", "commit": "abc",
            "wall_seconds": 50.0, "tests": tests, **over}


def test_summary_counts_outcomes_tiers_and_the_slowest_with_their_setup():
    s = suite_times.summarise(_session(), top=2)
    assert s["tests"] == 3 and s["counts"] == {"passed": 1, "skipped": 1, "failed": 1}
    assert s["by_tier_seconds"] == {"integration": 41.0, "unit": 3.5} and s["test_seconds"] == 44.5
    assert [r["test"] for r in s["slowest"]] == ["tests/integration/test_b.py::test_z", "tests/unit/test_a.py::test_x"]
    assert s["slowest"][0]["setup"] == 10.0 and (s["date"], s["commit"]) == ("2026-12-04", "abc")


@pytest.mark.parametrize("over, message", [({"whole_suite": False, "args": ["-k", "x"]}, "partial run"),
                                           ({"exit_status": 2}, "status 2")])
def test_a_partial_or_interrupted_run_is_not_recorded(tmp_path, over, message):
    path = tmp_path / "session.json"
    path.write_text(json.dumps(_session(**over)))
    with pytest.raises(SystemExit, match=message):
        suite_times.main(["record", str(path)])


def test_this_session_is_being_recorded_per_phase():
    from tests import conftest

    mine = [k for k in conftest._SESSION["tests"] if k.endswith("test_summary_counts_outcomes_tiers_and_the_slowest_with_their_setup")]
    assert mine and set(conftest._SESSION["tests"][mine[0]]) == {"setup", "call", "teardown", "outcome"}


@pytest.mark.parametrize("tier, command", [("test", "make test"), ("e2e", "make test-e2e"), (None, "make test")])
def test_each_tier_is_recorded_into_its_own_file(tmp_path, monkeypatch, tier, command):
    outs = {"test": tmp_path / "suite.json", "e2e": tmp_path / "suite_e2e.json"}
    recorded = []
    monkeypatch.setattr(suite_times, "OUTS", outs)
    monkeypatch.setattr(suite_times.provenance, "record", lambda path, cmd, deps, **kw: recorded.append((path, cmd)))
    path = tmp_path / "session.json"
    path.write_text(json.dumps(_session(**({"tier": tier, "workers": 2} if tier else {}))))  # None: a record from before tiers
    suite_times.main(["record", str(path)])
    out = outs[tier or "test"]
    written = json.loads(out.read_text())
    assert recorded == [(out, command)] and written["command"] == command and written["tier"] == (tier or "test")
    assert written["workers"] == (2 if tier else 0) and not outs["e2e" if tier != "e2e" else "test"].exists()
