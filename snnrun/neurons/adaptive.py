"""Neurons with an adaptive threshold: ALIF (Bellec et al. 2018) and Diehl & Cook (2015)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..schema import param
from .base import (NEURONS, Neuron, OperatingRange, SpikingParams, refractory_hold, refractory_steps,
                   threshold_and_reset)


class ALIFState(NamedTuple):
    v: torch.Tensor
    a: torch.Tensor
    refrac: torch.Tensor


def alif_step(current: torch.Tensor, state: ALIFState, p, dt: float, spike_fn,
              refrac_steps: int | None = None) -> tuple[torch.Tensor, ALIFState]:
    r"""One step of the adaptive LIF of the LSNN (Bellec et al. 2018).

    .. math:: \tau_m \frac{dv}{dt} = -(v - v_{rest}) + R I, \qquad
              A(t) = v_{th} + \beta a(t), \qquad
              a(t + dt) = \rho\, a(t) + (1 - \rho) z(t), \; \rho = e^{-dt/\tau_a}

    Units: v, v_th, β in mV; τ_m, τ_a, dt in ms; a dimensionless. Discretisation at dt: v by
    forward Euler (or exact, ``p.integration: exact``), refractory hold at ``v_reset``, threshold
    against A(t) built from the adaptation of the previous steps, reset (soft, the default:
    ``v ← v − (A(t) − v_reset)``, the threshold the neuron crossed, as the LSNN code's
    ``I_reset = z·A``; hard: ``v ← v_reset``), then ``a`` updated with this step's spike, then the
    refractory count (:func:`~snnrun.neurons.base.threshold_and_reset` with ``threshold = A(t)``).
    """
    if refrac_steps is None:
        refrac_steps = refractory_steps(p.refractory, dt)
    v, a, refrac = state
    if p.integration == "exact":
        decay = math.exp(-dt / p.tau_m)
        v = p.v_rest + (v - p.v_rest) * decay + p.r * current * (1 - decay)
    else:
        v = v + dt / p.tau_m * (-(v - p.v_rest) + p.r * current)
    v = refractory_hold(v, refrac, p.v_reset, refrac_steps)
    z, v, refrac = threshold_and_reset(v, refrac, p, spike_fn, refrac_steps, threshold=p.v_th + p.beta * a, dt=dt)
    rho = math.exp(-dt / p.tau_a)
    a = rho * a + (1 - rho) * z
    return z, ALIFState(v, a, refrac)


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
    ``reset: hard`` sets ``v ← v_reset``. The step is :func:`alif_step`.
    """

    State = ALIFState
    engine_model = "alif"  # snnrun.engine: its step is alif_step

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

    def initial_state(self, batch_shape, device, dtype):
        zeros = torch.zeros(tuple(batch_shape), device=device, dtype=dtype)
        return ALIFState(zeros + self.params.v_rest, zeros, torch.zeros(tuple(batch_shape), device=device, dtype=torch.int32))

    def step(self, current, state):
        return alif_step(current, state, self.params, self.dt, self.spike_fn, self.refrac_steps)

    def operating_range(self) -> OperatingRange:
        """Rest, threshold and drive ``(v_th − v_rest) / r`` of the LIF; adaptation ``β (1 − ρ) / r``: a
        spike raises the threshold by β(1 − ρ) mV, which a steady input of that over r makes up (0.009
        for the defaults, learning-rate unit factor 1.009)."""
        p = self.params
        rho = math.exp(-self.dt / p.tau_a)
        return OperatingRange(p.v_rest, p.v_th, (p.v_th - p.v_rest) / p.r, "mV", p.beta * (1 - rho) / p.r)


class DiehlCookState(NamedTuple):
    v: torch.Tensor
    theta: torch.Tensor
    refrac: torch.Tensor


def first_of_max(z: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """Keep, per sample, only the spike of the neuron with the largest ``margin`` (first index on
    ties): ``z`` and ``margin`` [B, *shape]; the result carries no gradient."""
    flat = z.reshape(z.shape[0], -1)
    if not bool((flat.sum(1) > 1).any()):
        return z
    m = torch.where(flat > 0, margin.reshape(flat.shape), torch.full_like(flat, -torch.inf))
    winner = torch.nn.functional.one_hot(m.argmax(1), flat.shape[1]).to(z.dtype) * (flat.sum(1, keepdim=True) > 0)
    return winner.reshape(z.shape)


def diehlandcook_step(current: torch.Tensor, state: DiehlCookState, p, dt: float, spike_fn,
                      refrac_steps: int | None = None, training: bool = True) -> tuple[torch.Tensor, DiehlCookState]:
    r"""One step of the excitatory neuron of Diehl & Cook (2015).

    .. math:: \tau_m \frac{dv}{dt} = -(v - v_{rest}), \quad v \mathrel{+}= r I
              \text{ (input arrives as voltage jumps)}, \quad
              v \ge v_{th} + \theta \Rightarrow \text{spike}, v \leftarrow v_{reset},
              \theta \mathrel{+}= \theta_+, \quad \tau_\theta \frac{d\theta}{dt} = -\theta

    Units: v, θ in mV; τ_m, τ_θ, dt in ms; ``r·I`` is a jump in mV (delta synapses, as BindsNET's
    ``DiehlAndCookNodes``). Discretisation at dt: exact exponential decay of v towards v_rest
    (``e^{−dt/τ_m}``) and of θ (``e^{−dt/τ_θ}``), then the jump ``r·I``, threshold against
    ``v_th + θ``, reset (hard; a soft reset subtracts ``v_th − v_reset``, without θ), θ increment
    ``θ_+`` per spike when ``training`` and ``p.learn_theta``, refractory count.

    Refractoriness differs from the integrate-and-fire family: a refractory neuron ignores its
    input (the jump is not applied) but keeps leaking towards v_rest instead of being held at
    v_reset; it cannot spike.

    ``p.one_spike`` (BindsNET's ``one_spike``, deterministic): at most one neuron per sample outputs
    a spike at a step, the one furthest above threshold (largest ``v − (v_th + θ)``, first index on
    ties; the output then carries no gradient). Every neuron that crossed still resets, raises θ and
    turns refractory. ``training`` is the module's mode (θ is frozen in evaluation).
    """
    if refrac_steps is None:
        refrac_steps = refractory_steps(p.refractory, dt)
    v, theta, refrac = state
    v = p.v_rest + (v - p.v_rest) * math.exp(-dt / p.tau_m)
    theta = theta * math.exp(-dt / p.tau_theta)
    v = refractory_hold(v + p.r * current, refrac, v, refrac_steps)
    threshold = p.v_th + theta
    margin = v - threshold if p.one_spike else None
    z, v, refrac = threshold_and_reset(v, refrac, p, spike_fn, refrac_steps, threshold=threshold, soft_threshold=p.v_th,
                                       dt=dt)
    if p.learn_theta and training:
        theta = theta + p.theta_plus * z.detach()
    if p.one_spike:
        z = first_of_max(z, margin)
    return z, DiehlCookState(v, theta, refrac)


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
    (``reset_theta()`` clears it); its value is saved with the model. ``one_spike: true`` lets at
    most one neuron per sample output a spike at each step (the one furthest above threshold). The
    step is :func:`diehlandcook_step` (the module's ``training`` mode passed to it).
    """

    State = DiehlCookState
    engine_model = "diehlandcook"  # snnrun.engine: its step is diehlandcook_step

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
        one_spike: bool = param(False, help="at most one output spike per sample and step: the neuron furthest "
                                            "above threshold (BindsNET's one_spike, deterministic); all crossing "
                                            "neurons reset")

    def __init__(self, params, shape=(1,), dt=1.0, spike_fn=None):
        super().__init__(params, shape, dt, spike_fn)
        self.refrac_steps = refractory_steps(params.refractory, dt)
        # read by the compiled D&C kernel's parameter list; diehlandcook_step computes the same from p and dt
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
        return diehlandcook_step(current, state, self.params, self.dt, self.spike_fn, self.refrac_steps,
                                 self.training)

    def operating_range(self) -> OperatingRange:
        """Drive: the per-step voltage jump whose steady state ``r·current / (1 − e^{−dt/τ_m})`` above rest
        reaches the base threshold (θ = 0); adaptation: the jump whose steady state makes up one θ₊,
        ``θ₊ / r · (1 − e^{−dt/τ_m})`` (θ₊ / (v_th − v_rest) = 0.4 % of the drive for the defaults)."""
        p = self.params
        leak = 1 - math.exp(-self.dt / p.tau_m)
        return OperatingRange(p.v_rest, p.v_th, (p.v_th - p.v_rest) / p.r * leak, "mV", p.theta_plus / p.r * leak)

    def reset(self) -> None:
        """End of a sample: keep the learned θ (averaged over the batch), clear v and refractoriness."""
        if self.state is not None and self.params.learn_theta and self.training:
            with torch.no_grad():
                theta = self.state.theta
                self.theta.copy_(theta.reshape(-1, *self.shape).mean(0).to(self.theta.dtype))
        super().reset()
