"""Shared fixtures: tiny models for the unit tier, the real default base for integration."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from tests import tiny


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> Path:
    """A private INTERP_CACHE for conversions of tiny models."""
    return tmp_path_factory.mktemp("interp-cache")


@pytest.fixture
def use_tiny_cache(tiny_cache, monkeypatch) -> Path:
    monkeypatch.setenv("INTERP_CACHE", str(tiny_cache))
    return tiny_cache


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory):
    """(path, reference HF model) of a tiny Llama GGUF written with the gguf package."""
    path = tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf"
    ref = tiny.write_tiny_llama_gguf(path)
    return path, ref


@pytest.fixture(scope="session")
def tiny_llama_dir(tiny_gguf, tiny_cache) -> Path:
    """The tiny Llama converted to an HF folder (tokenizer included)."""
    import os

    from interp.models.gguf import convert_gguf

    old = os.environ.get("INTERP_CACHE")
    os.environ["INTERP_CACHE"] = str(tiny_cache)
    try:
        return convert_gguf(tiny_gguf[0])
    finally:
        if old is None:
            del os.environ["INTERP_CACHE"]
        else:
            os.environ["INTERP_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_gemma_dir(tiny_llama_dir, tmp_path_factory) -> Path:
    """A tiny random Gemma-3 HF folder sharing the tiny Llama's tokenizer."""
    out = tmp_path_factory.mktemp("tiny-gemma3")
    return tiny.save_hf_dir(tiny.tiny_gemma3(seed=1), tiny_llama_dir, out)
