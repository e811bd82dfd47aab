"""The operators of LFM2's hybrid block, shared by the dense and the MoE models."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
from mlx_lm.models.base import scaled_dot_product_attention

from ..cache import conv_lengths, conv_state, store_conv_state
from ..config import ModelConfig
from ..kernels import cpu_extension
from ..kernels.gates import swiglu
from ..kernels.norms import rms_norm
from ..kernels.rope import inverse_frequencies, rope
from ..kernels.short_conv import short_conv


class RMSNorm(nn.RMSNorm):
    """MLX's RMSNorm (same parameter), with a choice of kernel body."""

    kernels = "reference"

    def __call__(self, x: mx.array) -> mx.array:
        return rms_norm(x, self.weight, self.eps, impl=self.kernels)


class ShortConv(nn.Module):
    """Double-gated short causal convolution: `out_proj(C * conv(B * x))`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        dim = config.hidden_size
        self.in_proj = nn.Linear(dim, 3 * dim, bias=config.conv_bias)
        # Depthwise: weight (D, K, 1) in MLX's Conv1d order, as mlx-lm and Swift store it.
        self.conv = nn.Conv1d(dim, dim, config.conv_L_cache, groups=dim, bias=config.conv_bias)
        self.out_proj = nn.Linear(dim, dim, bias=config.conv_bias)
        self.kernels = "reference"  # which body of the fused conv runs: see kernels.backend

    def __call__(self, h: mx.array, mask: mx.array | None = None, cache=None) -> mx.array:
        bcx = self.in_proj(h)  # (N, L, 3D)
        batch, length, _ = h.shape
        taps = self.conv.weight.shape[1]
        state = conv_state(cache, batch, taps, h.shape[-1], bcx.dtype)
        y, new_state = short_conv(
            bcx, self.conv.weight, state, self.conv.get("bias"), mask, conv_lengths(cache), impl=self.kernels
        )
        store_conv_state(cache, new_state, length)
        return self.out_proj(y)


class Attention(nn.Module):
    """GQA attention with per-head RMSNorm on queries and keys, then RoPE."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        dim, self.head_dim = config.hidden_size, config.head_dim
        self.n_heads, self.n_kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.scale = self.head_dim**-0.5
        self.q_proj = nn.Linear(dim, self.n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(dim, self.n_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(dim, self.n_kv_heads * self.head_dim, bias=False)
        self.out_proj = nn.Linear(self.n_heads * self.head_dim, dim, bias=False)
        self.q_layernorm = RMSNorm(self.head_dim, eps=config.norm_eps)
        self.k_layernorm = RMSNorm(self.head_dim, eps=config.norm_eps)
        self.rope_base = config.rope_theta
        self._inverse_frequency = inverse_frequencies(self.head_dim, self.rope_base)  # "_": not a parameter
        self.kernels = "reference"  # which RoPE body runs: see kernels.backend
        self.cpu_attention = False  # the C++ extension's causal attention: see models.cpu_matmul

    def fuse(self) -> bool:
        """One projection for q, k and v (on disk they stay three); False if they differ
        in quantization and cannot share one."""
        fused = concatenate_linears([self.q_proj, self.k_proj, self.v_proj])
        if fused is None:
            return False
        self.qkv_proj = fused
        del self.q_proj, self.k_proj, self.v_proj
        return True

    def projections(self, h: mx.array) -> tuple[mx.array, mx.array, mx.array]:
        if "qkv_proj" not in self:
            return self.q_proj(h), self.k_proj(h), self.v_proj(h)
        q_width, kv_width = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        q, k, v = mx.split(self.qkv_proj(h), [q_width, q_width + kv_width], axis=-1)
        return q, k, v

    def __call__(self, h: mx.array, mask=None, cache=None) -> mx.array:
        batch, length, _ = h.shape
        q, k, v = self.projections(h)
        q = q.reshape(batch, length, self.n_heads, self.head_dim)
        k = k.reshape(batch, length, self.n_kv_heads, self.head_dim)
        v = v.reshape(batch, length, self.n_kv_heads, self.head_dim)
        q = self.q_layernorm(q).transpose(0, 2, 1, 3)  # (N, heads, L, head_dim)
        k = self.k_layernorm(k).transpose(0, 2, 1, 3)
        v = v.transpose(0, 2, 1, 3)
        offset = 0 if cache is None else cache.offset
        position = dict(offset=offset, dims=self.head_dim, base=self.rope_base, inverse_frequency=self._inverse_frequency)
        q, k = rope(q, **position, impl=self.kernels), rope(k, **position, impl=self.kernels)
        if cache is not None:
            k, v = cache.update_and_fetch(k, v)
        out = self.attend(q, k, v, mask, cache)
        return self.out_proj(out.transpose(0, 2, 1, 3).reshape(batch, length, -1))

    def attend(self, q: mx.array, k: mx.array, v: mx.array, mask, cache) -> mx.array:
        # The extension covers what a plain KV cache asks for: a causal prompt, or one new token
        # over every key; padded batches and wrapped rotating caches bring array masks.
        causal = isinstance(mask, str) and mask == "causal" if q.shape[2] > 1 else mask is None
        if self.cpu_attention and causal and q.dtype == mx.float32:
            return cpu_extension.causal_attention(q, k, v, self.scale)
        return scaled_dot_product_attention(q, k, v, cache=cache, scale=self.scale, mask=mask)


class MLP(nn.Module):
    """SwiGLU feed-forward: `down(silu(gate(h)) * up(h))`.

    `names` are the projections' names in the checkpoints: dense LFM2 says w1 (gate), w3 (up)
    and w2 (down); LFM2-MoE in the MLX layout (mlx-lm, mlx-swift-lm) says gate_proj, up_proj
    and down_proj. `fuse()` joins gate and up into one projection for speed.
    """

    def __init__(self, dim: int, hidden: int, names: tuple[str, str, str] = ("w1", "w3", "w2")):
        super().__init__()
        self._gate, self._up, self._down = names
        self[self._gate] = nn.Linear(dim, hidden, bias=False)
        self[self._up] = nn.Linear(dim, hidden, bias=False)
        self[self._down] = nn.Linear(hidden, dim, bias=False)
        self.kernels = "reference"  # which body of the fused gate runs: see kernels.backend
        self.cpu_gate = False  # the C++ extension's SwiGLU: see models.cpu_matmul

    def fuse(self) -> bool:
        fused = concatenate_linears([self[self._gate], self[self._up]])
        if fused is None:
            return False
        self.gate_up = fused
        del self[self._gate], self[self._up]
        return True

    def __call__(self, h: mx.array) -> mx.array:
        if "gate_up" in self:
            gate_up = self.gate_up(h)
            if self.cpu_gate and gate_up.dtype == mx.float32:
                return self[self._down](cpu_extension.swiglu(gate_up))
            return self[self._down](swiglu(gate_up, impl=self.kernels))
        return self[self._down](nn.silu(self[self._gate](h)) * self[self._up](h))


def concatenate_linears(layers: list[nn.Module]) -> nn.Module | None:
    """One linear layer computing the given ones' outputs side by side; quantized layers join
    too (group quantization keeps rows independent) when they share their settings."""
    first = layers[0]
    if any(type(layer) is not type(first) or "bias" in layer for layer in layers):
        return None
    packed = isinstance(first, nn.QuantizedLinear)
    in_dims = first.weight.shape[1] * 32 // first.bits if packed else first.weight.shape[1]
    out_dims = sum(layer.weight.shape[0] for layer in layers)
    if packed:
        settings = (first.group_size, first.bits, first.mode)
        if any((layer.group_size, layer.bits, layer.mode) != settings for layer in layers):
            return None
        fused = nn.QuantizedLinear(in_dims, out_dims, bias=False, group_size=first.group_size, bits=first.bits, mode=first.mode)
        for name in ("weight", "scales", "biases"):
            if name in first:
                fused[name] = mx.concatenate([layer[name] for layer in layers], axis=0)
        return fused
    if not isinstance(first, nn.Linear):
        return None
    fused = nn.Linear(in_dims, out_dims, bias=False)
    fused.weight = mx.concatenate([layer.weight for layer in layers], axis=0)
    return fused
