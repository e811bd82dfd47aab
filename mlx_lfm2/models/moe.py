"""The sparse feed-forward of LFM2-MoE (LFM2-8B-A1B, LFM2-24B-A2B), as transformers'
Lfm2MoeSparseMoeBlock computes it. Experts are stacked and run with mlx-lm's SwitchGLU
(`mx.gather_mm`, or `mx.gather_qmm` once quantized), which reads only the chosen experts."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
from mlx_lm.models.switch_layers import SwitchGLU

from ..config import ModelConfig

DENSE_NAMES = ("gate_proj", "up_proj", "down_proj")  # MLX layout of LFM2-MoE's dense MLPs


def route(
    logits: mx.array, top_k: int, expert_bias: mx.array | None, normalize: bool, scale: float
) -> tuple[mx.array, mx.array]:
    """Sigmoid router: (weights, experts), each (..., top_k).

    The expert bias only chooses the experts; the weights are the unbiased sigmoid scores of
    the chosen ones, renormalised (if asked) and scaled. Among tied scores any choice is
    equally right, and the one made here may differ from PyTorch's.
    """
    scores = mx.sigmoid(logits.astype(mx.float32))
    selection = scores if expert_bias is None else scores + expert_bias.astype(mx.float32)
    experts = mx.stop_gradient(mx.argpartition(-selection, kth=top_k - 1, axis=-1)[..., :top_k])
    weights = mx.take_along_axis(scores, experts, axis=-1)
    if normalize:
        weights = weights / (weights.sum(axis=-1, keepdims=True) + 1e-6)
    return weights * scale, experts


class SparseMoeBlock(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.top_k = config.num_experts_per_tok
        self.normalize = config.norm_topk_prob
        self.scale = config.routed_scaling_factor
        self.gate = nn.Linear(config.hidden_size, config.num_experts, bias=False)
        self.switch_mlp = SwitchGLU(config.hidden_size, config.moe_intermediate_size, config.num_experts)
        if config.use_expert_bias:
            self.expert_bias = mx.zeros((config.num_experts,))

    def __call__(self, h: mx.array) -> mx.array:
        weights, experts = route(self.gate(h), self.top_k, self.get("expert_bias"), self.normalize, self.scale)
        out = self.switch_mlp(h, experts)  # (..., top_k, D)
        return (out * weights[..., None].astype(out.dtype)).sum(axis=-2)
