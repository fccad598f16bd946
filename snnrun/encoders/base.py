"""Encoder base: input batch ``[B, ...]`` -> spike trains (or currents) ``[T, B, ...]``."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import Registry

ENCODERS = Registry("encoder")


class Encoder(nn.Module):
    """Built as ``cls(params, dt=..., time_steps=...)``; ``dt`` in ms.

    A random encoder draws from ``self.generator`` (None: torch's global generator). Encoders
    that draw only from it (or not at all) set ``prefetch = True``: the runner then encodes the
    next batch on a background thread while the current one trains, with a generator seeded per
    run seed, epoch and split, so the spikes do not depend on the thread timing.
    """

    prefetch = False

    def __init__(self, params, dt: float = 1.0, time_steps: int = 1):
        super().__init__()
        self.params = params
        self.dt = float(dt)
        self.time_steps = int(time_steps)
        self.generator: torch.Generator | None = None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-sample shape of the encoded input (most encoders keep it)."""
        return tuple(input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
