"""``interp unmask --json`` on the real default pair, with the pair's shipped fit (end-to-end tier:
a subprocess that selects the sets, runs three families and the pre-registered headline)."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_unmask_json_interface(tmp_path):
    # Three families (every family runs in the demo and notebook 04): the interface, not the science.
    run = subprocess.run([sys.executable, "-m", "interp.cli", "unmask", "--n", "2", "--guard", "4", "--doses", "1,4", "--json",
                          "--out", str(tmp_path), "--methods", "direction,lowrank,prefill"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [json.loads(x) for x in run.stdout.strip().splitlines()]
    # the last two lines: the controls of the pre-registered method, then that method (strict judge)
    controls, best = lines[-2]["controls"], lines[-1]["best"]
    assert set(controls) >= {"never_knew", "shuffled", "random", "strict_heldout_templates", "refused", "abstained"}
    assert set(best) >= {"method", "gap_recovered", "kl", "guard_accuracy_drop", "n"} and best["strict"] is True
    assert best["n"] == 2 and best["n_guard"] == 4 and best["selected_on"].startswith("train facts")
    for mask in ("refused", "abstained"):
        pre = best["by_mask"][mask]
        assert pre["ci"][0] - 1e-9 <= pre["gap_recovered"] <= pre["ci"][1] + 1e-9
        for name in ("never_knew", "shuffled", "random", "unrelated", "quantized_8bit", "quantized_4bit"):
            v = controls[mask][name]
            assert v is None or 0.0 <= v <= 1.0, (mask, name, v)
    lines = lines[:-3]  # the exploratory best precedes them
    methods = [x["method"] for x in lines]
    assert methods == ["none", "direction", "lowrank", "prefill"]  # the aligned model itself, then what was asked
    for line in lines:
        for mask in ("refused", "abstained"):
            row = line[mask]
            assert row["n"] >= 1 and (row["gap_recovered"] is None or -1.0 <= row["gap_recovered"] <= 1.0 + 1e-9)
            # every rate carries its interval: the paired guard-drop bootstrap and Wilson on abstention kept
            assert row["guard_drop_low"] - 1e-9 <= row["guard_accuracy_drop"] <= row["guard_drop_high"] + 1e-9
            assert row["abstention_kept_low"] - 1e-9 <= row["abstention_kept"] <= row["abstention_kept_high"] + 1e-9
    none = next(x for x in lines if x["method"] == "none")
    assert none["refused"]["gap_recovered"] == 0.0  # the aligned model itself recovers nothing
    for name in ("unmask.csv", "unmask_facts.csv", "unmask_gap_vs_kl_refused.fig.json", "unmask_headline.csv",
                 "unmask_phrasings.csv"):
        assert (tmp_path / name).is_file(), name
