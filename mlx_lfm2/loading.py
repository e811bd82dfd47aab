"""A folder or hub id -> (model, tokenizer), for Hugging Face and MLX checkpoint layouts.

Weights are read lazily (`mx.load` maps tensors and reads them when first evaluated), so
peak memory while loading stays near the size of the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from huggingface_hub import snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id
from mlx.utils import tree_flatten
from mlx_lm.tokenizer_utils import TokenizerWrapper
from mlx_lm.tokenizer_utils import load as load_tokenizer_wrapper

from .config import ModelConfig
from .errors import CheckpointError
from .models import Model
from .models.runtime import prepare
from .sampling import checkpoint_defaults

# What a checkpoint needs from the hub: weights, configs, tokenizer, chat template.
HUB_FILES = ["*.json", "*.safetensors", "*.jinja", "*.txt", "tokenizer.model"]
# The small trained model shipped in the package (examples/demo_model): runs with no network.
DEMO_NAME = "demo"
DEMO_PATH = Path(__file__).parent / "demo"


def resolve_model_path(path_or_hub_id: str | Path, revision: str | None = None) -> Path:
    """A local checkpoint folder, the built-in `demo` model, or the hub snapshot of a repo id
    (downloaded if needed). A local folder called demo is `./demo`."""
    if str(path_or_hub_id) == DEMO_NAME:
        return DEMO_PATH
    path = Path(path_or_hub_id).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{path}: is a file, expected a checkpoint folder")
    repo_id = str(path_or_hub_id)
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise CheckpointError(f"{repo_id}: no such folder") from None
    if repo_id.startswith((".", "/", "~")) or repo_id.count("/") != 1:
        raise CheckpointError(f"{repo_id}: no such folder")
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES))
    except LocalEntryNotFoundError:
        raise CheckpointError(
            f"{repo_id}: not a local folder, not in the Hugging Face cache, and the hub cannot be "
            "reached (offline?); pass a local checkpoint folder, or `demo` for the built-in demo model"
        ) from None
    except GatedRepoError:
        raise CheckpointError(f"{repo_id}: gated on the hub; log in with `hf auth login` first") from None
    except RepositoryNotFoundError:
        raise CheckpointError(f"{repo_id}: no such folder here and no such repo on the hub") from None
    except RevisionNotFoundError:
        raise CheckpointError(f"{repo_id}: the hub has no revision {revision!r}") from None
    except HfHubHTTPError as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{repo_id}: the hub refused the download ({first_line})") from None


def weight_files(model_path: Path) -> list[Path]:
    index = model_path / "model.safetensors.index.json"
    if index.exists():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CheckpointError(f"{index}: not a safetensors index ({error})") from None
        files = [model_path / name for name in dict.fromkeys(weight_map.values())]
        for file in files:
            if not file.exists():
                raise CheckpointError(f"{index}: names {file.name}, which is missing")
        return files
    files = sorted(model_path.glob("*.safetensors"))
    if not files:
        raise CheckpointError(f"{model_path}: no *.safetensors weight files")
    return files


def read_weights(model_path: Path) -> tuple[dict[str, mx.array], dict[str, str]]:
    """All tensors (lazily), and the file each came from, for error messages."""
    weights, origin = {}, {}
    for file in weight_files(model_path):
        try:
            tensors = mx.load(str(file))
        except (RuntimeError, ValueError, OSError) as error:
            raise CheckpointError(f"{file}: not a readable safetensors file ({error})") from None
        weights.update(tensors)
        origin.update(dict.fromkeys(tensors, file.name))
    return weights, origin


def quantize_like_checkpoint(model: nn.Module, raw_config: dict, weights: dict[str, mx.array]) -> None:
    """Swaps in quantized layers where an MLX checkpoint stores quantized weights.

    `quantization` holds the default group size and bits plus per-module overrides keyed by
    module path (a dict of settings, or false for a module kept in float).
    """
    quantization = raw_config.get("quantization")
    if not quantization:
        return

    def predicate(path: str, module: nn.Module):
        if path in quantization:
            return quantization[path]
        return hasattr(module, "to_quantized") and f"{path}.scales" in weights

    nn.quantize(
        model,
        group_size=quantization["group_size"],
        bits=quantization["bits"],
        mode=quantization.get("mode", "affine"),
        class_predicate=predicate,
    )


def check_weights(model: nn.Module, weights: dict[str, mx.array], origin: dict[str, str]) -> None:
    """Every parameter present with the right shape, and nothing left over."""
    expected = dict(tree_flatten(model.parameters()))
    for name, parameter in expected.items():
        if name not in weights:
            raise CheckpointError(f'checkpoint is missing tensor "{name}" of shape {tuple(parameter.shape)}')
        if weights[name].shape != parameter.shape:
            raise CheckpointError(
                f'{origin.get(name, "checkpoint")}: tensor "{name}" has shape {tuple(weights[name].shape)}, '
                f"expected {tuple(parameter.shape)}"
            )
    for name in weights:
        if name not in expected:
            raise CheckpointError(f'{origin.get(name, "checkpoint")}: unexpected tensor "{name}"')


def load_model(model_path: str | Path, *, lazy: bool = False) -> Model:
    """The model of a local checkpoint folder, in the dtype its weights are stored in."""
    model_path = Path(model_path)
    config = ModelConfig.from_file(model_path / "config.json")
    weights, origin = read_weights(model_path)
    model = Model(config)
    weights = model.sanitize(weights)
    quantize_like_checkpoint(model, config.source, weights)
    check_weights(model, weights, origin)
    model.load_weights(list(weights.items()), strict=True)
    model.eval()
    if not lazy:
        # Layer by layer: tensors built from several stored ones (stacked experts) then hold
        # their sources only one layer at a time.
        for layer in model.layers:
            mx.eval(layer.parameters())
        mx.eval(model.parameters())
    return model


def load_tokenizer(model_path: Path, config: dict[str, Any]) -> TokenizerWrapper:
    """mlx-lm's tokenizer wrapper, stopping on the checkpoint's EOS ids."""
    eos = _generation_config(model_path).get("eos_token_id", config.get("eos_token_id"))
    try:
        return load_tokenizer_wrapper(model_path, eos_token_ids=eos)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{model_path}: no usable tokenizer ({str(error).splitlines()[0]})") from None


def _generation_config(model_path: Path) -> dict[str, Any]:
    path = model_path / "generation_config.json"
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not readable JSON ({error})") from None


def load(
    path_or_hub_id: str | Path,
    *,
    revision: str | None = None,
    lazy: bool = False,
    kernels: str = "auto",
    compute_dtype: str | None = "auto",
) -> tuple[Model, TokenizerWrapper]:
    """Loads an LFM2 checkpoint: a local folder (HF or MLX layout) or a hub id.

    kernels: "auto" (the best body for the default device), "reference" (plain MLX ops, the
    model exactly as written), "cpu", "metal" or "cuda". compute_dtype: "auto" (float32 on
    the CPU, as stored on a GPU), "float32", "bfloat16", "float16", or None (as stored).
    """
    model_path = resolve_model_path(path_or_hub_id, revision)
    model = prepare(load_model(model_path, lazy=lazy), kernels, compute_dtype)
    names = [str(path_or_hub_id), model_path.name, str(model.config.source.get("_name_or_path", ""))]
    model.generation_defaults = checkpoint_defaults(model_path, names)
    return model, load_tokenizer(model_path, model.config.source)
