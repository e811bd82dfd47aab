"""LFM2-MoE against transformers' Lfm2MoeForCausalLM on random weights, in float32."""

import mlx.core as mx
import numpy as np
import pytest
import torch

import mlx_lfm2
from checkpoints import TINY_MOE, hf_logits, hf_model, random_tokens, save_checkpoint, stepwise_logits
from mlx_lfm2.models.moe import route

TOLERANCE = 1e-4

VARIANTS = {
    "bias-renorm-1-dense": dict(TINY_MOE),
    "no-bias-no-renorm-0-dense-scaled": dict(
        TINY_MOE, use_expert_bias=False, norm_topk_prob=False, num_dense_layers=0, routed_scaling_factor=2.5
    ),
    "2-dense-all-experts-untied": dict(
        TINY_MOE, num_dense_layers=2, num_experts=4, num_experts_per_tok=4, tie_word_embeddings=False
    ),
    "bias-no-renorm-top1": dict(TINY_MOE, norm_topk_prob=False, num_experts_per_tok=1),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request, tmp_path_factory):
    reference = hf_model(VARIANTS[request.param], seed=11)
    model, _ = mlx_lfm2.load(save_checkpoint(reference, tmp_path_factory.mktemp(request.param)))
    return reference, model


def test_full_sequence_logits_match_transformers(variant):
    reference, model = variant
    tokens = random_tokens(24)
    expected = hf_logits(reference, tokens)
    assert np.abs(expected).mean() > 0.3
    np.testing.assert_allclose(np.array(model(mx.array([tokens]))), expected, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("prefill", [1, 7])
def test_prefill_then_decode_matches_full_pass(variant, prefill):
    reference, model = variant
    tokens = random_tokens(20, seed=2)
    np.testing.assert_allclose(
        stepwise_logits(model, tokens, prefill), hf_logits(reference, tokens), atol=TOLERANCE, rtol=0
    )


def test_batch_of_two(variant):
    reference, model = variant
    rows = [random_tokens(16, seed=3), random_tokens(16, seed=4)]
    expected = hf_logits(reference, rows)
    got = np.array(model(mx.array(rows)))
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(got[1], np.array(model(mx.array(rows[1:])))[0], atol=1e-5, rtol=0)


def test_dense_and_sparse_layers_follow_num_dense_layers(variant):
    _, model = variant
    dense = model.config.num_dense_layers
    for index, layer in enumerate(model.layers):
        assert hasattr(layer.feed_forward, "switch_mlp") == (index >= dense)


def test_tied_router_scores(tmp_path):
    """Experts 0 and 1 get identical router rows, so their scores tie at every token; giving
    them identical weights too makes every tie-break equally right, and we must match."""
    reference = hf_model(dict(TINY_MOE, use_expert_bias=False, num_experts_per_tok=1), seed=5)
    with torch.no_grad():
        for layer in reference.model.layers[TINY_MOE["num_dense_layers"] :]:
            block = layer.feed_forward
            block.gate.weight[1] = block.gate.weight[0]
            block.gate.weight[0] *= 4  # the tied pair usually wins: the tie decides the one expert
            block.gate.weight[1] = block.gate.weight[0]
            block.experts.gate_up_proj[1] = block.experts.gate_up_proj[0]
            block.experts.down_proj[1] = block.experts.down_proj[0]
    model, _ = mlx_lfm2.load(save_checkpoint(reference, tmp_path))
    tokens = random_tokens(16)
    np.testing.assert_allclose(
        np.array(model(mx.array([tokens]))), hf_logits(reference, tokens), atol=TOLERANCE, rtol=0
    )


def test_route_selects_highest_biased_scores_and_weights_unbiased():
    logits = mx.array([[2.0, 0.0, 1.0, -1.0], [0.5, 0.5, 0.5, 0.5]])
    bias = mx.array([0.0, 0.9, 0.0, 0.0])
    weights, experts = route(logits, 2, bias, normalize=False, scale=2.0)
    assert sorted(experts[0].tolist()) == [0, 1]  # sigmoid(0)+0.9 beats sigmoid(1)
    chosen = sorted(zip(experts[0].tolist(), weights[0].tolist()))
    np.testing.assert_allclose([w for _, w in chosen], 2 * 1 / (1 + np.exp(-np.array([2.0, 0.0]))), rtol=1e-6)
    assert len(set(experts[1].tolist())) == 2  # all tied: two distinct experts, any two
    weights, _ = route(logits, 4, None, normalize=True, scale=1.0)
    np.testing.assert_allclose(np.array(weights.sum(-1)), 1.0, atol=1e-5)


def test_per_expert_checkpoint_loads_without_a_second_copy(tmp_path):
    """HF stores experts one by one; stacking them must not hold both layouts at once."""
    config = dict(TINY_MOE, hidden_size=128, num_experts=32, moe_intermediate_size=256, num_dense_layers=0)
    folder = save_checkpoint(hf_model(config, seed=1), tmp_path)
    on_disk = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    assert on_disk > 40e6
    mx.clear_cache()
    mx.reset_peak_memory()
    baseline = mx.get_active_memory()  # what other tests still hold
    model, _ = mlx_lfm2.load(folder)
    assert model.layers[0].feed_forward.switch_mlp.gate_proj.weight.shape == (32, 256, 128)
    one_layer = on_disk / config["num_hidden_layers"]
    assert mx.get_peak_memory() - baseline < on_disk + one_layer
