"""Every kernel body that can run here against its plain-MLX reference.

The Metal bodies run only on a Mac GPU and the CUDA bodies only with MLX's CUDA backend; the
tests for them skip elsewhere (CI has neither)."""

import itertools

import mlx.core as mx
import numpy as np
import pytest

import mlx_lfm2
from checkpoints import random_tokens
from mlx_lfm2.kernels.backend import KernelError, cuda_available, metal_available, resolve
from mlx_lfm2.kernels.gates import swiglu, swiglu_reference
from mlx_lfm2.kernels.short_conv import short_conv, short_conv_reference

BODIES = [
    "cpu",
    pytest.param("metal", marks=pytest.mark.skipif(not metal_available(), reason="needs a Mac GPU (Metal)")),
    pytest.param("cuda", marks=pytest.mark.skipif(not cuda_available(), reason="needs MLX's CUDA backend")),
]
# Max abs error against the reference for values of order 1, plus two units in the last place
# for larger ones (products of three normals reach ~20, where a bfloat16 step is 0.125): a body
# that rounds once may differ from a reference that rounds each step by that much (seen on CUDA).
TOLERANCE = {mx.float32: 1e-5, mx.float16: 4e-3, mx.bfloat16: 3e-2}
RELATIVE = {mx.float32: 0.0, mx.float16: 2**-9, mx.bfloat16: 2**-6}
DTYPES = [mx.float32, mx.float16, mx.bfloat16]


def close(got, expected, dtype):
    np.testing.assert_allclose(
        np.array(got.astype(mx.float32)), np.array(expected.astype(mx.float32)), atol=TOLERANCE[dtype],
        rtol=RELATIVE[dtype],
    )


def conv_inputs(batch, length, channels, dtype, taps=3, seed=0):
    key = mx.random.key(seed)
    k1, k2, k3, k4 = mx.random.split(key, 4)
    bcx = mx.random.normal((batch, length, 3 * channels), key=k1).astype(dtype)
    weight = (0.5 * mx.random.normal((channels, taps, 1), key=k2)).astype(dtype)
    state = mx.random.normal((batch, taps - 1, channels), key=k3).astype(dtype)
    bias = (0.1 * mx.random.normal((channels,), key=k4)).astype(dtype)
    return bcx, weight, state, bias


SHAPES = [(b, length, d) for b, length, d in itertools.product([1, 3], [1, 2, 7, 512], [64, 1024, 2048, 1001])
          if not (length == 512 and d == 2048 and b == 3)]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("batch, length, channels", SHAPES)
def test_short_conv_matches_reference(body, dtype, batch, length, channels):
    bcx, weight, state, _ = conv_inputs(batch, length, channels, dtype)
    y, new_state = short_conv(bcx, weight, state, impl=body)
    ref_y, ref_state = short_conv_reference(bcx, weight, state)
    assert y.shape == (batch, length, channels) and new_state.shape == (batch, 2, channels)
    close(y, ref_y, dtype)
    close(new_state, ref_state, dtype)


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("length", [1, 5])
@pytest.mark.parametrize("taps", [3, 4])
def test_short_conv_bias_mask_and_taps(body, length, taps):
    bcx, weight, state, bias = conv_inputs(3, length, 64, mx.float32, taps=taps)
    mask = mx.array([[True] * length, [False] + [True] * (length - 1), [False] * length])
    for args in [(bias, None), (None, mask), (bias, mask)]:
        got = short_conv(bcx, weight, state, *args, impl=body)
        expected = short_conv_reference(bcx, weight, state, *args)
        for g, e in zip(got, expected):
            close(g, e, mx.float32)


def test_reference_masks_padding_as_zeros():
    bcx, weight, state, _ = conv_inputs(1, 4, 8, mx.float32)
    mask = mx.array([[False, False, True, True]])
    masked = short_conv_reference(bcx, weight, mx.zeros_like(state), mask=mask)[0]
    alone = short_conv_reference(bcx[:, 2:], weight, mx.zeros_like(state))[0]
    close(masked[:, 2:], alone, mx.float32)


@pytest.mark.parametrize("body", ["reference"] + BODIES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_state_carried_across_calls_equals_one_long_call(body, dtype):
    bcx, weight, state, bias = conv_inputs(2, 12, 64, dtype)
    whole, whole_state = short_conv(bcx, weight, state, bias, impl=body)
    pieces, carried = [], state
    for start, end in [(0, 5), (5, 6), (6, 7), (7, 12)]:  # a prefill, then one-token steps, then a chunk
        y, carried = short_conv(bcx[:, start:end], weight, carried, bias, impl=body)
        pieces.append(y)
    close(mx.concatenate(pieces, axis=1), whole, dtype)
    close(carried, whole_state, dtype)


def test_right_padded_lengths_end_the_state_at_each_rows_last_token():
    bcx, weight, state, _ = conv_inputs(2, 6, 16, mx.float32)
    lengths = mx.array([6, 3])
    for body in ("reference", "cpu"):
        _, new_state = short_conv(bcx, weight, state, lengths=lengths, impl=body)
        _, short_row = short_conv_reference(bcx[1:, :3], weight, state[1:])
        close(new_state[1:], short_row, mx.float32)


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(1, 1, 2 * 4608), (3, 7, 2 * 64), (1, 512, 2 * 1001), (5, 2 * 33)])
def test_swiglu_matches_reference(body, dtype, shape):
    gate_up = (2 * mx.random.normal(shape, key=mx.random.key(1))).astype(dtype)
    close(swiglu(gate_up, impl=body), swiglu_reference(gate_up), dtype)


def test_backend_choice():
    assert resolve("reference") == "reference"
    assert resolve("auto") in ("cpu", "metal", "cuda")
    with pytest.raises(KernelError, match="expected one of auto, reference, cpu, cpu-mlx, metal, cuda"):
        resolve("fast")
    if not metal_available():
        with pytest.raises(KernelError, match="needs a Mac GPU"):
            resolve("metal")
    if not cuda_available():
        with pytest.raises(KernelError, match="needs MLX's CUDA backend"):
            resolve("cuda")


def test_fused_model_with_fast_kernels_matches_the_reference_model(tiny_checkpoint):
    reference, _ = mlx_lfm2.load(tiny_checkpoint[1], kernels="reference", compute_dtype=None)
    fast, _ = mlx_lfm2.load(tiny_checkpoint[1])
    layer = fast.layers[1]
    assert "qkv_proj" in layer.self_attn and "gate_up" in layer.feed_forward and fast.layers[0].conv.kernels != "reference"
    assert "q_proj" in reference.layers[1].self_attn and "w1" in reference.layers[1].feed_forward
    tokens = random_tokens(16)
    close(fast(mx.array([tokens])), reference(mx.array([tokens])), mx.float32)
    cache_fast, cache_ref = fast.make_cache(), reference.make_cache()
    fast(mx.array([tokens]), cache=cache_fast), reference(mx.array([tokens]), cache=cache_ref)
    for token in tokens[:4]:
        close(fast(mx.array([[token]]), cache=cache_fast), reference(mx.array([[token]]), cache=cache_ref), mx.float32)


def test_quantized_projections_fuse(tiny_checkpoint, tmp_path):
    mlx_lfm2.convert(tiny_checkpoint[1], tmp_path / "q4", quantize=True, progress=False)
    reference, _ = mlx_lfm2.load(tmp_path / "q4", kernels="reference")
    fast, _ = mlx_lfm2.load(tmp_path / "q4", kernels="cpu-mlx")  # exact products: the extension rounds x
    assert fast.layers[1].self_attn.qkv_proj.bits == 4 and fast.layers[0].feed_forward.gate_up.bits == 4
    tokens = mx.array([random_tokens(16)])
    close(fast(tokens), reference(tokens), mx.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(1, 1, 1024), (3, 7, 64), (2, 5, 16, 64), (1, 512, 1001)])
def test_norms_match_reference(dtype, shape):
    from mlx_lfm2.kernels.norms import add_rms_norm, add_rms_norm_reference, rms_norm, rms_norm_reference

    keys = mx.random.split(mx.random.key(2), 3)
    x, residual = (mx.random.normal(shape, key=k).astype(dtype) for k in keys[:2])
    weight = (1 + 0.2 * mx.random.normal(shape[-1:], key=keys[2])).astype(dtype)
    close(rms_norm(x, weight, 1e-5, impl="cpu"), rms_norm_reference(x, weight, 1e-5), dtype)
    for got, expected in zip(add_rms_norm(x, residual, weight, 1e-5, impl="cpu"),
                             add_rms_norm_reference(x, residual, weight, 1e-5)):
        close(got, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("offset", [0, 1, 17, 4000])
def test_rope_decode_matches_reference(dtype, offset):
    from mlx_lfm2.kernels.rope import inverse_frequencies, rope, rope_reference

    x = mx.random.normal((2, 8, 1, 64), key=mx.random.key(3)).astype(dtype)
    frequencies = inverse_frequencies(64, 1e6)
    # float32 angles at position 4000 differ from mx.fast.rope's by ~1e-4
    np.testing.assert_allclose(
        np.array(rope(x, offset, 64, 1e6, frequencies, impl="cpu").astype(mx.float32)),
        np.array(rope_reference(x, offset, 64, 1e6).astype(mx.float32)),
        atol=max(TOLERANCE[dtype], 3e-4), rtol=0,
    )
    prefill = mx.random.normal((1, 4, 6, 64), key=mx.random.key(4))
    assert mx.array_equal(rope(prefill, offset, 64, 1e6, frequencies, impl="cpu"), rope_reference(prefill, offset, 64, 1e6)).item()
