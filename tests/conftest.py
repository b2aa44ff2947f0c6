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
    under out/). Only a run of the whole suite (no arguments, no -k/-m) is a record of `make test`."""
    import json
    import sys
    import time

    from interp.atomic import atomic_write

    if "start" not in _SESSION or not _SESSION["tests"]:
        return
    args = [str(a) for a in session.config.invocation_params.args]
    whole = not args and not session.config.getoption("keyword") and not session.config.getoption("markexpr")
    record = {"args": args, "whole_suite": whole, "exit_status": int(exitstatus), "python": sys.version.split()[0],
              "date": _SESSION["date"], "commit": _SESSION["commit"], "wall_seconds": round(time.time() - _SESSION["start"], 1),
              "tests": {k: {**{p: round(v[p], 2) for p in ("setup", "call", "teardown")}, "outcome": v["outcome"]}
                        for k, v in _SESSION["tests"].items()}}
    out = Path(__file__).resolve().parents[1] / "out"
    out.mkdir(exist_ok=True)
    atomic_write(out / ("pytest_session.json" if whole else "pytest_session_partial.json"), json.dumps(record, indent=0))
