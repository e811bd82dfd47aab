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

ROOT = Path(__file__).parent.parent
needs_extension = pytest.mark.skipif(not cpu_extension.available(), reason=cpu_extension.status()[1])


def reference(x, wq, scales, biases, group_size, bits):
    """MLX's own product in float32 over the same (rounded) inputs."""
    f32 = [a.astype(mx.float32) for a in (x, scales, biases)]
    return mx.quantized_matmul(f32[0], wq, f32[1], f32[2], transpose=True, group_size=group_size, bits=bits)


def check_close(out, expected, dtype):
    """Decode rows carry x as int16 per group (2^-15 of the group's largest value), so float32
    results agree to ~1e-4 of the output's scale; bfloat16 outputs to their last bit."""
    out, expected = np.array(out.astype(mx.float32)), np.array(expected)
    scale = np.abs(expected).max()
    tolerance = 2e-4 if dtype == mx.float32 else 2**-7
    assert np.abs(out - expected).max() <= tolerance * scale


@needs_extension
@pytest.mark.parametrize("kernel_set", ["auto", "portable"])  # the SIMD copy this CPU runs, and the fallback
@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("rows", [1, 2, 7, 64, 512])
@pytest.mark.parametrize("dtype", [mx.float32, mx.bfloat16], ids=["float32", "bfloat16"])
def test_matches_mlx_quantized_matmul(bits, group_size, rows, dtype, kernel_set):
    mx.random.seed(rows * 10 + bits)
    wq, scales, biases = mx.quantize(mx.random.normal((77, 384)), group_size=group_size, bits=bits)  # odd row count
    scales, biases = scales.astype(dtype), biases.astype(dtype)
    x = mx.random.normal((rows, 384)).astype(dtype)
    out = cpu_extension.quantized_matmul(x, wq, scales, biases, group_size, bits, kernel_set)
    assert out.dtype == dtype and out.shape == (rows, 77)
    check_close(out, reference(x, wq, scales, biases, group_size, bits), dtype)


@needs_extension
def test_shapes_strides_and_mixed_dtypes():
    wq, scales, biases = mx.quantize(mx.random.normal((40, 256)), group_size=64, bits=4)
    x = mx.random.normal((3, 5, 256))
    check_close(cpu_extension.quantized_matmul(x, wq, scales, biases, 64, 4), reference(x, wq, scales, biases, 64, 4), mx.float32)
    for strided, dtype in [
        (mx.random.normal((256, 6)).T, mx.float32),  # not row-contiguous: read through its strides
        (mx.broadcast_to(mx.random.normal((1, 256)), (3, 256)), mx.float32),  # a stride of 0
        (mx.random.normal((2, 3, 256)).astype(mx.bfloat16).transpose(1, 0, 2), mx.bfloat16),
    ]:
        check_close(cpu_extension.quantized_matmul(strided, wq, scales, biases, 64, 4),
                    reference(strided, wq, scales, biases, 64, 4), dtype)
    half = [a.astype(mx.float16) for a in (scales, biases)]  # float16 scales with float32 x
    check_close(cpu_extension.quantized_matmul(x, wq, *half, 64, 4), reference(x, wq, *half, 64, 4), mx.float32)


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
    tokens = random_tokens(40, seed=3)
    # Prefill (float32 tiles): logits of order 1 agree to ~1e-5. Decode steps (int16 x per
    # group) to ~1e-3: the random tiny model amplifies any rounding more than trained ones.
    np.testing.assert_allclose(np.array(fast(mx.array([tokens]))), np.array(plain(mx.array([tokens]))), atol=1e-4)
    np.testing.assert_allclose(stepwise_logits(fast, tokens, 30), stepwise_logits(plain, tokens, 30), atol=5e-3)


def test_without_the_extension_mlx_matmuls_run(quantized_folder, monkeypatch):
    monkeypatch.setattr(cpu_extension, "status", lambda: (False, "not built (test)"))
    model, _ = mlx_lfm2.load(quantized_folder)
    assert not any(isinstance(m, ExtensionQuantizedLinear) for _, m in model.named_modules())
    assert isinstance(model.model.layers[0].feed_forward, nn.Module) and model(mx.array([[1, 2, 3]])).shape == (1, 3, 384)
    report = "\n".join(CliRunner().invoke(info_app, []).output.splitlines())
    assert "C++ CPU extension: not built (test)" in report and "MLX's mx.quantized_matmul" in report


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
