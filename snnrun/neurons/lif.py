"""Leaky and non-leaky integrate-and-fire neurons, and the non-spiking leaky readout."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..kernels import lif_scan
from ..surrogate import Heaviside
from ..schema import param
from .base import (NEURONS, Neuron, OperatingRange, SpikingParams, refractory_hold, refractory_steps,
                   threshold_and_reset)


class LIFState(NamedTuple):
    v: torch.Tensor
    refrac: torch.Tensor


def lif_step(current: torch.Tensor, state: LIFState, p, dt: float, spike_fn, refrac_steps: int | None = None,
             leak: bool = True) -> tuple[torch.Tensor, LIFState]:
    r"""One step of (leaky) integrate-and-fire (Lapicque 1907; Gerstner et al. 2014, ch. 1).

    .. math:: \tau_m \frac{dv}{dt} = -(v - v_{rest}) + R\,I(t), \quad v \ge v_{th} \Rightarrow \text{spike}, v \leftarrow v_{reset}

    Units: v in mV, τ_m and dt in ms, R·I in mV (R in MΩ, I in nA). Discretisation at dt:
    forward Euler ``v += dt/τ_m (−(v−v_rest) + R I)`` (``p.integration: euler``) or the exact
    exponential ``v = v_rest + (v−v_rest)e^{−dt/τ_m} + R I (1−e^{−dt/τ_m})`` (``exact``); with
    ``leak=False`` (IF) ``v += dt/τ_m · R I``. Then the refractory hold at ``v_reset``, threshold at
    ``v_th`` (with ``p.escape_noise`` a spike drawn with probability ``1 − exp(−ρ dt)``,
    ``ρ = ρ_0 exp((v − v_th)/Δu)``), hard or soft reset and refractory count
    (:func:`~snnrun.neurons.base.threshold_and_reset`).

    Args:
        current: input I at this step, [B, *shape].
        state: :class:`LIFState` (v [B, *shape] in mV, refrac [B, *shape] int32 steps left).
        p: the model's ``Params``.
        dt: time step in ms.
        spike_fn: Heaviside forward with its surrogate gradient.
        refrac_steps: refractory period in steps (default ``round(p.refractory / dt)``).
        leak: False for the non-leaky IF.

    Returns:
        ``(spikes [B, *shape], new_state)``.
    """
    if refrac_steps is None:
        refrac_steps = refractory_steps(p.refractory, dt)
    v, refrac = state
    drive = p.r * current
    if leak and p.integration == "exact":
        decay = math.exp(-dt / p.tau_m)
        v_new = p.v_rest + (v - p.v_rest) * decay + drive * (1 - decay)
    elif leak:
        v_new = v + dt / p.tau_m * (-(v - p.v_rest) + drive)
    else:
        v_new = v + dt / p.tau_m * drive
    v_new = refractory_hold(v_new, refrac, p.v_reset, refrac_steps)
    z, v_new, refrac = threshold_and_reset(v_new, refrac, p, spike_fn, refrac_steps, dt=dt)
    return z, LIFState(v_new, refrac)


def if_step(current: torch.Tensor, state: LIFState, p, dt: float, spike_fn,
            refrac_steps: int | None = None) -> tuple[torch.Tensor, LIFState]:
    r"""One step of integrate-and-fire without leak: :func:`lif_step` with ``leak=False``.

    .. math:: \tau_m \frac{dv}{dt} = R\,I(t)

    ``τ_m = RC`` (ms) sets how fast the input charges the membrane; with ``dt = τ_m = R = 1`` the
    update is ``v += I`` (spikingjelly's IFNode). Forward Euler (exact for this linear ODE), then
    refractory hold, threshold, reset (``p.reset``), refractory count. Arguments as :func:`lif_step`.
    """
    return lif_step(current, state, p, dt, spike_fn, refrac_steps, leak=False)


def ifsoftreset_step(current: torch.Tensor, state: LIFState, p, dt: float, spike_fn,
                     refrac_steps: int | None = None) -> tuple[torch.Tensor, LIFState]:
    """One step of IF with reset by subtraction: :func:`if_step`, its ``p.reset`` being ``soft``
    (the default of :class:`IFSoftReset`), so a spike does ``v ← v − (v_th − v_reset)`` and keeps
    the overshoot (SPAIC's ``ifsoftreset``; the ANN-to-SNN conversion neuron)."""
    return if_step(current, state, p, dt, spike_fn, refrac_steps)


def plif_step(current: torch.Tensor, state: LIFState, p, dt: float, spike_fn, w: torch.Tensor,
              refrac_steps: int | None = None) -> tuple[torch.Tensor, LIFState]:
    r"""One step of parametric LIF (Fang et al. 2021): LIF whose membrane time constant is learned.

    .. math:: v \leftarrow v + \sigma(w)\,(-(v - v_{rest}) + R I), \qquad \sigma(w) = dt/\tau_m

    Forward Euler with ``dt/τ_m = sigmoid(w)`` (``w``: the learned parameter, a scalar or one per
    neuron, passed explicitly; ``dt`` enters only through it and the refractory count), so
    0 < dt/τ_m < 1 keeps the decay stable while learning. Units: mV, ms. Then refractory hold,
    threshold, reset, refractory count as :func:`lif_step`.
    """
    if refrac_steps is None:
        refrac_steps = refractory_steps(p.refractory, dt)
    v, refrac = state
    v_new = v + torch.sigmoid(w) * (-(v - p.v_rest) + p.r * current)
    v_new = refractory_hold(v_new, refrac, p.v_reset, refrac_steps)
    z, v_new, refrac = threshold_and_reset(v_new, refrac, p, spike_fn, refrac_steps, dt=dt)
    return z, LIFState(v_new, refrac)


@NEURONS.register("lif")
class LIF(Neuron):
    r"""Leaky integrate-and-fire (Lapicque 1907; Gerstner et al. 2014, ch. 1).

    .. math:: \tau_m \frac{dv}{dt} = -(v - v_{rest}) + R\,I(t), \quad v \ge v_{th} \Rightarrow \text{spike}, v \leftarrow v_{reset}

    Units: v in mV, τ_m in ms, R·I in mV (R in MΩ, I in nA). Discretisation at dt:
    forward Euler ``v += dt/τ_m (−(v−v_rest) + R I)`` (default) or the exact
    exponential ``v = v_rest + (v−v_rest)e^{−dt/τ_m} + R I (1−e^{−dt/τ_m})``
    (``integration: exact``), then threshold → reset → refractory count. The step is
    :func:`lif_step`.
    """

    State = LIFState

    @dataclass
    class Params(SpikingParams):
        tau_m: float = param(5.0, unit="ms", gt=0, help="membrane time constant")
        integration: str = param("euler", choices=("euler", "exact"), help="subthreshold integration")

    leak = True

    engine_model = "lif"  # snnrun.engine: its step is lif_step (leak)

    def __init__(self, params, shape=(1,), dt=1.0, spike_fn=None):
        super().__init__(params, shape, dt, spike_fn)
        self.refrac_steps = refractory_steps(params.refractory, dt)

    def initial_state(self, batch_shape, device, dtype):
        v = torch.full(tuple(batch_shape), self.params.v_rest, device=device, dtype=dtype)
        return LIFState(v, torch.zeros(tuple(batch_shape), device=device, dtype=torch.int32))

    def step(self, current, state):
        # with gradients, the fused step (lif_scan.LIFStep: same values, one saved tensor per step)
        # applies where the fused scan would: no refractoriness, no escape noise, a surrogate
        if type(self).fused_scan and lif_scan.enabled() and self.refrac_steps == 0 \
                and not self.params.escape_noise and torch.is_grad_enabled() \
                and (current.requires_grad or state.v.requires_grad) and type(self.spike_fn) is not Heaviside:
            z, v = lif_scan.fused_step(self.params, self.dt, self.leak, self.spike_fn, current, state.v)
            return z, LIFState(v, state.refrac)
        return lif_step(current, state, self.params, self.dt, self.spike_fn, self.refrac_steps, self.leak)

    def recurrent_applies(self, current: torch.Tensor, grad: bool, record: tuple[str, ...] = ()) -> bool:
        """Whether :meth:`forward_recurrent` runs for this input (compiled, without refractoriness, escape
        noise or recorded traces; ``grad``: a backward will follow)."""
        return type(self).fused_scan and not record and self.refrac_steps == 0 and not self.params.escape_noise \
            and lif_scan.recurrent_applies(self.spike_fn, current, grad)

    def forward_recurrent(self, external: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                          previous: torch.Tensor | None) -> torch.Tensor:
        """All steps of this population with a linear self-loop: input ``external`` [T, B, *shape] plus
        ``linear(z_{t−1}, weight, bias)``, from the current state and the spikes ``previous`` [B, *shape]
        before the first step (None: none) (:func:`snnrun.kernels.lif_scan.recurrent_lif`). Returns
        the spikes [T, B, *shape] and keeps the final state."""
        steps, batch = external.shape[:2]
        v0 = None if self.state is None else self.state.v.reshape(batch, -1)
        s0 = None if previous is None else previous.reshape(batch, -1)
        z, v = lif_scan.recurrent_lif(self.params, self.dt, self.leak, self.spike_fn,
                                      external.reshape(steps, batch, -1), weight, bias, v0, s0)
        v = v.reshape(external.shape[1:])
        self.state = LIFState(v, torch.zeros(v.shape, device=v.device, dtype=torch.int32))
        self.spike_counts = None
        return z.reshape(external.shape)

    #: this class's dynamics are exactly :func:`lif_step`, so the fused scan of
    #: :mod:`snnrun.kernels.lif_scan` may run it (a subclass that changes the dynamics must not
    #: declare it; the declaration is not inherited)
    fused_scan = True

    def forward(self, current, record=(), reuse_input=False):
        # The fused scan (same spikes and gradients as the lif_step loop, a lean custom backward)
        # applies without refractoriness, escape noise or recorded traces, from rest or from the
        # potentials the last call ended in.
        if type(self).fused_scan and lif_scan.enabled() and not record \
                and self.refrac_steps == 0 and not self.params.escape_noise:
            v0 = None if self.state is None else self.state.v
            spikes, v, self.spike_counts = lif_scan.lif_scan(self.params, self.dt, self.leak, self.spike_fn,
                                                            current, reuse=reuse_input, v0=v0)
            self.state = LIFState(v, torch.zeros(v.shape, device=v.device, dtype=torch.int32))
            return spikes, {}
        self.spike_counts = None
        return super().forward(current, record)


@NEURONS.register("if")
class IF(LIF):
    r"""Integrate-and-fire without leak.

    .. math:: \tau_m \frac{dv}{dt} = R\,I(t)

    ``τ_m = RC`` (ms) sets how fast the input charges the membrane; with
    ``dt = τ_m = R = 1`` the update is ``v += I`` (spikingjelly's IFNode).
    Forward Euler (exact for this linear ODE), then threshold → reset → refractory.
    The step is :func:`if_step`.
    """

    @dataclass
    class Params(SpikingParams):
        tau_m: float = param(1.0, unit="ms", gt=0, help="charging time constant RC")
        integration: str = param("euler", choices=("euler", "exact"), help="(identical for IF)")

    leak = False
    fused_scan = True
    engine_model = "if"  # snnrun.engine: its step is if_step (LIF.step with leak = False)


@NEURONS.register("ifsoftreset")
class IFSoftReset(IF):
    """Integrate-and-fire with reset by subtraction: after a spike ``v ← v − (v_th − v_reset)``,
    keeping the overshoot (SPAIC's ``ifsoftreset``; the ANN-to-SNN conversion neuron).
    The step is :func:`ifsoftreset_step`."""

    @dataclass
    class Params(IF.Params):
        reset: str = param("soft", choices=("hard", "soft"), help="soft: v <- v - (v_th - v_reset)")

    fused_scan = True
    engine_model = "ifsoftreset"  # snnrun.engine: its step is ifsoftreset_step (LIF.step, soft reset)


@NEURONS.register("plif")
class PLIF(LIF):
    r"""Parametric LIF (Fang et al. 2021): LIF whose membrane time constant is learned.

    ``dt/τ_m = sigmoid(w)`` with a trainable ``w`` per population (or per neuron,
    ``per_neuron: true``), initialised from ``tau_m`` (which must exceed dt). The
    update is LIF's forward Euler step ``v += sigmoid(w) (−(v − v_rest) + R I)``;
    the sigmoid keeps 0 < dt/τ_m < 1 so the decay stays stable while learning.
    The step is :func:`plif_step` (``w`` passed to it explicitly).
    """

    @dataclass
    class Params(SpikingParams):
        tau_m: float = param(2.0, unit="ms", gt=0, help="initial membrane time constant (> dt)")
        per_neuron: bool = param(False, help="one learnable tau per neuron instead of one per population")
        integration: str = param("euler", choices=("euler",), help="forward Euler (as in the paper)")

    engine_model = "plif"  # snnrun.engine: its step is plif_step with the current w (a local rule leaves τ fixed)

    def __init__(self, params, shape=(1,), dt=1.0, spike_fn=None):
        super().__init__(params, shape, dt, spike_fn)
        if params.tau_m <= dt:
            from ..errors import ConfigError
            raise ConfigError(f"neuron.tau_m: plif needs tau_m > dt ({params.tau_m} <= {dt} ms)")
        init = -math.log(params.tau_m / dt - 1.0)
        self.w = torch.nn.Parameter(torch.full(tuple(shape) if params.per_neuron else (), init))

    @property
    def tau_m(self) -> torch.Tensor:
        """The current membrane time constant(s) in ms."""
        return self.dt / torch.sigmoid(self.w.detach())

    def step(self, current, state):
        return plif_step(current, state, self.params, self.dt, self.spike_fn, self.w, self.refrac_steps)


class CLIFState(NamedTuple):
    v: torch.Tensor
    i_syn: torch.Tensor
    refrac: torch.Tensor


def clif_step(current: torch.Tensor, state: CLIFState, p, dt: float, spike_fn,
              refrac_steps: int | None = None) -> tuple[torch.Tensor, CLIFState]:
    r"""One step of current-based LIF: a decaying synaptic current drives the membrane.

    .. math:: \tau_{syn} \frac{dI_s}{dt} = -I_s + \sum_k w_k \delta(t - t_k), \qquad
              \tau_m \frac{dv}{dt} = -(v - v_{rest}) + R I_s

    Units: ms, mV; ``current`` is the total synaptic jump of this step (weights × spikes).
    Discretisation at dt: ``I_s ← I_s e^{−dt/τ_syn} + current`` (exact for the delta input), then
    :func:`lif_step` on ``I_s`` (v by forward Euler or exact with I_s constant over the step,
    refractory hold, threshold, reset, refractory count).
    """
    i_syn = state.i_syn * math.exp(-dt / p.tau_syn) + current
    z, lif_state = lif_step(i_syn, LIFState(state.v, state.refrac), p, dt, spike_fn, refrac_steps)
    return z, CLIFState(lif_state.v, i_syn, lif_state.refrac)


@NEURONS.register("clif")
class CLIF(Neuron):
    r"""Current-based LIF: an exponentially decaying synaptic current drives the membrane.

    .. math:: \tau_{syn} \frac{dI_s}{dt} = -I_s + \sum_k w_k \delta(t - t_k), \qquad
              \tau_m \frac{dv}{dt} = -(v - v_{rest}) + R I_s

    Units: ms, mV; the input at step t is the total synaptic jump (weights × spikes).
    Discretisation at dt: ``I_s ← I_s e^{−dt/τ_syn} + input`` (exact for the delta
    input), then ``v`` by forward Euler (or exact, ``integration: exact``, treating
    I_s as constant over the step), then threshold → reset → refractory. The step is
    :func:`clif_step`.
    """

    State = CLIFState
    engine_model = "clif"  # snnrun.engine: its step is clif_step

    @dataclass
    class Params(SpikingParams):
        tau_m: float = param(20.0, unit="ms", gt=0, help="membrane time constant")
        tau_syn: float = param(5.0, unit="ms", gt=0, help="synaptic current time constant")
        integration: str = param("euler", choices=("euler", "exact"), help="membrane integration")

    def __init__(self, params, shape=(1,), dt=1.0, spike_fn=None):
        super().__init__(params, shape, dt, spike_fn)
        self.refrac_steps = refractory_steps(params.refractory, dt)

    def initial_state(self, batch_shape, device, dtype):
        zeros = torch.zeros(tuple(batch_shape), device=device, dtype=dtype)
        return CLIFState(zeros + self.params.v_rest, zeros, torch.zeros(tuple(batch_shape), device=device, dtype=torch.int32))

    def step(self, current, state):
        return clif_step(current, state, self.params, self.dt, self.spike_fn, self.refrac_steps)

    def operating_range(self) -> OperatingRange:
        """Drive: the per-step input whose steady synaptic current ``current / (1 − e^{−dt/τ_syn})`` is the
        LIF rheobase ``(v_th − v_rest) / r``."""
        p = self.params
        return OperatingRange(p.v_rest, p.v_th, (p.v_th - p.v_rest) / p.r * (1 - math.exp(-self.dt / p.tau_syn)))


class LeakyState(NamedTuple):
    v: torch.Tensor


def leaky_step(current: torch.Tensor, state: LeakyState, p, dt: float,
               spike_fn=None) -> tuple[torch.Tensor, LeakyState]:
    r"""One step of the non-spiking leaky integrator; returns ``(v, new_state)``: its output is v.

    .. math:: \tau_m \frac{dv}{dt} = -(v - v_{rest}) + R I

    Units: v in mV, τ_m and dt in ms. Discretisation at dt: exact exponential
    ``v = v_rest + (v − v_rest) e^{−dt/τ_m} + R I (1 − e^{−dt/τ_m})`` (``p.integration: exact``)
    or forward Euler ``v += dt/τ_m (−(v − v_rest) + R I)``. No threshold: ``spike_fn`` is accepted
    for the common signature and unused.
    """
    if p.integration == "exact":
        decay = math.exp(-dt / p.tau_m)
        v = p.v_rest + (state.v - p.v_rest) * decay + p.r * current * (1 - decay)
    else:
        v = state.v + dt / p.tau_m * (-(state.v - p.v_rest) + p.r * current)
    return v, LeakyState(v)


@NEURONS.register("leaky")
class Leaky(Neuron):
    r"""Non-spiking leaky integrator, for readouts: ``τ_m dv/dt = −(v − v_rest) + R I``.

    Its output at each step is the membrane potential v (not spikes); decoders
    such as ``final_step_voltage`` or ``max_voltage`` read it. Exact exponential
    integration by default (``integration: euler`` available). The step is :func:`leaky_step`.
    """

    State = LeakyState
    spiking = False
    engine_model = "leaky"  # snnrun.engine: its step is leaky_step (its output, v, read by no projection there)

    @dataclass
    class Params:
        tau_m: float = param(20.0, unit="ms", gt=0, help="membrane time constant")
        v_rest: float = param(0.0, unit="mV", help="resting potential")
        r: float = param(1.0, unit="MOhm", help="input gain")
        integration: str = param("exact", choices=("euler", "exact"), help="subthreshold integration")

    def initial_state(self, batch_shape, device, dtype):
        return LeakyState(torch.full(tuple(batch_shape), self.params.v_rest, device=device, dtype=dtype))

    def step(self, current, state):
        return leaky_step(current, state, self.params, self.dt, self.spike_fn)

    def operating_range(self) -> OperatingRange:
        """No threshold: the range is one unit above rest, reached at steady state by ``1 / r``."""
        return OperatingRange(self.params.v_rest, self.params.v_rest + 1.0, 1.0 / self.params.r)
