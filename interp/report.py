"""One self-contained HTML report: figures (interactive), tables, configuration and versions."""

import datetime
import html
import json
import os
import platform
from pathlib import Path

import pandas as pd

from interp.atomic import atomic_write

__all__ = ["Report"]

# Nothing may be wider than the page: a table too wide for its column scrolls inside its own box
# (every table is a scrolling block, so tables added as raw HTML are covered too), long words and
# paths wrap, preformatted text and embedded media stay within the column.
_CSS = """body{font-family:Arial,Helvetica,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222;
overflow-wrap:anywhere}
h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.9em;display:block;max-width:100%;overflow-x:auto}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;overflow-wrap:normal}
.table-wrap{max-width:100%;overflow-x:auto}.table-wrap table{display:table;max-width:none}
th{background:#f4f4f4}p.note{color:#555;font-size:.9em}pre{background:#f7f7f7;padding:8px;font-size:.8em;overflow-x:auto}
img,svg,canvas,video,iframe{max-width:100%}.figure{max-width:100%}details{max-width:100%;overflow-x:auto}"""


class Report:
    """Collect sections, then :meth:`write` one HTML file (plotly.js embedded once)."""

    def __init__(self, title: str):
        self.title = title
        self.parts: list[str] = []
        self._plotly_included = False

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def text(self, text: str) -> None:
        self.parts.append(f"<p class='note'>{html.escape(text)}</p>")

    def table(self, frame: pd.DataFrame, caption: str = "") -> None:
        cap = f"<p class='note'>{html.escape(caption)}</p>" if caption else ""
        table = frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0)
        self.parts.append(f"<div class='table-wrap'>{table}</div>{cap}")  # scrolls inside its box when too wide

    def figure(self, fig, caption: str = "") -> None:
        div = fig.to_html(full_html=False, include_plotlyjs=not self._plotly_included, default_width="100%")
        self._plotly_included = True
        cap = f"<p class='note'>{html.escape(caption)}</p>" if caption else ""
        self.parts.append(f"<div class='figure'>{div}</div>{cap}")

    def config(self, config: dict) -> None:
        import torch
        import transformers

        versions = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
                    "interp": __import__("interp").__version__, "generated": datetime.datetime.now().isoformat(timespec="seconds")}
        self.heading("Configuration and versions")
        self.parts.append(f"<pre>{html.escape(json.dumps({'config': config, 'versions': versions}, indent=1, default=str))}</pre>")

    def write(self, path: "str | os.PathLike[str]") -> Path:
        """Write the report (to a temporary name, then renamed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = "\n".join(self.parts)
        doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
               f"<style>{_CSS}</style></head><body><h1>{html.escape(self.title)}</h1>{body}</body></html>")
        return atomic_write(path, doc)
