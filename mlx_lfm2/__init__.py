"""mlx_lfm2: Liquid AI's LFM2 family on Apple MLX."""

__version__ = "0.1.0"

from .config import ModelConfig  # noqa: E402
from .errors import CheckpointError, ConfigError, LFM2Error  # noqa: E402
from .generate import (  # noqa: E402
    GenerationResponse,
    GenerationResult,
    generate,
    generate_with_tools,
    stream_generate,
    tool_messages,
)
from .loading import load  # noqa: E402
from .prompt_cache import PromptCache  # noqa: E402
from .sampling import SamplingSettings  # noqa: E402
from .templates import apply_chat_template  # noqa: E402
from .tools import ToolCall, parse_tool_calls, tool_schema  # noqa: E402
from .convert import convert  # noqa: E402  the function shadows the subpackage's name on purpose

__all__ = [
    "load", "generate", "stream_generate", "generate_with_tools", "tool_messages", "convert",
    "apply_chat_template", "parse_tool_calls", "tool_schema", "ToolCall", "PromptCache",
    "SamplingSettings", "GenerationResponse", "GenerationResult",
    "ModelConfig", "LFM2Error", "ConfigError", "CheckpointError",
]
