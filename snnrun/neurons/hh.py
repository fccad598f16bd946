"""Hodgkin–Huxley (1952) squid-axon model."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..kernels import hh as hh_kernel
from ..schema import param
from ..surrogate import threshold_span
from .base import NEURONS, Neuron, OperatingRange, spike


class HHState(NamedTuple):
    v: torch.Tensor
    m: torch.Tensor
    h: torch.Tensor
    n: torch.Tensor


def _vtrap(x: torch.Tensor, y: float) -> torch.Tensor:
    """x / (1 − exp(−x/y)), continuous at x = 0 (value y)."""
    small = x.abs() < 1e-6
    safe = torch.where(small, torch.ones_like(x), x)
    return torch.where(small, torch.full_like(x, y), safe / (1 - torch.exp(-safe / y)))


#: the lowest V (mV) the rates are evaluated at: far below any physiological potential (every gate is at its
#: asymptote there), and above −1839 mV, where α_h overflows in float32 and x_∞ = α τ = ∞ · 0 is NaN
V_RATE_FLOOR = -1500.0

#: the temperature (°C) of Hodgkin & Huxley's (1952) rate equations, at which ``phi = 1``
REFERENCE_TEMPERATURE = 6.3


def temperature_factor(temperature: float, q10: float = 3.0) -> float:
    """``phi = q10 ** ((temperature − 6.3) / 10)``: the factor on every gating rate (Hodgkin & Huxley 1952,
    eq. 24 with their Q10 = 3; NEURON's ``hh`` mechanism, ``celsius``). Exactly 1.0 at 6.3 °C."""
    return float(q10) ** ((float(temperature) - REFERENCE_TEMPERATURE) / 10.0)


#: (phi, rheobase of repetitive firing in µA/cm², spike cost in µA/cm²) for the standard parameters. The rheobase
#: is the least constant current that fires repetitively from rest; the spike cost the constant input each
#: further spike costs over 25 ms from rest (the rise from the rheobase to the multiple 2, 4, 8 or 16 of it that
#: fires the most, over the spikes it adds).
#: Both measured at dt = substep = 0.01 ms in float64 with spikes counted at v_th = −40 mV by
#: ``python scripts/hh_substep.py --rheobase 0 6.3 10 13 16 18.5 20 22`` (q10 = 3; the temperature enters only
#: through phi, so the table serves any q10). At 25 °C the model does not fire repetitively up to 40 µA/cm² (it
#: approaches its heat block); above 22 °C the end values are kept.
_RHEOBASE = ((0.5005, 6.202, 93.04), (1.0, 6.250, 46.88), (1.5015, 6.370, 23.89), (2.0877, 6.630, 24.86),
             (2.9027, 7.178, 15.38), (3.8202, 8.025, 15.05), (4.5046, 8.814, 14.69), (5.6115, 10.400, 9.10))


def _interpolate(phi: float, column: int) -> float:
    """Linear interpolation in phi of ``_RHEOBASE``'s ``column``; outside the table, its end value."""
    xs = [row[0] for row in _RHEOBASE]
    if phi <= xs[0]:
        return _RHEOBASE[0][column]
    for r0, r1 in zip(_RHEOBASE, _RHEOBASE[1:]):
        if phi <= r1[0]:
            return r0[column] + (r1[column] - r0[column]) * (phi - r0[0]) / (r1[0] - r0[0])
    return _RHEOBASE[-1][column]


def rheobase(phi: float) -> float:
    """Rheobase of repetitive firing (µA/cm², standard parameters, r = 1) at temperature factor ``phi``."""
    return _interpolate(phi, 1)


def spike_cost(phi: float) -> float:
    """Constant input (µA/cm², r = 1) each further spike costs over 25 ms from rest at temperature factor
    ``phi``: the refractoriness of the K⁺ current and Na⁺ inactivation, as the input it cancels."""
    return _interpolate(phi, 2)


def rates(v: torch.Tensor, phi: float = 1.0):
    """Opening/closing rates (1/ms) of n, m, h at membrane potential v (mV, rest −65 mV), each multiplied
    by the temperature factor ``phi`` (:func:`temperature_factor`; 1 gives the 6.3 °C rates of the paper)."""
    alpha_n = 0.01 * _vtrap(v + 55, 10.0)
    beta_n = 0.125 * torch.exp(-(v + 65) / 80)
    alpha_m = 0.1 * _vtrap(v + 40, 10.0)
    beta_m = 4.0 * torch.exp(-(v + 65) / 18)
    alpha_h = 0.07 * torch.exp(-(v + 65) / 20)
    beta_h = 1.0 / (1 + torch.exp(-(v + 35) / 10))
    if phi != 1.0:
        alpha_n, beta_n, alpha_m, beta_m, alpha_h, beta_h = (
            phi * x for x in (alpha_n, beta_n, alpha_m, beta_m, alpha_h, beta_h))
    return (alpha_n, beta_n), (alpha_m, beta_m), (alpha_h, beta_h)


def substeps(dt: float, substep: float) -> int:
    """Sub-steps per step of ``dt`` ms: ``⌈dt / substep⌉`` (at least 1)."""
    return max(1, math.ceil(dt / substep - 1e-9))


def kernel_model(p, dt: float) -> tuple[list[float], int, float]:
    """:func:`hh_step`'s model as :mod:`snnrun.kernels.hh` takes it: (c_m, g_na, g_k, g_l, e_na, e_k, e_l,
    v_th, r, phi, sub-step δ, ``V_RATE_FLOOR``), the sub-steps per step, and the surrogate's span
    (:func:`snnrun.surrogate.threshold_span` of v_th and v_init)."""
    k = substeps(dt, p.substep)
    phi = temperature_factor(p.temperature, p.q10)
    q = [p.c_m, p.g_na, p.g_k, p.g_l, p.e_na, p.e_k, p.e_l, p.v_th, p.r, phi, dt / k, V_RATE_FLOOR]
    return [float(x) for x in q], k, threshold_span(p.v_th, p.v_init)


def hh_step(current: torch.Tensor, state: HHState, p, dt: float, spike_fn) -> tuple[torch.Tensor, HHState]:
    r"""One step of Hodgkin & Huxley (1952), modern convention (rest at −65 mV).

    .. math:: C_m \frac{dV}{dt} = r I - \bar g_{Na} m^3 h (V - E_{Na}) - \bar g_K n^4 (V - E_K) - g_L (V - E_L), \quad
              \frac{dx}{dt} = \phi\,[\alpha_x(V)(1 - x) - \beta_x(V) x],\; x \in \{m, h, n\}, \quad
              \phi = Q_{10}^{(T - 6.3\,°C)/10\,°C}

    Units: V in mV, t and dt in ms, I in µA/cm², C_m in µF/cm², conductances in mS/cm², T
    (``p.temperature``) in °C; α, β of :func:`rates` in 1/ms at 6.3 °C, φ dimensionless (``p.q10``).
    Discretisation: the step of dt runs ``k = ⌈dt / substep⌉`` sub-steps of ``δ = dt / k`` with the
    input held. Each sub-step is exponential (Rush–Larsen) for every variable, so it is stable at any
    δ: gates ``x ← x_∞ + (x − x_∞) e^{−δ/τ_x}`` with the rates φα, φβ of :func:`rates` at the previous V
    (``τ_x = 1/(φ(α_x + β_x))``, ``x_∞ = α_x/(α_x + β_x)`` does not depend on φ; V is taken as at least
    ``V_RATE_FLOOR`` = −1500 mV there, so an input strong enough to drive V that low cannot overflow them), then
    V with the updated conductances held, ``V ← V_∞ + (V − V_∞) e^{−δ g/C_m}``,
    ``g = ḡ_Na m³h + ḡ_K n⁴ + g_L``, ``V_∞ = (ḡ_Na m³h E_Na + ḡ_K n⁴ E_K + g_L E_L + r I) / g``.
    A spike is emitted at the step where V crosses ``v_th`` upwards in any sub-step
    (``spike(V − v_th)`` where the previous V was below); there is no artificial reset and no
    refractory count (the gates make the refractoriness).

    Backward (``p.gate_grad``): ``passive`` (default) evaluates the rates at a detached V, so the gates
    (and the conductances) carry no gradient back to V and each sub-step's V update is differentiated
    at fixed conductances, ``∂V'/∂V = e^{−δ g/C_m} ∈ (0, 1]`` and ``∂V'/∂I = r (1 − e^{−δ g/C_m}) / g``:
    a leaky integrator with the model's present time constant ``C_m / g``, so gradients through time
    cannot grow. The forward of this function is the same bit for bit. ``exact`` differentiates α(V),
    β(V) too: on the default experiment its input→hidden gradient norm per batch is ~40× the
    hidden→output one and heavy-tailed (median 78, maximum 800).
    """
    v, m, h, n = state
    k = substeps(dt, p.substep)
    delta, drive, z = dt / k, p.r * current, None
    span = threshold_span(p.v_th, p.v_init)  # the surrogate's voltage scale
    detach_gates = getattr(p, "gate_grad", "exact") == "passive"
    phi = temperature_factor(getattr(p, "temperature", REFERENCE_TEMPERATURE), getattr(p, "q10", 3.0))
    for _ in range(k):
        gates = []
        v_rates = (v.detach() if detach_gates else v).clamp(min=V_RATE_FLOOR)
        for x, (alpha, beta) in zip((n, m, h), rates(v_rates, phi)):
            tau = 1.0 / (alpha + beta)
            x_inf = alpha * tau
            gates.append(x_inf + (x - x_inf) * torch.exp(-delta / tau))
        n, m, h = gates
        g_na, g_k = p.g_na * m ** 3 * h, p.g_k * n ** 4
        g = g_na + g_k + p.g_l
        v_inf = (g_na * p.e_na + g_k * p.e_k + p.g_l * p.e_l + drive) / g
        v_new = v_inf + (v - v_inf) * torch.exp(-delta * g / p.c_m)
        crossed = spike(spike_fn, v_new, p.v_th, span) * (v < p.v_th).to(v.dtype)
        z = crossed if z is None else z + crossed - z * crossed  # at most one spike per step
        v = v_new
    return z, HHState(v, m, h, n)


@NEURONS.register("hh")
class HodgkinHuxley(Neuron):
    r"""Hodgkin & Huxley (1952), in the modern convention (rest at −65 mV).

    .. math:: C_m \frac{dV}{dt} = I - \bar g_{Na} m^3 h (V - E_{Na}) - \bar g_K n^4 (V - E_K) - g_L (V - E_L), \quad
              \frac{dx}{dt} = \phi\,[\alpha_x(V)(1 - x) - \beta_x(V) x],\; x \in \{m, h, n\}, \quad
              \phi = Q_{10}^{(T - 6.3\,°C)/10\,°C}

    Units: V in mV, t in ms, I in µA/cm², C_m in µF/cm², conductances in mS/cm², T in °C.
    Temperature: every rate α_x, β_x (1/ms, as fitted at 6.3 °C) is multiplied by
    φ = ``q10`` ** ((``temperature`` − 6.3) / 10), Q10 = 3 as Hodgkin & Huxley (1952, eq. 24) used (the
    ``celsius`` dependence of NEURON's ``hh`` mechanism); x_∞ does not depend on φ, τ_x scales by 1/φ.
    The default is 18.5 °C, the temperature at which the paper computes its propagated action potential
    (φ = 3.82): at 6.3 °C the model fires at most 3–4 spikes in the default experiment's 25 ms
    window, too few spike counts to tell ten classes apart; ``temperature: 6.3`` gives the paper's rates
    exactly. Warmer is faster and needs a finer ``substep``: the default 0.05 ms keeps the f–I curve at
    18.5 °C within 1 % of 0.01 ms (``scripts/hh_substep.py``); at 6.3 °C 0.25 ms is enough. The range of
    repetitive firing narrows with temperature (20 °C: from 8.8 µA/cm² to depolarisation block below
    44 µA/cm²; 25 °C: none up to 40 µA/cm²).
    Discretisation: each network step of dt runs sub-steps of at most ``substep`` ms, each exponential
    (Rush–Larsen) for the gates and for V with the conductances held, so the model is stable at any
    dt (the network's default 1 ms included). A spike is emitted at the step where V crosses ``v_th``
    (−40 mV, the threshold of Brian 2's Hodgkin–Huxley example) upwards; there is no artificial reset.
    Under strong input the spikes lose amplitude (at 6.3 °C and 100 µA/cm² they peak near −15 mV) while
    they keep their rate, so a 0 mV threshold would count one spike where there are many.
    ``gate_grad: passive`` (default) differentiates V at fixed conductances (see :func:`hh_step`); the
    forward is unchanged. :meth:`operating_range` gives the measured rheobase of repetitive firing as the
    drive (8.03 µA/cm² at 18.5 °C, 6.25 at 6.3 °C) and the measured cost of each further spike as the
    adaptation. The step is :func:`hh_step`; on CPU (float32/64) it runs in the compiled kernel
    :mod:`snnrun.kernels.hh` (all sub-steps of a step in one call; the same values to rounding) unless a
    backward through ``gate_grad: exact`` or a surrogate the kernel does not evaluate follows.
    """

    State = HHState
    kernel = "hh"  # step: snnrun.kernels.hh where it applies, else hh_step

    @dataclass
    class Params:
        c_m: float = param(1.0, unit="uF/cm^2", gt=0, help="membrane capacitance")
        g_na: float = param(120.0, unit="mS/cm^2", ge=0, help="peak sodium conductance")
        g_k: float = param(36.0, unit="mS/cm^2", ge=0, help="peak potassium conductance")
        g_l: float = param(0.3, unit="mS/cm^2", ge=0, help="leak conductance")
        e_na: float = param(50.0, unit="mV", help="sodium reversal")
        e_k: float = param(-77.0, unit="mV", help="potassium reversal")
        e_l: float = param(-54.387, unit="mV", help="leak reversal")
        v_init: float = param(-65.0, unit="mV", help="initial potential (gates start at steady state)")
        v_th: float = param(-40.0, unit="mV", help="spike detection threshold (upward crossing; below the peak of "
                                                     "the smaller spikes strong input gives)")
        r: float = param(1.0, help="input gain (input in uA/cm^2)")
        temperature: float = param(18.5, unit="degC", help="temperature: every gating rate alpha, beta is multiplied "
                                                         "by phi = q10 ** ((temperature - 6.3) / 10)")
        q10: float = param(3.0, gt=0, help="rate factor per 10 degC (Hodgkin & Huxley 1952: 3)")
        substep: float = param(0.05, unit="ms", gt=0, help="longest internal integration step: each step of "
                                                          "dt runs ceil(dt / substep) sub-steps")
        gate_grad: str = param("passive", choices=("passive", "exact"),
                               help="backward through the gates: passive takes m, h, n as given (V's backward is the "
                                    "membrane at the present conductances, each sub-step's factor exp(-delta g / C_m) <= 1); "
                                    "exact differentiates the rates alpha(V), beta(V) as written")

    def initial_state(self, batch_shape, device, dtype):
        v = torch.full(tuple(batch_shape), self.params.v_init, device=device, dtype=dtype)
        (an, bn), (am, bm), (ah, bh) = rates(v)
        return HHState(v, am / (am + bm), ah / (ah + bh), an / (an + bn))

    def step(self, current, state):
        grad = torch.is_grad_enabled() and any(x.requires_grad for x in (current, *state))
        if hh_kernel.applies(self.spike_fn, current, state, grad, self.params.gate_grad == "passive"):
            z, *rest = hh_kernel.fused_step(current, state, kernel_model(self.params, self.dt), self.spike_fn, grad)
            return z, HHState(*rest)
        return hh_step(current, state, self.params, self.dt, self.spike_fn)

    def operating_range(self) -> OperatingRange:
        """Drive: the rheobase of repetitive firing of the standard parameters at this temperature
        (:func:`rheobase` of phi; 6.25 µA/cm² at 6.3 °C, 8.03 at 18.5 °C); adaptation: what each further
        spike costs (:func:`spike_cost`), both scaled by ``1 / r``; the spike threshold is ``v_th``."""
        p = self.params
        phi = temperature_factor(p.temperature, p.q10)
        return OperatingRange(p.v_init, p.v_th, rheobase(phi) / p.r, adaptation=spike_cost(phi) / p.r)
