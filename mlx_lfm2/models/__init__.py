"""The LFM2 networks (dense and mixture-of-experts) built from one set of blocks."""

from .model import Model

__all__ = ["Model"]
