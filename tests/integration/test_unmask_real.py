"""``interp unmask`` on the real default pair: the JSON interface, with the pair's shipped fit."""

import json
import subprocess
import sys

import pytest

from interp.unmask import UnmaskFit, default_fit_dir

pytestmark = pytest.mark.integration


def test_the_default_pair_ships_a_fit_selected_on_train_facts():
    fit = UnmaskFit.load(default_fit_dir("default"))
    assert set(fit.basis) == {"refused", "abstained"}
    for mask, basis in fit.basis.items():
        assert basis.shape[0] == 8 and fit.basis_labels[mask][0] in ("refusal", "abstention")
        assert {"steering", "lowrank"} <= set(fit.edits[mask])
        assert fit.edits[mask]["lowrank"].rank <= 4
    assert set(fit.selection["mask"]) == {"refused", "abstained"}
    assert fit.info["train_sets"]["refused"] >= 16  # fitted on train facts, never on held-out ones


def test_unmask_json_interface(tmp_path):
    # Three families (every family runs in the demo and notebook 04): the interface, not the science.
    run = subprocess.run([sys.executable, "-m", "interp.cli", "unmask", "--n", "2", "--doses", "1,4", "--json", "--out", str(tmp_path),
                          "--methods", "direction,lowrank,prefill"], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [json.loads(x) for x in run.stdout.strip().splitlines()]
    methods = [x["method"] for x in lines[:-1]]
    assert methods == ["none", "direction", "lowrank", "prefill"]  # the aligned model itself, then what was asked
    for line in lines[:-1]:
        for mask in ("refused", "abstained"):
            row = line[mask]
            assert row["n"] >= 1 and (row["gap_recovered"] is None or -1.0 <= row["gap_recovered"] <= 1.0 + 1e-9)
            # every rate carries its interval: the paired guard-drop bootstrap and Wilson on abstention kept
            assert row["guard_drop_low"] - 1e-9 <= row["guard_accuracy_drop"] <= row["guard_drop_high"] + 1e-9
            assert row["abstention_kept_low"] - 1e-9 <= row["abstention_kept"] <= row["abstention_kept_high"] + 1e-9
    none = next(x for x in lines if x["method"] == "none")
    assert none["refused"]["gap_recovered"] == 0.0  # the aligned model itself recovers nothing
    best = lines[-1]["best"]
    assert set(best) >= {"method", "gap_recovered", "kl", "guard_accuracy_drop", "n"}
    # The headline row is a rank <= 4 activation intervention, on the 2 facts asked for (the finding
    # itself is the README's n = 24 run).
    assert best["method"] in ("direction", "lowrank") and best["n"] == 2
    for name in ("unmask.csv", "unmask_facts.csv", "unmask_gap_vs_kl_refused.fig.json"):
        assert (tmp_path / name).is_file(), name
