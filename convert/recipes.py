"""Which modules to quantize, at which width, with LFM2's own module names.

mlx-lm's recipes look for `down_proj`, which dense LFM2 calls `w2`, and raise its LM-head width
only for a module named `lm_head`, which a tied LFM2 head is not (the embedding serves as the
head). These recipes name LFM2's modules directly.

Every recipe keeps in float: norms, conv kernels (they have no quantized form), the MoE router
(`feed_forward.gate`: routing is sensitive and the router is tiny), and any layer whose input
width is not a multiple of the group size.
"""

from __future__ import annotations

from typing import Callable

import mlx.nn as nn

Predicate = Callable[[str, nn.Module], "bool | dict"]

RECIPES = {
    "mixed_4_8": "embedding and LM head at 8 bits; every other linear layer at 4",
    "mixed_4_6": "embedding, LM head, and in the first and last eighth of the layers and every "
    "third layer between: attention v_proj and the feed-forward down projection (w2, down_proj, "
    "experts' down_proj) at 6 bits; the rest at 4",
    "mixed_3_6": "as mixed_4_6, with 3 bits for the rest",
}

_RECIPE_BITS = {"mixed_4_8": (4, 8), "mixed_4_6": (4, 6), "mixed_3_6": (3, 6)}
_HEAD = ("model.embed_tokens", "lm_head")
_SENSITIVE = (".self_attn.v_proj", ".feed_forward.w2", ".feed_forward.down_proj", ".switch_mlp.down_proj")


def quantizable(path: str, module: nn.Module, group_size: int) -> bool:
    return (
        hasattr(module, "to_quantized")
        and not path.endswith("feed_forward.gate")
        and module.weight.shape[-1] % group_size == 0
    )


def default_bits(recipe: str | None, bits: int) -> int:
    """The width most layers get: the recipe's low width, or --q-bits without a recipe."""
    return bits if recipe is None else _RECIPE_BITS[recipe][0]


def predicate(recipe: str | None, num_layers: int, bits: int, group_size: int) -> Predicate:
    if recipe is None:
        return lambda path, module: quantizable(path, module, group_size)
    low, high = _RECIPE_BITS[recipe]

    def sensitive(path: str) -> bool:
        if path in _HEAD:
            return True
        if recipe == "mixed_4_8" or not path.endswith(_SENSITIVE):
            return False
        index = int(path.split(".")[2])  # model.layers.<index>...
        eighth = num_layers // 8
        return index < eighth or index >= num_layers - eighth or (index - eighth) % 3 == 2

    def choose(path: str, module: nn.Module):
        if not quantizable(path, module, group_size):
            return False
        return {"group_size": group_size, "bits": high if sensitive(path) else low, "mode": "affine"}

    return choose
