"""Every figure kind builds from a small result; export writes each format; the report renders in Chromium."""

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from interp import plots
from interp.diffing import knowledge_by_popularity
from interp.report import Report
from tests.browser import check_report, chromium_path


def _figures() -> dict[str, go.Figure]:
    rng = np.random.default_rng(0)
    layers = list(range(4))
    probe = pd.DataFrame([{"model": m, "probe": "logistic", "metric": "accuracy", "layer": layer, "value": 0.6 + 0.05 * layer,
                           "ci_low": 0.55, "ci_high": 0.8} for m in ("base", "aligned") for layer in layers])
    patch = pd.DataFrame([{"layer": layer, "position": p, "value": float(rng.normal())} for layer in layers
                          for p in ("span_last", "last")])
    lens = pd.DataFrame([{"model": m, "layer": layer, "median_rank": 100 / (layer + 1), "mean_prob": 0.1, "top1": 0.2}
                         for m in ("base", "aligned") for layer in layers])
    pop = knowledge_by_popularity(pd.DataFrame({"category": ["Unknown", "HighlyKnown", "MaybeKnown", "Unknown"] * 20,
                                                "popularity": 10 ** rng.uniform(2, 7, 80)}), n_bins=3)
    tokens = pd.DataFrame({"base_rank": [1, 1, 2, 5, 40, 1], "position": range(6), "kl": rng.random(6)})
    sim = pd.DataFrame({"layer": layers, "cosine": [1, 0.99, 0.98, 0.97], "cka": [1, 0.9, 0.8, 0.85]})
    dose = pd.DataFrame([{"scale": s, "measure": m, "value": v} for s in (0, 1, 2) for m, v in (("refusal", s / 2), ("correct", 1 - s / 2))])

    class Spectra:
        frame = pd.DataFrame({"name": ["a.weight", "b.weight"], "norm": [2.0, 1.0]})
        spectra = {"a.weight": np.array([1, 0.5, 0.1]), "b.weight": np.array([1, 0.2])}

    return {
        "probe": plots.probe_accuracy_by_layer(probe),
        "patching": plots.patching_heatmap(patch, labels={"last": "\\n"}),
        "lens": plots.logit_lens_curves(lens),
        "popularity": plots.knowledge_by_popularity(pop),
        "popularity_curves": plots.popularity_curves(pop),
        "kl": plots.kl_by_position(tokens.groupby("position").kl.agg(mean_kl="mean", n="size").reset_index()),
        "shift": plots.token_shift_histogram(tokens),
        "similarity": plots.similarity_by_layer(sim),
        "spectra": plots.weight_delta_spectra(Spectra()),
        "dose": plots.dose_response(dose),
    }


def test_every_figure_kind_builds_in_the_theme():
    figs = _figures()
    for name, fig in figs.items():
        assert isinstance(fig, go.Figure) and len(fig.data) > 0, name
        assert fig.layout.template.layout.plot_bgcolor in ("white", None) or fig.layout.font.family == "Arial", name
        assert fig.layout.xaxis.title.text, f"{name}: the x axis needs a title"


def test_probe_figure_has_one_panel_per_model_and_grey_controls():
    rows = [{"model": m, "probe": p, "metric": "accuracy", "layer": layer, "value": 0.5 + 0.01 * layer + 0.1 * (p == "logistic"),
             "ci_low": 0.4, "ci_high": 0.9, "split": "test"}
            for m in ("base", "aligned") for p in ("logistic", "control_task", "random_direction", "majority_class")
            for layer in range(4)]
    rows += [{"model": m, "probe": "logistic", "metric": "accuracy", "layer": layer, "value": 0.55, "ci_low": 0.5,
              "ci_high": 0.6, "split": "test"} for m in ("base->aligned", "aligned->base") for layer in range(4)]
    fig = plots.probe_accuracy_by_layer(pd.DataFrame(rows))
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [a.text for a in fig.layout.annotations] == ["base activations", "aligned activations"]
    per_panel = {ax: [t.name for t in lines if t.xaxis == ax] for ax in ("x", "x2")}
    assert per_panel["x"][:2] == ["base", "aligned->base"] and per_panel["x2"][:2] == ["aligned", "base->aligned"]
    assert all(len(names) == 5 for names in per_panel.values())  # the probe, the transfer, three controls
    for t in lines:
        if t.name not in ("base", "aligned", "base->aligned", "aligned->base"):  # controls: grey, no band
            r, g, b = (int(t.line.color[i:i + 2], 16) for i in (1, 3, 5))
            assert r == g == b, t.name
    assert sum(1 for t in fig.data if t.fill == "toself") == 4  # bands only for the probes and transfers
    assert sorted(t.name for t in lines if t.showlegend) == sorted(set(t.name for t in lines))  # each name once


def test_export_html_and_bad_arguments(tmp_path):
    fig = _figures()["lens"]
    out = plots.export(fig, tmp_path / "lens.html")
    assert out.read_text().count("plotly") > 10 and not list(tmp_path.glob(".*tmp*"))
    with pytest.raises(ValueError, match="unknown figure format '.gif'"):
        plots.export(fig, tmp_path / "x.gif")
    with pytest.raises(ValueError, match="size must be one of"):
        plots.export(fig, tmp_path / "x.html", size="poster")


def test_static_export_failure_is_clear_and_leaves_nothing(tmp_path, monkeypatch):
    fig = _figures()["lens"]
    monkeypatch.setattr(go.Figure, "write_image", lambda self, *a, **k: (_ for _ in ()).throw(OSError("no browser")))
    with pytest.raises(RuntimeError, match="install kaleido .* Chrome/Chromium"):
        plots.export(fig, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.skipif(chromium_path() is None, reason="no Chrome/Chromium for kaleido (`make chromium` installs one)")
@pytest.mark.parametrize("suffix,magic", [(".png", b"\x89PNG"), (".svg", b"<svg"), (".pdf", b"%PDF")])
def test_static_export(tmp_path, suffix, magic):
    pytest.importorskip("kaleido", reason="kaleido is the figures extra (`pip install interp[figures]`)")
    fig = _figures()["probe"]
    for size, width in (("single", 340), ("double", 700)):
        out = plots.export(fig, tmp_path / f"fig_{size}{suffix}", size=size, scale=1.0)
        data = out.read_bytes()
        assert magic in data[:200]
        if suffix == ".png":
            assert int.from_bytes(data[16:20], "big") == width  # PNG IHDR width


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path):
    report = Report("figures")
    report.heading("all figure kinds")
    for name, fig in _figures().items():
        report.figure(fig, name)
    report.table(pd.DataFrame({"a": [1.0, 2.0]}), "a table")
    # As wide as the demo's probe table (every metric, interval and control of both models): it must
    # scroll inside its own box, not run off the page.
    report.table(pd.DataFrame({f"column_{i}_of_a_wide_table": [0.123456, 1.5] for i in range(30)}), "a wide table")
    report.parts.append("<table><tr>" + "".join(f"<td>raw_cell_{i}_with_a_long_name</td>" for i in range(40)) + "</tr></table>")
    report.text("a_very_long_unbroken_path/" * 20)
    report.config({"seed": 0})
    path = report.write(tmp_path / "report.html")
    result = check_report(path, tmp_path / "shot.png")
    assert result["overflowing"] == [], result["overflowing"]
    assert result["console_errors"] == [] and result["page_errors"] == [] and result["external_requests"] == []
    assert result["figures"] == len(_figures()) and result["rendered"] == result["figures"]
    from PIL import Image

    img = np.asarray(Image.open(tmp_path / "shot.png").convert("L"))
    assert img.shape[0] > 1000 and img.std() > 10  # not a blank page


def test_static_export_retries_only_kaleidos_unloaded_page(tmp_path, monkeypatch):
    fig = _figures()["lens"]
    calls = []

    def flaky(self, path, **kw):
        calls.append(path)
        if len(calls) == 1:
            raise RuntimeError("{'className': 'ReferenceError', 'description': 'ReferenceError: kaleido_scopes is not defined'}")
        Path(path).write_bytes(b"\x89PNG fake")

    monkeypatch.setattr(go.Figure, "write_image", flaky)
    out = plots.export(fig, tmp_path / "x.png")
    assert len(calls) == 2 and out.read_bytes().startswith(b"\x89PNG")
    calls.clear()
    monkeypatch.setattr(go.Figure, "write_image", lambda self, *a, **k: calls.append(1) or (_ for _ in ()).throw(OSError("no browser")))
    with pytest.raises(RuntimeError, match="no browser"):
        plots.export(fig, tmp_path / "y.png")
    assert calls == [1]  # a missing browser is not retried
