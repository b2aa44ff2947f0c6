from typer.testing import CliRunner

from interp.cli import app

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "complete", "align", "pairs"):
        assert command in result.output


def test_pairs_lists_the_registry():
    result = runner.invoke(app, ["pairs"])
    assert result.exit_code == 0 and "default" in result.output and "Qwen/Qwen2.5-0.5B" in result.output


def test_complete_on_a_tiny_model(tiny_gemma_dir):
    result = runner.invoke(app, ["complete", "--model", str(tiny_gemma_dir), "--prompt", "the fox", "--max-new-tokens", "3"])
    assert result.exit_code == 0, result.output
    assert "blocks.1.hook_resid_post shape (1, " in result.output and ", 64) [batch, pos, d_model]" in result.output


def test_complete_bad_layer(tiny_gemma_dir):
    result = runner.invoke(app, ["complete", "--model", str(tiny_gemma_dir), "--layer", "5"])
    assert result.exit_code != 0 and "--layer must be in [-2, 1], got 5" in result.output


def test_bad_arguments_name_the_option():
    result = runner.invoke(app, ["demo", "--batch-size", "0"])
    assert result.exit_code != 0 and "--batch-size" in result.output
    result = runner.invoke(app, ["align", "--epochs", "0"])
    assert result.exit_code != 0 and "--epochs" in result.output


def test_every_command_has_help():
    for command in ("demo", "cache", "probe", "patch", "diff", "knowledge", "report", "align"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "--help" in result.output, command


def test_report_assembles_a_results_folder(tmp_path):
    import pandas as pd
    import plotly.graph_objects as go

    from interp.commands import save_artifacts

    save_artifacts(tmp_path, "probes", pd.DataFrame({"layer": [0, 1], "value": [0.5, 0.7]}),
                   go.Figure(go.Scatter(x=[0, 1], y=[0.5, 0.7])))
    result = runner.invoke(app, ["report", str(tmp_path), "--title", "my run"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text()
    assert "my run" in page and page.count("plotly-graph-div") == 1 and "2 rows" in page
    assert not list(tmp_path.glob(".*tmp"))


def test_analysis_commands_name_bad_arguments(tmp_path):
    cases = [
        (["report", str(tmp_path)], "holds no *.fig.json or *.csv"),
        (["report", str(tmp_path / "missing")], "does not exist"),
        (["probe", "--store", str(tmp_path)], "not a finished store"),
        (["probe", "--kinds", "svm"], "--kinds accepts logistic and mass_mean"),
        (["cache", "--dataset", "poems"], "'poems' is not one of"),
        (["patch", "--kind", "embed"], "'embed' is not one of"),
        (["patch", "--direction", "up->down"], "is not one of"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        flat = " ".join(result.output.replace("│", " ").split())
        assert result.exit_code != 0 and message in flat, (args, result.output)


def test_layers_argument():
    import pytest as _pytest
    import typer

    from interp.commands import _layers

    assert _layers("all", 4) == [0, 1, 2, 3] and _layers("0-1,3", 4) == [0, 1, 3]
    for bad in ("x", "5", "2-9"):
        with _pytest.raises(typer.BadParameter, match="--layers"):
            _layers(bad, 4)


def test_arch_describes_a_model(tiny_gemma_dir):
    result = runner.invoke(app, ["arch", str(tiny_gemma_dir), "--chat-template", "gemma"])
    assert result.exit_code == 0, result.output
    for fact in ("family", "gemma3", "chat format", "capability: weight orthogonalisation",
                 "refused: outputs are normalised before the residual add"):
        assert fact in result.output
