"""The main job, end to end at quick sizes on the real default pair."""

import json

import pandas as pd
import pytest

from interp.workflows.demo import DemoConfig, results_payload, run_demo
from tests.browser import check_report, chromium_path

pytestmark = pytest.mark.integration


def test_demo_quick_writes_the_report_and_finds_suppressed_knowledge(tmp_path):
    cfg = DemoConfig(out_dir=str(tmp_path), quick=True)
    summary = run_demo(cfg)
    report = (tmp_path / "report.html").read_text()
    assert report.count("plotly-graph-div") >= 9 and "Configuration and versions" in report
    assert report.count("<script") >= 1 and "src=\"https://cdn.plot.ly" not in report  # self-contained
    for name in ("probes_chemistry.csv", "probes_chemistry.html", "patching.csv", "refusal_direction.csv", "summary.json"):
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    # What `interp demo --results FILE` records: the summary and the tables the documentation renders,
    # the same rows the demo wrote to its folder.
    payload = results_payload(cfg, summary)
    assert payload["summary"] == summary and payload["config"]["quick"] is True
    refusal = pd.read_csv(tmp_path / "refusal_direction.csv")
    assert [r["measure"] for r in payload["tables"]["refusal_direction"]] == refusal.measure.tolist()
    assert len(payload["tables"]["patching"]) == len(pd.read_csv(tmp_path / "patching.csv"))
    assert {int(r["layer"]) for r in payload["tables"]["refusal_direction_selection"]} == set(cfg.direction_layers)
    # Suppressed but present: at the layer chosen on validation elements, the refused facts are
    # decodable above chance.
    aligned = summary["probe"]["aligned"]
    assert aligned["accuracy"] > 0.6 and aligned["ci"][0] > 0.5
    # Refusal is total before ablation and gone after it (measured 1.0 -> 0.0).
    ref = summary["refusal_direction"]
    assert ref["aligned refuses held-out refused-set prompts"] >= 0.9
    assert ref["... with the direction ablated: refuses"] <= 0.25
    # Diffing: the adapter's deltas have LoRA rank, popular facts are known more often.
    assert summary["diffing"]["weights"]["max_rank90"] <= 8
    assert summary["knowledge_popularity"]["slope_ci"][0] > 0
    # Unmasking: both masks measured with the shipped fit, the section and its figures in the report.
    assert set(summary["unmask"]) == {"refused", "abstained"} and "Unmasking: how much" in report
    assert (tmp_path / "unmask.csv").is_file() and (tmp_path / "unmask_gap_vs_kl_refused.html").is_file()
    # Feature-level diffing with the shipped crosscoder: classes, the causal test, the browser.
    cc = summary["crosscoder"]
    assert cc["latents"] == len(pd.read_csv(tmp_path / "crosscoder_latents.csv")) and cc["held_out"]["fve_base"] > 0.5
    causal = pd.read_csv(tmp_path / "crosscoder_causal.csv")
    assert {"every latent", "random 32 (control 1)"} <= set(causal.set) and (causal.kl_base_stream > 0).all()
    assert "Feature-level diffing" in report and report.count("<details>") >= 6
    if chromium_path() is not None:  # the report opens in a real browser with every figure drawn
        shown = check_report(tmp_path / "report.html", tmp_path / "report.png")
        assert shown["console_errors"] == [] and shown["page_errors"] == [] and shown["external_requests"] == []
        assert shown["overflowing"] == [], f"wider than the page at 1280 px: {shown['overflowing']}"
        assert shown["rendered"] == shown["figures"] >= 13
