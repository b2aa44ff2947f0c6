"""The probe-training scripts' results file (``--results``): what ``write`` printed and saved, kept
task by task, written once at the end of the run."""

import json
import sys
from argparse import Namespace
from pathlib import Path

import torch

from interp.probes import evaluate_probes

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "probes"))
import _common  # noqa: E402


def _frame():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(3, 80, 8, generator=g), torch.arange(80) % 2
    X[1:, y == 1, 0] += 2.0  # layers 1 and 2 carry the label, layer 0 does not
    ents = [f"e{i // 2}" for i in range(80)]
    frame, _ = evaluate_probes(X[:, :60], y[:60], X[:, 60:], y[60:], model="base", layers=[0, 1, 2], n_boot=20,
                               entities_train=ents[:60], entities_test=ents[60:], n_perm=50)
    return frame


def test_results_file_holds_each_task_as_written(tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "RESULTS", {})
    frame = _frame()
    _common.write(tmp_path, "task_a", frame, 0.0, {"n_test": 20})
    _common.record("extra", frame.head(2))
    results = tmp_path / "results_probes.json"
    monkeypatch.setattr(sys, "argv", ["train_x.py", "--quick", "--results", str(results)])
    args = Namespace(results=str(results), quick=True, pair="default")
    _common.finish(args, "train_x.py", 0.0)
    record = json.loads(results.read_text())
    assert record["command"] == f"python probes/train_x.py --quick --results {results}"
    assert record["versions"]["torch"] and record["args"] == {"quick": True, "pair": "default"}
    task = record["tasks"]["task_a"]
    saved = json.loads((tmp_path / "task_a.json").read_text())  # what write() saved beside its CSV
    assert task["selected_on_validation"] == saved["selected_on_validation"] and task["n_test"] == 20
    chosen = _common.selected(frame).iloc[0]
    assert task["selected_on_validation"][0]["layer"] == int(chosen.layer) != 0
    by_layer = {r["layer"]: r for r in task["by_layer"]}
    test = frame[(frame.split == "test") & (frame.metric == "accuracy") & (frame.probe == "logistic")]
    assert [round(by_layer[int(r.layer)]["base"], 3) for r in test.itertuples()] == [round(v, 3) for v in test.value]
    assert len(record["tasks"]["extra"]) == 2


def test_no_results_option_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "RESULTS", {"t": {}})
    _common.finish(Namespace(results=None), "train_x.py", 0.0)
    assert not list(tmp_path.iterdir())
