"""Dense LFM2 against transformers' Lfm2ForCausalLM on random weights, in float32."""

import mlx.core as mx
import numpy as np
import pytest
import torch

import mlx_lfm2
from checkpoints import TINY, hf_logits, hf_model, random_tokens, save_checkpoint, stepwise_logits

TOLERANCE = 1e-4  # max abs logit difference; logits are of order 1

VARIANTS = {
    "transformers5-keys": dict(TINY),
    "original-keys": dict(TINY),  # saved with block_ff_dim, full_attn_idxs, rope_theta, tie_embedding
    "untied-head": dict(TINY, tie_word_embeddings=False),
    "conv-bias-4-taps": dict(TINY, conv_bias=True, conv_L_cache=4),
    "no-ff-adjust-mha-default-rope": {
        **{k: v for k, v in TINY.items() if k != "rope_parameters"},
        "block_auto_adjust_ff_dim": False,
        "num_key_value_heads": 4,
    },
    "ff-multiplier-attention-first": dict(
        TINY,
        block_ffn_dim_multiplier=1.5,
        layer_types=["full_attention", "conv", "conv", "full_attention", "conv"],
        num_hidden_layers=5,
    ),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request, tmp_path_factory):
    reference = hf_model(VARIANTS[request.param], seed=len(request.param))
    folder = save_checkpoint(
        reference, tmp_path_factory.mktemp(request.param), original_style=request.param == "original-keys"
    )
    model, _ = mlx_lfm2.load(folder)
    return reference, model


def test_full_sequence_logits_match_transformers(variant):
    reference, model = variant
    tokens = random_tokens(24)
    expected = hf_logits(reference, tokens)
    assert np.abs(expected).mean() > 0.3  # logits of order 1, so the tolerance means something
    got = np.array(model(mx.array([tokens])))
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("prefill", [1, 2, 9])
def test_prefill_then_decode_matches_full_pass(variant, prefill):
    reference, model = variant
    tokens = random_tokens(22, seed=1)
    expected = hf_logits(reference, tokens)
    np.testing.assert_allclose(stepwise_logits(model, tokens, prefill), expected, atol=TOLERANCE, rtol=0)


def test_untied_head_is_used(tmp_path):
    reference = hf_model(VARIANTS["untied-head"], seed=3)
    model, _ = mlx_lfm2.load(save_checkpoint(reference, tmp_path))
    head = np.array(model.lm_head.weight)
    np.testing.assert_array_equal(head, reference.lm_head.weight.detach().numpy())
    assert not np.allclose(head, np.array(model.model.embed_tokens.weight))


def test_left_padded_batch_matches_each_prompt_alone(tiny_checkpoint):
    reference, folder = tiny_checkpoint
    model, _ = mlx_lfm2.load(folder)
    prompts = [random_tokens(n, seed=n) for n in (11, 4, 8)]
    width = max(map(len, prompts))
    padding = [width - len(p) for p in prompts]
    batch = mx.array([[0] * pad + p for pad, p in zip(padding, prompts)])
    cache = model.make_cache(left_padding=padding)
    prefill = model(batch, cache=cache)
    steps = [mx.array([[p[0]] for p in prompts]), mx.array([[p[-1]] for p in prompts])]
    decoded = [model(step, cache=cache) for step in steps]
    for row, prompt in enumerate(prompts):
        full = prompt + [int(steps[0][row, 0]), int(steps[1][row, 0])]
        alone = hf_logits(reference, full)[0]
        got = np.concatenate([np.array(prefill[row, padding[row] :])] + [np.array(d[row]) for d in decoded])
        np.testing.assert_allclose(got, alone, atol=TOLERANCE, rtol=0)


def test_bfloat16_checkpoint_runs_in_bfloat16(tmp_path, tiny_checkpoint):
    reference, _ = tiny_checkpoint
    model, _ = mlx_lfm2.load(save_checkpoint(reference, tmp_path, dtype=torch.bfloat16), compute_dtype=None)
    assert model.model.embed_tokens.weight.dtype == mx.bfloat16
    tokens = random_tokens(24)
    logits = model(mx.array([tokens]))
    assert logits.dtype == mx.bfloat16
    expected = hf_logits(reference, tokens)
    # bf16 keeps ~3 significant digits; through 4 blocks the logits drift by a few hundredths.
    got = np.array(logits.astype(mx.float32))[0]
    error = np.abs(got - expected[0])
    cosine = (got * expected[0]).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(expected[0], axis=-1)
    assert error.max() < 0.15 and error.mean() < 0.02 and cosine.min() > 0.999
