"""Random-weight MLX checkpoints at the real LFM2 shapes, for benchmarks and slow tests."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from mlx_lfm2 import ModelConfig
from mlx_lfm2.models import Model

_DENSE = dict(
    model_type="lfm2", vocab_size=65536, block_multiple_of=256, block_ffn_dim_multiplier=1.0,
    block_auto_adjust_ff_dim=True, max_position_embeddings=128000, norm_eps=1e-5, conv_L_cache=3,
    conv_bias=False, rope_theta=1000000.0, tie_embedding=True, eos_token_id=7,
)


def _dense(hidden, ff, layers, heads, attention):
    return dict(_DENSE, hidden_size=hidden, block_dim=hidden, block_ff_dim=ff, num_hidden_layers=layers,
                num_attention_heads=heads, num_key_value_heads=8, full_attn_idxs=attention)


# The published LFM2 configs (hidden, ff, layers, heads, attention layers), and a tiny one for
# smoke runs.
SHAPES = {
    "tiny": _dense(256, 1024, 4, 8, [1, 3]),
    "350M": _dense(1024, 6656, 16, 16, [2, 5, 8, 10, 12, 14]),
    "700M": _dense(1536, 10240, 16, 24, [2, 5, 8, 10, 12, 14]),
    "1.2B": _dense(2048, 12288, 16, 32, [2, 5, 8, 10, 12, 14]),
    "2.6B": _dense(2048, 10752, 30, 32, [2, 6, 10, 14, 18, 21, 24, 27]),
    "8B-A1B": dict(
        _DENSE, hidden_size=2048, intermediate_size=7168, moe_intermediate_size=1792, num_hidden_layers=24,
        num_attention_heads=32, num_key_value_heads=8, num_experts=32, num_experts_per_tok=4,
        num_dense_layers=2, norm_topk_prob=True, use_expert_bias=True, routed_scaling_factor=1.0,
        model_type="lfm2_moe", layer_types=["full_attention" if i in (2, 6, 10, 14, 18, 21) else "conv" for i in range(24)],
    ),
}


def write_random_checkpoint(raw_config, folder: Path, *, bits=None, group_size=64, dtype=None, shard_bytes=1 << 30,
                            tokenizer=None) -> Path:
    """An MLX-layout checkpoint with random weights, written shard by shard so that a model
    larger than memory in float32 never exists in full. tokenizer(folder) writes one."""
    model = Model(ModelConfig.from_dict(raw_config))  # lazy: nothing computed yet
    if dtype is not None:
        model.set_dtype(dtype)
    raw = dict(raw_config)
    if bits is not None:
        def quantizable(path, module):  # the router and norms stay in float, as the converter keeps them
            return hasattr(module, "to_quantized") and not path.endswith("feed_forward.gate")

        nn.quantize(model, group_size=group_size, bits=bits, class_predicate=quantizable)
        raw["quantization"] = {"group_size": group_size, "bits": bits}
    folder.mkdir(parents=True, exist_ok=True)
    shard, size, index = {}, 0, 0
    for name, array in tree_flatten(model.parameters()):
        mx.eval(array)
        shard[name], size = array, size + array.nbytes
        if size >= shard_bytes:
            mx.save_safetensors(str(folder / f"model-{index:05d}.safetensors"), shard)
            shard, size, index = {}, 0, index + 1
    if shard:
        mx.save_safetensors(str(folder / f"model-{index:05d}.safetensors"), shard)
    (folder / "config.json").write_text(json.dumps(raw))
    if tokenizer is not None:
        tokenizer(folder)
    return folder
