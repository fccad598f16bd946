"""Encoders turn a batch of inputs into [T, B, ...] spike trains or currents."""

from .base import ENCODERS, Encoder
from . import generators, rate, temporal  # noqa: F401  (register the encoders)

__all__ = ["ENCODERS", "Encoder"]
