"""The optional C++ extension (kernels/cpu_ext): quantized matmuls, causal attention and SwiGLU
for MLX's CPU backend.

`pip install` builds it when a C++ compiler and CMake are at hand and skips it otherwise;
`status()` says whether it loaded and, if not, why. It is built against one MLX version (its
C++ ABI), so it is only used with exactly that version.
"""

from __future__ import annotations

import mlx.core as mx  # first: the extension finds libmlx through the loaded mlx.core

try:
    from .. import _cpu_ext
except ImportError as error:  # not built (no compiler at install time) or built for another Python
    _cpu_ext = None
    _import_error = str(error).splitlines()[0]
else:
    _import_error = None

BITS = (4, 8)
GROUP_SIZES = (32, 64, 128)


def status() -> tuple[bool, str]:
    """(usable, one line saying which kernels run or why the extension is not used)."""
    if _cpu_ext is None:
        return False, f"not built or not importable ({_import_error}); MLX's own quantized_matmul runs"
    if _cpu_ext.mlx_version() != mx.__version__:
        return False, f"built for MLX {_cpu_ext.mlx_version()}, running MLX {mx.__version__}; reinstall mlx_lfm2"
    return True, f"loaded ({_cpu_ext.instruction_set()} kernels, {_cpu_ext.num_threads()} threads)"


def available() -> bool:
    return status()[0]


def supports(bits: int, group_size: int, mode: str = "affine") -> bool:
    return mode == "affine" and bits in BITS and group_size in GROUP_SIZES


def quantized_matmul(
    x: mx.array,
    w: mx.array,
    scales: mx.array,
    biases: mx.array,
    group_size: int,
    bits: int,
    kernel_set: str = "auto",
    group_major: bool = False,
) -> mx.array:
    """x @ dequantize(w).T on the CPU, with x rounded to int8 per group (see the README); MLX's
    arguments of mx.quantized_matmul(transpose=True). group_major: scales and biases as
    group_major_scales() prepares them, so no call converts them again. kernel_set "auto" takes
    the best copy this CPU runs; "avx2" or "portable" picks one."""
    return _cpu_ext.quantized_matmul(x, w, scales, biases, group_size, bits, group_major=group_major, kernel_set=kernel_set)


def group_major_scales(scales: mx.array) -> mx.array:
    """Scales or biases, (rows, groups) in any float dtype, as the kernels read them: float32,
    (groups, rows), contiguous."""
    return mx.contiguous(scales.astype(mx.float32).T)


def causal_attention(q: mx.array, k: mx.array, v: mx.array, scale: float, kernel_set: str = "auto") -> mx.array:
    """softmax(q k^T * scale + causal mask) v on the CPU, float32: q (batch, heads, length, dims),
    k and v (batch, kv_heads, keys, dims) whose last `length` keys are the queries' own (a KV
    cache's keys before them); the same result as mx.fast.scaled_dot_product_attention with
    mask="causal" (or none, for one query)."""
    return _cpu_ext.causal_attention(q, k, v, scale, kernel_set=kernel_set)


def swiglu(gate_up: mx.array, kernel_set: str = "auto") -> mx.array:
    """silu(gate) * up on the CPU for float32 gate_up = [gate | up] (..., 2H) -> (..., H), with
    an 8-lane exp (MLX's CPU backend evaluates exp one value at a time)."""
    return _cpu_ext.swiglu(gate_up, kernel_set=kernel_set)
