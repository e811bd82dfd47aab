"""A prompt cache that remembers which tokens it holds, so a chat prefills only new tokens.

Conv states cannot be rewound, so a cache is reused only when the new prompt extends what it
holds; otherwise it starts over (KV-only trimming would leave the conv layers wrong).
"""

from __future__ import annotations

import json
from pathlib import Path

from mlx_lm.models.cache import KVCache, load_prompt_cache, save_prompt_cache

from .errors import LFM2Error


class PromptCacheError(LFM2Error, ValueError):
    """A prompt-cache file that cannot be used."""


class PromptCache:
    def __init__(self, model):
        self.model = model
        self.cache = model.make_cache()
        self.tokens: list[int] = []

    def reset(self) -> None:
        self.cache = self.model.make_cache()
        self.tokens = []

    def prepare(self, prompt: list[int]) -> list[int]:
        """The tokens still to prefill for prompt; resets when the cache is not a prefix of it."""
        held = len(self.tokens)
        if held and (held >= len(prompt) or prompt[:held] != self.tokens):
            self.reset()
        return prompt[len(self.tokens) :]

    def record(self, tokens: list[int]) -> None:
        """After generating: the cache holds these tokens, up to what the model has processed."""
        processed = next((c.offset for c in self.cache if isinstance(c, KVCache)), len(tokens))
        self.tokens = list(tokens[:processed])

    def save(self, path: str | Path) -> None:
        save_prompt_cache(str(path), self.cache, {"tokens": json.dumps(self.tokens)})

    @classmethod
    def load(cls, model, path: str | Path) -> "PromptCache":
        try:
            cache, metadata = load_prompt_cache(str(path), return_metadata=True)
            tokens = json.loads(metadata["tokens"])
        except (OSError, RuntimeError, ValueError, KeyError) as error:
            raise PromptCacheError(f"{path}: not an mlx_lfm2 prompt cache ({str(error).splitlines()[0]})") from None
        if len(cache) != len(model.layers):
            raise PromptCacheError(f"{path}: holds {len(cache)} layers, the model has {len(model.layers)}")
        prompt_cache = cls(model)
        prompt_cache.cache, prompt_cache.tokens = cache, tokens
        return prompt_cache
