"""Hodgkin–Huxley temperature dependence: every gating rate times phi = q10 ** ((T − 6.3) / 10)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from snnrun.neurons import NEURONS
from snnrun.neurons.hh import HHState, hh_step, rates, temperature_factor
from snnrun.surrogate import build_surrogate

V = torch.linspace(-100.0, 60.0, 321, dtype=torch.float64)  # includes the removable points −55, −40 mV


def _paper_rates(v):
    """The 6.3 °C rates (1/ms) as written in the modern convention, independently of snnrun."""
    an = torch.where((v + 55).abs() < 1e-6, torch.full_like(v, 0.1),
                     0.01 * (v + 55) / (1 - torch.exp(-(v + 55) / 10)))
    am = torch.where((v + 40).abs() < 1e-6, torch.full_like(v, 1.0),
                     0.1 * (v + 40) / (1 - torch.exp(-(v + 40) / 10)))
    return ((an, 0.125 * torch.exp(-(v + 65) / 80)), (am, 4.0 * torch.exp(-(v + 65) / 18)),
            (0.07 * torch.exp(-(v + 65) / 20), 1.0 / (1 + torch.exp(-(v + 35) / 10))))


def make(shape=(1,), dt=1.0, **params):
    return NEURONS.build({"name": "hh", **params}, "neuron", shape=shape, dt=dt).double()


def simulate(neuron, currents, steps):
    current = torch.as_tensor(currents, dtype=torch.float64).reshape(1, 1, -1).expand(steps, 1, -1)
    spikes, traces = neuron(current, ("v",))
    return spikes[:, 0], traces["v"][:, 0]


def test_the_default_is_the_temperature_of_the_papers_propagated_action_potential():
    p = NEURONS.get("hh").Params()
    assert (p.temperature, p.substep, p.v_th) == (18.5, 0.05, -40.0)
    assert temperature_factor(p.temperature) == pytest.approx(3 ** 1.22)


def test_phi_is_one_at_the_squid_temperature_and_gives_exactly_the_old_rates():
    assert temperature_factor(6.3) == 1.0 and temperature_factor(6.3, q10=2.0) == 1.0
    for got, want in zip(rates(V, temperature_factor(6.3)), _paper_rates(V)):
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-12, atol=0.0)
    for got, want in zip(rates(V, 1.0), rates(V)):
        assert all(torch.equal(g, w) for g, w in zip(got, want))
    # the step at 6.3 °C is bit for bit the step without a temperature (the model before it had one)
    p = NEURONS.get("hh").Params(temperature=6.3, substep=0.25)
    legacy = SimpleNamespace(**{k: getattr(p, k) for k in vars(p) if k not in ("temperature", "q10")})
    spike_fn = build_surrogate({"name": "atan"})
    current = torch.tensor([0.0, 5.0, 10.0, 50.0], dtype=torch.float64)
    state = make((4,), temperature=6.3).initial_state((4,), "cpu", torch.float64)
    a = b = state
    for _ in range(30):
        za, a = hh_step(current, a, p, 1.0, spike_fn)
        zb, b = hh_step(current, b, legacy, 1.0, spike_fn)
        assert torch.equal(za, zb) and all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("temperature,q10", [(0.0, 3.0), (16.0, 3.0), (20.0, 3.0), (20.0, 2.0), (26.3, 3.0)])
def test_every_rate_scales_by_phi(temperature, q10):
    phi = temperature_factor(temperature, q10)
    assert phi == pytest.approx(q10 ** ((temperature - 6.3) / 10), rel=1e-15)
    if temperature == 26.3:
        assert phi == pytest.approx(q10 ** 2)
    for scaled, base in zip(rates(V, phi), rates(V)):
        for s, b in zip(scaled, base):
            torch.testing.assert_close(s, phi * b, rtol=1e-14, atol=0.0)
    # and the step uses them: one sub-step of the gates from rest at a clamped V (huge C_m holds V)
    p = NEURONS.get("hh").Params(temperature=temperature, q10=q10, substep=0.1, c_m=1e12)
    v = torch.tensor([-65.0, -50.0, -20.0], dtype=torch.float64)
    (an, bn), (am, bm), (ah, bh) = rates(torch.full_like(v, -65.0))
    gates = (am / (am + bm), ah / (ah + bh), an / (an + bn))
    _, new = hh_step(torch.zeros(3, dtype=torch.float64), HHState(v, *gates), p, 0.1, lambda x: (x > 0).to(x.dtype))
    for x0, got, (a, b) in zip((gates[2], gates[0], gates[1]), (new.n, new.m, new.h), rates(v)):
        x_inf = a / (a + b)
        torch.testing.assert_close(got, x_inf + (x0 - x_inf) * torch.exp(-0.1 * phi * (a + b)))


@pytest.mark.parametrize("temperature", [None, 6.3, 16.0, 20.0])
def test_operating_range_drive_is_the_rheobase_of_repetitive_firing(temperature):
    """In float64 at dt = sub-step = 0.025 ms for 200 ms from rest: at 0.9 × drive at most one (onset) spike
    and none in the last 100 ms; at 1.1 × drive tonic firing (≥ 5 spikes in the last 100 ms)."""
    params = {} if temperature is None else {"temperature": temperature}
    dt, steps = 0.025, 8000
    neuron = make((2,), dt=dt, substep=dt, **params)
    drive = neuron.operating_range().drive
    spikes, v = simulate(neuron, [0.9 * drive, 1.1 * drive], steps)
    assert torch.isfinite(v).all()
    assert spikes[:, 0].sum() <= 1 and spikes[steps // 2:, 0].sum() == 0, f"fires at 0.9 x {drive:.4g}"
    assert spikes[steps // 2:, 1].sum() >= 5, f"not tonic at 1.1 x {drive:.4g}"
    assert make(r=2.0, **params).operating_range().drive == pytest.approx(drive / 2)


@pytest.mark.parametrize("temperature,substep", [(None, None), (6.3, 0.25), (20.0, 0.05)])
def test_substeps_are_stable_and_accurate_at_dt_1ms(temperature, substep):
    """At the network's dt = 1 ms: the default (18.5 °C, 0.05 ms sub-steps), 6.3 °C with 0.25 ms and 20 °C
    with 0.05 ms sub-steps stay finite and bounded for inputs from −100 to 200 µA/cm², and their spike counts over 300 ms from 0.9
    to 3 drives match sub-steps of 0.01 ms within 4 % or one spike."""
    params = {k: v for k, v in (("temperature", temperature), ("substep", substep)) if v is not None}
    default = NEURONS.get("hh").Params(**params)
    drive = make(**params).operating_range().drive
    wild = [-100.0, 0.0, 200.0]
    _, v = simulate(make((3,), **params), wild, 300)
    assert torch.isfinite(v).all() and v.abs().max() < 400
    amplitudes = [x * drive for x in (0.9, 1.1, 1.5, 2.0, 3.0)]
    coarse, v = simulate(make((5,), **params), amplitudes, 300)
    fine, _ = simulate(make((5,), **{**params, "substep": 0.01}), amplitudes, 300)
    assert torch.isfinite(v).all() and default.substep >= 0.05
    for got, want in zip(coarse.sum(0).tolist(), fine.sum(0).tolist()):
        assert abs(got - want) <= max(1.0, 0.04 * want), (coarse.sum(0), fine.sum(0))
    assert fine.sum(0)[0] <= 1 and fine.sum(0)[1] >= 10  # silent below the rheobase, tonic above


def test_strong_inhibition_cannot_overflow_the_rates_in_float32():
    """Under an input strong enough to drive V to −5000 mV, α_h(V) overflows float32 below −1839 mV; the rates
    are taken at V ≥ −1500 mV, so the gates stay at their asymptotes (m → 0, h → 1, n → 0) and nothing is NaN."""
    (an, bn), (am, bm), (ah, bh) = rates(torch.tensor([-5000.0]))
    assert torch.isinf(ah).any()  # the unguarded rate
    p = NEURONS.get("hh").Params(temperature=6.3, substep=0.25)
    state = make((3,), temperature=6.3).float().initial_state((3,), "cpu", torch.float32)
    state = state._replace(v=torch.tensor([-5000.0, -1700.0, -65.0]))
    z, new = hh_step(torch.tensor([-5000.0, -1000.0, 0.0]), state, p, 1.0, lambda x: (x > 0).to(x.dtype))
    assert all(torch.isfinite(x).all() for x in new) and z.sum() == 0
    assert new.m[0] < 1e-6 and new.h[0] > 0.99 and new.n[0] < 1e-6
