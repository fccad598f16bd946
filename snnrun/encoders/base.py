"""Encoder base: input batch ``[B, ...]`` -> spike trains (or currents) ``[T, B, ...]``."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import Registry

ENCODERS = Registry("encoder")


class Encoder(nn.Module):
    """Built as ``cls(params, dt=..., time_steps=...)``; ``dt`` in ms."""

    #: the kind of data values this encoder reads (``DataSplits.values``); ``any``: no check
    reads: str = "any"

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


#: the encoders that read intensities in [0, 1], named when another encoder is given intensities
INTENSITY_ENCODERS = ("poisson", "bernoulli", "direct", "population", "latency", "relative_latency")


def check_reads(encoder: Encoder, values: str, data_name: str) -> None:
    """Refuse an encoder that reads one kind of values (``encoder.reads``) given data of another kind.

    Data of ``unknown`` values (e.g. a user's ``npz``) pass: the encoder takes them as its kind."""
    from ..errors import ConfigError

    if encoder.reads in ("any", values) or values == "unknown":
        return
    name = type(encoder).registry_name
    what = {"spike_times": "spike times in ms", "intensity": "intensities in [0, 1]",
            "spike_trains": "spike trains [T, ...]"}
    hint = (f"use an intensity encoder ({', '.join(INTENSITY_ENCODERS)}; encoder=latency gives each input one "
            f"spike time from its intensity)" if values == "intensity" else "use encoder=spikes")
    raise ConfigError(f"encoder.name: {name} reads {what.get(encoder.reads, encoder.reads)}, but data={data_name} "
                      f"holds {what.get(values, values)}; {hint}")
