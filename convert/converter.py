"""Hugging Face LFM2 checkpoint -> MLX checkpoint (float, 2..8-bit, or mixed precision)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_map
from mlx_lm.utils import compute_bits_per_weight, dequantize_model

from mlx_lfm2 import __version__
from mlx_lfm2.errors import CheckpointError, LFM2Error
from mlx_lfm2.loading import load_model, resolve_model_path

from . import layout, recipes
from .hub import upload

Q_BITS = (2, 3, 4, 5, 6, 8)
Q_GROUP_SIZES = (32, 64, 128)
DTYPES = ("float16", "bfloat16", "float32")
MAX_SHARD_GB = 5.0


class ConversionError(LFM2Error, ValueError):
    """Options that do not make a valid conversion."""


@dataclass(frozen=True)
class ConversionReport:
    path: Path
    bytes_on_disk: int
    bits_per_weight: float
    quantization: dict | None

    def summary(self) -> str:
        kind = "float" if not self.quantization else (
            f"{self.quantization['bits']}-bit, group size {self.quantization['group_size']}"
            + (" with per-module overrides" if any(isinstance(v, dict) for v in self.quantization.values()) else "")
        )
        return (
            f"wrote {self.path} ({kind}): {self.bytes_on_disk / 1e9:.3f} GB on disk, "
            f"{self.bits_per_weight:.2f} bits per weight\n"
            f"run it: mlx_lfm2.generate --model {self.path} --prompt \"Hello\""
        )


def check_options(quantize, q_bits, q_group_size, dtype, quant_predicate, dequantize) -> None:
    if q_bits not in Q_BITS:
        raise ConversionError(f"--q-bits is {q_bits}, expected one of {', '.join(map(str, Q_BITS))}")
    if q_group_size not in Q_GROUP_SIZES:
        raise ConversionError(f"--q-group-size is {q_group_size}, expected one of 32, 64, 128")
    if dtype is not None and dtype not in DTYPES:
        raise ConversionError(f"--dtype is {dtype!r}, expected one of {', '.join(DTYPES)}")
    if quant_predicate is not None and quant_predicate not in recipes.RECIPES:
        raise ConversionError(
            f"--quant-predicate is {quant_predicate!r}, expected one of {', '.join(recipes.RECIPES)}"
        )
    if quant_predicate is not None and not quantize:
        raise ConversionError("--quant-predicate needs -q/--quantize")
    if quantize and dequantize:
        raise ConversionError("-q/--quantize and --dequantize exclude each other")


def is_quantized(model: nn.Module) -> bool:
    return any(hasattr(m, "bits") for _, m in model.named_modules())


def cast_floats(model: nn.Module, dtype: mx.Dtype) -> None:
    model.update(
        tree_map(lambda p: p.astype(dtype) if mx.issubdtype(p.dtype, mx.floating) else p, model.parameters())
    )


def quantize_model(model: nn.Module, recipe: str | None, bits: int, group_size: int) -> dict:
    """Quantizes in place; returns the config block: defaults plus per-module overrides."""
    bits = recipes.default_bits(recipe, bits)
    choose = recipes.predicate(recipe, len(model.layers), bits, group_size)
    nn.quantize(model, group_size=group_size, bits=bits, class_predicate=choose)
    block = {"group_size": group_size, "bits": bits, "mode": "affine"}
    for path, module in model.named_modules():
        if hasattr(module, "bits") and (module.bits, module.group_size) != (bits, group_size):
            block[path] = {"group_size": module.group_size, "bits": module.bits, "mode": "affine"}
    return block


def model_card(source: str, quantization: dict | None, recipe: str | None, dtype: str) -> str:
    width = "float weights" if not quantization else (
        f"{quantization['bits']}-bit weights, group size {quantization['group_size']}"
        + (f", recipe {recipe} ({recipes.RECIPES[recipe]})" if recipe else "")
    )
    # A hub id names the base model; a local folder's path means nothing off this machine.
    local = Path(source).expanduser().exists()
    name = Path(source).name if local else source
    base_model = "" if local else f"base_model: {source}\n"
    return f"""---
library_name: mlx
{base_model}tags: [mlx, lfm2, liquid]
---

# {Path(source).name} for MLX

Converted from `{name}` by mlx_lfm2 {__version__}: {width}; floating tensors in {dtype}.
Norms, conv kernels and any MoE router are kept in float.

The folder is in the standard MLX layout and loads as it is in mlx_lfm2, mlx-lm and
mlx-swift-lm:

```bash
mlx_lfm2.generate --model <this folder or repo> --prompt "Hello"
mlx_lm.generate --model <this folder or repo> --prompt "Hello"
```

The license of the original model applies.
"""


def convert(
    hf_path: str | Path,
    mlx_path: str | Path = "mlx_model",
    *,
    quantize: bool = False,
    q_bits: int = 4,
    q_group_size: int = 64,
    dtype: str | None = None,
    quant_predicate: str | None = None,
    dequantize: bool = False,
    upload_repo: str | None = None,
    force: bool = False,
    revision: str | None = None,
    max_shard_gb: float = MAX_SHARD_GB,
    progress: bool = True,
) -> ConversionReport:
    """Converts an LFM2 checkpoint (local folder or hub id) into an MLX checkpoint folder.

    The source is checked in full (config, every tensor present with its shape) before
    anything is written; the output appears at mlx_path only when complete.
    """
    check_options(quantize, q_bits, q_group_size, dtype, quant_predicate, dequantize)
    target = Path(mlx_path).expanduser()
    if target.exists() and not force:
        raise CheckpointError(f"{target}: already exists; pass --force to replace it")
    source = resolve_model_path(hf_path, revision)
    if target.exists() and target.resolve() == source.resolve():
        raise CheckpointError(f"{target}: is the source checkpoint; choose another --mlx-path")

    model = load_model(source, lazy=True)  # checks config and every tensor; reads nothing yet
    if dequantize:
        if not is_quantized(model):
            raise ConversionError(f"{source}: --dequantize needs a quantized MLX checkpoint")
        dequantize_model(model)
    if dtype is not None:
        cast_floats(model, getattr(mx, dtype))
    quantization = None
    if quantize:
        if is_quantized(model):
            raise ConversionError(f"{source}: already quantized; convert its float source instead")
        quantization = quantize_model(model, quant_predicate, q_bits, q_group_size)
    elif is_quantized(model):
        quantization = model.config.source.get("quantization")

    tensors = dict(tree_flatten(model.parameters()))
    float_dtypes = {str(a.dtype).split(".")[-1] for a in tensors.values() if mx.issubdtype(a.dtype, mx.floating)}
    with layout.atomic_folder(target, force) as folder:
        layout.write_weights(folder, tensors, int(max_shard_gb * 1e9), progress)
        layout.copy_side_files(source, folder)
        layout.write_json(folder / "config.json", layout.loader_config(model.config, quantization))
        card = model_card(str(hf_path), quantization, quant_predicate, "/".join(sorted(float_dtypes)))
        (folder / "README.md").write_text(card)
    report = ConversionReport(
        path=target,
        bytes_on_disk=sum(f.stat().st_size for f in target.glob("*.safetensors")),
        bits_per_weight=compute_bits_per_weight(model),
        quantization=quantization,
    )
    if upload_repo:
        upload(target, upload_repo)
    return report
