"""How a loaded model runs: which kernel bodies, fused projections, and the compute dtype.

Loading applies these after the checkpoint's weights are in place; the converter does not,
so checkpoints keep the standard names and dtypes.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ..errors import LFM2Error
from ..kernels import cpu_extension
from ..kernels.backend import resolve
from .cpu_matmul import use_cpu_extension
from .layers import MLP, Attention, RMSNorm, ShortConv

COMPUTE_DTYPES = ("auto", "float32", "bfloat16", "float16")


def compute_dtype_for(choice: str | None) -> mx.Dtype | None:
    """None keeps the stored dtype. "auto": float32 on MLX's CPU backend, whose quantized
    matmul runs ~9x slower with bfloat16 activations than float32 (no native bf16 kernels);
    the stored dtype on a GPU, where half precision is fast."""
    if choice is None:
        return None
    if choice not in COMPUTE_DTYPES:
        raise LFM2Error(f"compute_dtype is {choice!r}, expected one of {', '.join(COMPUTE_DTYPES)} or None")
    if choice == "auto":
        return mx.float32 if mx.default_device() == mx.cpu else None
    return getattr(mx, choice)


def prepare(model: nn.Module, kernels: str = "auto", compute_dtype: str | None = "auto") -> nn.Module:
    """Picks kernel bodies, fuses q/k/v and gate/up (except with the reference kernels, which
    run the model exactly as written), casts floating weights to the compute dtype, and with
    the cpu kernels moves quantized matmuls onto the C++ extension when it is built."""
    impl = resolve(kernels)
    for _, module in model.named_modules():
        if isinstance(module, (ShortConv, MLP, RMSNorm, Attention)):
            module.kernels = impl
        if impl != "reference" and isinstance(module, (Attention, MLP)):
            module.fuse()
    dtype = compute_dtype_for(compute_dtype)
    if dtype is not None:
        model.set_dtype(dtype)
    if kernels in ("auto", "cpu") and impl == "cpu" and cpu_extension.available():
        use_cpu_extension(model)
    return model
