"""Writing results: ``<name>.csv`` tables and ``<name>.fig.json`` figures, atomically.

Below both the analyses and the CLI: any layer may write artefacts through it.
"""

import os
from pathlib import Path

from interp.atomic import atomic_path, atomic_write

__all__ = ["save_artifacts"]


def save_artifacts(out: "str | os.PathLike[str]", name: str, frame=None, fig=None) -> list[Path]:
    """Write ``<out>/<name>.csv`` and/or ``<out>/<name>.fig.json`` (temporary name, then rename)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if frame is not None:
        with atomic_path(out / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False)
        written.append(out / f"{name}.csv")
    if fig is not None:
        written.append(atomic_write(out / f"{name}.fig.json", fig.to_json()))
    return written
