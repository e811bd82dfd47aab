"""The C++ CPU extension: each kernel against mx.quantized_matmul, the whole model with and
without it, the fallback when it is absent, and a build without a compiler."""

import os
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from checkpoints import random_tokens, stepwise_logits
from typer.testing import CliRunner

import mlx_lfm2
from mlx_lfm2.info import app as info_app
from mlx_lfm2.kernels import cpu_extension
from mlx_lfm2.models.cpu_matmul import ExtensionQuantizedEmbedding, ExtensionQuantizedLinear
from mlx_lfm2.models.layers import MLP, Attention

ROOT = Path(__file__).parent.parent
needs_extension = pytest.mark.skipif(not cpu_extension.available(), reason=cpu_extension.status()[1])


def reference(x, wq, scales, biases, group_size, bits):
    """MLX's own product in float32 over the same (rounded) inputs."""
    f32 = [a.astype(mx.float32) for a in (x, scales, biases)]
    return mx.quantized_matmul(f32[0], wq, f32[1], f32[2], transpose=True, group_size=group_size, bits=bits)


def int8_input_reference(x, wq, scales, biases, group_size, bits):
    """What the decode kernels compute, emulated: each group of x rounded to int8 steps of
    max|x| / 127 meets the weights' codes (scales), while the biases meet x's exact sums."""
    x = np.array(x.astype(mx.float32)).reshape(-1, x.shape[-1])
    groups = x.reshape(x.shape[0], -1, group_size)
    largest = np.abs(groups).max(axis=-1, keepdims=True)
    # In float32 and in the kernel's order (x times 127 / largest), so that no value near a
    # rounding boundary lands on the other side of it.
    inverse = np.where(largest > 0, np.float32(127) / np.where(largest > 0, largest, 1), np.float32(0))
    rounded = (np.rint(groups * inverse) * (largest / np.float32(127))).reshape(x.shape)
    codes = mx.quantized_matmul(mx.array(rounded), wq, scales.astype(mx.float32), mx.zeros_like(biases, mx.float32),
                                transpose=True, group_size=group_size, bits=bits)
    return np.array(codes) + groups.sum(axis=-1) @ np.array(biases.astype(mx.float32)).T


def check_close(out, expected, dtype, tolerance=1e-5):
    """Within `tolerance` of the output's scale in float32 (summation order); bfloat16
    outputs to their last bit."""
    out, expected = np.array(out.astype(mx.float32)).reshape(-1, out.shape[-1]), np.array(expected).reshape(-1, out.shape[-1])
    scale = np.abs(expected).max()
    assert np.abs(out - expected).max() <= (tolerance if dtype == mx.float32 else 2**-7) * scale


@needs_extension
@pytest.mark.parametrize("kernel_set", ["auto", "portable"])  # the SIMD copy this CPU runs, and the fallback
@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("rows", [1, 2, 7, 64, 512])
@pytest.mark.parametrize("dtype", [mx.float32, mx.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("group_major", [False, True], ids=["mlx-layout", "group-major"])
def test_matches_mlx_quantized_matmul(bits, group_size, rows, dtype, kernel_set, group_major):
    mx.random.seed(rows * 10 + bits)
    wq, scales, biases = mx.quantize(mx.random.normal((77, 384)), group_size=group_size, bits=bits)  # odd row count
    scales, biases = scales.astype(dtype), biases.astype(dtype)
    x = mx.random.normal((rows, 384)).astype(dtype)
    given = [cpu_extension.group_major_scales(a) for a in (scales, biases)] if group_major else [scales, biases]
    out = cpu_extension.quantized_matmul(x, wq, *given, group_size, bits, kernel_set, group_major=group_major)
    assert out.dtype == dtype and out.shape == (rows, 77)
    check_close(out, int8_input_reference(x, wq, scales, biases, group_size, bits), dtype)


@needs_extension
@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("rows", [1, 16])  # decode and prefill kernels
def test_int8_input_error_is_within_its_bound(bits, rows):
    """Against the exact product, a call is off by at most half an int8 step of x per value
    times the weight there: sum over groups of max|x_g| / 254 * sum |w_g|."""
    mx.random.seed(bits)
    wq, scales, biases = mx.quantize(mx.random.normal((64, 512)), group_size=64, bits=bits)
    x = mx.random.normal((rows, 512)) * mx.exp(mx.random.normal((rows, 512)))  # heavy-tailed, as activations are
    out = np.array(cpu_extension.quantized_matmul(x, wq, scales, biases, 64, bits))
    exact = np.array(reference(x, wq, scales, biases, 64, bits))
    w = np.abs(np.array(mx.dequantize(wq, scales, biases, group_size=64, bits=bits))).reshape(64, 8, 64).sum(-1)
    bound = (np.abs(np.array(x)).reshape(rows, 8, 64).max(-1) / 254) @ w.T
    assert np.all(np.abs(out - exact) <= bound * 1.001 + 1e-5)
    assert np.abs(out - exact).max() > 1e-4  # it is the int8 path, not an exact one


@needs_extension
def test_shapes_strides_and_mixed_dtypes():
    wq, scales, biases = mx.quantize(mx.random.normal((40, 256)), group_size=64, bits=4)
    x = mx.random.normal((3, 5, 256))
    product = lambda x, *weights: int8_input_reference(x, *weights, 64, 4)  # noqa: E731
    check_close(cpu_extension.quantized_matmul(x, wq, scales, biases, 64, 4), product(x, wq, scales, biases), mx.float32)
    for strided, dtype in [
        (mx.random.normal((256, 6)).T, mx.float32),  # not row-contiguous: read through its strides
        (mx.broadcast_to(mx.random.normal((1, 256)), (3, 256)), mx.float32),  # a stride of 0
        (mx.random.normal((2, 3, 256)).astype(mx.bfloat16).transpose(1, 0, 2), mx.bfloat16),
    ]:
        check_close(cpu_extension.quantized_matmul(strided, wq, scales, biases, 64, 4), product(strided, wq, scales, biases), dtype)
    half = [a.astype(mx.float16) for a in (scales, biases)]  # float16 scales with float32 x
    check_close(cpu_extension.quantized_matmul(x, wq, *half, 64, 4), product(x, wq, *half), mx.float32)


@needs_extension
@pytest.mark.parametrize(
    "args, message",
    [((64, 3), "bits must be 4 or 8"), ((16, 4), "group_size must be"), ((64, 8), "columns")],
)
def test_bad_arguments_are_clear_errors(args, message):
    wq, scales, biases = mx.quantize(mx.random.normal((8, 128)), group_size=64, bits=4)
    with pytest.raises(ValueError, match=message):
        cpu_extension.quantized_matmul(mx.zeros((1, 128)), wq, scales, biases, *args)
    with pytest.raises(ValueError, match="no kernels named sse9"):
        cpu_extension.quantized_matmul(mx.zeros((1, 128)), wq, scales, biases, 64, 4, "sse9")
    with pytest.raises(ValueError, match=r"group-major scales and biases must be \(columns / group_size, rows\)"):
        cpu_extension.quantized_matmul(mx.zeros((1, 128)), wq, scales, biases, 64, 4, group_major=True)
    with pytest.raises(ValueError, match="group-major scales and biases must be float32"):
        cpu_extension.quantized_matmul(mx.zeros((1, 128)), wq, scales.T.astype(mx.bfloat16), biases.T, 64, 4, group_major=True)


def attention_reference(q, k, v, scale):
    """mx.fast.scaled_dot_product_attention, queries at the last positions of the keys."""
    length, keys = q.shape[2], k.shape[2]
    visible = mx.arange(keys)[None] <= (keys - length + mx.arange(length))[:, None]
    return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=visible)


@needs_extension
@pytest.mark.parametrize("kernel_set", ["auto", "portable"])
@pytest.mark.parametrize(
    "length, keys, heads, kv_heads, dims",
    [(64, 64, 16, 8, 64), (7, 20, 4, 2, 64), (1, 33, 16, 8, 64), (13, 13, 6, 6, 32), (5, 9, 4, 1, 72), (3, 3, 2, 2, 8)],
)
def test_causal_attention_matches_mlx(kernel_set, length, keys, heads, kv_heads, dims):
    mx.random.seed(length + keys)
    q = mx.random.normal((2, heads, length, dims))
    # k and v as a KV cache hands them over: the filled part of a longer buffer.
    k, v = (mx.random.normal((2, kv_heads, keys + 11, dims))[:, :, :keys] for _ in range(2))
    out = cpu_extension.causal_attention(q, k, v, dims**-0.5, kernel_set)
    np.testing.assert_allclose(np.array(out), np.array(attention_reference(q, k, v, dims**-0.5)), atol=1e-5, rtol=0)
    # q as Attention makes it: a (batch, length, heads, dims) array transposed, read through its strides
    q_view = mx.contiguous(q.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(np.array(cpu_extension.causal_attention(q_view, k, v, 0.3, kernel_set)),
                               np.array(attention_reference(q, k, v, 0.3)), atol=1e-5, rtol=0)


@needs_extension
@pytest.mark.parametrize(
    "shapes, dtype, message",
    [
        (((1, 2, 3, 8), (1, 2, 3, 8)), mx.bfloat16, "must be float32"),
        (((1, 3, 3, 8), (1, 2, 3, 8)), mx.float32, "a multiple of the key heads"),
        (((1, 2, 3, 12), (1, 2, 3, 12)), mx.float32, "a multiple of 8"),
        (((1, 2, 4, 8), (1, 2, 3, 8)), mx.float32, "fewer keys than queries"),
    ],
)
def test_causal_attention_bad_arguments(shapes, dtype, message):
    q, k = (mx.zeros(shape, dtype) for shape in shapes)
    with pytest.raises(ValueError, match=message):
        cpu_extension.causal_attention(q, k, k, 1.0)


@needs_extension
@pytest.mark.parametrize("kernel_set", ["auto", "portable"])
@pytest.mark.parametrize("shape", [(1, 1, 9216), (3, 7, 64), (2, 26)])  # 13 wide: the tail past 8 lanes
def test_swiglu_matches_mlx(kernel_set, shape):
    from mlx_lfm2.kernels.gates import swiglu_reference

    gate_up = 6 * mx.random.normal(shape, key=mx.random.key(1))
    expected = np.array(swiglu_reference(gate_up))
    np.testing.assert_allclose(np.array(cpu_extension.swiglu(gate_up, kernel_set)), expected, rtol=2e-6, atol=1e-6)
    strided = mx.contiguous(gate_up.T).T  # read through its strides
    np.testing.assert_allclose(np.array(cpu_extension.swiglu(strided, kernel_set)), expected, rtol=2e-6, atol=1e-6)
    extremes = mx.array([[-100.0, -87.5, -20.0, 0.0, 20.0, 88.0, 100.0] + [1.0] * 7])
    np.testing.assert_allclose(np.array(cpu_extension.swiglu(extremes, kernel_set)),
                               np.array(swiglu_reference(extremes)), rtol=2e-6, atol=1e-30)
    with pytest.raises(ValueError, match="float32 with an even last dimension"):
        cpu_extension.swiglu(gate_up.astype(mx.bfloat16))


@pytest.fixture(scope="module", params=[4, 8])
def quantized_folder(request, tiny_checkpoint, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"q{request.param}") / "model"
    mlx_lfm2.convert(tiny_checkpoint[1], folder, quantize=True, q_bits=request.param, progress=False)
    return folder


@needs_extension
def test_model_logits_with_and_without_the_extension(quantized_folder):
    fast, _ = mlx_lfm2.load(quantized_folder, kernels="cpu")
    plain, _ = mlx_lfm2.load(quantized_folder, kernels="cpu-mlx")
    modules = [m for _, m in fast.named_modules()]
    assert any(isinstance(m, ExtensionQuantizedLinear) for m in modules)
    assert any(isinstance(m, ExtensionQuantizedEmbedding) for m in modules)  # the tied head
    assert not any(isinstance(m, (ExtensionQuantizedLinear, ExtensionQuantizedEmbedding)) for _, m in plain.named_modules())
    assert {m.cpu_attention for _, m in fast.named_modules() if isinstance(m, Attention)} == {True}
    assert {m.cpu_attention for _, m in plain.named_modules() if isinstance(m, Attention)} == {False}
    tokens = random_tokens(40, seed=3)
    # Every product rounds x to int8 per group (each is checked against that rounding emulated,
    # above). Here the whole model, prefill and decode, against exact products: this random
    # model amplifies rounding more than trained ones, and rounding is discontinuous, so the
    # check is statistical.
    fast_logits, exact_logits = stepwise_logits(fast, tokens, 30), stepwise_logits(plain, tokens, 30)
    deviation, spread = np.abs(fast_logits - exact_logits), exact_logits.std()
    # Measured (4 / 8 bits): RMS 0.14 / 0.15 and at most 1.1 / 0.9 of the logits' spread; the
    # most likely token the same at 82% / 80% of the 40 positions.
    assert np.sqrt((deviation**2).mean()) < 0.25 * spread and deviation.max() < 2 * spread
    assert (fast_logits.argmax(-1) == exact_logits.argmax(-1)).mean() >= 0.7


@needs_extension
def test_float_model_attention_and_gate_through_the_extension(tiny_checkpoint):
    """No quantized layer, so attention and SwiGLU are all that differ: prompt and cached
    decode steps agree to float32 rounding."""
    fast, _ = mlx_lfm2.load(tiny_checkpoint[1], kernels="cpu")
    plain, _ = mlx_lfm2.load(tiny_checkpoint[1], kernels="cpu-mlx")
    assert {m.cpu_attention for _, m in fast.named_modules() if isinstance(m, Attention)} == {True}
    assert {m.cpu_gate for _, m in fast.named_modules() if isinstance(m, MLP)} == {True}
    assert {m.cpu_gate for _, m in plain.named_modules() if isinstance(m, MLP)} == {False}
    tokens = random_tokens(40, seed=5)
    np.testing.assert_allclose(stepwise_logits(fast, tokens, 30), stepwise_logits(plain, tokens, 30), atol=1e-4)


def test_without_the_extension_mlx_matmuls_run(quantized_folder, monkeypatch):
    monkeypatch.setattr(cpu_extension, "status", lambda: (False, "not built (test)"))
    model, _ = mlx_lfm2.load(quantized_folder)
    assert not any(isinstance(m, ExtensionQuantizedLinear) for _, m in model.named_modules())
    assert not any(m.cpu_attention for _, m in model.named_modules() if isinstance(m, Attention))
    assert isinstance(model.model.layers[0].feed_forward, nn.Module) and model(mx.array([[1, 2, 3]])).shape == (1, 3, 384)
    report = "\n".join(CliRunner().invoke(info_app, []).output.splitlines())
    assert "C++ CPU extension: not built (test)" in report and "MLX's mx.quantized_matmul" in report
    assert "attention, SwiGLU: MLX's" in report


def test_info_command_says_which_paths_run():
    result = CliRunner().invoke(info_app, [])
    assert result.exit_code == 0
    assert f"C++ CPU extension: {cpu_extension.status()[1]}" in result.output
    assert "kernel bodies (kernels='auto'): cpu" in result.output


@pytest.mark.parametrize("required", [False, True])
def test_install_without_a_compiler_skips_the_extension(tmp_path, required):
    env = dict(os.environ, CXX=str(tmp_path / "no-compiler"), CMAKE_BUILD_PARALLEL_LEVEL="1")
    if required:
        env["MLX_LFM2_REQUIRE_EXTENSION"] = "1"
    done = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--build-temp", str(tmp_path / "temp"),
         "--build-lib", str(tmp_path / "lib")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    if required:
        assert done.returncode != 0
    else:
        assert done.returncode == 0, done.stderr
        assert "CPU extension was not built" in done.stderr
        assert not list((tmp_path / "lib").rglob("_cpu_ext*"))
