"""One protocol for every result an analysis returns.

A result holds its numbers and knows how to show them: ``to_frame()`` (a tidy DataFrame),
``summary()`` (a dict of headline numbers, JSON-ready), ``figure()`` (a plotly figure), a
``_repr_html_`` for notebooks and a one-line ``__repr__`` built from the summary.

Example::

    result = lens_pair(pair, questions, answers)
    result                      # LensResult(base_top1_last_layer=1.0, aligned_median_rank_last_layer=23.0, ...)
    result.summary()            # the same numbers as a dict
    result.to_frame()           # every row
    result.figure()             # the paper figure
"""

from typing import Any

import pandas as pd

__all__ = ["Result", "plain"]


def plain(v: Any) -> Any:
    """A numpy / torch scalar as a plain Python value, floats rounded to 4 places (for JSON)."""
    if hasattr(v, "item") and getattr(v, "ndim", 0) == 0:
        v = v.item()
    if isinstance(v, float):
        return round(v, 4)
    return v


class Result:
    """Mixin of the result protocol; subclasses implement :meth:`to_frame`, :meth:`summary` and
    :meth:`figure` (dataclasses that use it pass ``repr=False`` so this ``__repr__`` stays)."""

    def to_frame(self) -> pd.DataFrame:
        raise NotImplementedError

    def summary(self) -> dict:
        raise NotImplementedError

    def figure(self, title: str = ""):
        raise NotImplementedError

    def __repr__(self) -> str:
        try:
            items = [(k, v) for k, v in self.summary().items() if not isinstance(v, (dict, list, pd.DataFrame))]
        except Exception as err:  # a repr must not raise
            return f"{type(self).__name__}(<summary failed: {err}>)"
        shown = ", ".join(f"{k}={plain(v)!r}" for k, v in items[:5])
        more = f", ... {len(items) - 5} more" if len(items) > 5 else ""
        return f"{type(self).__name__}({shown}{more})"

    def _repr_html_(self) -> str:
        summary = {k: plain(v) for k, v in self.summary().items() if not isinstance(v, (dict, list, pd.DataFrame))}
        head = pd.Series(summary, dtype=object).to_frame("value").to_html() if summary else ""
        frame = self.to_frame()
        rows = frame.head(12).round(4).to_html(index=False)
        return f"<b>{type(self).__name__}</b> ({len(frame)} rows){head}{rows}"


def write_results(path, subcommand: str, payload: dict, *, device: str | None = None, command: str | None = None) -> dict:
    """Write a command's measurement to the JSON results file ``path`` (atomically): the command as
    typed (``interp <subcommand> ...``, or ``command`` as a script passes it), the date, the machine, the package versions and
    ``payload``. Used by the commands' ``--results`` option; the docs render their numbers from such
    files (``benchmarks/render.py``), whose provenance sidecar ``python -m benchmarks.provenance
    record`` adds.

    Example::

        write_results("benchmarks/results_diff_default.json", "diff", {"summary": summary})
    """
    import datetime
    import json
    import os
    import platform
    import shlex
    import sys

    import torch

    from interp.atomic import write_json_atomic
    from interp.versions import versions

    if device is None:  # the commands' default device
        device = "cuda" if torch.cuda.is_available() else "cpu"
    args = sys.argv[1:]
    if command is None:  # a script passes its own command line
        command = ("interp " + " ".join(shlex.quote(a) for a in args)) if args[:1] == [subcommand] else f"interp {subcommand}"
    record = {"command": command, "date": datetime.date.today().isoformat(),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "torch_threads": torch.get_num_threads(), "device": device},
              "versions": {**versions(), "torch": torch.__version__, "python": platform.python_version()},
              **payload}
    record = json.loads(json.dumps(record, default=plain))
    write_json_atomic(path, record)
    return record
