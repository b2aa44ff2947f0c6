import json

import pytest

from interp.atomic import atomic_path, atomic_write, write_json_atomic


def test_atomic_write_replaces_whole_files(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write(target, "one")
    atomic_write(target, b"two")
    assert target.read_text() == "two"
    write_json_atomic(tmp_path / "b.json", {"x": 1})
    assert json.loads((tmp_path / "b.json").read_text()) == {"x": 1}
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.txt", "b.json", "sub"]  # no temporary left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "table.csv"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError, match="half-way"):
        with atomic_path(target) as tmp:
            assert tmp.suffix == ".csv" and tmp.parent == tmp_path
            tmp.write_text("partial")
            raise RuntimeError("failed half-way")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_a_writer_killed_with_sigkill_leaves_the_target_untouched_and_its_temporary_file_is_swept(tmp_path):
    """A real SIGKILL (no Python cleanup runs): the target keeps its old content, the temporary file
    is left, and the next write of the same target removes it."""
    import os
    import signal
    import subprocess
    import sys

    from interp.atomic import atomic_write

    target = tmp_path / "table.csv"
    atomic_write(target, "old")
    code = ("import sys, time; from interp.atomic import atomic_path\n"
            f"with atomic_path({str(target)!r}) as tmp:\n"
            "    tmp.write_text('half'); print('writing', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    left = list(tmp_path.glob(".table.*.tmp.csv"))
    assert proc.returncode == -signal.SIGKILL and len(left) == 1 and target.read_text() == "old"
    atomic_write(target, "new")
    assert target.read_text() == "new" and not list(tmp_path.glob(".table.*"))
