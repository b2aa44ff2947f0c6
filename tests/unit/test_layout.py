"""The house, read from the source: no import circles between rooms, nothing imports the CLI
layer, analyses do not import the workflows above them, and only the adapters spell HF internals."""

import ast
import collections
import re

import pytest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "interp"
CLI = {"interp.cli", "interp.commands", "interp.unmask_cli", "interp.dictionary_cli", "interp.difflens_cli",
       "interp.knowledge_cli"}


def _room(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _imports() -> dict[str, set[str]]:
    """module -> every interp module it imports (module level or inside functions)."""
    out: dict[str, set[str]] = collections.defaultdict(set)
    for f in ROOT.rglob("*.py"):
        mod = ".".join(f.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            out[mod] |= {n for n in names if n.startswith("interp.")}
    return out


def test_rooms_import_each_other_without_a_circle():
    edges: dict[str, set[str]] = collections.defaultdict(set)
    for mod, deps in _imports().items():
        for dep in deps:
            if _room(dep) != _room(mod):
                edges[_room(mod)].add(_room(dep))

    def reaches(a: str, b: str, seen: set[str]) -> bool:
        for c in edges.get(a, ()):
            if c == b or (c not in seen and (seen.add(c) or reaches(c, b, seen))):
                return True
        return False

    circles = sorted((a, b) for a in edges for b in edges[a] if reaches(b, a, set()))
    assert not circles, f"import circles between rooms: {circles}"


def test_nothing_below_the_cli_imports_it_and_analyses_do_not_import_workflows():
    for mod, deps in _imports().items():
        if _room(mod) not in CLI and mod != "interp.cli":
            assert not {_room(d) for d in deps} & CLI, f"{mod} imports the CLI layer"
        if _room(mod) not in CLI | {"interp.workflows"} and mod != "interp":
            assert not any(d.startswith("interp.workflows") for d in deps), f"{mod} imports a workflow"


def test_only_the_adapters_spell_hf_internals_and_template_tokens():
    spelled = re.compile(r"\.(embed_tokens|lm_head|o_proj|down_proj|post_attention_layernorm|model\.norm)\b"
                         r"|\"<(end_of_turn|start_of_turn|\|im_end\||\|eot_id\|)>\"")
    allowed = {"runtime/arch.py", "chat_formats.py"}
    hits = [f"{f.relative_to(ROOT)}:{i}" for f in ROOT.rglob("*.py") if str(f.relative_to(ROOT)) not in allowed
            for i, line in enumerate(f.read_text().splitlines(), 1) if spelled.search(line)]
    assert not hits, f"HF internals or template tokens spelled outside interp.runtime / interp.chat_formats: {hits}"


def test_pyproject_lists_every_package():
    import tomllib

    listed = set(tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT.parent).parts) for p in ROOT.rglob("__init__.py")}
    assert listed == found | {"interp._data"}, f"pyproject.toml packages differ: {sorted(listed ^ (found | {'interp._data'}))}"


@pytest.mark.slow
def test_a_non_editable_install_has_the_default_pair(tmp_path):
    """The wheel carries data/aligned/ as interp/_data; installed on its own, the registry finds the
    default adapter there (no checkout on the path)."""
    import subprocess
    import sys

    root = ROOT.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(root), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "wheel")], check=True, capture_output=True)
    wheel = next((tmp_path / "wheel").glob("interp-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(tmp_path / "site"),
                    str(wheel)], check=True, capture_output=True)
    code = ("from interp.models.registry import DATA_DIR, get_pair_spec; import interp; "
            "print(DATA_DIR); print(get_pair_spec('default').placeholder); print(interp.__file__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}).stdout.split("\n")
    assert out[0].endswith("interp/_data") and str(tmp_path / "site") in out[0]
    assert out[1] == "False" and out[2].startswith(str(tmp_path / "site"))


def test_only_the_runtime_spells_hf_calling_conventions():
    """The KV cache's keyword (``cache`` from transformers 5.24, ``past_key_values`` before) and the
    output field are spelled in interp.runtime only (interp.runtime.conventions): no call outside it
    passes them as a keyword, names them in a string, or reads them as an attribute."""
    names = {"cache", "past_key_values", "past_key_value", "layer_past"}
    hits = []
    for f in ROOT.rglob("*.py"):
        rel = f.relative_to(ROOT)
        if rel.parts[0] == "runtime":
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Call) and any(k.arg in names for k in node.keywords):
                hits.append(f"{rel}:{node.lineno} keyword")
            elif isinstance(node, ast.Constant) and node.value in names - {"cache"}:
                hits.append(f"{rel}:{node.lineno} string")
            elif isinstance(node, ast.Attribute) and node.attr in names - {"cache"}:
                hits.append(f"{rel}:{node.lineno} attribute")
    assert not hits, f"HF calling conventions spelled outside interp.runtime: {hits}"
