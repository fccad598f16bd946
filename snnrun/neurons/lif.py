"""Leaky and non-leaky integrate-and-fire neurons, and the non-spiking leaky readout."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..schema import param
from .base import NEURONS, Neuron, SpikingParams, refractory_steps, threshold_and_reset


class LIFState(NamedTuple):
    v: torch.Tensor
    refrac: torch.Tensor


def lif_step(current: torch.Tensor, state: LIFState, p, dt: float, spike_fn, refrac_steps: int,
             leak: bool = True) -> tuple[torch.Tensor, LIFState]:
    """One step of (leaky) integrate-and-fire; see :class:`LIF` for the equations."""
    v, refrac = state
    drive = p.r * current
    if leak and p.integration == "exact":
        decay = math.exp(-dt / p.tau_m)
        v_new = p.v_rest + (v - p.v_rest) * decay + drive * (1 - decay)
    elif leak:
        v_new = v + dt / p.tau_m * (-(v - p.v_rest) + drive)
    else:
        v_new = v + dt / p.tau_m * drive
    if refrac_steps > 0:
        v_new = torch.where(refrac > 0, torch.full_like(v, p.v_reset), v_new)
    z, v_new, refrac = threshold_and_reset(v_new, refrac, p, spike_fn, refrac_steps)
    return z, LIFState(v_new, refrac)


@NEURONS.register("lif")
class LIF(Neuron):
    r"""Leaky integrate-and-fire (Lapicque 1907; Gerstner et al. 2014, ch. 1).

    .. math:: \tau_m \frac{dv}{dt} = -(v - v_{rest}) + R\,I(t), \quad v \ge v_{th} \Rightarrow \text{spike}, v \leftarrow v_{reset}

    Units: v in mV, τ_m in ms, R·I in mV (R in MΩ, I in nA). Discretisation at dt:
    forward Euler ``v += dt/τ_m (−(v−v_rest) + R I)`` (default) or the exact
    exponential ``v = v_rest + (v−v_rest)e^{−dt/τ_m} + R I (1−e^{−dt/τ_m})``
    (``integration: exact``), then threshold → reset → refractory count.
    """

    State = LIFState

    @dataclass
    class Params(SpikingParams):
        tau_m: float = param(20.0, unit="ms", gt=0, help="membrane time constant")
        integration: str = param("euler", choices=("euler", "exact"), help="subthreshold integration")

    leak = True

    def __init__(self, params, shape=(1,), dt=1.0, spike_fn=None):
        super().__init__(params, shape, dt, spike_fn)
        self.refrac_steps = refractory_steps(params.refractory, dt)

    def initial_state(self, batch_shape, device, dtype):
        v = torch.full(tuple(batch_shape), self.params.v_rest, device=device, dtype=dtype)
        return LIFState(v, torch.zeros(tuple(batch_shape), device=device, dtype=torch.int32))

    def step(self, current, state):
        return lif_step(current, state, self.params, self.dt, self.spike_fn, self.refrac_steps, self.leak)


@NEURONS.register("if")
class IF(LIF):
    r"""Integrate-and-fire without leak.

    .. math:: \tau_m \frac{dv}{dt} = R\,I(t)

    ``τ_m = RC`` (ms) sets how fast the input charges the membrane; with
    ``dt = τ_m = R = 1`` the update is ``v += I`` (spikingjelly's IFNode).
    Forward Euler (exact for this linear ODE), then threshold → reset → refractory.
    """

    @dataclass
    class Params(SpikingParams):
        tau_m: float = param(1.0, unit="ms", gt=0, help="charging time constant RC")
        integration: str = param("euler", choices=("euler", "exact"), help="(identical for IF)")

    leak = False


class LeakyState(NamedTuple):
    v: torch.Tensor


@NEURONS.register("leaky")
class Leaky(Neuron):
    r"""Non-spiking leaky integrator, for readouts: ``τ_m dv/dt = −(v − v_rest) + R I``.

    Its output at each step is the membrane potential v (not spikes); decoders
    such as ``final_step_voltage`` or ``max_voltage`` read it. Exact exponential
    integration by default (``integration: euler`` available).
    """

    State = LeakyState
    spiking = False

    @dataclass
    class Params:
        tau_m: float = param(20.0, unit="ms", gt=0, help="membrane time constant")
        v_rest: float = param(0.0, unit="mV", help="resting potential")
        r: float = param(1.0, unit="MOhm", help="input gain")
        integration: str = param("exact", choices=("euler", "exact"), help="subthreshold integration")

    def initial_state(self, batch_shape, device, dtype):
        return LeakyState(torch.full(tuple(batch_shape), self.params.v_rest, device=device, dtype=dtype))

    def step(self, current, state):
        p = self.params
        if p.integration == "exact":
            decay = math.exp(-self.dt / p.tau_m)
            v = p.v_rest + (state.v - p.v_rest) * decay + p.r * current * (1 - decay)
        else:
            v = state.v + self.dt / p.tau_m * (-(state.v - p.v_rest) + p.r * current)
        return v, LeakyState(v)
