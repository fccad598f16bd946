"""Generalized leaky integrate-and-fire models (Teeter et al. 2018), levels 1–5."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..schema import param
from .base import (NEURONS, Neuron, OperatingRange, refractory_count, refractory_gate, refractory_hold,
                   refractory_steps, spike)


class GLIFState(NamedTuple):
    v: torch.Tensor
    theta_s: torch.Tensor
    theta_v: torch.Tensor
    asc1: torch.Tensor
    asc2: torch.Tensor
    refrac: torch.Tensor


def glif_step(current: torch.Tensor, state: GLIFState, p, dt: float, spike_fn,
              refrac_steps: int | None = None) -> tuple[torch.Tensor, GLIFState]:
    r"""One step of the GLIF model of level ``p.level`` (Teeter et al. 2018).

    .. math:: C \frac{dV}{dt} = r I + \sum_j I_j - \frac{V - E_L}{R}, \quad
              \frac{dI_j}{dt} = -k_j I_j, \quad
              \frac{d\theta_s}{dt} = -b_s \theta_s, \quad
              \frac{d\theta_v}{dt} = a_v (V - E_L) - b_v \theta_v

    Units: mV, ms, nA, nF, MΩ (MΩ·nA = mV). Discretisation: forward Euler at dt of every variable
    from the previous state (θ_s at levels 2, 4, 5; the ASCs at 3–5; θ_v at 5), then a spike when
    ``V > θ_∞ + θ_s + θ_v``, then the reset rules: V ← V_reset (levels 1, 3) or
    ``V ← E_L + f_v (V − E_L) + δV`` and ``θ_s ← θ_s + δθ_s`` (levels 2, 4, 5), ASCs
    ``I_j ← r_j I_j + A_j`` (levels 3–5), then the refractory count.

    Refractoriness differs from the integrate-and-fire family (as the AllenSDK / NEST ``glif_psc``):
    during the refractory period V is held at its previous value (the reset value) rather than at
    ``v_reset``, while θ_s and the ASCs keep decaying; θ_v is not reset.
    """
    if refrac_steps is None:
        refrac_steps = refractory_steps(p.refractory, dt)
    reset_rules, asc, threshold_v = p.level in (2, 4, 5), p.level in (3, 4, 5), p.level == 5
    v, theta_s, theta_v, asc1, asc2, refrac = state
    asc_total = asc1 + asc2 if asc else torch.zeros_like(v)
    v_new = v + dt / p.c_m * (p.r * current + asc_total - (v - p.e_l) / p.r_m)
    if reset_rules:
        theta_s = theta_s - dt * p.b_s * theta_s
    if threshold_v:
        theta_v = theta_v + dt * (p.a_v * (v - p.e_l) - p.b_v * theta_v)
    if asc:
        asc1 = asc1 - dt * p.asc_k[0] * asc1
        asc2 = asc2 - dt * p.asc_k[1] * asc2
    v_new = refractory_hold(v_new, refrac, v, refrac_steps)
    z = refractory_gate(spike(spike_fn, v_new, p.theta_inf + theta_s + theta_v, p.theta_inf - p.e_l), refrac, refrac_steps)
    spiked = z.detach() > 0
    if reset_rules:
        v_after = p.e_l + p.f_v * (v_new - p.e_l) + p.delta_v
        theta_s = theta_s + p.delta_theta_s * z
    else:
        v_after = torch.full_like(v, p.v_reset)
    v_new = torch.where(spiked, v_after, v_new)
    if asc:
        asc1 = torch.where(spiked, p.asc_r[0] * asc1 + p.asc_amps[0], asc1)
        asc2 = torch.where(spiked, p.asc_r[1] * asc2 + p.asc_amps[1], asc2)
    return z, GLIFState(v_new, theta_s, theta_v, asc1, asc2, refractory_count(z, refrac, refrac_steps))


@NEURONS.register("glif")
class GLIF(Neuron):
    r"""GLIF models of Teeter et al. (2018), Nat. Commun. 9:709.

    .. math:: C \frac{dV}{dt} = I + \sum_j I_j - \frac{V - E_L}{R}, \quad
              \frac{dI_j}{dt} = -k_j I_j, \quad
              \frac{d\theta_s}{dt} = -b_s \theta_s, \quad
              \frac{d\theta_v}{dt} = a_v (V - E_L) - b_v \theta_v

    Spike when ``V > θ_∞ + θ_s + θ_v``. Levels add mechanisms:
    1 LIF (``V ← V_reset``); 2 LIF-R: reset rules ``V ← E_L + f_v (V − E_L) + δV`` and
    ``θ_s ← θ_s + δθ_s``; 3 LIF-ASC: after-spike currents ``I_j ← r_j I_j + A_j``;
    4 LIF-R-ASC (2 + 3); 5 LIF-R-ASC-A (4 + the voltage-dependent threshold θ_v).
    Units: mV, ms, nA, nF, MΩ (MΩ·nA = mV). Discretisation: forward Euler at dt of
    every variable from the previous state, threshold, reset rules, refractory count.
    The reset rules follow the Allen Institute's reference implementation (AllenSDK,
    NEST ``glif_psc``): δV is added (fitted values are usually negative); θ_v is not
    reset; during the refractory period V is held while θ_s and the ASCs keep decaying.
    The step is :func:`glif_step`.
    """

    State = GLIFState
    engine_model = "glif"  # snnrun.engine: its step is glif_step (levels 1-5)

    @dataclass
    class Params:
        level: int = param(5, ge=1, le=5, help="GLIF level: 1 LIF, 2 LIF-R, 3 LIF-ASC, 4 LIF-R-ASC, 5 LIF-R-ASC-A")
        c_m: float = param(0.1, unit="nF", gt=0, help="capacitance C")
        r_m: float = param(100.0, unit="MOhm", gt=0, help="input resistance R")
        e_l: float = param(-70.0, unit="mV", help="resting potential E_L")
        theta_inf: float = param(-50.0, unit="mV", help="baseline threshold θ_∞")
        v_reset: float = param(-70.0, unit="mV", help="reset potential (levels 1, 3)")
        f_v: float = param(0.5, ge=0, le=1, help="voltage reset fraction (levels 2, 4, 5)")
        delta_v: float = param(-2.0, unit="mV", help="voltage added at reset δV (levels 2, 4, 5)")
        delta_theta_s: float = param(2.0, unit="mV", help="spike-induced threshold jump (levels 2, 4, 5)")
        b_s: float = param(0.05, unit="1/ms", ge=0, help="spike-induced threshold decay rate")
        asc_amps: list = param([-0.05, -0.01], unit="nA", help="after-spike current jumps A_1, A_2 (levels 3-5)")
        asc_k: list = param([0.1, 0.01], unit="1/ms", help="after-spike current decay rates k_1, k_2")
        asc_r: list = param([1.0, 1.0], help="after-spike current multipliers r_1, r_2 at a spike")
        a_v: float = param(0.005, unit="1/ms", help="voltage-dependent threshold coupling (level 5)")
        b_v: float = param(0.1, unit="1/ms", ge=0, help="voltage-dependent threshold decay (level 5)")
        refractory: float = param(0.0, unit="ms", ge=0, help="absolute refractory period")
        r: float = param(1.0, help="input gain (input in nA)")

    def __init__(self, params, shape=(1,), dt=1.0, spike_fn=None):
        super().__init__(params, shape, dt, spike_fn)
        self.refrac_steps = refractory_steps(params.refractory, dt)

    def initial_state(self, batch_shape, device, dtype):
        zeros = torch.zeros(tuple(batch_shape), device=device, dtype=dtype)
        return GLIFState(zeros + self.params.e_l, zeros, zeros, zeros, zeros,
                         torch.zeros(tuple(batch_shape), device=device, dtype=torch.int32))

    def step(self, current, state):
        return glif_step(current, state, self.params, self.dt, self.spike_fn, self.refrac_steps)

    def operating_range(self) -> OperatingRange:
        """Drive: the rheobase ``(θ_∞ − E_L) / R / r`` in nA (0.2 nA for the defaults). Adaptation, in nA:
        the threshold jump's input ``δθ_s / R`` (levels 2, 4, 5) plus the hyperpolarising after-spike
        currents ``−Σ_j min(A_j, 0)`` (levels 3–5), over r (0.08 nA for the defaults: learning-rate unit
        factor 1.4)."""
        p = self.params
        adaptation = max(p.delta_theta_s, 0.0) / p.r_m if p.level in (2, 4, 5) else 0.0
        if p.level in (3, 4, 5):
            adaptation += -sum(min(float(a), 0.0) for a in p.asc_amps)
        return OperatingRange(p.e_l, p.theta_inf, (p.theta_inf - p.e_l) / p.r_m / p.r, "mV", adaptation / p.r)
