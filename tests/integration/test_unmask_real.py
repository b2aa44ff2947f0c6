"""The real default pair's shipped unmasking fit (the CLI on it: tests/e2e/test_unmask_cli_real.py)."""

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
    # The headline is pre-registered with the fit, and its controls ship beside it with its budget.
    for mask in ("refused", "abstained"):
        choice = fit.info["preregistered"][mask]
        assert choice["n_val"] >= 4 and (choice["kind"] in ("steering", "lowrank") or choice["kind"].startswith("ablation:"))
        ctrl = fit.controls[mask]
        assert set(ctrl) == {"never_knew", "shuffled", "random", "unrelated"}
        family = fit.edits[mask]["steering" if choice["kind"] == "steering" else "lowrank"]
        for c in ctrl.values():
            assert (c.layer, c.rank, c.positions) == (family.layer, family.rank, family.positions)
        assert fit.info["controls"][mask]["n_never_knew_facts"] == fit.info["controls"][mask]["n_mask_facts"]
    held = set()
    for ids in fit.info["train_ids"].values():
        held |= set(ids)
    from interp.unmask import facts_for

    table = facts_for("default")
    assert held <= set(table[table.split == "train"].id.astype(str))  # nothing pre-registered on a held-out fact
