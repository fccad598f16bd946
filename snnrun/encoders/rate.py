"""Rate encoders and constant-current input."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..kernels.bernoulli import bernoulli_steps
from ..schema import param
from .base import ENCODERS, Encoder


@ENCODERS.register("poisson")
class Poisson(Encoder):
    r"""Poisson spike trains: rate ``r = x · max_rate`` (Hz) for intensities ``x ∈ [0, 1]``.

    Discretised as independent Bernoulli draws per step with
    ``P(spike) = min(r · dt / 1000, 1)`` (dt in ms), so the mean count over
    duration D ms is ``r · D / 1000``. Draws: :mod:`snnrun.kernels.bernoulli`.
    """

    @dataclass
    class Params:
        max_rate: float = param(1000.0, unit="Hz", gt=0, help="rate for intensity 1")
        scale: float = param(1.0, ge=0, help="multiplies the input before encoding")

    def forward(self, x):
        return bernoulli_steps(x, self.time_steps, self.params.scale * self.params.max_rate * self.dt / 1000.0)


@ENCODERS.register("direct", "constant_current")
class Direct(Encoder):
    """The input itself as a constant current at every step: ``I[t] = gain · x`` (no spikes)."""

    @dataclass
    class Params:
        gain: float = param(1.0, help="current per unit of input")

    def forward(self, x):
        # a view, the same memory at every step: the network projects it once per sample
        return (self.params.gain * x).unsqueeze(0).expand(self.time_steps, *x.shape)


@ENCODERS.register("spikes")
class Spikes(Encoder):
    """Pre-encoded spike trains (or currents) ``[B, T, *shape]`` from the data, passed through
    time-major as ``[T, B, *shape]``; T must equal ``network.duration / dt``."""

    def output_shape(self, input_shape):
        return self.sequence_shape(input_shape)

    def forward(self, x):
        if x.shape[1] != self.time_steps:
            from ..errors import ShapeError
            raise ShapeError(f"encoder: spikes got sequences of {x.shape[1]} steps but the network runs "
                             f"T = {self.time_steps} (network.duration / network.dt)")
        return x.transpose(0, 1)
