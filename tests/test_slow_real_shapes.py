"""Real LFM2 shapes with random weights; slow, off in CI: run with `pytest -m slow`."""

import mlx.core as mx
import numpy as np
import pytest

import mlx_lfm2
from checkpoints import hf_logits, hf_model, make_tokenizer, random_tokens, save_checkpoint, stepwise_logits
from random_checkpoint import SHAPES, write_random_checkpoint

@pytest.mark.slow
def test_lfm2_350m_shape_parity(tmp_path):
    reference = hf_model(SHAPES["350M"], seed=0)
    model, _ = mlx_lfm2.load(save_checkpoint(reference, tmp_path))
    assert model.layers[0].feed_forward.gate_up.weight.shape == (2 * 4608, 1024)  # w1 and w3, fused at load
    assert [i for i, layer in enumerate(model.layers) if layer.is_attention_layer] == [2, 5, 8, 10, 12, 14]
    tokens = random_tokens(24)
    expected = hf_logits(reference, tokens)
    # 16 layers and a 65536-wide head in float32: summation order alone moves logits by ~1e-5.
    np.testing.assert_allclose(np.array(model(mx.array([tokens]))), expected, atol=2e-4, rtol=0)
    np.testing.assert_allclose(stepwise_logits(model, tokens, prefill=8), expected, atol=2e-4, rtol=0)


@pytest.mark.slow
def test_lfm2_8b_a1b_shape_4bit_loads_and_decodes_in_its_own_size(tmp_path):
    folder = write_random_checkpoint(SHAPES["8B-A1B"], tmp_path / "8b-a1b-4bit", bits=4, tokenizer=make_tokenizer)
    on_disk = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    mx.clear_cache()
    mx.reset_peak_memory()
    baseline = mx.get_active_memory()  # what other tests still hold
    model, _ = mlx_lfm2.load(folder)
    loaded_peak = mx.get_peak_memory() - baseline
    tokens = random_tokens(12)
    stepwise = stepwise_logits(model, tokens, prefill=8)
    decode_peak = mx.get_peak_memory() - baseline
    print(f"\n8B-A1B 4-bit: {on_disk / 1e9:.2f} GB on disk, peak {loaded_peak / 1e9:.2f} GB after "
          f"loading, {decode_peak / 1e9:.2f} GB after decoding")
    assert np.isfinite(stepwise).all()
    np.testing.assert_allclose(stepwise, np.array(model(mx.array([tokens]))), atol=2e-3, rtol=0)
    assert loaded_peak < 1.1 * on_disk
    assert decode_peak < 1.2 * on_disk


@pytest.mark.slow
def test_converting_2_6b_shape_needs_far_less_than_twice_its_size(tmp_path):
    source = write_random_checkpoint(SHAPES["2.6B"], tmp_path / "source", dtype=mx.bfloat16, tokenizer=make_tokenizer)
    on_disk = sum(f.stat().st_size for f in source.glob("*.safetensors"))
    mx.clear_cache()
    mx.reset_peak_memory()
    baseline = mx.get_active_memory()  # what other tests still hold
    report = mlx_lfm2.convert(source, tmp_path / "q4", quantize=True, progress=False)
    peak = mx.get_peak_memory() - baseline
    print(f"\n2.6B shape: {on_disk / 1e9:.2f} GB bf16 source -> {report.bytes_on_disk / 1e9:.2f} GB 4-bit; "
          f"peak {peak / 1e9:.2f} GB while converting")
    assert peak < 0.75 * on_disk  # the 4-bit result plus one shard in flight


@pytest.mark.slow
@pytest.mark.parametrize("bits", [4, 8])
def test_lfm2_350m_shape_quantized_with_and_without_the_cpu_extension(tmp_path, bits):
    from mlx_lfm2.kernels import cpu_extension

    if not cpu_extension.available():
        pytest.skip(cpu_extension.status()[1])
    source = save_checkpoint(hf_model(SHAPES["350M"], seed=0, gain=0.5), tmp_path / "source")
    folder = tmp_path / f"q{bits}"
    mlx_lfm2.convert(source, folder, quantize=True, q_bits=bits, progress=False)
    fast, _ = mlx_lfm2.load(folder, kernels="cpu")
    plain, _ = mlx_lfm2.load(folder, kernels="cpu-mlx")
    tokens = random_tokens(24)
    expected = stepwise_logits(plain, tokens, prefill=16)
    got = stepwise_logits(fast, tokens, prefill=16)
    # Every product rounds x to int8 per group. Measured RMS logit deviation (of a logit spread
    # of ~1.0), over the 16 prefill and 8 decode positions: from the exact products 0.19 at 4
    # bits and at 8; from the unquantized model 0.78 with int8 x vs 0.77 exact at 4 bits (the
    # weights' own rounding dominates), 0.19 vs 0.06 at 8 bits.
    unquantized = stepwise_logits(mlx_lfm2.load(source)[0], tokens, prefill=16)
    rms = lambda a, b: np.sqrt(((a - b) ** 2).mean())  # noqa: E731
    spread = expected.std()
    assert rms(got, expected) < 0.3 * spread
    assert rms(got, unquantized) < rms(expected, unquantized) + 0.2 * spread
