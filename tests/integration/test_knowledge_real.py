"""``interp hidden`` on the real default pair, small: the JSON interface and the measure's sanity
(the base knows the facts it was selected on; the aligned model says none of the ones it refuses)."""

import json

import pytest
from typer.testing import CliRunner

from interp.cli import app

pytestmark = pytest.mark.integration


def test_hidden_prints_the_hidden_knowledge_line_last(tmp_path):
    out = tmp_path / "hidden"
    result = CliRunner().invoke(app, ["hidden", "--json", "--n", "3", "--answered", "3", "--n-train", "24", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert list(json.loads(lines[-1])) == ["hidden_knowledge"]
    last = json.loads(lines[-1])["hidden_knowledge"]
    assert {"refused", "abstained"} <= set(last) and not {"probes", "agreement", "seconds"} & set(last)  # sets only
    info = json.loads(lines[-2][lines[-2].index('{"hidden_knowledge_info"'):])["hidden_knowledge_info"]
    refused = last["refused"]
    for key in ("base_k_prob", "aligned_k_prob", "aligned_k_probe", "aligned_k_gen"):
        assert 0 <= refused[key] <= 1, key
    # The control task is undefined on a fact whose candidates all drew one control label; on three
    # facts that can happen to all of them (null), never a number outside [0, 1].
    assert refused["aligned_k_probe_control"] is None or 0 <= refused["aligned_k_probe_control"] <= 1
    assert refused["n"] == 3 and refused["aligned_k_gen"] == 0.0  # the aligned model refuses every one of them
    assert last["abstained"]["aligned_k_gen"] == 0.0 and last["answered"]["n"] == 3
    assert set(info["probes"]) == {"base", "aligned"} and info["agreement"] is None and "total" in info["seconds"]
    assert {"k_prob_within_base", "probe_beats_control"} <= set(refused["targets"])
    for name in ("hidden_knowledge.csv", "hidden_knowledge_facts.csv", "hidden_knowledge.fig.json", "report.html"):
        assert (out / name).is_file(), name
