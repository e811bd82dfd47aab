"""HF -> MLX conversion and quantization, installed as `mlx_lfm2.convert`."""

from .converter import ConversionError, ConversionReport, convert
from .recipes import RECIPES

__all__ = ["convert", "ConversionError", "ConversionReport", "RECIPES"]
