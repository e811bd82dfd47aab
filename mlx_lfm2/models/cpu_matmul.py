"""Quantized projections (and the tied LM head), causal attention and SwiGLU through the C++
CPU extension.

The layers keep MLX's classes, parameter names and arrays; only the product changes, so a
model swaps to them after loading without copying a weight. Each keeps one more thing: its
scales and biases in the layout the kernels read (float32, group-major), made once here
rather than on every call (+1/8 byte per weight: +22% of a 4-bit, group-64 model's size).
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_map_with_path

from ..kernels import cpu_extension
from .layers import MLP, Attention


def _take_over(new: nn.Module, old: nn.Module, names: tuple[str, ...]) -> nn.Module:
    # nn.Module's own init only: the parent classes' inits would quantize fresh random weights.
    nn.Module.__init__(new)
    for name in names:
        setattr(new, name, getattr(old, name))
    for name in ("weight", "scales", "biases", "bias"):
        if name in old and old[name] is not None:
            new[name] = old[name]
    new.freeze()
    # Plain attributes ("_" first), not parameters: checkpoints and updates never see them.
    new._scales_by_group = cpu_extension.group_major_scales(old["scales"])
    new._biases_by_group = cpu_extension.group_major_scales(old["biases"])
    mx.eval(new._scales_by_group, new._biases_by_group)
    return new


def _product(layer: nn.Module, x: mx.array) -> mx.array:
    return cpu_extension.quantized_matmul(
        x, layer["weight"], layer._scales_by_group, layer._biases_by_group, layer.group_size, layer.bits, group_major=True
    )


class ExtensionQuantizedLinear(nn.QuantizedLinear):
    def __init__(self, layer: nn.QuantizedLinear):
        _take_over(self, layer, ("group_size", "bits", "mode"))

    def __call__(self, x: mx.array) -> mx.array:
        y = _product(self, x)
        return y + self["bias"] if "bias" in self else y


class ExtensionQuantizedEmbedding(nn.QuantizedEmbedding):
    def __init__(self, layer: nn.QuantizedEmbedding):
        _take_over(self, layer, ("group_size", "bits", "mode", "num_embeddings", "dims"))

    def as_linear(self, x: mx.array) -> mx.array:
        return _product(self, x)


def use_cpu_extension(model: nn.Module) -> None:
    """Moves every quantized layer the extension supports onto it, and attention and the fused
    SwiGLU (which then take the extension's kernels wherever they apply: float32, causal)."""
    for _, module in model.named_modules():
        if isinstance(module, Attention):
            module.cpu_attention = True
        elif isinstance(module, MLP):
            module.cpu_gate = True

    def swap(_, module):
        if isinstance(module, (ExtensionQuantizedLinear, ExtensionQuantizedEmbedding)):
            return module
        settings = (getattr(module, "bits", None), getattr(module, "group_size", None), getattr(module, "mode", None))
        if isinstance(module, nn.QuantizedLinear) and cpu_extension.supports(*settings):
            return ExtensionQuantizedLinear(module)
        if isinstance(module, nn.QuantizedEmbedding) and cpu_extension.supports(*settings):
            return ExtensionQuantizedEmbedding(module)
        return module

    model.update_modules(tree_map_with_path(swap, model.leaf_modules(), is_leaf=nn.Module.is_module))
