"""Quantized projections (and the tied LM head) through the C++ CPU extension.

The layers keep MLX's classes, parameter names and arrays; only the product changes, so a
model swaps to them after loading without copying a weight.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_map_with_path

from ..kernels import cpu_extension


def _take_over(new: nn.Module, old: nn.Module, names: tuple[str, ...]) -> nn.Module:
    # nn.Module's own init only: the parent classes' inits would quantize fresh random weights.
    nn.Module.__init__(new)
    for name in names:
        setattr(new, name, getattr(old, name))
    for name in ("weight", "scales", "biases", "bias"):
        if name in old and old[name] is not None:
            new[name] = old[name]
    new.freeze()
    return new


class ExtensionQuantizedLinear(nn.QuantizedLinear):
    def __init__(self, layer: nn.QuantizedLinear):
        _take_over(self, layer, ("group_size", "bits", "mode"))

    def __call__(self, x: mx.array) -> mx.array:
        y = cpu_extension.quantized_matmul(x, self["weight"], self["scales"], self["biases"], self.group_size, self.bits)
        return y + self["bias"] if "bias" in self else y


class ExtensionQuantizedEmbedding(nn.QuantizedEmbedding):
    def __init__(self, layer: nn.QuantizedEmbedding):
        _take_over(self, layer, ("group_size", "bits", "mode", "num_embeddings", "dims"))

    def as_linear(self, x: mx.array) -> mx.array:
        return cpu_extension.quantized_matmul(x, self["weight"], self["scales"], self["biases"], self.group_size, self.bits)


def use_cpu_extension(model: nn.Module) -> None:
    """Moves every quantized layer the extension supports onto it."""

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
