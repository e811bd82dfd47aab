"""Sampling settings: the checkpoint's generation_config.json, else LFM2's recommended values
per family, built into mlx-lm's samplers and logits processors."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable

from mlx_lm.sample_utils import make_logits_processors, make_sampler

from .errors import LFM2Error


class SamplingError(LFM2Error, ValueError):
    """A sampling setting out of its range."""


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.3
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    repetition_context_size: int = 64

    def validated(self) -> "SamplingSettings":
        checks = [
            ("temperature", self.temperature >= 0, ">= 0 (0 is greedy)"),
            ("top_p", 0 < self.top_p <= 1, "in (0, 1]"),
            ("top_k", isinstance(self.top_k, int) and self.top_k >= 0, "an integer >= 0 (0 is off)"),
            ("min_p", 0 <= self.min_p <= 1, "in [0, 1]"),
            ("repetition_penalty", self.repetition_penalty > 0, "> 0 (1 is off)"),
            ("repetition_context_size", self.repetition_context_size >= 1, ">= 1"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise SamplingError(f"{name} is {getattr(self, name)}, expected {expected}")
        return self

    def with_overrides(self, **overrides: Any) -> "SamplingSettings":
        return replace(self, **{k: v for k, v in overrides.items() if v is not None}).validated()

    def sampler(self) -> Callable:
        return make_sampler(self.temperature, top_p=self.top_p, min_p=self.min_p, top_k=self.top_k)

    def logits_processors(self) -> list[Callable]:
        if self.repetition_penalty == 1.0:
            return []
        return make_logits_processors(
            repetition_penalty=self.repetition_penalty, repetition_context_size=self.repetition_context_size
        )


# Liquid AI's recommended settings, by family.
FAMILY_DEFAULTS = {
    "lfm2": SamplingSettings(temperature=0.3, min_p=0.15, repetition_penalty=1.05),
    "lfm2.5": SamplingSettings(temperature=0.1, top_k=50, top_p=0.1, repetition_penalty=1.05),
    "lfm2-math": SamplingSettings(temperature=0.6, top_p=0.95, min_p=0.1, repetition_penalty=1.05),
}
_GENERATION_CONFIG_KEYS = {f.name for f in fields(SamplingSettings)}


def family(name: str) -> str:
    """lfm2, lfm2.5 or lfm2-math, from a hub id, folder name or `_name_or_path`."""
    name = name.lower().replace("_", ".")
    if "math" in name:
        return "lfm2-math"
    return "lfm2.5" if "lfm2.5" in name else "lfm2"


def checkpoint_defaults(model_path: Path, names: list[str]) -> SamplingSettings:
    """generation_config.json's values over the family's recommended ones."""
    defaults = FAMILY_DEFAULTS[family(" ".join(names))]
    path = model_path / "generation_config.json"
    if not path.exists():
        return defaults
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SamplingError(f"{path}: not readable JSON ({error})") from None
    if config.get("do_sample") is False:
        config["temperature"] = 0.0
    values = {k: config[k] for k in _GENERATION_CONFIG_KEYS if config.get(k) is not None}
    try:
        return replace(defaults, **values).validated()
    except SamplingError as error:
        raise SamplingError(f"{path}: {error}") from None
