"""Where a measured number came from, and whether the code that produced it has changed since.

Every results file under ``benchmarks/`` (``results_*.jsonl | .json | .csv``) has a sidecar
``<file>.meta.json`` recording the command that wrote it, the date (UTC), the machine, the package
versions, the git commit, the source paths the numbers depend on (``depends_on``) and a hash of
that code (``code_hash``). A benchmark calls :func:`record` right after writing its file, or its
JSON lines are piped into ``python -m benchmarks.provenance append FILE --command "..."``.

**The staleness rule.** ``code_hash`` is a SHA-256 over the files under ``depends_on``; a Python
file enters it as its syntax tree without docstrings (so comments, formatting and docstrings do not
count as a change; any change to what the code does does). A results file is

- ``fresh`` when the hash of the current tree equals ``code_hash``;
- ``reviewed`` when it does not, but the sidecar's ``review`` was written for exactly the current
  hash (``python -m benchmarks.provenance review FILE --verdict unaffected|stale --note ...``): a
  person looked at the change and said whether it can move the numbers (``unaffected``) or that the
  numbers are now out of date and not yet re-measured (``stale``; the documentation shows a warning
  on their tables);
- ``changed`` otherwise, and ``tests/unit/test_docs.py`` fails naming the file, the command that
  re-measures it and the review command.

So any change to the code behind a documented number fails the test suite until the number is
measured again or the change is reviewed, and a review lasts only until the next change.
"""

import argparse
import ast
import hashlib
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks"

__all__ = ["ROOT", "RESULTS", "code_hash", "load_meta", "meta_path", "record", "results_files", "review", "status"]


def meta_path(results: Path) -> Path:
    return results.with_name(results.name + ".meta.json")


#: Results files kept outside ``benchmarks/``: the default pair's recipe record (written by ``interp align``,
#: shipped with the adapter it describes).
ELSEWHERE = [ROOT / "data" / "aligned" / "default" / "recipe.json"]


def results_files() -> list[Path]:
    """Every results file: ``benchmarks/results_*`` and :data:`ELSEWHERE`."""
    return sorted(p for p in RESULTS.glob("results_*") if not p.name.endswith(".meta.json")) + ELSEWHERE


def _canonical(node) -> str:
    """A syntax tree as text: node types and fields, no positions (stable across Python versions)."""
    if isinstance(node, ast.AST):
        fields = ",".join(f"{k}={_canonical(v)}" for k, v in ast.iter_fields(node))
        return f"{type(node).__name__}({fields})"
    if isinstance(node, list):
        return "[" + ",".join(_canonical(v) for v in node) + "]"
    return repr(node)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


_DIGESTS: dict[tuple[str, str], str] = {}  # (path, sha256 of the bytes) -> digest, so a file is parsed once


def _file_digest(name: str, data: bytes) -> str:
    """SHA-256 of a file; a Python file's of its syntax tree without docstrings."""
    raw = hashlib.sha256(data).hexdigest()
    if not name.endswith(".py"):
        return raw
    if (name, raw) not in _DIGESTS:
        try:
            text = _canonical(_strip_docstrings(ast.parse(data))).encode()
        except SyntaxError:
            text = data
        _DIGESTS[(name, raw)] = hashlib.sha256(text).hexdigest()
    return _DIGESTS[(name, raw)]


def _tree_files(paths: list[str], commit: str | None) -> dict[str, bytes]:
    """``{relative path: bytes}`` of the files under ``paths``, now (``commit=None``) or at a commit."""
    out = {}
    if commit is None:
        for rel in paths:
            p = ROOT / rel
            found = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else []
            for q in found:
                if "__pycache__" in q.parts or q.suffix == ".pyc":
                    continue
                out[q.relative_to(ROOT).as_posix()] = q.read_bytes()
        return out
    listed = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit, "--", *paths], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    for rel in listed:
        out[rel] = subprocess.run(["git", "show", f"{commit}:{rel}"], cwd=ROOT, capture_output=True,
                                  check=True).stdout
    return out


def code_hash(paths: list[str], commit: str | None = None) -> str:
    """SHA-256 over the files under ``paths`` (Python as its syntax tree without docstrings)."""
    files = _tree_files(paths, commit)
    if not files:
        raise FileNotFoundError(f"no files under {paths} (commit {commit or 'working tree'}); "
                                "depends_on must name files or folders of the repository")
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{rel}\0{_file_digest(rel, files[rel])}\n".encode())
    return h.hexdigest()


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine() -> dict:
    out = {"platform": platform.platform(), "processor": platform.machine(), "cpu_cores": os.cpu_count()}
    try:
        import torch

        out["threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            out["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return out


def package_versions() -> dict:
    from importlib import metadata

    names = ["interp", "torch", "transformers", "transformer-lens", "peft", "numpy", "scikit-learn", "scipy"]
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


def record(results: Path | str, command: str, depends_on: list[str], **extra) -> dict:
    """Write ``results``'s sidecar: the command, date, machine, versions, commit and code hash now.

    Call it right after the command has written ``results`` (``command`` as a person would type it)."""
    results = Path(results)
    if not results.exists():
        raise FileNotFoundError(f"{results} does not exist; record() describes a results file already written")
    meta = {
        "results": results.name,
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": machine(),
        "versions": package_versions(),
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--", *depends_on)),
        "depends_on": list(depends_on),
        "code_hash": code_hash(depends_on),
        "recorded_by": "the command",
        **extra,
    }
    _write(meta_path(results), meta)
    return meta


def _write(path: Path, meta: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def load_meta(results: Path | str) -> dict:
    path = meta_path(Path(results))
    if not path.exists():
        raise FileNotFoundError(f"{Path(results).name} has no provenance sidecar {path.name}: results files are "
                                "written with benchmarks.provenance.record(...) (command, date, versions, code hash)")
    return json.loads(path.read_text())


def status(results: Path | str) -> tuple[str, dict]:
    """``("fresh" | "reviewed" | "changed", meta)`` by the rule in the module docstring."""
    meta = load_meta(results)
    now = code_hash(meta["depends_on"])
    meta = {**meta, "current_hash": now}
    if now == meta["code_hash"]:
        return "fresh", meta
    if (meta.get("review") or {}).get("code_hash") == now:
        return "reviewed", meta
    return "changed", meta


def review(results: Path | str, verdict: str, note: str) -> dict:
    """Record that the code behind ``results`` changed and a person judged the change (for the current hash)."""
    if verdict not in ("unaffected", "stale"):
        raise ValueError(f"verdict {verdict!r}; expected 'unaffected' (the change cannot move these numbers) "
                         "or 'stale' (they may have moved and are not re-measured yet)")
    if not note.strip():
        raise ValueError("a review needs a note saying what changed and why the verdict holds")
    meta = load_meta(results)
    meta["review"] = {"code_hash": code_hash(meta["depends_on"]), "date": datetime.now(UTC).strftime("%Y-%m-%d"),
                      "commit": _git("rev-parse", "HEAD"), "verdict": verdict, "note": note}
    _write(meta_path(Path(results)), meta)
    return meta


def changes_since(meta: dict) -> list[str]:
    """One line per commit that touched ``depends_on`` after the measurement (or its review)."""
    since = (meta.get("review") or {}).get("commit") or meta.get("commit")
    if not since:
        return []
    out = _git("log", "--format=%h %ad %s", "--date=short", f"{since}..HEAD", "--", *meta["depends_on"])
    return out.splitlines() if out else []


def append(results: Path | str, lines, command: str, depends_on: list[str] | None = None) -> int:
    """Append the JSON lines among ``lines`` to ``results`` and record its provenance; other lines are
    echoed. ``depends_on`` defaults to the existing sidecar's. Returns the number of rows written."""
    results = Path(results)
    if depends_on is None:
        try:
            depends_on = load_meta(results)["depends_on"]
        except FileNotFoundError:
            raise ValueError(f"{results.name} has no sidecar yet: pass --depends-on with the source paths its "
                             "numbers depend on") from None
    rows = []
    for line in lines:
        line = line.rstrip("\n")
        try:
            if isinstance(json.loads(line), dict):
                rows.append(line)
                continue
        except ValueError:
            pass
        print(line)
    if rows:
        with open(results, "a") as f:
            f.write("".join(r + "\n" for r in rows))
        record(results, command, depends_on)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.provenance", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("status", help="every results file's state by the staleness rule")
    a = sub.add_parser("append", help="append a benchmark's JSON lines (stdin) to a results file and record how "
                                      "they were measured, e.g. `python3 benchmarks/bench_probes.py | python -m "
                                      "benchmarks.provenance append benchmarks/results_probes_cpu.jsonl "
                                      "--command 'python3 benchmarks/bench_probes.py'`")
    a.add_argument("file")
    a.add_argument("--command", required=True, help="the benchmark command, as a person would type it")
    a.add_argument("--depends-on", nargs="+", default=None, help="source paths (default: the sidecar's)")
    c = sub.add_parser("record", help="record how a results file that a command wrote (e.g. `interp diff --results "
                                      "FILE`) was measured; the command defaults to the file's own `command` field")
    c.add_argument("file")
    c.add_argument("--command", default=None, help="the command, as a person would type it")
    c.add_argument("--depends-on", nargs="+", required=True, help="source paths the numbers depend on")
    r = sub.add_parser("review", help="record a reviewed code change for one results file")
    r.add_argument("file")
    r.add_argument("--verdict", required=True, choices=["unaffected", "stale"])
    r.add_argument("--note", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "append":
        n = append(args.file, sys.stdin, args.command, args.depends_on)
        print(f"{n} row(s) appended to {args.file}; provenance recorded in {meta_path(Path(args.file)).name}")
        return 0 if n else 1
    if args.cmd == "record":
        command = args.command
        if command is None:
            try:
                command = json.loads(Path(args.file).read_text())["command"]
            except (ValueError, KeyError, TypeError):
                ap.error(f"{args.file} holds no JSON object with a 'command' field: pass --command")
        record(args.file, command, args.depends_on)
        print(f"{args.file}: provenance recorded in {meta_path(Path(args.file)).name} ({command})")
        return 0
    if args.cmd == "review":
        path = Path(args.file)
        path = path if path.exists() else RESULTS / path.name
        meta = review(path, args.verdict, args.note)
        print(f"{path.name}: reviewed ({meta['review']['verdict']}) at code hash {meta['review']['code_hash'][:12]}")
        return 0
    bad = 0
    for path in results_files():
        try:
            state, meta = status(path)
        except FileNotFoundError as e:
            print(f"{path.name}: no sidecar ({e})")
            bad += 1
            continue
        extra = f" ({meta['review']['verdict']}: {meta['review']['note']})" if state == "reviewed" else ""
        print(f"{path.name}: {state}, measured {meta['date']}{extra}")
        if state == "changed":
            bad += 1
            for line in changes_since(meta):
                print(f"    {line}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
