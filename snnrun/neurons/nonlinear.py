"""Nonlinear integrate-and-fire models: QIF, Izhikevich (2003), AdEx (Brette & Gerstner 2005)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..errors import ConfigError
from ..schema import param
from .base import (NEURONS, Neuron, OperatingRange, refractory_count, refractory_gate, refractory_hold,
                   refractory_steps, spike)


class QIFState(NamedTuple):
    v: torch.Tensor
    refrac: torch.Tensor


def qif_step(current: torch.Tensor, state: QIFState, p, dt: float, spike_fn,
             refrac_steps: int | None = None) -> tuple[torch.Tensor, QIFState]:
    r"""One step of the quadratic integrate-and-fire model (Latham et al. 2000).

    .. math:: \tau_m \frac{dv}{dt} = a_0 (v - v_{rest})(v - v_c) + R I, \qquad
              v \ge v_{peak} \Rightarrow \text{spike}, v \leftarrow v_{reset}

    Units: v in mV, τ_m and dt in ms, ``a_0`` in 1/mV. Discretisation: forward Euler at dt,
    refractory hold at ``v_reset``, threshold at ``v_peak`` (``p.v_th``), hard reset, refractory count.
    The reset selects ``v_reset`` (no gradient through it) and clips non-spiking v at ``v_peak``
    (the quadratic would otherwise run away under Euler); QIF has no soft reset.
    """
    if refrac_steps is None:
        refrac_steps = refractory_steps(p.refractory, dt)
    v, refrac = state
    v_new = v + dt / p.tau_m * (p.a0 * (v - p.v_rest) * (v - p.v_c) + p.r * current)
    v_new = refractory_hold(v_new, refrac, p.v_reset, refrac_steps)
    z = refractory_gate(spike(spike_fn, v_new, p.v_th, p.v_th - p.v_rest), refrac, refrac_steps)
    v_new = torch.where(z.detach() > 0, torch.full_like(v, p.v_reset), v_new.clamp(max=p.v_th))
    return z, QIFState(v_new, refractory_count(z, refrac, refrac_steps))


@NEURONS.register("qif")
class QIF(Neuron):
    r"""Quadratic integrate-and-fire (Latham et al. 2000; Gerstner et al. 2014, §5.3).

    .. math:: \tau_m \frac{dv}{dt} = a_0 (v - v_{rest})(v - v_c) + R I, \qquad
              v \ge v_{peak} \Rightarrow \text{spike}, v \leftarrow v_{reset}

    Units: mV, ms, ``a_0`` in 1/mV. Repetitive firing starts when
    ``R I > a_0 (v_c − v_rest)² / 4`` (the rheobase of the saddle-node).
    Discretisation: forward Euler at dt, threshold at ``v_peak`` (``v_th``),
    hard reset, refractory count. The step is :func:`qif_step`.
    """

    State = QIFState
    engine_model = "qif"  # snnrun.engine: its step is qif_step

    @dataclass
    class Params:
        tau_m: float = param(10.0, unit="ms", gt=0, help="membrane time constant")
        a0: float = param(0.04, unit="1/mV", gt=0, help="sharpness of the quadratic")
        v_rest: float = param(-65.0, unit="mV", help="resting potential (stable fixed point)")
        v_c: float = param(-50.0, unit="mV", help="critical potential (unstable fixed point), > v_rest")
        v_th: float = param(-30.0, unit="mV", help="spike peak v_peak")
        v_reset: float = param(-65.0, unit="mV", help="reset potential")
        refractory: float = param(0.0, unit="ms", ge=0, help="absolute refractory period")
        r: float = param(1.0, unit="MOhm", help="input resistance")

    def __init__(self, params, shape=(1,), dt=1.0, spike_fn=None):
        super().__init__(params, shape, dt, spike_fn)
        if params.v_c <= params.v_rest:
            raise ConfigError(f"neuron.v_c: {params.v_c} must be above v_rest ({params.v_rest})")
        self.refrac_steps = refractory_steps(params.refractory, dt)

    def initial_state(self, batch_shape, device, dtype):
        return QIFState(torch.full(tuple(batch_shape), self.params.v_rest, device=device, dtype=dtype),
                        torch.zeros(tuple(batch_shape), device=device, dtype=torch.int32))

    def step(self, current, state):
        return qif_step(current, state, self.params, self.dt, self.spike_fn, self.refrac_steps)

    def operating_range(self) -> OperatingRange:
        """Drive: the saddle-node rheobase ``a_0 (v_c − v_rest)² / 4 / r``; threshold ``v_peak``."""
        p = self.params
        return OperatingRange(p.v_rest, p.v_th, p.a0 * (p.v_c - p.v_rest) ** 2 / 4 / p.r)


class IzhState(NamedTuple):
    v: torch.Tensor
    u: torch.Tensor


#: Izhikevich (2003), Fig. 2: (a, b, c, d) of the cortical firing classes.
IZHIKEVICH_PRESETS = {
    "RS": (0.02, 0.2, -65.0, 8.0),   # regular spiking
    "IB": (0.02, 0.2, -55.0, 4.0),   # intrinsically bursting
    "CH": (0.02, 0.2, -50.0, 2.0),   # chattering
    "FS": (0.1, 0.2, -65.0, 2.0),    # fast spiking
    "LTS": (0.02, 0.25, -65.0, 2.0),  # low-threshold spiking
    "TC": (0.02, 0.25, -65.0, 0.05),  # thalamo-cortical
    "RZ": (0.1, 0.26, -65.0, 2.0),   # resonator
}


def izhikevich_abcd(p) -> tuple[float, float, float, float]:
    """(a, b, c, d) of ``p``: its ``preset`` from the paper, or its own fields (``preset: custom``)."""
    return IZHIKEVICH_PRESETS[p.preset] if p.preset != "custom" else (p.a, p.b, p.c, p.d)


def izh_substeps(dt: float, substep: float) -> int:
    """How many Euler sub-steps of v one step of ``dt`` runs: ``⌈dt / substep⌉`` (at least 1)."""
    return max(1, math.ceil(dt / substep - 1e-9))


def _quadratic(v: torch.Tensor) -> torch.Tensor:
    """``0.04 v² + 5 v`` (Izhikevich's v-nullcline without its constant)."""
    return 0.04 * v * v + 5 * v


class _StableQuadratic(torch.autograd.Function):
    """``0.04 v² + 5 v``, its derivative taken as ``min(0.08 v + 5, 0)`` in the backward."""

    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return _quadratic(v)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad * (0.08 * v + 5).clamp(max=0.0)


def _quadratic_stable(v: torch.Tensor) -> torch.Tensor:
    return _StableQuadratic.apply(v) if v.requires_grad else _quadratic(v)


def izh_step(current: torch.Tensor, state: IzhState, p, dt: float, spike_fn) -> tuple[torch.Tensor, IzhState]:
    r"""One step of the Izhikevich (2003) simple model, discretised as in the paper's published code.

    .. math:: \frac{dv}{dt} = 0.04 v^2 + 5 v + 140 - u + r I, \qquad \frac{du}{dt} = a (b v - u), \qquad
              v \ge v_{peak} \Rightarrow v \leftarrow c,\; u \leftarrow u + d

    Units: v in mV, t and dt in ms, I in the paper's dimensionless units (scaled by ``r``);
    (a, b, c, d) from :func:`izhikevich_abcd`.

    Discretisation (Izhikevich 2003, Fig. 3 code, which advances 1 ms as ``v=v+0.5*(...)`` twice "for
    numerical stability", then ``u=u+a.*(b.*v-u)``): v takes ``k = ⌈dt / substep⌉`` forward-Euler
    sub-steps of ``δ = dt / k`` with u and the input held (k = 2 half steps of 0.5 ms at the network's
    dt = 1 ms), then u one Euler step of dt from the *new* v:

    .. math:: v \leftarrow v + δ\,(0.04 v^2 + 5 v + 140 - u + r I)\ (k \text{ times}), \qquad
              u \leftarrow u + dt\, a (b \min(v, v_{peak}) - u)

    With ``p.quadratic_grad: stable`` (the default) the backward takes ``min(0.08 v + 5, 0)`` for the
    derivative of ``0.04 v² + 5 v`` (the forward is unchanged): above −62.5 mV the upstroke's positive
    feedback makes each sub-step multiply a gradient by up to ``1 + δ (0.08 v + 5)`` (≈ 3.6 per ms near
    the peak), so gradients through time explode (per-batch norms up to ~10⁴ × LIF's); the stable
    derivative keeps every sub-step's factor ≤ 1 there, as a surrogate for the membrane's Jacobian.
    ``exact`` differentiates the quadratic as written.

    A v that has reached ``v_peak`` in a sub-step is not integrated further (the continuous model
    resets there; past the peak the quadratic only runs away), and u reads v capped at ``v_peak``
    (in the continuous model v never exceeds the peak; the paper's code lets u read the overshoot of
    the second half step, hundreds of mV at strong input, which adds a·b·v ≫ d to u).
    The sub-steps matter: one Euler step of 1 ms has ``∂v'/∂v = 1 + dt (0.08 v + 5)``, negative below
    −75 mV and < −1 below −87.5 mV, so a strongly inhibited neuron overshoots rest and rebounds into a
    spike (inhibition makes spikes) and its gradient flips sign from step to step; with 0.5 ms half
    steps the factor stays positive down to −87.5 mV and stable down to −112.5 mV.

    Then the threshold at ``v_peak`` (the paper's spike cut-off, 30 mV; surrogate in units of
    ``v_peak − v_init``), and the after-spike reset, v to c and u by d. The reset carries no gradient
    (v is selected, u is raised by ``d`` times the detached spike), like ``detach_reset`` (Zenke & Vogels
    2021): with the jump on the surrogate path every spike's gradient is charged for the adaptation it
    causes over the rest of the sample, which for d = 8 (two rheobases) swamps its own. No refractory
    period (the model has none).
    """
    a, b, c, d = izhikevich_abcd(p)
    v, u = state
    k = izh_substeps(dt, p.substep)
    delta, drive = dt / k, 140 - u + p.r * current
    quadratic = _quadratic_stable if p.quadratic_grad == "stable" and torch.is_grad_enabled() else _quadratic
    for i in range(k):
        v_next = v + delta * (quadratic(v) + drive)
        v = v_next if i == 0 else torch.where(v >= p.v_peak, v, v_next)
    u_new = u + dt * a * (b * v.clamp(max=p.v_peak) - u)
    z = spike(spike_fn, v, p.v_peak, p.v_peak - p.v_init)
    spiked = z.detach() > 0
    v_new = torch.where(spiked, torch.full_like(v, c), v)
    u_new = u_new + d * z.detach()
    return z, IzhState(v_new, u_new)


@NEURONS.register("izh", "izhikevich")
class Izhikevich(Neuron):
    r"""Izhikevich (2003) simple model.

    .. math:: \frac{dv}{dt} = 0.04 v^2 + 5 v + 140 - u + I, \qquad \frac{du}{dt} = a (b v - u), \qquad
              v \ge 30 \Rightarrow v \leftarrow c,\; u \leftarrow u + d

    Units: v in mV, t in ms, I in the paper's dimensionless units (scaled by ``r``).
    ``preset`` picks (a, b, c, d) from the paper (RS, IB, CH, FS, LTS, TC, RZ) unless
    ``preset: custom``. Discretisation as in the paper's code: each step of dt runs
    ``⌈dt / substep⌉`` forward-Euler sub-steps of v (two 0.5 ms half steps at dt = 1 ms) with u
    held, then one Euler step of u from the new v (capped at ``v_peak``); threshold at ``v_peak``,
    reset of v and jump of u, with no gradient through the reset. A single 1 ms Euler step of v
    is unstable below −87.5 mV (strong inhibition rebounds into spikes). ``quadratic_grad: stable``
    (default) bounds the backward of the upstroke so that gradients through time do not explode.
    The step is :func:`izh_step`.
    """

    State = IzhState
    engine_model = "izh"  # snnrun.engine: its step is izh_step

    @dataclass
    class Params:
        preset: str = param("RS", choices=tuple(IZHIKEVICH_PRESETS) + ("custom",), help="published parameter set")
        a: float = param(0.02, unit="1/ms", help="recovery time scale (preset: custom)")
        b: float = param(0.2, help="recovery sensitivity to v (preset: custom)")
        c: float = param(-65.0, unit="mV", help="reset potential (preset: custom)")
        d: float = param(8.0, help="recovery jump after a spike (preset: custom)")
        v_peak: float = param(30.0, unit="mV", help="spike cut-off")
        v_init: float = param(-65.0, unit="mV", help="initial v (u starts at b·v_init)")
        r: float = param(1.0, help="input gain")
        substep: float = param(0.5, unit="ms", gt=0, help="longest Euler sub-step of v: each step of dt runs "
                                                         "ceil(dt / substep) (the paper: two 0.5 ms half steps per ms)")
        quadratic_grad: str = param("stable", choices=("stable", "exact"),
                                    help="backward of 0.04v^2+5v: stable takes min(0.08v+5, 0) (no sub-step "
                                         "amplifies a gradient), exact differentiates it as written")

    def __init__(self, params, shape=(1,), dt=1.0, spike_fn=None):
        super().__init__(params, shape, dt, spike_fn)
        self.a, self.b, self.c, self.d = izhikevich_abcd(params)

    def initial_state(self, batch_shape, device, dtype):
        v = torch.full(tuple(batch_shape), self.params.v_init, device=device, dtype=dtype)
        return IzhState(v, self.b * v)

    def step(self, current, state):
        return izh_step(current, state, self.params, self.dt, self.spike_fn)

    def operating_range(self) -> OperatingRange:
        """Drive: the rheobase ``((5 − b)² / 0.16 − 140) / r`` where the v-nullcline meets the u-nullcline
        tangentially (4.0 for RS); threshold ``v_peak``; adaptation ``d / r`` (u enters dv/dt as −u, so
        a spike's jump d of u cancels an input of d / r; RS: 8, two drives, so the learning-rate unit
        factor :attr:`~snnrun.neurons.base.OperatingRange.lr_factor` is 3)."""
        return OperatingRange(self.params.v_init, self.params.v_peak,
                              ((5 - self.b) ** 2 / 0.16 - 140) / self.params.r, "mV", max(self.d, 0.0) / self.params.r)


class AdExState(NamedTuple):
    v: torch.Tensor
    w: torch.Tensor
    refrac: torch.Tensor


def adex_step(current: torch.Tensor, state: AdExState, p, dt: float, spike_fn,
              refrac_steps: int | None = None) -> tuple[torch.Tensor, AdExState]:
    r"""One step of the adaptive exponential integrate-and-fire model (Brette & Gerstner 2005).

    .. math:: C \frac{dV}{dt} = -g_L (V - E_L) + g_L \Delta_T e^{(V - V_T)/\Delta_T} - w + r I, \qquad
              \tau_w \frac{dw}{dt} = a (V - E_L) - w, \qquad
              V \ge V_{peak} \Rightarrow V \leftarrow V_r,\; w \leftarrow w + b

    Units: V in mV, t and dt in ms, C in nF, g_L and a in µS, w, b and I in nA (µS·mV = nA,
    nA/nF = mV/ms). Discretisation: forward Euler at dt, V and w from the previous state (the
    exponential clipped at V_peak to keep Euler finite), refractory hold at ``v_reset``, threshold at
    ``v_peak``, reset of V to V_r (selected: no gradient through it), jump ``b·z`` of w,
    refractory count.
    """
    if refrac_steps is None:
        refrac_steps = refractory_steps(p.refractory, dt)
    v, w, refrac = state
    exp_term = p.g_l * p.delta_t * torch.exp((v.clamp(max=p.v_peak) - p.v_t) / p.delta_t)
    dv = (-p.g_l * (v - p.e_l) + exp_term - w + p.r * current) / p.c_m
    v_new = v + dt * dv
    w_new = w + dt / p.tau_w * (p.a * (v - p.e_l) - w)
    v_new = refractory_hold(v_new, refrac, p.v_reset, refrac_steps)
    z = refractory_gate(spike(spike_fn, v_new, p.v_peak, p.v_peak - p.e_l), refrac, refrac_steps)
    v_new = torch.where(z.detach() > 0, torch.full_like(v, p.v_reset), v_new)
    w_new = w_new + p.b * z
    return z, AdExState(v_new, w_new, refractory_count(z, refrac, refrac_steps))


@NEURONS.register("adex", "aeif")
class AdEx(Neuron):
    r"""Adaptive exponential integrate-and-fire (Brette & Gerstner 2005).

    .. math:: C \frac{dV}{dt} = -g_L (V - E_L) + g_L \Delta_T e^{(V - V_T)/\Delta_T} - w + I, \qquad
              \tau_w \frac{dw}{dt} = a (V - E_L) - w, \qquad
              V \ge V_{peak} \Rightarrow V \leftarrow V_r,\; w \leftarrow w + b

    Units: V in mV, t in ms, C in nF, g_L and a in µS, w, b and I in nA
    (µS·mV = nA, nA/nF = mV/ms). Defaults are the paper's (C 281 pF, g_L 30 nS,
    E_L −70.6 mV, V_T −50.4 mV, Δ_T 2 mV, τ_w 144 ms, a 4 nS, b 0.0805 nA, V_r = E_L).
    Discretisation: forward Euler at dt (≤ 0.1 ms recommended), V and w from the
    previous state; the exponential is clipped at V_peak to keep Euler finite. The step is
    :func:`adex_step`.
    """

    State = AdExState
    engine_model = "adex"  # snnrun.engine: its step is adex_step

    @dataclass
    class Params:
        c_m: float = param(0.281, unit="nF", gt=0, help="membrane capacitance C")
        g_l: float = param(0.030, unit="uS", gt=0, help="leak conductance g_L")
        e_l: float = param(-70.6, unit="mV", help="leak reversal E_L")
        v_t: float = param(-50.4, unit="mV", help="threshold slope point V_T")
        delta_t: float = param(2.0, unit="mV", gt=0, help="slope factor Δ_T")
        tau_w: float = param(144.0, unit="ms", gt=0, help="adaptation time constant")
        a: float = param(0.004, unit="uS", help="subthreshold adaptation a")
        b: float = param(0.0805, unit="nA", help="spike-triggered adaptation b")
        v_reset: float = param(-70.6, unit="mV", help="reset V_r")
        v_peak: float = param(20.0, unit="mV", help="spike detection / cut-off")
        refractory: float = param(0.0, unit="ms", ge=0, help="absolute refractory period")
        r: float = param(1.0, help="input gain (input in nA)")

    def __init__(self, params, shape=(1,), dt=1.0, spike_fn=None):
        super().__init__(params, shape, dt, spike_fn)
        self.refrac_steps = refractory_steps(params.refractory, dt)

    def initial_state(self, batch_shape, device, dtype):
        shape = tuple(batch_shape)
        return AdExState(torch.full(shape, self.params.e_l, device=device, dtype=dtype),
                         torch.zeros(shape, device=device, dtype=dtype),
                         torch.zeros(shape, device=device, dtype=torch.int32))

    def step(self, current, state):
        return adex_step(current, state, self.params, self.dt, self.spike_fn, self.refrac_steps)

    def operating_range(self) -> OperatingRange:
        """Drive: the rheobase with subthreshold adaptation,
        ``(g_L + a)(V_T − E_L + Δ_T ln((g_L + a)/g_L) − Δ_T) / r`` in nA (0.63 nA for the defaults);
        threshold ``v_peak``; adaptation ``b / r`` (the jump of w, in nA, subtracts from the input;
        0.0805 nA, so the learning-rate unit factor is (0.627 + 0.0805) / 0.627 = 1.13)."""
        import math
        p = self.params
        g = p.g_l + p.a
        return OperatingRange(p.e_l, p.v_peak, g * (p.v_t - p.e_l + p.delta_t * math.log(g / p.g_l) - p.delta_t) / p.r,
                              "mV", max(p.b, 0.0) / p.r)
