"""Encoders turn a batch of inputs into [T, B, ...] spike trains or currents."""

from .base import ENCODERS, Encoder
from . import rate  # noqa: F401

__all__ = ["ENCODERS", "Encoder"]
