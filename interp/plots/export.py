"""Write a figure to HTML (interactive, self-contained) or PNG / SVG / PDF (static, via kaleido)."""

import os
from pathlib import Path

import plotly.graph_objects as go

from interp.atomic import atomic_path
from interp.plots.theme import SIZES

__all__ = ["export"]


def export(fig: go.Figure, path: "str | os.PathLike[str]", *, size: str = "single", scale: float = 3.0) -> Path:
    """Write ``fig`` to ``path``; the suffix picks the format (.html, .png, .svg, .pdf).

    ``size`` is ``"single"`` (one column, ~3.5 in) or ``"double"`` (two columns, ~7 in). Static
    formats need kaleido and a Chrome/Chromium; the error says how to get them. The file is written
    to a temporary name and renamed.
    """
    path = Path(path)
    if size not in SIZES:
        raise ValueError(f"size must be one of {list(SIZES)}, got {size!r}")
    suffix = path.suffix.lower()
    if suffix not in (".html", ".png", ".svg", ".pdf"):
        raise ValueError(f"unknown figure format {suffix!r}; use .html, .png, .svg or .pdf")
    width, height = SIZES[size]
    with atomic_path(path) as tmp:
        if suffix == ".html":
            fig.write_html(tmp, include_plotlyjs=True, full_html=True)
        else:
            try:
                _write_image(fig, tmp, width, height, scale)
            except Exception as err:  # kaleido missing, or no browser for it
                raise RuntimeError(
                    f"static export to {suffix} failed ({err}); install kaleido (`pip install kaleido`) and a "
                    "Chrome/Chromium (`plotly_get_chrome` or your package manager), or export to .html"
                ) from err
    return path


def _write_image(fig: go.Figure, tmp, width: int, height: int, scale: float, attempts: int = 3) -> None:
    """``fig.write_image``, tried again when kaleido's page had not finished loading its scripts
    (a ``ReferenceError: kaleido_scopes is not defined`` from the browser tab, seen on a loaded
    machine); any other error is raised at once."""
    for attempt in range(attempts):
        try:
            fig.write_image(tmp, width=width, height=height, scale=scale)
            return
        except Exception as err:
            if attempt == attempts - 1 or "is not defined" not in str(err):
                raise
