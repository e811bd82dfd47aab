"""ModelConfig: one dataclass read from any LFM2 / LFM2-MoE config.json.

Checkpoints in the wild spell the same facts several ways (the original LFM2 releases,
transformers 4.x and transformers 5 exports, LFM2.5). `ModelConfig.from_dict` accepts all of
them and resolves them to one meaning, following transformers' `Lfm2Config` /
`Lfm2MoeConfig` wherever implementations disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

MODEL_TYPES = ("lfm2", "lfm2_moe")
LAYER_TYPES = ("conv", "full_attention")
DEFAULT_ROPE_THETA = 1_000_000.0  # transformers' Lfm2Config.default_theta


@dataclass(frozen=True)
class ModelConfig:
    model_type: str
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    layer_types: tuple[str, ...]
    ff_dim: int  # width of the dense SwiGLU MLP, after any auto-adjustment
    norm_eps: float = 1e-5
    conv_bias: bool = False
    conv_L_cache: int = 3
    rope_theta: float = DEFAULT_ROPE_THETA
    max_position_embeddings: int = 128_000
    tie_word_embeddings: bool = True
    # Mixture of experts (model_type "lfm2_moe"); num_experts == 0 for dense models.
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    num_dense_layers: int = 0
    norm_topk_prob: bool = True
    use_expert_bias: bool = True
    routed_scaling_factor: float = 1.0
    source: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_moe(self) -> bool:
        return self.model_type == "lfm2_moe"

    @property
    def attention_layers(self) -> list[int]:
        return [i for i, kind in enumerate(self.layer_types) if kind == "full_attention"]

    def is_sparse_layer(self, index: int) -> bool:
        """True where the feed-forward is the expert block rather than a dense MLP."""
        return self.is_moe and index >= self.num_dense_layers

    @classmethod
    def from_file(cls, path: str | Path) -> "ModelConfig":
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ConfigError(f"{path}: not readable JSON ({error})") from None
        return cls.from_dict(raw, source_name=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source_name: str = "config.json") -> "ModelConfig":
        return _Reader(raw, source_name).read()


class _Reader:
    """Reads one raw config dict; every error names the file and the key."""

    def __init__(self, raw: dict[str, Any], source_name: str):
        if not isinstance(raw, dict):
            raise ConfigError(f"{source_name}: expected a JSON object, got {type(raw).__name__}")
        self.raw = raw
        self.name = source_name

    def fail(self, key: str, expected: str) -> ConfigError:
        shown = json.dumps(self.raw.get(key)) if key in self.raw else "missing"
        return ConfigError(f'{self.name}: "{key}" is {shown}, expected {expected}')

    def get(self, key: str, default: Any) -> Any:
        """The value at key; null counts as absent, as in transformers."""
        value = self.raw.get(key)
        return default if value is None else value

    def integer(self, key: str, default: int | None = None, minimum: int = 1) -> int:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(key, f"an integer >= {minimum}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.fail(key, "a positive number")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false")
        return value

    def first_present(self, *keys: str) -> str | None:
        return next((k for k in keys if self.raw.get(k) is not None), None)

    def read(self) -> ModelConfig:
        model_type = self.raw.get("model_type")
        if model_type not in MODEL_TYPES:
            raise self.fail("model_type", " or ".join(f'"{t}"' for t in MODEL_TYPES))
        layers = self.integer("num_hidden_layers")
        heads = self.integer("num_attention_heads")
        hidden = self.integer("hidden_size")
        kv_heads = self.integer("num_key_value_heads", default=heads)
        if heads % kv_heads:
            raise self.fail("num_key_value_heads", f"a divisor of num_attention_heads={heads}")
        if self.raw.get("head_dim") is None and hidden % heads:
            raise self.fail("hidden_size", f"a multiple of num_attention_heads={heads}")
        head_dim = self.integer("head_dim", default=hidden // heads)
        moe = self.moe_fields(layers) if model_type == "lfm2_moe" else {}
        return ModelConfig(
            model_type=model_type,
            vocab_size=self.integer("vocab_size"),
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            head_dim=head_dim,
            layer_types=self.layer_types(layers),
            ff_dim=self.moe_dense_ff_dim() if model_type == "lfm2_moe" else self.dense_ff_dim(),
            norm_eps=self.number("norm_eps", 1e-5),
            conv_bias=self.flag("conv_bias", False),
            conv_L_cache=self.integer("conv_L_cache", default=3, minimum=2),
            rope_theta=self.rope_theta(),
            max_position_embeddings=self.integer("max_position_embeddings", default=128_000),
            tie_word_embeddings=self.tied(),
            source=dict(self.raw),
            **moe,
        )

    def layer_types(self, layers: int) -> tuple[str, ...]:
        kinds = self.raw.get("layer_types")
        if kinds is not None:
            if not isinstance(kinds, list) or len(kinds) != layers:
                count = f"{len(kinds)} entries" if isinstance(kinds, list) else "not a list"
                raise ConfigError(
                    f'{self.name}: "layer_types" has {count}, expected num_hidden_layers={layers}'
                )
            for i, kind in enumerate(kinds):
                if kind not in LAYER_TYPES:
                    raise ConfigError(
                        f'{self.name}: "layer_types"[{i}] is {json.dumps(kind)}, '
                        f'expected "conv" or "full_attention"'
                    )
            return tuple(kinds)
        indices = self.raw.get("full_attn_idxs")
        if indices is None:  # transformers: no list given means attention everywhere
            return ("full_attention",) * layers
        if not isinstance(indices, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < layers for i in indices
        ):
            raise self.fail("full_attn_idxs", f"a list of layer indices in [0, {layers})")
        return tuple("full_attention" if i in indices else "conv" for i in range(layers))

    def dense_ff_dim(self) -> int:
        """transformers' Lfm2MLP: `block_ff_dim` wins over `intermediate_size`; the
        auto-adjusted width is rounded up to `block_multiple_of` only when
        `block_ffn_dim_multiplier` is set (mlx-lm 0.32 always rounds)."""
        key = self.first_present("block_ff_dim", "intermediate_size")
        if key is None:
            raise self.fail("intermediate_size", 'an integer >= 1 (or "block_ff_dim")')
        width = self.integer(key)
        if not self.flag("block_auto_adjust_ff_dim", True):
            return width
        width = int(2 * width / 3)
        multiplier = self.raw.get("block_ffn_dim_multiplier", 1.0)
        if multiplier is None:
            return width
        if isinstance(multiplier, bool) or not isinstance(multiplier, (int, float)) or multiplier <= 0:
            raise self.fail("block_ffn_dim_multiplier", "a positive number or null")
        multiple_of = self.integer("block_multiple_of", default=256)
        width = int(multiplier * width)
        return multiple_of * ((width + multiple_of - 1) // multiple_of)

    def moe_dense_ff_dim(self) -> int:
        """Lfm2MoeMLP uses `intermediate_size` as it is, with no auto-adjustment."""
        return self.integer(self.first_present("intermediate_size", "block_ff_dim") or "intermediate_size")

    def moe_fields(self, layers: int) -> dict[str, Any]:
        experts = self.integer("num_experts")
        top_k = self.integer("num_experts_per_tok")
        if top_k > experts:
            raise self.fail("num_experts_per_tok", f"at most num_experts={experts}")
        return dict(
            num_experts=experts,
            num_experts_per_tok=top_k,
            moe_intermediate_size=self.integer("moe_intermediate_size"),
            num_dense_layers=self.bounded("num_dense_layers", default=2, maximum=layers),
            norm_topk_prob=self.flag("norm_topk_prob", True),
            use_expert_bias=self.flag("use_expert_bias", True),
            routed_scaling_factor=self.number("routed_scaling_factor", 1.0),
        )

    def bounded(self, key: str, default: int, maximum: int) -> int:
        value = self.integer(key, default=default, minimum=0)
        if value > maximum:
            raise self.fail(key, f"at most num_hidden_layers={maximum}")
        return value

    def rope_theta(self) -> float:
        rope = self.raw.get("rope_parameters")
        if rope is None:
            return self.number("rope_theta", DEFAULT_ROPE_THETA)
        if not isinstance(rope, dict):
            raise self.fail("rope_parameters", "an object with rope_theta")
        kind = rope.get("rope_type", rope.get("type", "default"))
        if kind != "default":
            raise ConfigError(
                f'{self.name}: "rope_parameters" has rope_type {json.dumps(kind)}, '
                'expected "default" (the only RoPE LFM2 uses)'
            )
        theta = rope.get("rope_theta", self.raw.get("rope_theta", DEFAULT_ROPE_THETA))
        if isinstance(theta, bool) or not isinstance(theta, (int, float)) or theta <= 0:
            raise self.fail("rope_parameters", "a positive rope_theta")
        return float(theta)

    def tied(self) -> bool:
        # Original LFM2 configs say "tie_embedding"; transformers pops it into tie_word_embeddings.
        key = "tie_embedding" if "tie_embedding" in self.raw else "tie_word_embeddings"
        return self.flag(key, True)
