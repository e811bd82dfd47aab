"""A prompt cache that remembers which tokens (and text) it holds, so a chat prefills only
the new turn.

Conv states cannot be rewound, so a cache is reused only when the new prompt extends what it
holds; otherwise it starts over (KV-only trimming would leave the conv layers wrong). The next
turn's prompt is matched as text, then only the new text is tokenized and appended to the
tokens the model actually wrote: re-tokenizing an answer does not always give back the same
tokens, and the model must continue from the ones it produced.
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
        self.text = ""  # what the tokens spell, where known

    def reset(self) -> None:
        self.cache = self.model.make_cache()
        self.tokens, self.text = [], ""

    def tokens_for(self, text: str, encode) -> list[int] | None:
        """Prompt tokens for text that extends what the cache holds; None if it does not."""
        if self.text and text.startswith(self.text):
            return self.tokens + encode(text[len(self.text) :])
        return None

    def prepare(self, prompt: list[int]) -> list[int]:
        """The tokens still to prefill for prompt; resets when the cache is not a prefix of it."""
        held = len(self.tokens)
        if held and (held >= len(prompt) or prompt[:held] != self.tokens):
            self.reset()
        return prompt[len(self.tokens) :]

    def record(self, tokens: list[int], text: str) -> None:
        """After generating: the cache holds these tokens (spelling text), up to what the
        model has processed."""
        processed = next((c.offset for c in self.cache if isinstance(c, KVCache)), len(tokens))
        self.tokens = list(tokens[:processed])
        self.text = text if processed == len(tokens) else ""

    def save(self, path: str | Path) -> None:
        save_prompt_cache(str(path), self.cache, {"tokens": json.dumps(self.tokens), "text": self.text})

    @classmethod
    def load(cls, model, path: str | Path) -> "PromptCache":
        try:
            cache, metadata = load_prompt_cache(str(path), return_metadata=True)
            tokens, text = json.loads(metadata["tokens"]), metadata.get("text", "")
        except (OSError, RuntimeError, ValueError, KeyError) as error:
            raise PromptCacheError(f"{path}: not an mlx_lfm2 prompt cache ({str(error).splitlines()[0]})") from None
        if len(cache) != len(model.layers):
            raise PromptCacheError(f"{path}: holds {len(cache)} layers, the model has {len(model.layers)}")
        prompt_cache = cls(model)
        prompt_cache.cache, prompt_cache.tokens, prompt_cache.text = cache, tokens, text
        return prompt_cache
