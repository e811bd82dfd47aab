"""The errors mlx_lfm2 raises for bad input: each message is one line that names the file,
the key or tensor, and what was expected, so the commands can print it without a traceback."""


class LFM2Error(Exception):
    """Base of every error caused by the user's input rather than a bug."""


class ConfigError(LFM2Error, ValueError):
    """A config.json that does not describe a valid LFM2 model."""


class CheckpointError(LFM2Error, ValueError):
    """A checkpoint folder or hub id that cannot be loaded."""
