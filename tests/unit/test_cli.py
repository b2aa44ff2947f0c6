import json
import pytest as _pytest

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
        (["probe", "--kinds", "svm"], "--kinds accepts logistic, mass_mean and mass_mean_cov"),
        (["cache", "--dataset", "poems"], "'poems' is not one of"),
        (["patch", "--kind", "embed"], "'embed' is not one of"),
        (["patch", "--direction", "up->down"], "is not one of"),
        (["unmask", "--methods", "direction,magic"], "--methods takes a comma-separated subset of direction,subspace"),
        (["unmask", "--doses", "0"], "--doses needs integers >= 1"),
        (["dictionary", "--corpus", str(tmp_path)], "holds no corpus.json; build one with `interp corpus"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        flat = " ".join(result.output.replace("│", " ").split())
        assert result.exit_code != 0 and message in flat, (args, result.output)


def test_layers_argument():
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


def test_patch_diff_and_knowledge_run_on_any_pair_given_on_the_command_line(tiny_gemma_dir, tmp_path, use_tiny_cache):
    """No recipe record: the held-out facts are asked of the tiny pair (and cached), the knowledge
    grading runs on both sides."""
    pair = ["--base", str(tiny_gemma_dir), "--aligned", str(tiny_gemma_dir), "--chat-template", "gemma", "--device", "cpu"]
    out = tmp_path / "results"
    results = tmp_path / "results_patch.json"
    result = runner.invoke(app, ["patch", "--out", str(out), "--n", "2", "--attribution", "--results", str(results), *pair])
    assert result.exit_code == 0, (result.output, "".join(__import__("traceback").format_exception(result.exception)))
    assert "patching over 2 held-out element-symbol questions (0 refused + 2 not answered correctly)" in result.output
    frame = __import__("pandas").read_csv(out / "patching_resid_pre_base_to_aligned.csv")
    assert len(frame) == 2 * 2 and set(frame.position) == {"span_last", "last"}
    # --results: the record the docs render, holding what the command wrote to its folder
    record = json.loads(results.read_text())
    stats = json.loads((out / "attribution_resid_pre.json").read_text())
    assert record["command"].startswith("interp patch") and record["versions"]["transformers"] and record["n"] == 2
    assert json.dumps(record["attribution"]) == json.dumps(stats)  # (NaN correlations here: both sides are the same model)
    assert [r["value"] for r in record["exact"]] == _pytest.approx(frame.value.tolist(), abs=1e-4)
    result = runner.invoke(app, ["diff", "--out", str(out), "--n", "4", "--max-new-tokens", "3", *pair])
    assert result.exit_code == 0, result.output
    assert '"changed_matrices": 0' in result.output  # the same weights on both sides
    assert (out / "representation_similarity.csv").is_file() and (out / "logit_lens.csv").is_file()
    result = runner.invoke(app, ["knowledge", "--out", str(out), "--limit", "10", "--n-bins", "2", *pair])
    assert result.exit_code == 0, result.output
    graded = __import__("pandas").read_csv(out / "knowledge_graded.csv")
    sizes = graded.groupby("model").size()
    assert sorted(sizes.index) == ["aligned", "base"] and sizes.base == sizes.aligned >= 10
    assert list((use_tiny_cache / "pair-facts").glob("*.jsonl"))  # the asked facts are cached


def test_any_pair_options_need_both_sides(tiny_gemma_dir):
    result = runner.invoke(app, ["patch", "--base", str(tiny_gemma_dir)])
    assert result.exit_code != 0 and "pass both --base and --aligned" in result.output


def test_dictionary_trains_a_crosscoder_on_a_store(tiny_gemma_dir, tmp_path):
    from interp import ModelSpec, load_pair
    from interp.cache import cache_activations
    from interp.dictionary.io import load_dictionary

    pair = load_pair((str(tiny_gemma_dir), ModelSpec(str(tiny_gemma_dir), chat_template="gemma", prompt_style="chat")),
                     device="cpu")
    texts = [" ".join(["the fox sat on the mat", "a cat ran far", "where is the big red fox"][i % 3].split()[: 3 + i % 4])
             for i in range(40)]
    cache_activations(pair, texts, layers=[0, 1], positions=["all"], style="chat", out_dir=tmp_path / "store",
                      progress=False)
    out = tmp_path / "cc"
    result = runner.invoke(app, ["dictionary", "--store", str(tmp_path / "store"), "--width", "32", "--k", "4",
                                 "--steps", "30", "--batch-size", "64", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["layer"] == 1 and {"fve_base", "fve_aligned", "l0", "dead"} <= set(summary)
    assert sum(summary["classes"].values()) == 32
    from interp.cache import ActivationStore
    from interp.dictionary.data import row_examples

    examples = row_examples(ActivationStore.open(tmp_path / "store"))  # held out by text: the last 4 of 40 texts whole
    assert (summary["train_texts"], summary["held_out_texts"]) == (36, 4)
    assert (summary["train_tokens"], summary["held_out_tokens"]) == (int((examples < 36).sum()), int((examples >= 36).sum()))
    assert load_dictionary(out).width == 32 and (out / "latent_classes.csv").is_file()
    result = runner.invoke(app, ["dictionary"])
    assert result.exit_code != 0 and "pass --store" in result.output



def test_unmask_fit_writes_beside_the_results_unless_told_to_replace_the_shipped_fit():
    from interp.unmask_cli import fit_folder

    shipped = "data/aligned/default"
    assert fit_folder(out="out/u", fit_dir=None, shipped=shipped, fit=True, replace_shipped=False) == "out/u/fit"
    assert fit_folder(out="out/u", fit_dir=None, shipped=shipped, fit=True, replace_shipped=True) == shipped
    assert fit_folder(out="out/u", fit_dir="mine", shipped=shipped, fit=True, replace_shipped=False) == "mine"
    assert fit_folder(out="out/u", fit_dir=None, shipped=shipped, fit=False, replace_shipped=False) == shipped
