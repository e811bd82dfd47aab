"""mlx_lfm2: Liquid AI's LFM2 family on Apple MLX."""

from .config import ModelConfig
from .errors import CheckpointError, ConfigError, LFM2Error
from .loading import load

__all__ = ["load", "ModelConfig", "LFM2Error", "ConfigError", "CheckpointError"]
__version__ = "0.1.0"
