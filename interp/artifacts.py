"""Writing results: ``<name>.csv`` tables and ``<name>.fig.json`` figures, atomically.

Below both the analyses and the CLI: any layer may write artefacts through it.
"""

import os
from pathlib import Path

__all__ = ["save_artifacts"]


def save_artifacts(out: "str | os.PathLike[str]", name: str, frame=None, fig=None) -> list[Path]:
    """Write ``<out>/<name>.csv`` and/or ``<out>/<name>.fig.json`` (temporary name, then rename)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if frame is not None:
        path = out / f"{name}.csv"
        tmp = out / f".{name}.csv.tmp"
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
        written.append(path)
    if fig is not None:
        path = out / f"{name}.fig.json"
        tmp = out / f".{name}.fig.json.tmp"
        tmp.write_text(fig.to_json(), encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    return written
