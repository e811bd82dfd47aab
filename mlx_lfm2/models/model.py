"""The LFM2 network: embedding -> hybrid blocks -> final RMSNorm -> tied or untied head.

Module names mirror the Hugging Face checkpoints (`model.layers.N.conv.in_proj`, ...), so
weights load by name and the converter's output is what mlx-lm and mlx-swift-lm expect.
The model speaks mlx-lm's protocol (`__call__(inputs, cache)`, `layers`, `make_cache`,
`sanitize`), so mlx-lm's generate, server and batching can drive it.
"""

from __future__ import annotations

from typing import Sequence

import mlx.core as mx
import mlx.nn as nn
from mlx_lm.models.base import create_attention_mask, create_ssm_mask

from ..cache import make_cache
from ..config import ModelConfig
from ..kernels.norms import add_rms_norm
from .layers import MLP, Attention, RMSNorm, ShortConv
from .moe import DENSE_NAMES, SparseMoeBlock
from .weights import sanitize


def feed_forward(config: ModelConfig, index: int) -> nn.Module:
    if config.is_sparse_layer(index):
        return SparseMoeBlock(config)
    if config.is_moe:
        return MLP(config.hidden_size, config.ff_dim, names=DENSE_NAMES)
    return MLP(config.hidden_size, config.ff_dim)


class DecoderLayer(nn.Module):
    """`h = x + op(norm(x))`, then `h + ffn(norm(h))`; op is a ShortConv or Attention."""

    def __init__(self, config: ModelConfig, index: int):
        super().__init__()
        self.is_attention_layer = config.layer_types[index] == "full_attention"
        if self.is_attention_layer:
            self.self_attn = Attention(config)
        else:
            self.conv = ShortConv(config)
        self.feed_forward = feed_forward(config, index)
        self.operator_norm = RMSNorm(config.hidden_size, eps=config.norm_eps)
        self.ffn_norm = RMSNorm(config.hidden_size, eps=config.norm_eps)

    def __call__(self, x: mx.array, mask=None, cache=None) -> mx.array:
        op = self.self_attn if self.is_attention_layer else self.conv
        residual = op(self.operator_norm(x), mask=mask, cache=cache)
        norm = self.ffn_norm
        h, normed = add_rms_norm(x, residual, norm.weight, norm.eps, impl=norm.kernels)
        return h + self.feed_forward(normed)


class Backbone(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = [DecoderLayer(config, i) for i in range(config.num_hidden_layers)]
        # Named "embedding_norm" in the checkpoints, but applied after the last layer.
        self.embedding_norm = RMSNorm(config.hidden_size, eps=config.norm_eps)
        kinds = config.layer_types
        self._first_attention = kinds.index("full_attention") if "full_attention" in kinds else None
        self._first_conv = kinds.index("conv") if "conv" in kinds else None

    def __call__(self, inputs: mx.array, cache=None, input_embeddings: mx.array | None = None) -> mx.array:
        h = self.embed_tokens(inputs) if input_embeddings is None else input_embeddings
        cache = cache or [None] * len(self.layers)
        # Every layer of a kind shares one mask, made from the first such layer's cache.
        attention_cache = None if self._first_attention is None else cache[self._first_attention]
        conv_cache = None if self._first_conv is None else cache[self._first_conv]
        attention_mask = create_attention_mask(h, attention_cache)
        conv_mask = create_ssm_mask(h, conv_cache)
        for layer, layer_cache in zip(self.layers, cache):
            mask = attention_mask if layer.is_attention_layer else conv_mask
            h = layer(h, mask, cache=layer_cache)
        return self.embedding_norm(h)


class Model(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.model_type = config.model_type
        self.model = Backbone(config)
        if not config.tie_word_embeddings:
            self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def __call__(self, inputs: mx.array, cache=None, input_embeddings: mx.array | None = None) -> mx.array:
        h = self.model(inputs, cache, input_embeddings)
        if self.config.tie_word_embeddings:
            return self.model.embed_tokens.as_linear(h)
        return self.lm_head(h)

    @property
    def layers(self) -> list[DecoderLayer]:
        return self.model.layers

    def make_cache(self, left_padding: Sequence[int] | None = None) -> list:
        return make_cache(self.config, left_padding)

    def sanitize(self, weights: dict[str, mx.array]) -> dict[str, mx.array]:
        return sanitize(self.config, weights)
