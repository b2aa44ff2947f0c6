"""Activation caching: capture hooks at marked positions, write a resumable sharded store."""

from interp.cache.capture import POSITIONS, capture
from interp.cache.run import CacheConfig, cache_activations
from interp.cache.store import ActivationStore

__all__ = ["POSITIONS", "ActivationStore", "CacheConfig", "cache_activations", "capture"]
