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
