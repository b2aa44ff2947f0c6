"""The package versions interp is tested with, checked when interp is imported.

:data:`SUPPORTED` is the range ``pyproject.toml`` declares for the packages whose releases change
interp's numbers (transformers renames calling conventions between minor releases; TransformerLens
and peft wrap and merge the weights). The locked tier (``requirements.lock``, what ``make setup``
installs) tests the lower end and ``make test-compat`` the newest release in range. A version
outside the range is refused at import with an error naming the range; ``INTERP_ALLOW_UNTESTED=1``
turns the refusal into a warning (the generation self-check,
:func:`interp.behavior.selfcheck.check_generation`, still stops a model that generates wrongly).

:func:`versions` is the record every cache of computed outputs is keyed by and every results file
carries.

Example:
    >>> from interp.versions import versions
    >>> sorted(versions())[:2]
    ['interp', 'peft']
"""

import os
import warnings
from importlib import metadata

__all__ = ["SUPPORTED", "UnsupportedVersion", "versions", "check_supported"]

# package -> (lowest tested, first untested); both ends are run: the lock and `make test-compat`.
SUPPORTED: dict[str, tuple[str, str]] = {
    "transformers": ("5.23.0", "5.26"),
    "transformer-lens": ("4.3.0", "4.4"),
    "peft": ("0.21.0", "0.22"),
}
_RECORDED = ("interp", "torch", "transformers", "transformer-lens", "peft", "safetensors", "tokenizers")


class UnsupportedVersion(ImportError):
    """An installed package is outside the range interp is tested with."""


def _key(v: str) -> tuple:
    from packaging.version import Version

    return Version(v).release


def versions() -> dict[str, str]:
    """Installed version of each package that decides interp's numbers (absent ones: ``"-"``)."""
    out = {}
    for name in _RECORDED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "-"
    return out


def check_supported(installed: dict[str, str] | None = None) -> list[str]:
    """Raise :class:`UnsupportedVersion` when a package of :data:`SUPPORTED` is outside its range
    (a warning instead under ``INTERP_ALLOW_UNTESTED=1``); returns the problems found."""
    installed = installed if installed is not None else versions()
    problems = []
    for name, (low, high) in SUPPORTED.items():
        have = installed.get(name, "-")
        if have == "-":
            continue
        if not _key(low) <= _key(have) < _key(high):
            problems.append(f"{name} {have} (tested: >={low},<{high})")
    if problems:
        message = ("interp is tested with " + ", ".join(f"{n}>={lo},<{hi}" for n, (lo, hi) in SUPPORTED.items())
                   + "; installed: " + "; ".join(problems)
                   + ". Install the tested versions (`make setup`, or `pip install -c requirements.lock -e .`), "
                   "or set INTERP_ALLOW_UNTESTED=1 to run anyway (the generation self-check stays on)")
        if os.environ.get("INTERP_ALLOW_UNTESTED") == "1":
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        else:
            raise UnsupportedVersion(message)
    return problems
