"""Loading checkpoints: layouts, dtypes, hub ids, and one-line errors for bad input."""

import json
import shutil

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

import mlx_lfm2
from checkpoints import TINY, hf_logits, hf_model, random_tokens, save_checkpoint
from mlx_lfm2 import CheckpointError, ConfigError
from mlx_lfm2 import loading


def copy_checkpoint(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / "copy")


def one_line(error):
    text = str(error.value)
    assert "\n" not in text
    return text


def test_sharded_checkpoint(tmp_path):
    reference = hf_model(TINY, seed=7)
    folder = save_checkpoint(reference, tmp_path, max_shard_size="40KB")
    assert len(list(folder.glob("model-*.safetensors"))) > 2
    assert (folder / "model.safetensors.index.json").exists()
    model, _ = mlx_lfm2.load(folder)
    tokens = random_tokens(20)
    np.testing.assert_allclose(np.array(model(mx.array([tokens]))), hf_logits(reference, tokens), atol=1e-4)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_weights_keep_their_dtype(tmp_path, tiny_checkpoint, dtype):
    import torch

    folder = save_checkpoint(tiny_checkpoint[0], tmp_path, dtype=getattr(torch, dtype))
    model, _ = mlx_lfm2.load(folder, compute_dtype=None)
    assert {p.dtype for _, p in tree_flatten(model.parameters())} == {getattr(mx, dtype)}
    model, _ = mlx_lfm2.load(folder)  # on the CPU backend, "auto" computes in float32
    assert {p.dtype for _, p in tree_flatten(model.parameters())} == {mx.float32}


def test_lazy_load_defers_reading(tiny_checkpoint):
    model = loading.load_model(tiny_checkpoint[1], lazy=True)
    tokens = random_tokens(8)
    np.testing.assert_allclose(
        np.array(model(mx.array([tokens]))), hf_logits(tiny_checkpoint[0], tokens), atol=1e-4
    )


def test_mlx_quantized_folder_with_per_module_override(tmp_path, tiny_checkpoint):
    model = loading.load_model(tiny_checkpoint[1])  # as written: standard names, stored dtype
    embedding = {"group_size": 32, "bits": 8}

    def predicate(path, module):
        if path == "model.embed_tokens":
            return embedding
        return isinstance(module, nn.Linear)

    nn.quantize(model, group_size=64, bits=4, class_predicate=predicate)
    folder = copy_checkpoint(tiny_checkpoint[1], tmp_path)
    (folder / "model.safetensors").unlink()
    mx.save_safetensors(str(folder / "model.safetensors"), dict(tree_flatten(model.parameters())))
    config = json.loads((folder / "config.json").read_text())
    config["quantization"] = {"group_size": 64, "bits": 4, "model.embed_tokens": embedding}
    (folder / "config.json").write_text(json.dumps(config))

    loaded, _ = mlx_lfm2.load(folder, kernels="cpu-mlx")  # MLX's matmuls: bit-exact with the original
    assert loaded.model.embed_tokens.bits == 8 and loaded.model.layers[0].conv.in_proj.bits == 4
    tokens = mx.array([random_tokens(12)])
    assert mx.array_equal(loaded(tokens), model(tokens)).item()


def test_hub_id_goes_through_snapshot_download(monkeypatch, tiny_checkpoint):
    calls = []

    def fake_snapshot_download(repo_id, revision=None, allow_patterns=None):
        calls.append((repo_id, revision, allow_patterns))
        return str(tiny_checkpoint[1])

    monkeypatch.setattr(loading, "snapshot_download", fake_snapshot_download)
    model, tokenizer = mlx_lfm2.load("LiquidAI/LFM2-350M", revision="main")
    assert calls == [("LiquidAI/LFM2-350M", "main", loading.HUB_FILES)]
    assert tokenizer.eos_token_ids == {7}


def test_hub_id_offline_and_not_cached_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(CheckpointError) as error:
        mlx_lfm2.load("LiquidAI/LFM2-350M")
    assert "not in the Hugging Face cache" in one_line(error)


def test_hub_refusal_is_one_line(monkeypatch):
    import httpx2 as httpx
    from huggingface_hub.errors import RepositoryNotFoundError

    def refuse(*args, **kwargs):
        response = httpx.Response(404, request=httpx.Request("GET", "https://huggingface.co/api/models/x"))
        raise RepositoryNotFoundError("404 Client Error\nRepository Not Found", response=response)

    monkeypatch.setattr(loading, "snapshot_download", refuse)
    with pytest.raises(CheckpointError) as error:
        mlx_lfm2.load("nobody/nothing")
    assert one_line(error) == "nobody/nothing: no such folder here and no such repo on the hub"


def test_missing_path(tmp_path):
    with pytest.raises(CheckpointError) as error:
        mlx_lfm2.load(tmp_path / "does-not-exist")
    assert one_line(error).endswith("does-not-exist: no such folder")
    with pytest.raises(CheckpointError, match="no such folder"):
        mlx_lfm2.load("./models/nothing-here")


def test_missing_tensor(tmp_path, tiny_checkpoint):
    folder = copy_checkpoint(tiny_checkpoint[1], tmp_path)
    weights = mx.load(str(folder / "model.safetensors"))
    del weights["model.layers.1.self_attn.k_layernorm.weight"]
    mx.save_safetensors(str(folder / "model.safetensors"), weights)
    with pytest.raises(CheckpointError) as error:
        mlx_lfm2.load(folder)
    assert one_line(error) == (
        'checkpoint is missing tensor "model.layers.1.self_attn.k_layernorm.weight" of shape (16,)'
    )


def test_wrong_shaped_tensor(tmp_path, tiny_checkpoint):
    folder = copy_checkpoint(tiny_checkpoint[1], tmp_path)
    weights = mx.load(str(folder / "model.safetensors"))
    weights["model.layers.0.conv.in_proj.weight"] = mx.zeros((192, 32))
    mx.save_safetensors(str(folder / "model.safetensors"), weights)
    with pytest.raises(CheckpointError) as error:
        mlx_lfm2.load(folder)
    assert one_line(error) == (
        'model.safetensors: tensor "model.layers.0.conv.in_proj.weight" has shape (192, 32), expected (192, 64)'
    )


def test_unexpected_tensor(tmp_path, tiny_checkpoint):
    folder = copy_checkpoint(tiny_checkpoint[1], tmp_path)
    weights = mx.load(str(folder / "model.safetensors"))
    weights["model.layers.0.conv.extra.weight"] = mx.zeros((2,))
    mx.save_safetensors(str(folder / "model.safetensors"), weights)
    with pytest.raises(CheckpointError, match='unexpected tensor "model.layers.0.conv.extra.weight"'):
        mlx_lfm2.load(folder)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model_type": "llama"}, '"model_type" is "llama", expected "lfm2" or "lfm2_moe"'),
        ({"layer_types": ["conv"] * 3}, '"layer_types" has 3 entries, expected num_hidden_layers=4'),
    ],
)
def test_bad_config(tmp_path, tiny_checkpoint, change, message):
    folder = copy_checkpoint(tiny_checkpoint[1], tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(ConfigError) as error:
        mlx_lfm2.load(folder)
    assert one_line(error) == f"{folder / 'config.json'}: {message}"


def test_no_weights(tmp_path, tiny_checkpoint):
    folder = copy_checkpoint(tiny_checkpoint[1], tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no \\*.safetensors weight files"):
        mlx_lfm2.load(folder)
