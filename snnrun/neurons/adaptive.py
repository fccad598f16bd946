"""Neurons with an adaptive threshold: ALIF (Bellec et al. 2018) and Diehl & Cook (2015)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..schema import param
from .base import NEURONS, Neuron, SpikingParams, refractory_steps


class ALIFState(NamedTuple):
    v: torch.Tensor
    a: torch.Tensor
    refrac: torch.Tensor


@NEURONS.register("alif")
class ALIF(Neuron):
    r"""Adaptive LIF of the LSNN (Bellec et al. 2018).

    .. math:: \tau_m \frac{dv}{dt} = -(v - v_{rest}) + R I, \qquad
              A(t) = v_{th} + \beta a(t), \qquad
              a(t + dt) = \rho\, a(t) + (1 - \rho) z(t), \; \rho = e^{-dt/\tau_a}

    A spike ``z = H(v − A)`` raises the threshold A by ``β(1 − ρ)``, which then
    relaxes with ``τ_a``. Units: ms, mV. Discretisation at dt: v by forward Euler
    (or exact), threshold against A(t) built from the adaptation of the previous
    steps, reset, then ``a`` is updated with this step's spike, then refractory count.
    The soft reset (default) subtracts the threshold the neuron crossed,
    ``v ← v − (A(t) − v_reset)``, as the LSNN reference code does (``I_reset = z·A``);
    ``reset: hard`` sets ``v ← v_reset``.
    """

    State = ALIFState

    @dataclass
    class Params(SpikingParams):
        tau_m: float = param(20.0, unit="ms", gt=0, help="membrane time constant")
        tau_a: float = param(200.0, unit="ms", gt=0, help="threshold adaptation time constant")
        beta: float = param(1.8, ge=0, unit="mV", help="adaptation strength β")
        reset: str = param("soft", choices=("hard", "soft"),
                           help="soft: v <- v - (v_th + beta a - v_reset) (the adaptive threshold); hard: v <- v_reset")
        integration: str = param("euler", choices=("euler", "exact"), help="membrane integration")

    def __init__(self, params, shape=(1,), dt=1.0, spike_fn=None):
        super().__init__(params, shape, dt, spike_fn)
        self.refrac_steps = refractory_steps(params.refractory, dt)
        self.rho = math.exp(-dt / params.tau_a)

    def initial_state(self, batch_shape, device, dtype):
        zeros = torch.zeros(tuple(batch_shape), device=device, dtype=dtype)
        return ALIFState(zeros + self.params.v_rest, zeros, torch.zeros(tuple(batch_shape), device=device, dtype=torch.int32))

    def step(self, current, state):
        p = self.params
        v, a, refrac = state
        if p.integration == "exact":
            decay = math.exp(-self.dt / p.tau_m)
            v = p.v_rest + (v - p.v_rest) * decay + p.r * current * (1 - decay)
        else:
            v = v + self.dt / p.tau_m * (-(v - p.v_rest) + p.r * current)
        if self.refrac_steps > 0:
            v = torch.where(refrac > 0, torch.full_like(v, p.v_reset), v)
        threshold = p.v_th + p.beta * a
        z = self.spike_fn(v - threshold)
        if self.refrac_steps > 0:
            z = z * (refrac == 0).to(z.dtype)
        zr = z.detach() if p.detach_reset else z
        v = v * (1 - zr) + p.v_reset * zr if p.reset == "hard" else v - (threshold - p.v_reset) * zr
        a = self.rho * a + (1 - self.rho) * z
        if self.refrac_steps > 0:
            refrac = torch.where(z.detach() > 0, torch.full_like(refrac, self.refrac_steps), (refrac - 1).clamp(min=0))
        return z, ALIFState(v, a, refrac)


class DiehlCookState(NamedTuple):
    v: torch.Tensor
    theta: torch.Tensor
    refrac: torch.Tensor


@NEURONS.register("diehlandcook")
class DiehlAndCook(Neuron):
    r"""Excitatory neuron of Diehl & Cook (2015): LIF with a homeostatic adaptive threshold.

    .. math:: \tau_m \frac{dv}{dt} = -(v - v_{rest}), \quad v \mathrel{+}= \textstyle\sum_k w_k s_k
              \text{ (input arrives as voltage jumps)}, \quad
              v \ge v_{th} + \theta \Rightarrow \text{spike}, v \leftarrow v_{reset},
              \theta \mathrel{+}= \theta_+, \quad \tau_\theta \frac{d\theta}{dt} = -\theta

    Units: mV, ms; the input ``I`` at a step is a jump ``r·I`` in mV (delta synapses, as
    BindsNET's ``DiehlAndCookNodes``). Discretisation at dt: exact exponential decay
    of ``v`` towards ``v_rest`` and of θ, then the jump (not applied while
    refractory), threshold against ``v_th + θ``, reset, θ increment, refractory count.
    θ is a learned homeostatic variable: ``reset()`` between samples keeps it
    (``reset_theta()`` clears it); its value is saved with the model.
    """

    State = DiehlCookState

    @dataclass
    class Params(SpikingParams):
        v_th: float = param(-52.0, unit="mV", help="base threshold")
        v_rest: float = param(-65.0, unit="mV", help="resting potential")
        v_reset: float = param(-65.0, unit="mV", help="reset potential")
        refractory: float = param(5.0, unit="ms", ge=0, help="absolute refractory period")
        tau_m: float = param(100.0, unit="ms", gt=0, help="membrane time constant")
        theta_plus: float = param(0.05, unit="mV", ge=0, help="threshold increment per spike")
        tau_theta: float = param(1e7, unit="ms", gt=0, help="threshold decay time constant")
        learn_theta: bool = param(True, help="update θ (off during evaluation in Diehl & Cook)")

    def __init__(self, params, shape=(1,), dt=1.0, spike_fn=None):
        super().__init__(params, shape, dt, spike_fn)
        self.refrac_steps = refractory_steps(params.refractory, dt)
        self.decay = math.exp(-dt / params.tau_m)
        self.theta_decay = math.exp(-dt / params.tau_theta)
        self.register_buffer("theta", torch.zeros(tuple(shape)))

    def reset_theta(self) -> None:
        self.theta.zero_()

    def initial_state(self, batch_shape, device, dtype):
        v = torch.full(tuple(batch_shape), self.params.v_rest, device=device, dtype=dtype)
        theta = self.theta.to(device=device, dtype=dtype).expand(tuple(batch_shape)).clone()
        return DiehlCookState(v, theta, torch.zeros(tuple(batch_shape), device=device, dtype=torch.int32))

    def step(self, current, state):
        p = self.params
        v, theta, refrac = state
        v = p.v_rest + (v - p.v_rest) * self.decay
        theta = theta * self.theta_decay
        active = refrac == 0
        v = torch.where(active, v + p.r * current, v)
        z = self.spike_fn(v - (p.v_th + theta)) * active.to(v.dtype)
        zr = z.detach() if p.detach_reset else z
        v = v * (1 - zr) + p.v_reset * zr if p.reset == "hard" else v - (p.v_th - p.v_reset) * zr
        if p.learn_theta and self.training:
            theta = theta + p.theta_plus * z.detach()
        if self.refrac_steps > 0:
            refrac = torch.where(z.detach() > 0, torch.full_like(refrac, self.refrac_steps), (refrac - 1).clamp(min=0))
        return z, DiehlCookState(v, theta, refrac)

    def reset(self) -> None:
        """End of a sample: keep the learned θ (averaged over the batch), clear v and refractoriness."""
        if self.state is not None and self.params.learn_theta and self.training:
            with torch.no_grad():
                theta = self.state.theta
                self.theta.copy_(theta.reshape(-1, *self.shape).mean(0).to(self.theta.dtype))
        super().reset()
