"""The MLX checkpoint layout that mlx_lfm2, mlx-lm and mlx-swift-lm all read.

config.json, weights as `model.safetensors` or `model-0000N-of-0000M.safetensors` shards with
`model.safetensors.index.json`, the tokenizer files, chat template and generation config, and a
model card. Everything is written into a hidden folder beside the target and renamed into place
at the end, so an error or Ctrl-C never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import mlx.core as mx
from tqdm import tqdm

from mlx_lfm2.config import ModelConfig
from mlx_lfm2.errors import CheckpointError

# Files copied from the source: tokenizer, chat template, generation config.
SIDE_FILE_PATTERNS = ("*.json", "*.jinja", "*.txt", "tokenizer.model", "*.tiktoken")
NOT_COPIED = {"config.json", "model.safetensors.index.json"}


def loader_config(config: ModelConfig, quantization: dict[str, Any] | None) -> dict[str, Any]:
    """The source config.json plus every key the three loaders read, with values that give
    each of them the same model.

    transformers 5 exports lack `block_dim` / `block_ff_dim` (mlx-lm 0.32 refuses such a
    config, mlx-swift-lm falls back to hidden_size), and mlx-lm and Swift always round an
    auto-adjusted ff width where transformers rounds only with a multiplier. So the resolved
    width is written as is, with auto-adjustment off, and the layer layout is written in both
    spellings.
    """
    out = {k: v for k, v in config.source.items() if k not in ("quantization", "quantization_config")}
    out.update(
        model_type=config.model_type,
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        norm_eps=config.norm_eps,
        conv_bias=config.conv_bias,
        conv_L_cache=config.conv_L_cache,
        layer_types=list(config.layer_types),
        full_attn_idxs=config.attention_layers,
        rope_theta=config.rope_theta,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
        tie_word_embeddings=config.tie_word_embeddings,
        tie_embedding=config.tie_word_embeddings,
    )
    if config.is_moe:
        out.update(
            intermediate_size=config.ff_dim,
            moe_intermediate_size=config.moe_intermediate_size,
            num_experts=config.num_experts,
            num_experts_per_tok=config.num_experts_per_tok,
            num_dense_layers=config.num_dense_layers,
            norm_topk_prob=config.norm_topk_prob,
            use_expert_bias=config.use_expert_bias,
            routed_scaling_factor=config.routed_scaling_factor,
        )
    else:
        out.update(
            block_dim=config.hidden_size,
            block_ff_dim=config.ff_dim,
            intermediate_size=config.ff_dim,
            block_auto_adjust_ff_dim=False,
            block_multiple_of=config.source.get("block_multiple_of") or 256,
            block_ffn_dim_multiplier=config.source.get("block_ffn_dim_multiplier") or 1.0,
        )
    if quantization:
        out["quantization"] = quantization
        out["quantization_config"] = quantization
    return dict(sorted(out.items()))


def plan_shards(tensors: dict[str, mx.array], max_bytes: int) -> list[list[str]]:
    """Tensor names grouped into shards of at most max_bytes (a larger tensor gets its own)."""
    shards, current, size = [], [], 0
    for name, array in tensors.items():
        if current and size + array.nbytes > max_bytes:
            shards.append(current)
            current, size = [], 0
        current.append(name)
        size += array.nbytes
    if current:
        shards.append(current)
    return shards


def shard_name(index: int, count: int) -> str:
    return "model.safetensors" if count == 1 else f"model-{index + 1:05d}-of-{count:05d}.safetensors"


def write_weights(folder: Path, tensors: dict[str, mx.array], max_bytes: int, progress: bool) -> None:
    """Evaluates and writes one shard at a time, with a bar of tensors done and bytes written."""
    shards = plan_shards(tensors, max_bytes)
    weight_map = {}
    total = sum(array.nbytes for array in tensors.values())
    with tqdm(total=total, unit="B", unit_scale=True, desc="writing", disable=not progress) as bar:
        done = 0
        for index, names in enumerate(shards):
            file = shard_name(index, len(shards))
            shard = {name: tensors[name] for name in names}
            mx.eval(shard)
            mx.save_safetensors(str(folder / file), shard, metadata={"format": "mlx"})
            weight_map.update(dict.fromkeys(names, file))
            done += len(names)
            bar.set_postfix_str(f"{done}/{len(tensors)} tensors")
            bar.update(sum(array.nbytes for array in shard.values()))
    index_data = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index_data, indent=2))


def copy_side_files(source: Path, folder: Path) -> None:
    for pattern in SIDE_FILE_PATTERNS:
        for file in source.glob(pattern):
            if file.name not in NOT_COPIED and file.is_file():
                shutil.copy2(file, folder / file.name)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_folder(target: Path, force: bool) -> Iterator[Path]:
    """A hidden folder beside target to write into; renamed to target only on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        yield work
        work.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the result is an ordinary folder
        if target.exists():
            if not force:
                raise CheckpointError(f"{target}: appeared while converting; pass --force to replace it")
            old = target.with_name(f".{target.name}.{os.getpid()}.old")
            target.rename(old)
            work.rename(target)
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        else:
            work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
