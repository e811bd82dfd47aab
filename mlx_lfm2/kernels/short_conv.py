"""The double-gated short convolution of LFM2's conv operator.

From the `in_proj` output `bcx = [B | C | x]` it computes `C * causal_depthwise_conv(B * x)`
and the conv state the next call continues from: the last K-1 values of `B * x`.
"""

from __future__ import annotations

import mlx.core as mx


def short_conv_reference(
    bcx: mx.array,
    weight: mx.array,
    state: mx.array,
    bias: mx.array | None = None,
    mask: mx.array | None = None,
    lengths: mx.array | None = None,
) -> tuple[mx.array, mx.array]:
    """The specification, in plain MLX ops.

    bcx: (N, L, 3D) in_proj output; weight: (D, K) taps, oldest first; state: (N, K-1, D);
    bias: (D,) or None; mask: (N, L) bool, False at padding, whose inputs count as zeros;
    lengths: (N,) valid tokens per row under right padding (the new state then ends at
    each row's last valid token). Returns y: (N, L, D) and the new state (N, K-1, D).
    """
    b, c, x = mx.split(bcx, 3, axis=-1)
    bx = b * x
    if mask is not None:
        bx = mx.where(mask[..., None], bx, 0)
    window = mx.concatenate([state.astype(bx.dtype), bx], axis=1)  # (N, K-1+L, D)
    taps, length = weight.shape[1], bx.shape[1]
    y = sum(window[:, k : k + length] * weight[:, k] for k in range(taps))
    if bias is not None:
        y = y + bias
    if lengths is None:
        new_state = window[:, length:]
    else:
        ends = mx.clip(lengths, 0, length)[:, None] + mx.arange(taps - 1)  # (N, K-1)
        new_state = mx.take_along_axis(window, ends[..., None], axis=1)
    return c * y, new_state
