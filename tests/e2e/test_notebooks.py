"""The notebooks run top to bottom on the default pair (jupytext percent files, executed by a kernel)."""

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.py"))
EXECUTED = Path(__file__).resolve().parents[2] / "out" / "notebooks"  # read by `make docs`


def test_the_seven_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == ["01_quickstart", "02_suppressed_knowledge", "03_error_awareness",
                                           "04_masking_not_erasing", "05_knowledge_and_popularity",
                                           "06_feature_level_diffing", "07_activation_difference_lens"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    import hashlib

    import jupytext
    import nbformat
    from nbclient import NotebookClient

    from interp.atomic import atomic_write

    nb = jupytext.read(path)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # Every notebook ends on a result a reader looks at (a figure or a table).
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert any(o.get("output_type") in ("execute_result", "display_data", "stream") for o in last.outputs)
    # The executed copy, with the source it ran from: `make docs` renders it with its outputs (docs/hooks.py).
    nb.metadata["interp"] = {"source_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    EXECUTED.mkdir(parents=True, exist_ok=True)
    atomic_write(EXECUTED / f"{path.stem}.ipynb", nbformat.writes(nb))
