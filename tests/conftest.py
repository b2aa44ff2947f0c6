"""Shared fixtures: tiny models for the unit tier, the real default base for integration."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from tests import tiny


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> Path:
    """A private INTERP_CACHE for conversions of tiny models."""
    return tmp_path_factory.mktemp("interp-cache")


@pytest.fixture
def use_tiny_cache(tiny_cache, monkeypatch) -> Path:
    monkeypatch.setenv("INTERP_CACHE", str(tiny_cache))
    return tiny_cache


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory):
    """(path, reference HF model) of a tiny Llama GGUF written with the gguf package."""
    path = tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf"
    ref = tiny.write_tiny_llama_gguf(path)
    return path, ref


@pytest.fixture(scope="session")
def tiny_llama_dir(tiny_gguf, tiny_cache) -> Path:
    """The tiny Llama converted to an HF folder (tokenizer included)."""
    import os

    from interp.models.gguf import convert_gguf

    old = os.environ.get("INTERP_CACHE")
    os.environ["INTERP_CACHE"] = str(tiny_cache)
    try:
        return convert_gguf(tiny_gguf[0])
    finally:
        if old is None:
            del os.environ["INTERP_CACHE"]
        else:
            os.environ["INTERP_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_gemma_dir(tiny_llama_dir, tmp_path_factory) -> Path:
    """A tiny random Gemma-3 HF folder sharing the tiny Llama's tokenizer."""
    out = tmp_path_factory.mktemp("tiny-gemma3")
    return tiny.save_hf_dir(tiny.tiny_gemma3(seed=1), tiny_llama_dir, out)


# --- the suite's own record: out/pytest_session.json (rendered on the Tests page after
# `python -m benchmarks.suite_times record`) ------------------------------------------------------

_SESSION: dict = {"tests": {}}


def pytest_configure(config):
    """Under pytest-xdist (`make test`: one worker per core), each worker computes with its share of the
    cores, and so do the subprocesses and notebook kernels it starts: two workers with two torch threads
    each on 2 cores would oversubscribe them."""
    import os

    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if os.environ.get("PYTEST_XDIST_WORKER") and workers:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        share = max(1, cores // int(workers))
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, str(share))
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_sessionstart(session):
    import datetime
    import subprocess
    import time

    _SESSION["start"] = time.time()
    _SESSION["date"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    git = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent)
    _SESSION["commit"] = git.stdout.strip() if git.returncode == 0 else None


def pytest_runtest_logreport(report):
    """Per test: the seconds of each phase (setup includes the session fixtures it is first to use)
    and the outcome: passed, failed, error (in setup or teardown), skipped, xfailed."""
    entry = _SESSION["tests"].setdefault(report.nodeid, {"setup": 0.0, "call": 0.0, "teardown": 0.0, "outcome": "passed"})
    entry[report.when] += report.duration
    if report.failed:
        entry["outcome"] = "failed" if report.when == "call" else "error"
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "xfailed" if hasattr(report, "wasxfail") else "skipped"


def pytest_sessionfinish(session, exitstatus):
    """Every test's time per phase and outcome, the session's date, commit and wall time (atomically,
    under out/). Only a whole tier (`make test` or `make test-e2e`, nothing left out) is a record of that command."""
    import json
    import os
    import sys
    import time

    from _pytest.config import Config

    from interp.atomic import atomic_write

    if "start" not in _SESSION or not _SESSION["tests"] or os.environ.get("PYTEST_XDIST_WORKER"):
        return  # a pytest-xdist worker: the controller records the session (its reports carry every test)
    args = [str(a) for a in session.config.invocation_params.args]
    # A whole tier: `make test` (pyproject's test paths, nothing named) or `make test-e2e` (tests/e2e,
    # and only it, named), with nothing left out and no early stop (-k, -m, --deselect, --ignore, --lf,
    # --sw, -x/--maxfail); anything else is a partial run.
    leaves_out = ("keyword", "markexpr", "deselect", "ignore", "ignore_glob", "lf", "stepwise", "maxfail")
    unfiltered = not any(session.config.getoption(o, default=None) for o in leaves_out)
    named = [Path(a).resolve() for a in session.config.args]
    tier = None
    if unfiltered and session.config.args_source == Config.ArgsSource.TESTPATHS:
        tier = "test"
    elif unfiltered and named == [Path(__file__).resolve().parent / "e2e"]:
        tier = "e2e"
    whole = tier is not None
    workers = getattr(session.config.option, "numprocesses", None) or 0
    record = {"args": args, "tier": tier, "whole_suite": whole, "workers": int(workers), "exit_status": int(exitstatus),
              "python": sys.version.split()[0],
              "date": _SESSION["date"], "commit": _SESSION["commit"], "wall_seconds": round(time.time() - _SESSION["start"], 1),
              "tests": {k: {**{p: round(v[p], 2) for p in ("setup", "call", "teardown")}, "outcome": v["outcome"]}
                        for k, v in _SESSION["tests"].items()}}
    out = Path(__file__).resolve().parents[1] / "out"
    out.mkdir(exist_ok=True)
    name = {"test": "pytest_session.json", "e2e": "pytest_session_e2e.json"}.get(tier, "pytest_session_partial.json")
    atomic_write(out / name, json.dumps(record, indent=0))
