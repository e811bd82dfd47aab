"""Real LFM2 shapes with random weights; slow, off in CI: run with `pytest -m slow`."""

import mlx.core as mx
import numpy as np
import pytest

import mlx_lfm2
from checkpoints import hf_logits, hf_model, random_tokens, save_checkpoint, stepwise_logits

LFM2_350M = dict(
    model_type="lfm2",
    vocab_size=65536,
    hidden_size=1024,
    block_ff_dim=6656,
    block_multiple_of=256,
    block_ffn_dim_multiplier=1.0,
    block_auto_adjust_ff_dim=True,
    num_hidden_layers=16,
    num_attention_heads=16,
    num_key_value_heads=8,
    full_attn_idxs=[2, 5, 8, 10, 12, 14],
    max_position_embeddings=128000,
    norm_eps=1e-5,
    conv_L_cache=3,
    eos_token_id=7,
)


@pytest.mark.slow
def test_lfm2_350m_shape_parity(tmp_path):
    reference = hf_model(LFM2_350M, seed=0)
    model, _ = mlx_lfm2.load(save_checkpoint(reference, tmp_path))
    assert model.layers[0].feed_forward.w1.weight.shape == (4608, 1024)
    assert [i for i, layer in enumerate(model.layers) if layer.is_attention_layer] == [2, 5, 8, 10, 12, 14]
    tokens = random_tokens(24)
    expected = hf_logits(reference, tokens)
    # 16 layers and a 65536-wide head in float32: summation order alone moves logits by ~1e-5.
    np.testing.assert_allclose(np.array(model(mx.array([tokens]))), expected, atol=2e-4, rtol=0)
    np.testing.assert_allclose(stepwise_logits(model, tokens, prefill=8), expected, atol=2e-4, rtol=0)
