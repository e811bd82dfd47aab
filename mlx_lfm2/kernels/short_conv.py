"""The double-gated short convolution of LFM2's conv operator.

From the `in_proj` output `bcx = [B | C | x]` it computes `C * causal_depthwise_conv(B * x)`
and the conv state the next call continues from: the last K-1 values of `B * x`.

Bodies: `reference` (plain MLX ops, the definition of correct); `cpu` (the one-token decode
step compiled into one fused kernel with mx.compile, the reference otherwise: prefill is
dominated by the projections, and compiling every prompt length would cost more than it
saves); `metal` and `cuda` (one kernel from one shared source, below).
"""

from __future__ import annotations

from functools import lru_cache

import mlx.core as mx

from .backend import gpu_kernel


def short_conv_reference(
    bcx: mx.array,
    weight: mx.array,
    state: mx.array,
    bias: mx.array | None = None,
    mask: mx.array | None = None,
    lengths: mx.array | None = None,
) -> tuple[mx.array, mx.array]:
    """The specification, in plain MLX ops.

    bcx: (N, L, 3D) in_proj output; weight: (D, K, 1) taps, oldest first (MLX's Conv1d layout);
    state: (N, K-1, D); bias: (D,) or None; mask: (N, L) bool, False at padding, whose inputs
    count as zeros; lengths: (N,) valid tokens per row under right padding (the new state then
    ends at each row's last valid token). Returns y: (N, L, D) and the new state (N, K-1, D).
    """
    b, c, x = mx.split(bcx, 3, axis=-1)
    bx = b * x
    if mask is not None:
        bx = mx.where(mask[..., None], bx, 0)
    window = mx.concatenate([state.astype(bx.dtype), bx], axis=1)  # (N, K-1+L, D)
    taps, length = weight.shape[1], bx.shape[1]
    y = sum(window[:, k : k + length] * weight[:, k, 0] for k in range(taps))
    if bias is not None:
        y = y + bias
    if lengths is None:
        new_state = window[:, length:]
    else:
        ends = mx.clip(lengths, 0, length)[:, None] + mx.arange(taps - 1)  # (N, K-1)
        new_state = mx.take_along_axis(window, ends[..., None], axis=1)
    return c * y, new_state


# ---- metal / cuda: one thread per (row, channel), walking the sequence with the window in
# registers. Shared by both backends; only the prelude (backend.PRELUDE) differs. ----
GPU_BODY = """
const int batch = dims[0], length = dims[1], channels = dims[2];
if (gid >= (unsigned int)(batch * channels)) return;
const int n = gid / channels, d = gid % channels;
float window[K];
for (int k = 0; k < K - 1; ++k) window[k] = float(state[(n * (K - 1) + k) * channels + d]);
float taps[K];
for (int k = 0; k < K; ++k) taps[k] = float(weight[d * K + k]);
const float shift = HAS_BIAS ? float(bias[d]) : 0.0f;
for (int t = 0; t < length; ++t) {
    const int row = (n * length + t) * 3 * channels;
    float bx = float(bcx[row + d]) * float(bcx[row + 2 * channels + d]);
    if (HAS_MASK && !mask[n * length + t]) bx = 0.0f;
    window[K - 1] = bx;
    float acc = shift;
    for (int k = 0; k < K; ++k) acc += taps[k] * window[k];
    y[(n * length + t) * channels + d] = T(acc * float(bcx[row + channels + d]));
    for (int k = 0; k < K - 1; ++k) window[k] = window[k + 1];
}
for (int k = 0; k < K - 1; ++k) new_state[(n * (K - 1) + k) * channels + d] = T(window[k]);
"""


@lru_cache(maxsize=2)
def _gpu_kernel(backend: str):
    return gpu_kernel(
        backend, f"lfm2_short_conv_{backend}", ["bcx", "weight", "state", "bias", "mask", "dims"], ["y", "new_state"], GPU_BODY
    )


def _short_conv_gpu(backend, bcx, weight, state, bias, mask):
    batch, length, width = bcx.shape
    channels, taps = width // 3, weight.shape[1]
    placeholder = mx.zeros((1,), dtype=bcx.dtype)
    threads = batch * channels
    return _gpu_kernel(backend)(
        inputs=[
            bcx, weight.reshape(channels, taps), state.astype(bcx.dtype),
            placeholder if bias is None else bias, mx.ones((1,), mx.bool_) if mask is None else mask,
            mx.array([batch, length, channels], dtype=mx.int32),
        ],
        template=[("T", bcx.dtype), ("K", taps), ("HAS_BIAS", bias is not None), ("HAS_MASK", mask is not None)],
        grid=(threads, 1, 1),
        threadgroup=(min(256, threads), 1, 1),
        output_shapes=[(batch, length, channels), (batch, taps - 1, channels)],
        output_dtypes=[bcx.dtype, bcx.dtype],
    )


# ---- cpu: the decode step, compiled (MLX fuses the elementwise chain into one kernel) ----
@mx.compile
def _decode_step(bcx, weight, state):
    return short_conv_reference(bcx, weight, state)


@mx.compile
def _decode_step_with_bias(bcx, weight, state, bias):
    return short_conv_reference(bcx, weight, state, bias)


def _short_conv_cpu(bcx, weight, state, bias, mask, lengths):
    if bcx.shape[1] != 1 or mask is not None or lengths is not None:
        return short_conv_reference(bcx, weight, state, bias, mask, lengths)
    state = state.astype(bcx.dtype)
    return _decode_step(bcx, weight, state) if bias is None else _decode_step_with_bias(bcx, weight, state, bias)


def short_conv(bcx, weight, state, bias=None, mask=None, lengths=None, *, impl: str = "reference"):
    """Dispatch; impl is "reference", "cpu", "metal" or "cuda" (see kernels.backend.resolve).
    Right-padded batches (lengths) always take the reference."""
    if impl == "reference":
        return short_conv_reference(bcx, weight, state, bias, mask, lengths)
    if impl == "cpu":
        return _short_conv_cpu(bcx, weight, state, bias, mask, lengths)
    if lengths is not None:
        return short_conv_reference(bcx, weight, state, bias, mask, lengths)
    return _short_conv_gpu(impl, bcx, weight, state, bias, mask)
