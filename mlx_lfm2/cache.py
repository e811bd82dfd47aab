"""Caches for LFM2's two operators, on mlx-lm's cache types.

Attention layers use mlx-lm's `KVCache` (or `BatchKVCache` for left-padded batches); conv
layers use mlx-lm's `ArraysCache` with one slot, the last K-1 values of `B * x`. Using
mlx-lm's own types, not subclasses, keeps its prompt-cache files, batching (merge, extract,
filter) and server working with our models. The conv bookkeeping lives here, so ShortConv
reads as the math.
"""

from __future__ import annotations

from typing import Sequence

import mlx.core as mx
from mlx_lm.models.cache import ArraysCache, BatchKVCache, KVCache

from .config import ModelConfig


def make_cache(config: ModelConfig, left_padding: Sequence[int] | None = None) -> list:
    """One cache per layer; `left_padding` (pad tokens per row) makes batch caches."""
    if left_padding is None:
        return [KVCache() if kind == "full_attention" else ArraysCache(size=1) for kind in config.layer_types]
    padding = list(left_padding)
    return [
        BatchKVCache(padding) if kind == "full_attention" else ArraysCache(size=1, left_padding=padding)
        for kind in config.layer_types
    ]


def conv_state(cache: ArraysCache | None, batch: int, taps: int, channels: int, dtype: mx.Dtype) -> mx.array:
    """The state a conv layer continues from: zeros before the first token."""
    if cache is None or cache[0] is None:
        return mx.zeros((batch, taps - 1, channels), dtype=dtype)
    return cache[0]


def conv_lengths(cache: ArraysCache | None) -> mx.array | None:
    """Valid tokens per row when mlx-lm's batch generator right-pads a prefill."""
    return None if cache is None else cache.lengths


def store_conv_state(cache: ArraysCache | None, state: mx.array, tokens: int) -> None:
    if cache is not None:
        cache[0] = state
        cache.advance(tokens)
