"""mlx_lfm2: Liquid AI's LFM2 family on Apple MLX."""

__version__ = "0.1.0"

from .config import ModelConfig  # noqa: E402
from .errors import CheckpointError, ConfigError, LFM2Error  # noqa: E402
from .loading import load  # noqa: E402
from .convert import convert  # noqa: E402  the function shadows the subpackage's name on purpose

__all__ = ["load", "convert", "ModelConfig", "LFM2Error", "ConfigError", "CheckpointError"]
