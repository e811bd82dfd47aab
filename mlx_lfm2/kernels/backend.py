"""Which kernel bodies can run here, and the choice between them.

The choice is an explicit argument (`load(..., kernels=...)`, `--kernels`), never an
environment variable or module state: "auto" picks the best body for the default device.
"""

from __future__ import annotations

import mlx.core as mx

from ..errors import LFM2Error

# "cpu" adds the C++ extension's quantized matmuls when it is built (kernels/cpu_extension.py);
# "cpu-mlx" is the same bodies with MLX's own matmuls.
KERNELS = ("auto", "reference", "cpu", "cpu-mlx", "metal", "cuda")


class KernelError(LFM2Error, ValueError):
    """A kernel choice that cannot run here."""


def metal_available() -> bool:
    return mx.default_device() == mx.gpu and mx.metal.is_available()


def cuda_available() -> bool:
    return mx.default_device() == mx.gpu and hasattr(mx, "cuda") and mx.cuda.is_available()


def resolve(kernels: str) -> str:
    """The body a choice means on this machine: reference, cpu, metal or cuda."""
    if kernels == "cpu-mlx":
        return "cpu"
    if kernels not in KERNELS:
        raise KernelError(f"kernels is {kernels!r}, expected one of {', '.join(KERNELS)}")
    if kernels == "auto":
        return "metal" if metal_available() else "cuda" if cuda_available() else "cpu"
    if kernels == "metal" and not metal_available():
        raise KernelError("kernels='metal' needs a Mac GPU as the default device")
    if kernels == "cuda" and not cuda_available():
        raise KernelError("kernels='cuda' needs MLX's CUDA backend and a GPU as the default device")
    return kernels


# The only lines the Metal and CUDA bodies do not share: the thread's index (Metal names it
# `thread_position_in_grid`, CUDA computes it from block and thread) and the float exp.
PRELUDE = {
    "metal": "const unsigned int gid = thread_position_in_grid.x;\n#define EXP metal::exp\n",
    "cuda": "const unsigned int gid = blockIdx.x * blockDim.x + threadIdx.x;\n#define EXP expf\n",
}


def gpu_kernel(backend: str, name: str, inputs: list[str], outputs: list[str], body: str):
    """A Metal or CUDA kernel from a body written once for both."""
    source = PRELUDE[backend] + body
    if backend == "metal":
        return mx.fast.metal_kernel(name=name, input_names=inputs, output_names=outputs, source=source)
    return mx.fast.cuda_kernel(name=name, input_names=inputs, output_names=outputs, source=source)
