"""The operators of LFM2's hybrid block, shared by the dense and the MoE models."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
from mlx_lm.models.base import scaled_dot_product_attention

from ..cache import conv_lengths, conv_state, store_conv_state
from ..config import ModelConfig
from ..kernels.short_conv import short_conv_reference


class ShortConv(nn.Module):
    """Double-gated short causal convolution: `out_proj(C * conv(B * x))`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        dim = config.hidden_size
        self.in_proj = nn.Linear(dim, 3 * dim, bias=config.conv_bias)
        # Depthwise: weight (D, K, 1) in MLX's Conv1d order, as mlx-lm and Swift store it.
        self.conv = nn.Conv1d(dim, dim, config.conv_L_cache, groups=dim, bias=config.conv_bias)
        self.out_proj = nn.Linear(dim, dim, bias=config.conv_bias)

    def __call__(self, h: mx.array, mask: mx.array | None = None, cache=None) -> mx.array:
        bcx = self.in_proj(h)  # (N, L, 3D)
        batch, length, _ = h.shape
        taps = self.conv.weight.shape[1]
        state = conv_state(cache, batch, taps, h.shape[-1], bcx.dtype)
        y, new_state = short_conv_reference(
            bcx, self.conv.weight[..., 0], state, self.conv.get("bias"), mask, conv_lengths(cache)
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
        self.q_layernorm = nn.RMSNorm(self.head_dim, eps=config.norm_eps)
        self.k_layernorm = nn.RMSNorm(self.head_dim, eps=config.norm_eps)
        self.rope = nn.RoPE(self.head_dim, traditional=False, base=config.rope_theta)

    def __call__(self, h: mx.array, mask=None, cache=None) -> mx.array:
        batch, length, _ = h.shape
        q = self.q_proj(h).reshape(batch, length, self.n_heads, self.head_dim)
        k = self.k_proj(h).reshape(batch, length, self.n_kv_heads, self.head_dim)
        v = self.v_proj(h).reshape(batch, length, self.n_kv_heads, self.head_dim)
        q = self.q_layernorm(q).transpose(0, 2, 1, 3)  # (N, heads, L, head_dim)
        k = self.k_layernorm(k).transpose(0, 2, 1, 3)
        v = v.transpose(0, 2, 1, 3)
        offset = 0 if cache is None else cache.offset
        q, k = self.rope(q, offset=offset), self.rope(k, offset=offset)
        if cache is not None:
            k, v = cache.update_and_fetch(k, v)
        out = scaled_dot_product_attention(q, k, v, cache=cache, scale=self.scale, mask=mask)
        return self.out_proj(out.transpose(0, 2, 1, 3).reshape(batch, length, -1))


class MLP(nn.Module):
    """SwiGLU feed-forward: `down(silu(gate(h)) * up(h))`.

    `names` are the projections' names in the checkpoints: dense LFM2 says w1 (gate), w3 (up)
    and w2 (down); LFM2-MoE in the MLX layout (mlx-lm, mlx-swift-lm) says gate_proj, up_proj
    and down_proj.
    """

    def __init__(self, dim: int, hidden: int, names: tuple[str, str, str] = ("w1", "w3", "w2")):
        super().__init__()
        self._gate, self._up, self._down = names
        self[self._gate] = nn.Linear(dim, hidden, bias=False)
        self[self._up] = nn.Linear(dim, hidden, bias=False)
        self[self._down] = nn.Linear(hidden, dim, bias=False)

    def __call__(self, h: mx.array) -> mx.array:
        return self[self._down](nn.silu(self[self._gate](h)) * self[self._up](h))
