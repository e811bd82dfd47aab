"""The converter: HF checkpoints -> MLX checkpoints that mlx_lfm2 and mlx-lm load alike."""

import json
import os

import mlx.core as mx
import mlx.nn as nn
import mlx_lm
import numpy as np
import pytest
from mlx.utils import tree_flatten

import mlx_lfm2
from mlx_lfm2.convert.converter import model_card
from checkpoints import TINY, TINY_MOE, hf_logits, hf_model, random_tokens, save_checkpoint
from mlx_lfm2 import CheckpointError, ConfigError
from mlx_lfm2.convert import ConversionError, layout

# Converted checkpoints are checked with MLX's exact quantized products, as mlx-lm computes
# them; the C++ extension rounds x to int8 (tested on its own in test_cpu_extension.py).
EXACT = dict(kernels="cpu-mlx")

# Widths divisible by every group size, and block weights scaled down (gain) so the residual
# stream dominates as in trained models: full-gain random blocks amplify rounding chaotically.
DENSE = dict(TINY, hidden_size=128, intermediate_size=384)  # ff: 384 -> 256
MOE = dict(TINY_MOE, hidden_size=128, intermediate_size=256, moe_intermediate_size=128)
GAIN = 0.5
# Mean cosine similarity of quantized vs float32 logits, per position (measured: 8-bit 0.9997,
# 4-bit 0.94 at group 64 and 0.91 at group 128, mixed_4_8 0.957).
MIN_COSINE = {8: 0.999, 4: 0.9}


@pytest.fixture(scope="module")
def dense_source(tmp_path_factory):
    reference = hf_model(DENSE, seed=21, gain=GAIN)
    folder = save_checkpoint(reference, tmp_path_factory.mktemp("dense"), max_shard_size="200KB")
    assert len(list(folder.glob("*.safetensors"))) > 1  # sharded input
    return reference, folder


@pytest.fixture(scope="module")
def moe_source(tmp_path_factory):
    reference = hf_model(MOE, seed=22, gain=GAIN)
    return reference, save_checkpoint(reference, tmp_path_factory.mktemp("moe"))


def logits_of(model, tokens):
    return np.array(model(mx.array([tokens])).astype(mx.float32))[0]


def mean_cosine(a, b):
    return float(((a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)).mean())


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("group_size", [32, 64, 128])
def test_round_trip_through_mlx_lfm2_and_mlx_lm(dense_source, tmp_path, bits, group_size):
    reference, source = dense_source
    out = tmp_path / "out"
    report = mlx_lfm2.convert(source, out, quantize=True, q_bits=bits, q_group_size=group_size, progress=False)
    assert report.quantization == {"group_size": group_size, "bits": bits, "mode": "affine"}
    scales_and_biases = 2 * 32 / group_size  # float32 source: two float32 values per group
    assert bits + scales_and_biases < report.bits_per_weight < bits + scales_and_biases + 0.3
    ours, _ = mlx_lfm2.load(out, **EXACT)
    theirs, _ = mlx_lm.load(str(out))
    tokens = random_tokens(20)
    got = logits_of(ours, tokens)
    np.testing.assert_allclose(got, logits_of(theirs, tokens), atol=1e-4, rtol=0)
    assert mean_cosine(got, hf_logits(reference, tokens)[0]) > MIN_COSINE[bits]


def test_float_conversion_is_exact_and_casts_dtype(dense_source, tmp_path):
    reference, source = dense_source
    tokens = random_tokens(20)
    mlx_lfm2.convert(source, tmp_path / "f32", progress=False)
    model, _ = mlx_lfm2.load(tmp_path / "f32")
    np.testing.assert_allclose(logits_of(model, tokens), hf_logits(reference, tokens)[0], atol=1e-4, rtol=0)
    mlx_lfm2.convert(source, tmp_path / "bf16", dtype="bfloat16", progress=False)
    model, _ = mlx_lfm2.load(tmp_path / "bf16", compute_dtype=None)
    assert {p.dtype for _, p in tree_flatten(model.parameters())} == {mx.bfloat16}
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "bf16").stat().st_mode & 0o777 == 0o777 & ~mask  # an ordinary folder, not private


def test_moe_round_trip(moe_source, tmp_path):
    reference, source = moe_source
    mlx_lfm2.convert(source, tmp_path / "q8", quantize=True, q_bits=8, progress=False)
    ours, _ = mlx_lfm2.load(tmp_path / "q8", **EXACT)
    theirs, _ = mlx_lm.load(str(tmp_path / "q8"))
    block = ours.layers[1].feed_forward
    assert isinstance(block.gate, nn.Linear)  # the router stays in float
    assert block.switch_mlp.gate_proj.bits == 8
    tokens = random_tokens(20)
    got = logits_of(ours, tokens)
    np.testing.assert_allclose(got, logits_of(theirs, tokens), atol=1e-4, rtol=0)
    # Rounding can flip a near-tied expert choice, so MoE logits move more (measured: 0.9956).
    assert mean_cosine(got, hf_logits(reference, tokens)[0]) > 0.99


def test_sharded_output(dense_source, tmp_path):
    reference, source = dense_source
    mlx_lfm2.convert(source, tmp_path / "out", max_shard_gb=0.0002, progress=False)
    files = sorted(p.name for p in (tmp_path / "out").glob("*.safetensors"))
    assert len(files) > 2 and files[0] == f"model-00001-of-{len(files):05d}.safetensors"
    index = json.loads((tmp_path / "out" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(files)
    assert all((tmp_path / "out" / f).stat().st_size < 0.0002e9 + 70_000 for f in files)
    model, _ = mlx_lfm2.load(tmp_path / "out")
    tokens = random_tokens(12)
    np.testing.assert_allclose(logits_of(model, tokens), hf_logits(reference, tokens)[0], atol=1e-4, rtol=0)


def test_dequantize_recovers_the_quantized_model(dense_source, tmp_path):
    _, source = dense_source
    mlx_lfm2.convert(source, tmp_path / "q4", quantize=True, progress=False)
    mlx_lfm2.convert(tmp_path / "q4", tmp_path / "float", dequantize=True, progress=False)
    config = json.loads((tmp_path / "float" / "config.json").read_text())
    assert "quantization" not in config and "quantization_config" not in config
    quantized, _ = mlx_lfm2.load(tmp_path / "q4", **EXACT)
    recovered, _ = mlx_lfm2.load(tmp_path / "float")
    assert not any(hasattr(m, "bits") for _, m in recovered.named_modules())
    tokens = random_tokens(16)
    np.testing.assert_allclose(logits_of(recovered, tokens), logits_of(quantized, tokens), atol=1e-4, rtol=0)


def test_mixed_4_8_keeps_the_tied_head_at_8_bits(dense_source, tmp_path):
    reference, source = dense_source
    mlx_lfm2.convert(source, tmp_path / "mixed", quantize=True, quant_predicate="mixed_4_8", progress=False)
    config = json.loads((tmp_path / "mixed" / "config.json").read_text())
    assert config["quantization"] == {
        "group_size": 64, "bits": 4, "mode": "affine",
        "model.embed_tokens": {"group_size": 64, "bits": 8, "mode": "affine"},
    }
    model, _ = mlx_lfm2.load(tmp_path / "mixed", **EXACT)
    assert model.model.embed_tokens.bits == 8 and model.layers[0].feed_forward.w2.bits == 4
    assert isinstance(model.layers[0].conv.conv, nn.Conv1d) and model.layers[0].operator_norm.weight.dtype == mx.float32
    theirs, _ = mlx_lm.load(str(tmp_path / "mixed"))
    tokens = random_tokens(20)
    got = logits_of(model, tokens)
    np.testing.assert_allclose(got, logits_of(theirs, tokens), atol=1e-4, rtol=0)
    mlx_lfm2.convert(source, tmp_path / "q4", quantize=True, progress=False)
    plain = logits_of(mlx_lfm2.load(tmp_path / "q4", **EXACT)[0], tokens)
    expected = hf_logits(reference, tokens)[0]
    assert mean_cosine(got, expected) > mean_cosine(plain, expected)


@pytest.mark.parametrize("recipe", ["mixed_4_6", "mixed_3_6"])
def test_layer_sensitive_recipes_use_lfm2_names(moe_source, tmp_path, recipe):
    _, source = moe_source
    mlx_lfm2.convert(source, tmp_path / "out", quantize=True, quant_predicate=recipe, progress=False)
    quantization = json.loads((tmp_path / "out" / "config.json").read_text())["quantization"]
    low = int(recipe[6])
    assert quantization["bits"] == low
    high = {path for path, value in quantization.items() if isinstance(value, dict) and value["bits"] == 6}
    # 4 layers: the first and last eighth are empty, so layers 2 (every third) and the head.
    assert high == {"model.embed_tokens", "model.layers.2.feed_forward.switch_mlp.down_proj"}
    model, _ = mlx_lfm2.load(tmp_path / "out")
    assert model.layers[2].feed_forward.switch_mlp.down_proj.bits == 6
    assert model.layers[3].feed_forward.switch_mlp.down_proj.bits == low


def test_config_has_every_key_mlx_lm_and_swift_read(dense_source, tmp_path):
    """transformers 5 saves no block_dim / block_ff_dim: mlx-lm 0.32 refuses such a config and
    mlx-swift-lm mis-sizes the MLP. The converter writes what each loader reads, consistently."""
    _, source = dense_source
    raw_source = json.loads((source / "config.json").read_text())
    assert "block_dim" not in raw_source and "block_ff_dim" not in raw_source
    mlx_lfm2.convert(source, tmp_path / "out", quantize=True, progress=False)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    swift_lfm2_keys = {
        "model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "max_position_embeddings", "norm_eps", "conv_bias", "conv_L_cache",
        "block_dim", "block_ff_dim", "block_multiple_of", "block_ffn_dim_multiplier",
        "block_auto_adjust_ff_dim", "full_attn_idxs", "layer_types", "rope_theta", "quantization",
    }
    assert swift_lfm2_keys <= set(config)
    assert config["block_dim"] == 128 and config["block_ff_dim"] == 256 and not config["block_auto_adjust_ff_dim"]
    assert config["full_attn_idxs"] == [1, 3] and config["layer_types"][1] == "full_attention"
    assert config["quantization_config"] == config["quantization"]
    assert mlx_lfm2.ModelConfig.from_dict(config).ff_dim == 256


def test_tensor_names_shapes_and_dtypes_are_the_mlx_layout(dense_source, moe_source, tmp_path):
    mlx_lfm2.convert(dense_source[1], tmp_path / "dense", quantize=True, progress=False)
    weights = mx.load(str(tmp_path / "dense" / "model.safetensors"))
    assert weights["model.layers.0.conv.conv.weight"].shape == (128, 3, 1)  # (D, K, 1)
    assert weights["model.layers.0.conv.in_proj.weight"].dtype == mx.uint32
    assert weights["model.layers.0.conv.in_proj.weight"].shape == (384, 128 * 4 // 32)
    assert {"model.embed_tokens.scales", "model.embed_tokens.biases", "model.embedding_norm.weight",
            "model.layers.1.self_attn.q_layernorm.weight", "model.layers.0.feed_forward.w2.weight"} <= set(weights)
    assert not any(name.startswith("lm_head") for name in weights)
    mlx_lfm2.convert(moe_source[1], tmp_path / "moe", progress=False)
    weights = mx.load(str(tmp_path / "moe" / "model.safetensors"))
    assert weights["model.layers.1.feed_forward.switch_mlp.gate_proj.weight"].shape == (8, 128, 128)
    assert weights["model.layers.1.feed_forward.switch_mlp.down_proj.weight"].shape == (8, 128, 128)
    assert weights["model.layers.1.feed_forward.expert_bias"].shape == (8,)
    assert weights["model.layers.0.feed_forward.gate_proj.weight"].shape == (256, 128)


def test_side_files_and_model_card(dense_source, tmp_path):
    _, source = dense_source
    (source / "chat_template.jinja").write_text("{{ messages }}")
    mlx_lfm2.convert(source, tmp_path / "out", quantize=True, progress=False)
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja", "README.md"} <= names
    card = (tmp_path / "out" / "README.md").read_text()
    assert "4-bit weights, group size 64" in card and f"`{source.name}`" in card
    assert str(source.parent) not in card and "base_model" not in card  # no local path leaks into a card
    assert "base_model: LiquidAI/LFM2-350M\n" in model_card("LiquidAI/LFM2-350M", None, None, "bfloat16")


def test_refuses_to_overwrite_without_force(dense_source, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="already exists; pass --force"):
        mlx_lfm2.convert(dense_source[1], out, progress=False)
    assert (out / "keep.txt").read_text() == "mine"
    mlx_lfm2.convert(dense_source[1], out, force=True, progress=False)
    assert not (out / "keep.txt").exists() and (out / "config.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left


def nothing_left(tmp_path, out):
    assert not out.exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_interrupt_midway_leaves_nothing(dense_source, tmp_path, monkeypatch):
    calls = []
    real_save = mx.save_safetensors

    def save_then_interrupt(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_save(*args, **kwargs)

    monkeypatch.setattr(layout.mx, "save_safetensors", save_then_interrupt)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        mlx_lfm2.convert(dense_source[1], out, max_shard_gb=0.0002, progress=False)
    assert len(calls) == 2
    nothing_left(tmp_path, out)


def test_unreadable_source(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "config.json").write_text("{oops")
    with pytest.raises(ConfigError, match="not readable JSON"):
        mlx_lfm2.convert(source, tmp_path / "out", progress=False)
    nothing_left(tmp_path, tmp_path / "out")


def test_missing_tensor_is_found_before_writing(dense_source, tmp_path):
    import shutil

    source = shutil.copytree(dense_source[1], tmp_path / "source")
    index = json.loads((source / "model.safetensors.index.json").read_text())
    file = source / index["weight_map"]["model.layers.2.feed_forward.w1.weight"]
    weights = mx.load(str(file))
    del weights["model.layers.2.feed_forward.w1.weight"]
    mx.save_safetensors(str(file), weights)
    with pytest.raises(CheckpointError, match='missing tensor "model.layers.2.feed_forward.w1.weight"'):
        mlx_lfm2.convert(source, tmp_path / "out", progress=False)
    nothing_left(tmp_path, tmp_path / "out")


def test_unsupported_model_type(dense_source, tmp_path):
    import shutil

    source = shutil.copytree(dense_source[1], tmp_path / "source")
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "model_type": "qwen3"}))
    with pytest.raises(ConfigError, match='"model_type" is "qwen3"'):
        mlx_lfm2.convert(source, tmp_path / "out", progress=False)
    nothing_left(tmp_path, tmp_path / "out")


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(quantize=True, q_bits=7), "--q-bits is 7"),
        (dict(quantize=True, q_group_size=48), "--q-group-size is 48"),
        (dict(dtype="float64"), "--dtype is 'float64'"),
        (dict(quantize=True, quant_predicate="mixed_2_6"), "--quant-predicate is 'mixed_2_6'"),
        (dict(quant_predicate="mixed_4_8"), "needs -q/--quantize"),
        (dict(quantize=True, dequantize=True), "exclude each other"),
        (dict(dequantize=True), "needs a quantized MLX checkpoint"),
    ],
)
def test_bad_options(dense_source, tmp_path, options, message):
    with pytest.raises(ConversionError, match=message.replace("-", "\\-")):
        mlx_lfm2.convert(dense_source[1], tmp_path / "out", progress=False, **options)
    nothing_left(tmp_path, tmp_path / "out")


def test_upload_goes_through_huggingface_hub(dense_source, tmp_path, monkeypatch):
    from mlx_lfm2.convert import hub

    calls = []

    class FakeApi:
        def create_repo(self, repo_id, repo_type, exist_ok):
            calls.append(("create", repo_id))
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, folder_path, repo_id, repo_type):
            calls.append(("upload", repo_id, sorted(p.name for p in tmp_path.joinpath("out").iterdir())))

    monkeypatch.setattr(hub, "HfApi", FakeApi)
    mlx_lfm2.convert(dense_source[1], tmp_path / "out", quantize=True, upload_repo="me/lfm2-4bit", progress=False)
    assert calls[0] == ("create", "me/lfm2-4bit")
    assert calls[1][0] == "upload" and "model.safetensors" in calls[1][2]


def test_upload_offline_is_one_line_and_keeps_the_folder(dense_source, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    with pytest.raises(CheckpointError) as error:
        mlx_lfm2.convert(dense_source[1], tmp_path / "out", upload_repo="me/x", progress=False)
    assert "upload failed" in str(error.value) and "\n" not in str(error.value)
    assert (tmp_path / "out" / "config.json").exists()
