"""Checkpoint tensors -> the names and layouts of our modules (HF and MLX layouts alike)."""

from __future__ import annotations

import re

import mlx.core as mx

from ..config import ModelConfig

# LFM2-MoE: HF's per-expert / dense names -> the MLX layout's (mlx-lm, mlx-swift-lm).
_MOE_PROJECTIONS = {"w1": "gate_proj", "w3": "up_proj", "w2": "down_proj"}
_EXPERT = re.compile(r"(.*\.feed_forward)\.experts\.(\d+)\.(w[123])\.weight$")
_DENSE = re.compile(r"(.*\.feed_forward)\.(w[123])\.weight$")
_FUSED = re.compile(r"(.*\.feed_forward)\.experts\.(gate_up_proj|down_proj)$")


def sanitize(config: ModelConfig, weights: dict[str, mx.array]) -> dict[str, mx.array]:
    """Maps a checkpoint's tensors onto the model's parameters.

    - conv kernels: PyTorch's (D, 1, K) becomes MLX's (D, K, 1);
    - a tied head: a stored `lm_head.weight` copy is dropped;
    - RoPE buffers some exports carry (`rotary_emb.inv_freq`) are dropped;
    - LFM2-MoE: per-expert tensors are stacked into `switch_mlp` (lazily: each stacked tensor
      is read when evaluated, so the experts are never held twice).
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
    return _stack_experts(config, out) if config.is_moe else out


def _stack_experts(config: ModelConfig, weights: dict[str, mx.array]) -> dict[str, mx.array]:
    out, experts = {}, {}
    for name, value in weights.items():
        if match := _EXPERT.match(name):
            prefix, index, projection = match.groups()
            experts.setdefault((prefix, projection), {})[int(index)] = value
        elif match := _DENSE.match(name):
            prefix, projection = match.groups()
            out[f"{prefix}.{_MOE_PROJECTIONS[projection]}.weight"] = value
        elif match := _FUSED.match(name):  # transformers' in-memory layout, if saved as is
            prefix, kind = match.groups()
            if kind == "gate_up_proj":
                gate, up = mx.split(value, 2, axis=1)
                out[f"{prefix}.switch_mlp.gate_proj.weight"] = gate
                out[f"{prefix}.switch_mlp.up_proj.weight"] = up
            else:
                out[f"{prefix}.switch_mlp.down_proj.weight"] = value
        else:
            out[name] = value
    for (prefix, projection), by_index in experts.items():
        # A missing expert leaves the stack short; check_weights then names the shape.
        stacked = mx.stack([by_index[i] for i in sorted(by_index)])
        out[f"{prefix}.switch_mlp.{_MOE_PROJECTIONS[projection]}.weight"] = stacked
    return out
