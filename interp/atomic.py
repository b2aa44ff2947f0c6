"""Writing files so that a reader never sees half of one: the one helper every writer uses.

:func:`atomic_path` yields a temporary name beside the target; when the block finishes, the
temporary file is flushed to disk (``fsync``), renamed over the target (atomic on POSIX), and the
folder entry is synced; when it fails, the temporary file is removed and the target is untouched.
A writer killed outright (``SIGKILL``) cannot clean up: its temporary file (named with its process
id) stays until the next write of the same target, which removes it once that process is gone;
readers never see it (it is never the target's name, and the store's ``info()`` counts only the
shards its manifest lists).

Example::

    with atomic_path("out/table.csv") as tmp:
        frame.to_csv(tmp, index=False)
    atomic_write("out/notes.txt", "done")
    write_json_atomic("out/summary.json", {"n": 3})
"""

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "atomic_write", "write_json_atomic"]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove_stale(path: Path) -> None:
    """Remove temporary files of ``path`` left by writers that were killed (``SIGKILL``, power loss:
    no Python code ran to clean up), i.e. whose process id is no longer alive."""
    prefix, suffix = f".{path.stem}.", f"{path.suffix}"
    for tmp in path.parent.glob(f".{path.stem}.*.tmp{path.suffix}"):
        pid = tmp.name[len(prefix): len(tmp.name) - len(".tmp" + suffix)]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: "str | os.PathLike[str]") -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it (after ``fsync``) when the block succeeds
    and removed when it raises. The parent folder is created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")  # same suffix: writers that read it
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: "str | os.PathLike[str]", data: "str | bytes", encoding: str = "utf-8") -> Path:
    """Write ``data`` (text or bytes) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding=encoding)
    return Path(path)


def write_json_atomic(path: "str | os.PathLike[str]", obj: Any, **kwargs: Any) -> Path:
    """``json.dumps(obj, indent=1)`` written atomically (``kwargs`` go to ``json.dumps``)."""
    return atomic_write(path, json.dumps(obj, **{"indent": 1, **kwargs}))
