"""Decoders turn the output population's activity into class scores."""

from .base import DECODERS, Decoder
from . import readout  # noqa: F401

__all__ = ["DECODERS", "Decoder"]
