"""The documentation: numbers from results files that are not stale, a strict build, pages that render.

- Every results file has its provenance and is current or reviewed by the staleness rule of
  :mod:`benchmarks.provenance` (the code it depends on unchanged since it was measured, or the
  change reviewed for exactly the code as it is now).
- Every ``{{ name.key }}`` of every page resolves to its results file's value; pages without a
  ``typed_numbers`` banner hold no typed decimal numbers or percentages; the README's version table
  is the one rendered from the lock, ``interp.versions`` and the compatibility tier's results.
- ``mkdocs build --strict`` passes (a broken link or reference, an unknown key: a failure), and the
  built pages render in headless Chromium at 1280 px with nothing wider than the page.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser import WIDTH, chromium_path, launch, overflow

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT))

from benchmarks import provenance, render  # noqa: E402

REQUIRED = ("results", "command", "date", "machine", "commit", "depends_on", "code_hash", "recorded_by")


def test_every_results_file_records_where_it_came_from():
    files = provenance.results_files()
    assert len(files) >= 15
    for path in files:
        meta = provenance.load_meta(path)
        missing = [k for k in REQUIRED if not meta.get(k)]
        assert not missing, f"{path.name}: its sidecar lacks {missing}"
        assert meta.get("versions") or meta.get("versions_note"), f"{path.name}: no package versions and no note why"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", meta["date"]), meta["date"]


def test_results_files_are_not_older_than_their_code():
    """The staleness rule: see benchmarks/provenance.py and docs/results/index.md."""
    stale = []
    for path in provenance.results_files():
        state, meta = provenance.status(path)
        if state == "changed":
            since = provenance.changes_since(meta)
            stale.append(f"{path.relative_to(ROOT)} (measured {meta['date']} by `{meta['command']}`): "
                         f"{', '.join(meta['depends_on'])} changed since"
                         + (f" in {len(since)} commit(s), e.g. {since[0][:90]}" if since else " (uncommitted changes)"))
    assert not stale, ("results older than the code they depend on; measure them again (the command) or, "
                       "if the change cannot move them, review it: python -m benchmarks.provenance review FILE "
                       "--verdict unaffected|stale --note '...'\n" + "\n".join(stale))


def test_the_staleness_rule_ignores_docstrings_and_comments_but_not_code(tmp_path, monkeypatch):
    mod = tmp_path / "m.py"
    mod.write_text('"""Doc."""\n\ndef f(x):\n    """Say."""\n    return x + 1  # one\n')
    monkeypatch.setattr(provenance, "ROOT", tmp_path)
    before = provenance.code_hash(["m.py"])
    mod.write_text('"""Another doc."""\n\n\ndef f(x):  # reformatted\n    """Other."""\n    return x + 1\n')
    assert provenance.code_hash(["m.py"]) == before
    mod.write_text('"""Doc."""\n\ndef f(x):\n    return x + 2\n')
    assert provenance.code_hash(["m.py"]) != before


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md"))


def _front_matter(text: str) -> tuple[dict, str]:
    if text.startswith("---\n"):
        head, _, body = text[4:].partition("\n---\n")
        meta = dict(line.split(":", 1) for line in head.splitlines() if ":" in line)
        return {k.strip(): v.strip() for k, v in meta.items()}, body
    return {}, text


def _prose(text: str) -> str:
    """Text a reader sees as prose: no code blocks, inline code, macros, link targets or HTML comments."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"^(    |\t).*$", " ", text, flags=re.M)  # indented code
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = render.MACRO.sub(" ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return re.sub(r"<!--.*?-->", " ", text, flags=re.S)


#: A typed measurement: a decimal number or a percentage (versions and names sit in code spans).
TYPED = re.compile(r"(?<![\w.-])\d+\.\d+(?![\w.])|\b\d+(?:\.\d+)?%")
#: Decimals that are definitions, not measurements (thresholds and targets the text states).
ALLOWED = {"0.1", "0.9", "0.80", "0.90", "0.8", "1.0", "1.5", "1.6", "2.5", "3.0", "95%",
           "0.5", "0.50",  # chance of a ranking share
           "0.05", "0.15", "0.02", "0.2", "0.10", "0.70",  # targets the issues set (hidden knowledge, unmasking)
           "0.6", "0.3",  # settings of the planted benchmark (entangled cosine, Latent Scaling cut-offs)
           "5%",  # a test's nominal level, the dead-latent target
           "90%", "10%"}  # the energy share of a delta's rank, the train / held-out split, the dense-latent cut


def test_every_documented_number_comes_from_its_results_file():
    for page in _pages():
        meta, body = _front_matter(page.read_text())
        render.expand(body, where=str(page.relative_to(ROOT)))  # an unknown name or key raises
        if meta.get("typed_numbers"):
            continue
        typed = [m.group(0) for m in TYPED.finditer(_prose(body)) if m.group(0) not in ALLOWED]
        assert not typed, (f"{page.relative_to(ROOT)} types numbers by hand: {typed[:8]}; render them from their "
                           "results file ({{ name.key }}, benchmarks/render.py) or say why not in `typed_numbers:`")


def test_the_readme_version_table_is_the_rendered_one():
    table = render.values("versions")["table"]
    assert table in (ROOT / "README.md").read_text(), f"README's tested-versions table differs from:\n{table}"


def test_the_readme_types_no_measured_numbers():
    text = (ROOT / "README.md").read_text().replace(render.values("versions")["table"], "")
    typed = [m.group(0) for m in TYPED.finditer(_prose(text)) if m.group(0) not in ALLOWED]
    assert not typed, f"README.md types measured numbers by hand: {typed[:8]}; they belong on a docs page, rendered"
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_the_docs_hook_renders_tables_and_provenance():
    page = render.expand("{{ conformance.table }}\n\n{{ conformance.provenance }}")
    assert page.count("\n|") >= 11 and "results_conformance_cpu.jsonl" in page and "!!! " in page
    with pytest.raises(KeyError, match="has no key"):
        render.expand("{{ conformance.nope }}")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                          capture_output=True, text=True, env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"},
                          stdin=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.mark.slow
def test_docs_build_strictly_with_every_page(site):
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    for need in ("index.html", "getting-started.html", "concepts.html", "limits.html", "results/index.html",
                 "results/unmasking.html", "capabilities/difflens.html", "api/probes.html",
                 "notebooks/01_quickstart.html", "notebooks/06_feature_level_diffing.html"):
        assert need in pages, f"{need} missing from the built site"
    api = (site / "api" / "probes.html").read_text()
    assert "probe_store" in api and "doc-function" in api  # rendered from the docstrings
    assert render.values("crosscoder")["fve_base"] in (site / "capabilities" / "dictionary.html").read_text()


@pytest.mark.slow
@pytest.mark.skipif(chromium_path() is None, reason="no Chrome/Chromium (`make chromium` installs Debian's)")
def test_docs_pages_render_in_chromium_within_the_page_width(site):
    from playwright.sync_api import sync_playwright

    # Every written page and notebook; of the API reference (one template for every module), the
    # package's own page and the two longest, to keep the test short.
    api = sorted(site.glob("api/*.html"), key=lambda p: p.stat().st_size)
    pages = sorted(p for p in site.rglob("*.html") if p.name != "404.html" and p.parent.name != "api")
    pages += [site / "api" / "interp.html", *api[-2:]]
    problems = []
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 900})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.route("**/*", lambda r: r.abort() if not r.request.url.startswith(("file:", "data:", "blob:"))
                       else r.continue_())
            for html in pages:
                errors.clear()
                page.goto(html.as_uri())
                page.wait_for_load_state("load")
                rel = html.relative_to(site).as_posix()
                if not page.locator("article h1").count():
                    problems.append(f"{rel}: no title rendered")
                if errors:
                    problems.append(f"{rel}: page errors {errors[:2]}")
                wide = overflow(page)
                if wide:
                    problems.append(f"{rel}: wider than {WIDTH} px: {wide[:4]}")
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
