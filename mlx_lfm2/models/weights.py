"""Checkpoint tensors -> the names and layouts of our modules (HF and MLX layouts alike)."""

from __future__ import annotations

import mlx.core as mx

from ..config import ModelConfig


def sanitize(config: ModelConfig, weights: dict[str, mx.array]) -> dict[str, mx.array]:
    """Maps a checkpoint's tensors onto the model's parameters.

    - conv kernels: PyTorch's (D, 1, K) becomes MLX's (D, K, 1);
    - a tied head: a stored `lm_head.weight` copy is dropped;
    - RoPE buffers some exports carry (`rotary_emb.inv_freq`) are dropped.
    """
    out = {}
    for name, value in weights.items():
        if name.endswith("rotary_emb.inv_freq"):
            continue
        if name.startswith("lm_head.") and config.tie_word_embeddings:
            continue
        if name.endswith("conv.conv.weight") and value.ndim == 3 and value.shape[1] == 1:
            value = value.swapaxes(1, 2)
        out[name] = value
    return out
