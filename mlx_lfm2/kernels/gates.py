"""SwiGLU over a fused gate/up projection: `silu(gate) * up` from `[gate | up]`.

Bodies: `reference` (plain MLX ops); `cpu` (mlx-lm's shape-agnostic compiled swiglu, so any
sequence length reuses one fused kernel); `metal` and `cuda` (one kernel from the shared body
below, which also saves the split).
"""

from __future__ import annotations

from functools import lru_cache

import mlx.core as mx
import mlx.nn as nn
from mlx_lm.models.activations import swiglu as compiled_swiglu

from .backend import gpu_kernel


def swiglu_reference(gate_up: mx.array) -> mx.array:
    """The specification. gate_up: (..., 2H) -> (..., H)."""
    gate, up = mx.split(gate_up, 2, axis=-1)
    return nn.silu(gate) * up


GPU_BODY = """
const int rows = dims[0], hidden = dims[1];
if (gid >= (unsigned int)(rows * hidden)) return;
const int r = gid / hidden, c = gid % hidden;
const float gate = float(gate_up[r * 2 * hidden + c]);
const float up = float(gate_up[r * 2 * hidden + hidden + c]);
out[gid] = T(gate / (1.0f + EXP(-gate)) * up);
"""


@lru_cache(maxsize=2)
def _gpu_kernel(backend: str):
    return gpu_kernel(backend, f"lfm2_swiglu_{backend}", ["gate_up", "dims"], ["out"], GPU_BODY)


def swiglu(gate_up: mx.array, *, impl: str = "reference") -> mx.array:
    """Dispatch; impl is "reference", "cpu", "metal" or "cuda"."""
    if impl == "reference":
        return swiglu_reference(gate_up)
    if impl == "cpu":
        gate, up = mx.split(gate_up, 2, axis=-1)
        return compiled_swiglu(gate, up)
    hidden = gate_up.shape[-1] // 2
    rows = gate_up.size // (2 * hidden)
    (out,) = _gpu_kernel(impl)(
        inputs=[gate_up, mx.array([rows, hidden], dtype=mx.int32)],
        template=[("T", gate_up.dtype)],
        grid=(rows * hidden, 1, 1),
        threadgroup=(min(256, rows * hidden), 1, 1),
        output_shapes=[(*gate_up.shape[:-1], hidden)],
        output_dtypes=[gate_up.dtype],
    )
    return out
