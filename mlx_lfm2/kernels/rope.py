"""Rotary position embedding (half-split, LFM2's layout) for one decode position.

Bodies: `reference` (`mx.fast.rope`: one kernel on a GPU); `cpu` for the one-token decode
step (a compiled rotation from a precomputed frequency table: on MLX's CPU backend
`mx.fast.rope` runs as a ~27-op decomposition, twice per attention layer per token); every
other case takes the reference.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np


def inverse_frequencies(dims: int, base: float) -> mx.array:
    """base^(-2i/dims), computed in float64 and rounded once."""
    return mx.array(np.power(float(base), -np.arange(0, dims, 2, dtype=np.float64) / dims).astype(np.float32))


def rope_reference(x: mx.array, offset, dims: int, base: float) -> mx.array:
    return mx.fast.rope(x, dims, traditional=False, base=base, scale=1.0, offset=offset)


@mx.compile
def _rotate(x, position, inverse_frequency):
    angles = position * inverse_frequency  # (dims/2,)
    cos, sin = mx.cos(angles).astype(x.dtype), mx.sin(angles).astype(x.dtype)
    first, second = mx.split(x, 2, axis=-1)
    return mx.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)


def rope(x: mx.array, offset, dims: int, base: float, inverse_frequency: mx.array, *, impl: str = "reference"):
    """x: (N, heads, L, dims); offset: the position of x's first token (int, or per row)."""
    if impl == "cpu" and x.shape[-2] == 1 and isinstance(offset, int) and x.shape[-1] == dims:
        return _rotate(x, mx.array(offset, dtype=mx.float32), inverse_frequency)
    return rope_reference(x, offset, dims, base)
