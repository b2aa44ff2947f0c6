"""Assertions on what a plotly figure shows (not only that one was made)."""

import numpy as np


def numbers_in(fig) -> np.ndarray:
    """Every finite number the figure's traces plot (x, y and z, flattened)."""
    out = []
    for trace in fig.data:
        for axis in ("x", "y", "z"):
            values = getattr(trace, axis, None)
            if values is None:
                continue
            arr = np.asarray(values, dtype=object).ravel()
            for v in arr:
                if isinstance(v, (list, tuple, np.ndarray)):
                    out += [float(x) for x in np.ravel(v) if isinstance(x, (int, float, np.number)) and x is not None]
                elif isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
                    out.append(float(v))
    arr = np.asarray(out, dtype=float)
    return arr[np.isfinite(arr)]


def assert_plots(fig, expected, *, rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """Each of ``expected`` (finite numbers) is among the numbers the figure plots."""
    shown = numbers_in(fig)
    exp = np.asarray(list(np.ravel(expected)), dtype=float)
    exp = exp[np.isfinite(exp)]
    assert len(fig.data) > 0 and exp.size > 0
    missing = [e for e in exp if not np.isclose(shown, e, rtol=rtol, atol=atol).any()]
    assert not missing, f"{len(missing)} of {exp.size} values not plotted, e.g. {missing[:3]}"
