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

    def sequence_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The per-step shape of sequence samples ``[T, *shape]`` (for encoders that read sequences),
        checked at build: a time axis of T = ``network.duration / dt`` steps."""
        from ..errors import ShapeError

        name = type(self).registry_name
        shape = tuple(input_shape)
        if len(shape) < 2:
            raise ShapeError(f"encoder.name: {name} reads sequences [T, ...] but the data's samples have shape "
                             f"{list(shape)} (no time axis); use sequence data (data=temporal_patterns, nmnist, "
                             f"shd) or a per-sample encoder (e.g. encoder=poisson)")
        if shape[0] != self.time_steps:
            raise ShapeError(f"network.duration: encoder {name} reads sequences of {shape[0]} steps (samples "
                             f"{list(shape)}) but the network runs T = {self.time_steps} (network.duration / "
                             f"network.dt); set network.duration={shape[0] * self.dt:g}, or use a per-sample "
                             f"encoder (e.g. encoder=poisson)")
        return shape[1:]
