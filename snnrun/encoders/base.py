"""Encoder base: input batch ``[B, ...]`` -> spike trains (or currents) ``[T, B, ...]``."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import Registry

ENCODERS = Registry("encoder")


class Encoder(nn.Module):
    """Built as ``cls(params, dt=..., time_steps=...)``; ``dt`` in ms."""

    def __init__(self, params, dt: float = 1.0, time_steps: int = 1):
        super().__init__()
        self.params = params
        self.dt = float(dt)
        self.time_steps = int(time_steps)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-sample shape of the encoded input (most encoders keep it)."""
        return tuple(input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
