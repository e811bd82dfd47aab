"""RMSNorm, and the residual add fused with the RMSNorm that follows it.

Bodies: `reference` (plain MLX: `mx.fast.rms_norm`, one kernel on a GPU); `cpu` (one
shape-agnostic compiled kernel: on MLX's CPU backend rms_norm runs as its ~7-op decomposition,
and the norms alone were a fifth of a decode step's graph); `metal` and `cuda` use MLX's own
rms_norm kernel, which leaves nothing to fuse but the add.
"""

from __future__ import annotations

from functools import partial

import mlx.core as mx


def rms_norm_reference(x: mx.array, weight: mx.array, eps: float) -> mx.array:
    return mx.fast.rms_norm(x, weight, eps)


def add_rms_norm_reference(x: mx.array, residual: mx.array, weight: mx.array, eps: float) -> tuple[mx.array, mx.array]:
    """The specification: h = x + residual, and rms_norm(h)."""
    h = x + residual
    return h, mx.fast.rms_norm(h, weight, eps)


def _rms(x, weight, eps):
    # In float32, as mx.fast.rms_norm and transformers compute it, whatever x's dtype.
    xf = x.astype(mx.float32)
    return (weight * (xf * mx.rsqrt(mx.mean(mx.square(xf), axis=-1, keepdims=True) + eps)).astype(x.dtype)).astype(x.dtype)


@partial(mx.compile, shapeless=True)
def _rms_norm_cpu(x, weight, eps):
    return _rms(x, weight, eps)


@partial(mx.compile, shapeless=True)
def _add_rms_norm_cpu(x, residual, weight, eps):
    h = x + residual
    return h, _rms(h, weight, eps)


def rms_norm(x, weight, eps: float, *, impl: str = "reference"):
    return _rms_norm_cpu(x, weight, eps) if impl == "cpu" else rms_norm_reference(x, weight, eps)


def add_rms_norm(x, residual, weight, eps: float, *, impl: str = "reference"):
    return _add_rms_norm_cpu(x, residual, weight, eps) if impl == "cpu" else add_rms_norm_reference(x, residual, weight, eps)
