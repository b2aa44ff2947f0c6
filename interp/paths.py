"""Where interp keeps what it computes once and reuses (converted models, caches).

The root is ``$INTERP_CACHE`` if set, else ``~/.cache/interp``. Nothing is created at import
time; :func:`cache_dir` creates the folder when a caller first needs it.
"""

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir(*parts: str) -> Path:
    """Return (and create) a folder under the interp cache root.

    Example:
        >>> from interp.paths import cache_dir
        >>> cache_dir("gguf").name
        'gguf'
    """
    root = os.environ.get("INTERP_CACHE") or os.path.join(Path.home(), ".cache", "interp")
    path = Path(root).expanduser().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
