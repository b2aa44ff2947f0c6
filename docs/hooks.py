"""MkDocs hooks: the numbers from the results files, the notebooks, and the in-progress difference lens.

- ``{{ name.key }}`` in a page is replaced by :func:`benchmarks.render.expand` (the results files'
  numbers and tables, with their provenance); an unknown name or key fails the build.
- A page whose front matter has ``typed_numbers: <why>`` gets a banner saying that its numbers are
  still typed by hand (no results file yet) and why; ``tests/unit/test_docs.py`` refuses typed
  decimal numbers on every other page.
- The notebooks (``notebooks/*.py``, jupytext percent files) become pages under ``notebooks/``:
  the copy executed by the test suite (``out/notebooks/NAME.ipynb``, written by
  ``tests/e2e/test_notebooks.py``, ``make test-e2e``) when it was executed from the current source, with its
  outputs; otherwise the source without outputs, saying so. Nothing is executed here.
- ``<!-- api: MODULE -->`` (the difference lens, being written) becomes the mkdocstrings block once the module is importable
  (it has an ``__init__.py``), otherwise a note that it is being written.
"""

import hashlib
import json
import logging
import re
import sys
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import render  # noqa: E402

log = logging.getLogger("mkdocs.hooks.interp")
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = ROOT / "out" / "notebooks"
WORK = ROOT / "out" / "docs-build"
titles: dict[str, str] = {}  # notebook stem -> title, in file order (filled by on_files, read by on_nav)


def source_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _notebook(src: Path) -> tuple[dict, bool]:
    """The notebook to render for ``src`` and whether it carries the test suite's outputs."""
    import jupytext
    import nbformat

    executed = EXECUTED / f"{src.stem}.ipynb"
    if executed.exists():
        nb = nbformat.read(executed, as_version=4)
        if nb.metadata.get("interp", {}).get("source_sha256") == source_sha(src):
            return nb, True
    nb = jupytext.read(src)
    return nb, False


def on_pre_build(config):
    render.values.cache_clear()  # read the results files afresh on every build (`mkdocs serve`)
    for _, fn in render.ENTRIES.values():
        fn.cache_clear()


@event_priority(100)  # before mkdocs-jupyter wraps notebook files
def on_files(files, config):
    import nbformat

    (WORK / "notebooks").mkdir(parents=True, exist_ok=True)
    titles.clear()
    for src in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")):
        nb, with_outputs = _notebook(src)
        note = ("*Rendered with the outputs of its last run in the test suite (`make test-e2e`), executed from this "
                "source.*" if with_outputs else
                "*Rendered without outputs: no executed copy of this source was found (`make test-e2e` executes every "
                "notebook and keeps the executed copy in `out/notebooks/`; `make docs` after it shows the outputs).*")
        nb.cells.insert(1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0,
                        nbformat.v4.new_markdown_cell(note + f" Source: `notebooks/{src.name}`."))
        _plotly_as_html(nb)
        for i, cell in enumerate(nb.cells):  # stable ids: the same source gives the same bytes (mkdocs-jupyter's cache)
            cell["id"] = f"cell-{i}"
        out = WORK / "notebooks" / f"{src.stem}.ipynb"
        text = nbformat.writes(nb)
        if not out.exists() or out.read_text() != text:
            out.write_text(text)
        files.append(File(f"notebooks/{src.stem}.ipynb", str(WORK), config["site_dir"], config["use_directory_urls"]))
        titles[src.stem] = _title(nb, src.stem)
    rows = "\n".join(f"| [{t}]({stem}.ipynb) | `notebooks/{stem}.py` |" for stem, t in titles.items())
    index = ("# Notebooks\n\nWalkthroughs on the default pair at small sizes, each a jupytext percent file in "
             "`notebooks/` (open it in Jupyter with jupytext, or `jupytext --to ipynb notebooks/*.py`), executed top to "
             "bottom by `make test-e2e`. Every notebook in that folder is listed here and in the navigation.\n\n"
             "| notebook | source |\n|---|---|\n" + rows + "\n")
    files.append(File.generated(config, "notebooks/index.md", content=index))
    return files


PLOTLY_MIME = "application/vnd.plotly.v1+json"
PLOTLY_JS = "assets/javascripts/plotly.min.js"  # copied from the plotly package into the site, loaded by notebook pages


def _plotly_as_html(nb) -> None:
    """Give every plotly output (a kernel emits only its JSON mime type) an HTML rendering drawn by
    the site's copy of plotly.js, so the figures show on the page; nothing is executed."""
    import plotly.io as pio

    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = out.get("data", {})
            if PLOTLY_MIME in data and "text/html" not in data:
                fig = pio.from_json(json.dumps(data[PLOTLY_MIME]), skip_invalid=True)
                data["text/html"] = pio.to_html(fig, include_plotlyjs=False, full_html=False, default_width="100%",
                                                config={"responsive": True})


def on_page_content(html, page, config, files):
    if page.file.src_uri.startswith("notebooks/") and "Plotly.newPlot" in html:
        depth = page.file.dest_uri.count("/")
        html = f'<script src="{"../" * depth}{PLOTLY_JS}"></script>\n' + html
    return html


def on_post_build(config):
    import shutil

    import plotly

    target = Path(config["site_dir"]) / PLOTLY_JS
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", target)


def _title(nb, stem: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return stem


def on_nav(nav, config, files):
    """Every notebook under the navigation's "Notebooks" section, in file order (no list to keep by hand)."""
    from mkdocs.structure.nav import Section
    from mkdocs.structure.pages import Page

    section = next(s for s in nav.items if isinstance(s, Section) and s.title == "Notebooks")
    index = section.children[0]
    for stem, title in titles.items():
        page = Page(title, files.get_file_from_path(f"notebooks/{stem}.ipynb"), config)
        page.parent = section
        section.children.append(page)
        nav.pages.insert(nav.pages.index(index) + len(section.children) - 1, page)
    for prev, page in zip([None, *nav.pages[:-1]], nav.pages):  # previous / next links
        page.previous_page = prev
        if prev is not None:
            prev.next_page = page
    return nav


def on_page_markdown(markdown, page, config, files):
    why = page.meta.get("typed_numbers")
    if why:
        markdown = _after_title(markdown, '!!! note "Numbers on this page are typed by hand"\n    '
                                f"No results file holds them yet, so nothing checks them: {why}\n")
    markdown = re.sub(r"<!-- api: ([\w.]+) -->", _api_block, markdown)
    return render.expand(markdown, where=page.file.src_uri)


def _api_block(m: re.Match) -> str:
    """The mkdocstrings block of a module being written, once it is importable (a package with an
    ``__init__.py`` or a module file); a note before that."""
    module = m.group(1)
    path = ROOT / Path(*module.split("."))
    if (path / "__init__.py").exists() or path.with_suffix(".py").exists():
        return f"::: {module}"
    return f'!!! note "In progress"\n    `{module}` is being written; its reference appears here once the package exists.'


def _after_title(markdown: str, block: str) -> str:
    lines = markdown.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("# "):
            return "".join(lines[: i + 1]) + "\n" + block + "\n" + "".join(lines[i + 1:])
    return block + "\n" + markdown
