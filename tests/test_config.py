import json

import pytest

from mlx_lfm2 import ConfigError, ModelConfig

LFM2_350M = {
    "model_type": "lfm2",
    "vocab_size": 65536,
    "hidden_size": 1024,
    "num_hidden_layers": 16,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "block_dim": 1024,
    "block_ff_dim": 6656,
    "block_auto_adjust_ff_dim": True,
    "block_ffn_dim_multiplier": 1.0,
    "block_multiple_of": 256,
    "full_attn_idxs": [2, 5, 8, 10, 12, 14],
    "rope_theta": 1000000.0,
    "tie_embedding": True,
    "conv_L_cache": 3,
    "conv_bias": False,
    "norm_eps": 1e-05,
}


def test_lfm2_350m_original_config():
    config = ModelConfig.from_dict(LFM2_350M)
    assert config.ff_dim == 4608  # 6656 -> int(2/3 * 6656) = 4437 -> rounded up to 256
    assert config.attention_layers == [2, 5, 8, 10, 12, 14]
    assert config.layer_types[0] == "conv"
    assert config.head_dim == 64
    assert config.rope_theta == 1e6
    assert config.tie_word_embeddings


def test_transformers5_spelling_gives_the_same_config():
    raw = dict(LFM2_350M)
    raw["intermediate_size"] = raw.pop("block_ff_dim")
    del raw["block_dim"]
    attention = raw.pop("full_attn_idxs")
    raw["layer_types"] = ["full_attention" if i in attention else "conv" for i in range(16)]
    raw["rope_parameters"] = {"rope_type": "default", "rope_theta": raw.pop("rope_theta")}
    raw["tie_word_embeddings"] = raw.pop("tie_embedding")
    assert ModelConfig.from_dict(raw) == ModelConfig.from_dict(LFM2_350M)


def test_block_ff_dim_wins_over_intermediate_size():
    config = ModelConfig.from_dict({**LFM2_350M, "intermediate_size": 999})
    assert config.ff_dim == 4608


@pytest.mark.parametrize(
    "overrides, ff_dim",
    [
        ({"block_auto_adjust_ff_dim": False}, 6656),
        # transformers rounds only when a multiplier is set; mlx-lm 0.32 would give 4608.
        ({"block_ffn_dim_multiplier": None}, 4437),
        ({"block_ffn_dim_multiplier": 1.5}, 6656),  # int(1.5 * 4437) = 6655 -> 6656
        ({"block_multiple_of": 100}, 4500),
    ],
)
def test_ff_dim_auto_adjustment(overrides, ff_dim):
    assert ModelConfig.from_dict({**LFM2_350M, **overrides}).ff_dim == ff_dim


def test_defaults_follow_transformers():
    raw = {k: v for k, v in LFM2_350M.items() if k not in ("rope_theta", "tie_embedding", "full_attn_idxs")}
    config = ModelConfig.from_dict(raw)
    assert config.rope_theta == 1e6
    assert config.tie_word_embeddings
    assert config.layer_types == ("full_attention",) * 16  # transformers: no list means all attention
    assert config.num_key_value_heads == 8


def test_untied_head_and_explicit_head_dim():
    config = ModelConfig.from_dict({**LFM2_350M, "tie_embedding": False, "head_dim": 32})
    assert not config.tie_word_embeddings
    assert config.head_dim == 32


def test_from_file_reads_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LFM2_350M))
    assert ModelConfig.from_file(path).ff_dim == 4608


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"layer_types": ["conv"] * 15}, '"layer_types" has 15 entries, expected num_hidden_layers=16'),
        ({"layer_types": ["conv"] * 15 + ["mamba"]}, '"layer_types"[15] is "mamba", expected "conv" or "full_attention"'),
        ({"model_type": "llama"}, '"model_type" is "llama", expected "lfm2" or "lfm2_moe"'),
        ({"hidden_size": "1024"}, '"hidden_size" is "1024", expected an integer >= 1'),
        ({"num_key_value_heads": 5}, '"num_key_value_heads" is 5, expected a divisor of num_attention_heads=16'),
        ({"full_attn_idxs": [2, 16]}, '"full_attn_idxs" is [2, 16], expected a list of layer indices in [0, 16)'),
        ({"rope_parameters": {"rope_type": "yarn", "factor": 4}}, 'rope_type "yarn", expected "default"'),
        ({"conv_bias": "no"}, '"conv_bias" is "no", expected true or false'),
    ],
)
def test_bad_config_names_key_and_expectation(overrides, message):
    with pytest.raises(ConfigError) as error:
        ModelConfig.from_dict({**LFM2_350M, **overrides})
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_width_is_an_error():
    raw = {k: v for k, v in LFM2_350M.items() if k != "block_ff_dim"}
    with pytest.raises(ConfigError, match='"intermediate_size" is missing'):
        ModelConfig.from_dict(raw)


def test_unreadable_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not readable JSON"):
        ModelConfig.from_file(path)
    with pytest.raises(ConfigError, match="not found"):
        ModelConfig.from_file(tmp_path / "nope.json")
