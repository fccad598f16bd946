"""Generators and population codes: inputs that are not (only) read from the data."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..kernels.bernoulli import bernoulli_steps
from ..schema import param
from .base import ENCODERS, Encoder


@ENCODERS.register("bernoulli")
class Bernoulli(Encoder):
    """Independent Bernoulli spikes with probability ``p = clamp(scale · x, 0, 1)`` per step
    (no dt scaling: a per-step probability, as snntorch's ``rate``)."""

    @dataclass
    class Params:
        scale: float = param(1.0, ge=0, help="probability per step for intensity 1")

    def forward(self, x):
        return bernoulli_steps(x, self.time_steps, self.params.scale)


@ENCODERS.register("poisson_generator")
class PoissonGenerator(Encoder):
    """Poisson spikes at a fixed ``rate`` (Hz) for every input neuron, whatever the data:
    ``P(spike per step) = rate · dt / 1000``."""

    @dataclass
    class Params:
        rate: float = param(20.0, unit="Hz", ge=0, help="firing rate")

    def forward(self, x):
        p = min(self.params.rate * self.dt / 1000.0, 1.0)
        return bernoulli_steps(torch.full_like(x, p), self.time_steps)


@ENCODERS.register("cc_generator")
class ConstantCurrent(Encoder):
    """A constant current ``amplitude`` into every input neuron, whatever the data."""

    @dataclass
    class Params:
        amplitude: float = param(1.0, help="current (the receiving model's input units)")

    def forward(self, x):
        return torch.full((self.time_steps, *x.shape), self.params.amplitude, device=x.device, dtype=x.dtype)


@ENCODERS.register("sin_generator")
class SinGenerator(Encoder):
    """A sinusoidal current ``I(t) = offset + amplitude · sin(2π f t + phase)``, t = k·dt in ms
    (k = 0..T−1), the same for every input neuron; ``modulate: true`` scales it by the input."""

    @dataclass
    class Params:
        amplitude: float = param(1.0, help="peak current")
        frequency: float = param(10.0, unit="Hz", ge=0, help="frequency f")
        phase: float = param(0.0, unit="rad", help="phase at t = 0")
        offset: float = param(0.0, help="constant added to the sine")
        modulate: bool = param(False, help="multiply by the input intensity")

    def forward(self, x):
        p = self.params
        t = torch.arange(self.time_steps, device=x.device, dtype=x.dtype) * self.dt / 1000.0
        wave = p.offset + p.amplitude * torch.sin(2 * math.pi * p.frequency * t + p.phase)
        wave = wave.view(-1, *([1] * x.dim())).expand(self.time_steps, *x.shape)
        return wave * x.unsqueeze(0) if p.modulate else wave.contiguous()


@ENCODERS.register("population")
class Population(Encoder):
    """Gaussian receptive fields for scalar inputs (Bohte et al. 2002): each input feature is
    seen by ``neurons`` cells with centres evenly spaced on ``[low, high]`` and width
    ``σ = width · (high − low)/(neurons − 1)``; cell activation ``a = exp(−(x − c)²/2σ²)`` is
    emitted as Poisson spikes at ``a · max_rate`` Hz. Output shape ``(*input_shape, neurons)``."""

    @dataclass
    class Params:
        neurons: int = param(10, ge=2, help="receptive fields per input feature")
        low: float = param(0.0, help="centre of the first field")
        high: float = param(1.0, help="centre of the last field")
        width: float = param(1.0, gt=0, help="field width relative to the spacing")
        max_rate: float = param(1000.0, unit="Hz", gt=0, help="rate at a field's centre")

    def output_shape(self, input_shape):
        return (*tuple(input_shape), self.params.neurons)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        p = self.params
        centres = torch.linspace(p.low, p.high, p.neurons, device=x.device, dtype=x.dtype)
        sigma = p.width * (p.high - p.low) / (p.neurons - 1)
        return torch.exp(-((x.unsqueeze(-1) - centres) ** 2) / (2 * sigma ** 2))

    def forward(self, x):
        return bernoulli_steps(self.activation(x), self.time_steps, self.params.max_rate * self.dt / 1000.0)
