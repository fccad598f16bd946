"""Spike-time codes: latency, rank order, explicit spike times, temporal contrast."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import ShapeError
from ..schema import param
from .base import ENCODERS, Encoder


def _one_hot_times(steps: torch.Tensor, fire: torch.Tensor, time_steps: int, dtype) -> torch.Tensor:
    """Spikes [T, *shape] with a single spike at ``steps`` where ``fire`` is true."""
    t = torch.arange(time_steps, device=steps.device).view(-1, *([1] * steps.dim()))
    return ((t == steps.unsqueeze(0)) & fire.unsqueeze(0)).to(dtype)


@ENCODERS.register("latency")
class Latency(Encoder):
    r"""One spike per input, earlier for stronger input (intensities in [0, 1]).

    ``linear``: ``t = τ (1 − x)`` ms, so inputs from 1 down to the threshold fire within the first τ ms
    (snnTorch's ``spikegen.latency(linear=True)`` with τ in ms); with ``normalize: true``,
    ``τ = (T − 1)·dt`` and the code spans the whole window (x = 0 would fire at the last step).
    ``log`` (RC charging to a threshold, Gerstner et al. 2014): ``t = τ ln(x / (x − x_th))``.
    Inputs ``x ≤ x_th`` do not spike; times are rounded to the nearest step and clipped to the window.

    The default, linear with τ = 5 ms, puts the code within one membrane time constant of the default LIF
    (τ_m = 5 ms): a hidden neuron sums the pixels of a whole digit, graded by their latency (on the digits
    task: test accuracy 0.881 with the window-spanning code, ``normalize: true``, whose pixels arrive up to
    24 ms apart and are summed only with those of about the same intensity).
    """

    @dataclass
    class Params:
        mode: str = param("linear", choices=("linear", "log"), help="time code")
        tau: float = param(5.0, unit="ms", gt=0, help="time scale: linear t = tau (1 - x); log t = tau ln(x / (x - threshold))")
        threshold: float = param(0.01, ge=0, lt=1, help="inputs at or below this do not spike")
        normalize: bool = param(False, help="mode linear: tau = (T - 1) dt, the code spans the whole window")

    def spike_steps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p, T = self.params, self.time_steps
        fire = x > p.threshold
        if p.mode == "linear":
            tau_ms = (T - 1) * self.dt if p.normalize else p.tau
            steps = torch.round((1 - x.clamp(0, 1)) * tau_ms / self.dt)
        else:
            safe = torch.where(fire, x, torch.ones_like(x))
            t_ms = p.tau * torch.log(safe / (safe - p.threshold).clamp(min=1e-12))
            steps = torch.round(t_ms / self.dt)
        return steps.clamp(0, T - 1).long(), fire

    def forward(self, x):
        steps, fire = self.spike_steps(x)
        return _one_hot_times(steps, fire, self.time_steps, x.dtype)


@ENCODERS.register("relative_latency")
class RelativeLatency(Encoder):
    """Rank-order code: within each sample the k-th strongest input fires at step
    ``round(k/(n−1)·(T−1))``; zero inputs do not fire (Thorpe & Gautrais 1998)."""

    def forward(self, x):
        flat = x.reshape(x.shape[0], -1)
        n = flat.shape[1]
        order = torch.argsort(flat, dim=1, descending=True, stable=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(n, device=x.device).expand_as(order))
        steps = torch.round(rank.double() / max(n - 1, 1) * (self.time_steps - 1)).long()
        spikes = _one_hot_times(steps, flat > 0, self.time_steps, x.dtype)
        return spikes.reshape(self.time_steps, *x.shape)


@ENCODERS.register("sstb")
class SingleSpikeTime(Encoder):
    """The input holds one spike time per neuron in ms; negative or NaN means no spike.
    Output: a spike at step ``round(t / dt)`` (times beyond the window are dropped)."""

    reads = "spike_times"

    def forward(self, x):
        fire = torch.isfinite(x) & (x >= 0)
        steps = torch.round(torch.nan_to_num(x, nan=-1.0) / self.dt).long()
        fire = fire & (steps < self.time_steps)
        return _one_hot_times(steps.clamp(0, self.time_steps - 1), fire, self.time_steps, x.dtype)


@ENCODERS.register("mstb")
class MultiSpikeTime(Encoder):
    """The input [B, *shape, K] holds up to K spike times (ms) per neuron, padded with
    negative values or NaN. Output [T, B, *shape]: a spike at each ``round(t / dt)``."""

    reads = "spike_times"

    def output_shape(self, input_shape):
        if len(input_shape) < 2:
            from ..errors import ShapeError
            raise ShapeError(f"encoder.name: mstb reads up to K spike times per input neuron, samples [*shape, K], "
                             f"but the data's samples have shape {list(input_shape)}; use encoder=sstb for one "
                             f"spike time per neuron")
        return tuple(input_shape[:-1])

    def forward(self, x):
        fire = torch.isfinite(x) & (x >= 0)
        steps = torch.round(torch.nan_to_num(x, nan=-1.0) / self.dt).long()
        fire = fire & (steps < self.time_steps)
        hot = _one_hot_times(steps.clamp(0, self.time_steps - 1), fire, self.time_steps, x.dtype)
        return hot.amax(dim=-1)


@ENCODERS.register("delta")
class Delta(Encoder):
    """Temporal contrast for sequences [B, T, *shape]: a spike where the input changed by more
    than ``threshold`` since the previous frame (``off_spikes`` adds a channel for decreases).
    The first frame is compared with zero. The sequence length must equal T."""

    @dataclass
    class Params:
        threshold: float = param(0.1, ge=0, help="minimum change that emits a spike")
        off_spikes: bool = param(False, help="separate ON (increase) and OFF (decrease) channels")

    def output_shape(self, input_shape):
        rest = self.sequence_shape(input_shape)
        return (2, *rest) if self.params.off_spikes else rest

    def forward(self, x):
        if x.shape[1] != self.time_steps:
            raise ShapeError(f"encoder: delta needs sequences of T = {self.time_steps} frames, got {x.shape[1]}")
        seq = x.transpose(0, 1)
        diff = seq - torch.cat([torch.zeros_like(seq[:1]), seq[:-1]])
        on = (diff > self.params.threshold).to(x.dtype)
        if not self.params.off_spikes:
            return on
        return torch.stack([on, (diff < -self.params.threshold).to(x.dtype)], dim=2)
