"""Integration tier: the real default base (Gemma-3-270M from its PyPI GGUF).

The first use converts the GGUF once into $INTERP_CACHE (about a minute on 2 cores); later
sessions load the cached safetensors in seconds.
"""

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def base():
    from interp import load_model

    return load_model("gemma-3-270m", device="cpu")


@pytest.fixture(scope="session")
def hf_base():
    from interp import load_hf

    model, tokenizer = load_hf("gemma-3-270m", device="cpu")
    return model, tokenizer


@pytest.fixture(scope="session")
def pair():
    """The default pair (base + adapter), loaded once for the integration tier; tests must not edit it."""
    from interp import load_pair

    return load_pair("default", device="cpu")
