"""Small random LFM2 checkpoints made with transformers, and a BPE tokenizer with LFM2's
special tokens at LFM2's ids: the fixtures every parity test compares against."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import torch
from lfm2_tokenizer import train_tokenizer

VOCAB_SIZE = 384

TINY = dict(
    model_type="lfm2",
    vocab_size=VOCAB_SIZE,
    hidden_size=64,
    intermediate_size=192,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    layer_types=["conv", "full_attention", "conv", "full_attention"],
    max_position_embeddings=2048,
    norm_eps=1e-5,
    conv_L_cache=3,
    block_multiple_of=32,
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    eos_token_id=7,
)

TINY_MOE = dict(
    TINY,
    model_type="lfm2_moe",
    intermediate_size=96,
    moe_intermediate_size=48,
    num_experts=8,
    num_experts_per_tok=2,
    num_dense_layers=1,
    use_expert_bias=True,
    norm_topk_prob=True,
    routed_scaling_factor=1.0,
)


def _corpus() -> list[str]:
    words = "the weather in oslo paris tokyo is sunny rainy cold warm what add numbers convert units".split()
    lines = [" ".join(words[i:] + words[:i]) for i in range(len(words))]
    return lines + ["get_weather(city='Oslo')", "[1, 2, 3] {\"a\": 1} 3.14 -7", "héllo wörld ñ 日本 🙂"]


def make_tokenizer(folder: Path) -> None:
    """A byte-level BPE trained on a tiny corpus, saved as a transformers tokenizer."""
    train_tokenizer(_corpus(), VOCAB_SIZE, folder)


def randomize(model: torch.nn.Module, seed: int, gain: float = 1.0) -> None:
    """Weights that give activations and logits of order 1 (HF's init makes them tiny).

    gain scales the projections inside the blocks: below 1 the residual stream dominates, as in
    trained models, instead of the chaos of full-width random layers that amplifies any
    rounding (used where quantization error is measured)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float32)
            if "norm" in name:
                value = 1.0 + 0.2 * noise
            elif "bias" in name:
                value = 0.2 * noise
            elif "conv.conv.weight" in name:
                value = 0.5 * noise
            elif "embed_tokens" in name or "lm_head" in name:
                value = noise / math.sqrt(tensor.shape[-1])
            else:
                value = gain * noise / math.sqrt(tensor.shape[-1])
            tensor.copy_(value.to(tensor.dtype))


def hf_model(config: dict[str, Any], seed: int = 0, gain: float = 1.0):
    from transformers import AutoConfig, AutoModelForCausalLM

    hf_config = AutoConfig.for_model(**config)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(hf_config, dtype=torch.float32).eval()
    randomize(model, seed, gain)
    return model


def save_checkpoint(
    model,
    folder: Path,
    *,
    dtype: torch.dtype = torch.float32,
    max_shard_size: str | None = None,
    original_style: bool = False,
) -> Path:
    """save_pretrained plus the tokenizer; original_style rewrites config.json with the key
    spellings of the first LFM2 releases (block_ff_dim, full_attn_idxs, rope_theta, tie_embedding)."""
    folder.mkdir(parents=True, exist_ok=True)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    copy.deepcopy(model).to(dtype).save_pretrained(folder, **kwargs)  # the reference stays float32
    make_tokenizer(folder)
    if original_style:
        path = folder / "config.json"
        config = json.loads(path.read_text())
        config["block_ff_dim"] = config.pop("intermediate_size")
        config["block_dim"] = config["hidden_size"]
        config["full_attn_idxs"] = [i for i, t in enumerate(config.pop("layer_types")) if t == "full_attention"]
        config["rope_theta"] = config.pop("rope_parameters")["rope_theta"]
        config["tie_embedding"] = config.pop("tie_word_embeddings")
        path.write_text(json.dumps(config, indent=2))
    return folder


def hf_logits(model, tokens: list[list[int]] | list[int], attention_mask=None):
    ids = torch.tensor(tokens if isinstance(tokens[0], list) else [tokens])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=attention_mask)
    return out.logits.float().numpy()


def random_tokens(length: int, seed: int = 0) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(14, VOCAB_SIZE, (length,), generator=generator).tolist()


def stepwise_logits(model, tokens: list[int], prefill: int):
    """Logits from a prefill of `prefill` tokens, then one token at a time through the caches."""
    import mlx.core as mx
    import numpy as np

    cache = model.make_cache()
    chunks = [model(mx.array([tokens[:prefill]]), cache=cache)]
    for token in tokens[prefill:]:
        chunks.append(model(mx.array([[token]]), cache=cache))
    return np.array(mx.concatenate(chunks, axis=1).astype(mx.float32))

