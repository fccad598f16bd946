"""Neuron models against closed forms and the published behaviour of their parameter sets."""

from __future__ import annotations

import math

import pytest
import torch

from snnrun.errors import ConfigError
from snnrun.neurons import NEURONS
from snnrun.surrogate import build_surrogate


def make(node, shape=(1,), dt=0.1, spike_fn=None):
    return NEURONS.build(node, "neuron", shape=shape, dt=dt, spike_fn=spike_fn)


def simulate(neuron, current, steps, record=("v",)):
    """Constant (or per-neuron) ``current`` for ``steps`` steps; returns spikes [T, N] and traces."""
    current = torch.as_tensor(current, dtype=torch.float64).reshape(1, 1, -1).expand(steps, 1, -1)
    neuron.double()
    spikes, traces = neuron(current, record)
    return spikes[:, 0], {k: v[:, 0] for k, v in traces.items()}


def spike_times(spikes, dt):
    return [t * dt for t in torch.nonzero(spikes.flatten()).flatten().tolist()]


@pytest.mark.parametrize("integration", ["euler", "exact"])
def test_lif_interspike_interval_matches_closed_form(integration):
    dt, tau, ri, v_th = 0.05, 20.0, 1.5, 1.0
    neuron = make({"name": "lif", "tau_m": tau, "integration": integration}, dt=dt)
    spikes, _ = simulate(neuron, ri, int(200 / dt))
    times = spike_times(spikes, dt)
    expected = tau * math.log(ri / (ri - v_th))  # 21.97 ms
    assert len(times) >= 5
    for a, b in zip(times, times[1:]):
        assert abs((b - a) - expected) <= dt + 1e-9


def test_lif_exact_integration_is_exact():
    dt, tau = 1.0, 10.0
    neuron = make({"name": "lif", "tau_m": tau, "integration": "exact", "v_th": 100.0}, dt=dt)
    _, traces = simulate(neuron, 2.0, 30)
    t = torch.arange(1, 31, dtype=torch.float64) * dt
    torch.testing.assert_close(traces["v"][:, 0], 2.0 * (1 - torch.exp(-t / tau)))


def test_if_spike_count():
    neuron = make({"name": "if", "tau_m": 1.0}, dt=1.0)
    spikes, _ = simulate(neuron, 0.3, 100)  # 0.3, 0.6, 0.9, 1.2 -> a spike every 4 steps
    assert spikes.sum().item() == 25
    assert spike_times(spikes, 1.0)[:3] == [3.0, 7.0, 11.0]


def test_ifsoftreset_keeps_the_overshoot():
    neuron = make({"name": "ifsoftreset", "tau_m": 1.0}, dt=1.0)
    spikes, traces = simulate(neuron, 0.7, 10)  # 0.7, 1.4->0.4, 1.1->0.1, 0.8, 1.5->0.5 ...
    assert spikes[:5, 0].tolist() == [0, 1, 1, 0, 1]
    assert traces["v"][1, 0].item() == pytest.approx(0.4)


def test_refractory_counting():
    neuron = make({"name": "lif", "tau_m": 5.0, "refractory": 3.0}, dt=1.0)
    spikes, traces = simulate(neuron, 100.0, 40)  # fires whenever allowed: every 1 + 3 steps
    assert spike_times(spikes, 1.0)[:4] == [0.0, 4.0, 8.0, 12.0]
    assert spikes.sum().item() == 10
    assert traces["v"][1:4, 0].tolist() == [0.0, 0.0, 0.0]  # held at v_reset while refractory


def test_lif_rate_does_not_depend_on_dt():
    rates = []
    for dt in (0.1, 0.05, 0.025):
        spikes, _ = simulate(make({"name": "lif", "tau_m": 20.0}, dt=dt), 1.5, int(300 / dt))
        rates.append(spikes.sum().item() / 0.3)
    assert max(rates) - min(rates) <= 0.05 * max(rates)


def test_qif_rheobase():
    p = {"name": "qif"}
    rheobase = 0.04 * (-50.0 + 65.0) ** 2 / 4  # a0 (v_c - v_rest)^2 / 4 = 2.25 mV
    spikes, _ = simulate(make(p, shape=(2,)), [rheobase * 0.95, rheobase * 1.1], 20000)  # 2 s at dt 0.1
    below, above = spikes.sum(0).tolist()
    assert below == 0 and above >= 3


def test_izhikevich_regular_vs_fast_spiking():
    dt, steps = 0.25, 4000  # 1 s at I = 10
    rs, _ = simulate(make({"name": "izh", "preset": "RS"}, dt=dt), 10.0, steps)
    fs, _ = simulate(make({"name": "izh", "preset": "FS"}, dt=dt), 10.0, steps)
    rs_rate, fs_rate = rs.sum().item(), fs.sum().item()
    assert 5 <= rs_rate <= 40  # regular spiking adapts to a low tonic rate (Izhikevich 2003, Fig. 2)
    assert fs_rate >= 2.5 * rs_rate  # fast spiking: high frequency without adaptation
    rs_isi = torch.diff(torch.tensor(spike_times(rs, dt)))
    fs_isi = torch.diff(torch.tensor(spike_times(fs, dt)))
    assert rs_isi[-1] > 1.5 * rs_isi[0]  # RS adapts
    assert fs_isi[-1] / fs_isi[0] < rs_isi[-1] / rs_isi[0]  # FS adapts less than RS


def test_izhikevich_steps_v_in_two_half_steps_as_the_published_code():
    """At dt = 1 ms v takes two 0.5 ms Euler half steps with u held, then u one step from the new v
    (Izhikevich 2003, Fig. 3 code); a spiking neuron resets to c and u, read with v capped at v_peak, jumps by d."""
    from snnrun.neurons.nonlinear import IzhState, izh_step
    from snnrun.surrogate import Heaviside

    p = NEURONS.get("izh").Params()
    a, b, c, d = 0.02, 0.2, -65.0, 8.0  # RS
    g = torch.Generator().manual_seed(0)
    v = -75 + 40 * torch.rand(200, generator=g, dtype=torch.float64)
    u = b * v + torch.randn(200, generator=g, dtype=torch.float64)
    current = 30 * torch.rand(200, generator=g, dtype=torch.float64)
    z, new = izh_step(current, IzhState(v, u), p, 1.0, Heaviside())
    half = v + 0.5 * (0.04 * v ** 2 + 5 * v + 140 - u + current)  # the paper's loop
    full = torch.where(half >= 30, half, half + 0.5 * (0.04 * half ** 2 + 5 * half + 140 - u + current))
    u_paper = u + a * (b * full.clamp(max=30.0) - u)
    fired = full >= 30
    assert 0 < int(fired.sum()) < 200 and torch.equal(z.bool(), fired)
    torch.testing.assert_close(new.v[~fired], full[~fired], rtol=1e-12, atol=1e-12)
    assert torch.all(new.v[fired] == c)
    torch.testing.assert_close(new.u, u_paper + d * fired.double(), rtol=1e-12, atol=1e-12)
    # substep: 1.0 is the plain one-step Euler of v
    p1 = NEURONS.get("izh").Params(substep=1.0)
    _, one = izh_step(current, IzhState(v, u), p1, 1.0, Heaviside())
    euler = v + (0.04 * v ** 2 + 5 * v + 140 - u + current)
    keep = euler < 30
    torch.testing.assert_close(one.v[keep], euler[keep], rtol=1e-12, atol=1e-12)


def test_izhikevich_half_steps_keep_inhibition_from_making_spikes():
    """One 1 ms Euler step overshoots below -75 mV: an inhibitory pulse rebounds into a spike. The
    paper's half steps do not, and their f-I points at dt = 1 ms stay within 10 % of dt = 0.05 ms."""
    pulse = torch.zeros(30, 1, 3, dtype=torch.float64)
    pulse[5, 0] = torch.tensor([-20.0, -30.0, -45.0])
    single = make({"name": "izh", "substep": 1.0}, shape=(3,), dt=1.0).double()
    assert single(pulse)[0].sum() > 0  # the artefact the half steps remove
    assert make({"name": "izh"}, shape=(3,), dt=1.0).double()(pulse)[0].sum() == 0
    amplitudes = [5.0, 10.0, 20.0, 40.0]
    coarse, _ = simulate(make({"name": "izh"}, shape=(4,), dt=1.0), amplitudes, 1000)
    fine, _ = simulate(make({"name": "izh"}, shape=(4,), dt=0.05), amplitudes, 20000)
    for got, want in zip(coarse.sum(0).tolist(), fine.sum(0).tolist()):
        assert abs(got - want) <= 0.1 * want


def test_izhikevich_reset_carries_no_gradient():
    """v is selected at the reset and u jumps by d times the detached spike: u's gradient does not
    depend on the surrogate, only on the Euler path of v."""
    from snnrun.neurons.nonlinear import IzhState, izh_step

    p = NEURONS.get("izh").Params()
    v = torch.tensor([-60.0, -45.0, -20.0, 10.0], dtype=torch.float64)
    state = IzhState(v, 0.2 * v)
    grads = []
    for name in ("atan", "sigmoid"):
        current = torch.full((4,), 15.0, dtype=torch.float64, requires_grad=True)
        z, new = izh_step(current, state, p, 1.0, build_surrogate({"name": name}))
        assert 0 < z.sum() < 4
        grads.append(torch.autograd.grad(new.u.sum(), current)[0])
    torch.testing.assert_close(grads[0], grads[1])


def test_izhikevich_stable_quadratic_grad_bounds_the_upstroke():
    """``quadratic_grad: stable`` leaves the forward as it is and keeps the gradient of v through a
    step at most 1 per sub-step in the upstroke (v > −62.5 mV), where ``exact`` amplifies it; below
    −62.5 mV both give the same gradient."""
    from dataclasses import replace

    from snnrun.neurons.nonlinear import IzhState, izh_step

    spike_fn = build_surrogate({"name": "atan"})
    stable = NEURONS.get("izh").Params()
    exact = replace(stable, quadratic_grad="exact")
    assert stable.quadratic_grad == "stable"
    v0 = torch.tensor([-80.0, -70.0, -58.0, -50.0, -45.0], dtype=torch.float64)
    results = {}
    for name, p in (("stable", stable), ("exact", exact)):
        v = v0.clone().requires_grad_(True)
        z, new = izh_step(torch.zeros(5, dtype=torch.float64), IzhState(v, 0.2 * v0), p, 1.0, spike_fn)
        results[name] = (z.detach(), new.v.detach(), torch.autograd.grad(new.v.sum(), v)[0])
    assert torch.equal(results["stable"][0], results["exact"][0]) and torch.equal(results["stable"][1], results["exact"][1])
    assert results["stable"][0].sum() == 0  # no spike: the gradient is the Euler path's
    g_stable, g_exact = results["stable"][2], results["exact"][2]
    torch.testing.assert_close(g_stable[:2], g_exact[:2])
    assert (g_stable[2:] == 1.0).all()  # min(0.08 v + 5, 0) = 0 in the upstroke: each half step passes it as is
    assert (g_exact[2:] > 1.3).all()


def test_adex_spike_frequency_adaptation():
    dt = 0.1
    spikes, traces = simulate(make({"name": "adex"}, dt=dt), 1.0, int(600 / dt), record=("v", "w"))
    isi = torch.diff(torch.tensor(spike_times(spikes, dt)))
    assert len(isi) >= 4
    assert isi[-1] > 1.5 * isi[0]  # intervals lengthen as w builds up (Brette & Gerstner 2005, Fig. 2)
    assert traces["w"][-1, 0] > 0.0805 * 3  # several spike-triggered jumps of b
    quiet, _ = simulate(make({"name": "adex"}, dt=dt), 0.2, int(300 / dt))
    assert quiet.sum().item() == 0  # below rheobase


def test_hodgkin_huxley_rheobase_for_repetitive_firing():
    dt, amplitudes = 0.025, [5.5, 6.0, 7.0]  # one neuron per amplitude, at the paper's 6.3 °C
    neuron = make({"name": "hh", "temperature": 6.3}, shape=(3,), dt=dt)
    spikes, _ = simulate(neuron, amplitudes, int(220 / dt))
    late = spikes[int(120 / dt):].sum(0).tolist()  # after the onset transient
    assert late[0] == 0 and late[1] == 0
    assert late[2] >= 5  # tonic firing (~70 Hz) just above the rheobase (~6.2 uA/cm^2)


@pytest.mark.parametrize("temperature", [6.3, 18.5])
def test_hodgkin_huxley_spike_shape(temperature):
    dt = 0.02
    spikes, traces = simulate(make({"name": "hh", "temperature": temperature}, dt=dt), 10.0, int(40 / dt))
    v = traces["v"][:, 0]
    assert spikes.sum().item() >= 2
    assert 20 < v.max().item() < 50 and v.min().item() < -70  # overshoot and after-hyperpolarisation


def test_hodgkin_huxley_counts_the_smaller_spikes_of_strong_input():
    """Under strong input the spikes keep their rate but lose amplitude (6.3 °C, 100 µA/cm²: peaks near
    −15 mV after the first): the default −40 mV threshold counts each; a 0 mV threshold only the first."""
    dt, steps = 0.01, 5000
    counts = {}
    for v_th in (-40.0, 0.0):
        spikes, traces = simulate(make({"name": "hh", "temperature": 6.3, "v_th": v_th}, dt=dt), 100.0, steps)
        counts[v_th] = int(spikes.sum())
    v = traces["v"][:, 0]
    peaks = ((v[1:-1] > v[:-2]) & (v[1:-1] >= v[2:]) & (v[1:-1] > -40)).sum().item()  # local maxima above −40 mV
    assert counts[-40.0] == peaks >= 4 and counts[0.0] == 1


def _glif_step(level, v_before=-50.5, current=1.0, **extra):
    neuron = make({"name": "glif", "level": level, **extra}, dt=1.0).double()
    state = neuron.initial_state((1, 1), "cpu", torch.float64)
    state = state._replace(v=torch.full((1, 1), v_before, dtype=torch.float64))
    z, after = neuron.step(torch.full((1, 1), current, dtype=torch.float64), state)
    p = neuron.params
    v_int = v_before + 1.0 / p.c_m * (current - (v_before - p.e_l) / p.r_m)
    return z.item(), after, v_int, p


def test_glif_reset_rules():
    z, after, _, p = _glif_step(1)
    assert z == 1 and after.v.item() == p.v_reset and after.theta_s.item() == 0
    z, after, v_int, p = _glif_step(2)
    assert z == 1
    assert after.v.item() == pytest.approx(p.e_l + p.f_v * (v_int - p.e_l) + p.delta_v)
    assert after.theta_s.item() == pytest.approx(p.delta_theta_s)
    z, after, _, p = _glif_step(3)
    assert after.asc1.item() == pytest.approx(p.asc_amps[0]) and after.asc2.item() == pytest.approx(p.asc_amps[1])
    assert after.v.item() == p.v_reset
    z, after, _, _ = _glif_step(1, v_before=-60.0)
    assert z == 0


def test_glif_spike_threshold_rises_then_decays():
    dt = 0.1
    spikes, traces = simulate(make({"name": "glif", "level": 5}, dt=dt), 0.35, int(400 / dt),
                              record=("v", "theta_s", "theta_v"))
    isi = torch.diff(torch.tensor(spike_times(spikes, dt)))
    assert len(isi) >= 3 and isi[-1] > isi[0]
    assert traces["theta_s"].max() > 0 and traces["theta_v"].max() > 0


def test_alif_threshold_adapts():
    lif, _ = simulate(make({"name": "lif", "tau_m": 20.0, "reset": "soft"}, dt=1.0), 2.0, 1000)
    alif, traces = simulate(make({"name": "alif", "tau_m": 20.0, "beta": 10.0}, dt=1.0), 2.0, 1000, record=("a",))
    assert 0 < alif.sum() < 0.8 * lif.sum()
    isi = torch.diff(torch.tensor(spike_times(alif, 1.0)))
    assert isi[-1] > isi[0]
    first = int(torch.nonzero(alif.flatten())[0])
    rho = math.exp(-1.0 / 200.0)
    assert traces["a"][first, 0].item() == pytest.approx(1 - rho)


def test_diehl_cook_threshold_and_refractoriness():
    neuron = make({"name": "diehlandcook"}, shape=(1,), dt=1.0).double()
    neuron.train()
    spikes, traces = simulate(neuron, 20.0, 30, record=("v", "theta"))  # a 20 mV jump every step
    times = spike_times(spikes, 1.0)
    assert times[:3] == [0.0, 6.0, 12.0]  # spike, then 5 ms refractory
    assert traces["theta"][-1, 0].item() == pytest.approx(0.05 * len(times), rel=1e-5)
    neuron.reset()
    assert neuron.theta.item() == pytest.approx(0.05 * len(times), rel=1e-5)  # θ survives the sample reset
    neuron.eval()
    neuron.reset()
    simulate(neuron, 20.0, 30)
    assert neuron.theta.item() == pytest.approx(0.05 * len(times), rel=1e-5)  # frozen in evaluation


def test_clif_synaptic_current_decays_exactly():
    neuron = make({"name": "clif", "tau_syn": 5.0, "v_th": 100.0}, dt=1.0).double()
    current = torch.zeros(20, 1, 1, dtype=torch.float64)
    current[0] = 1.0
    _, traces = neuron(current, ("i_syn", "v"))
    t = torch.arange(20, dtype=torch.float64)
    torch.testing.assert_close(traces["i_syn"][:, 0, 0], torch.exp(-t / 5.0))
    assert traces["v"][1, 0, 0] > traces["v"][0, 0, 0] > 0


def test_plif_learns_its_time_constant():
    neuron = make({"name": "plif", "tau_m": 4.0}, shape=(5,), dt=1.0, spike_fn=build_surrogate({"name": "atan"}))
    assert neuron.tau_m.item() == pytest.approx(4.0)
    spikes, _ = neuron(torch.rand(10, 3, 5) * 3)
    spikes.sum().backward()
    assert neuron.w.grad is not None and neuron.w.grad.abs().item() > 0
    with pytest.raises(ConfigError, match="neuron.tau_m: plif needs tau_m > dt"):
        make({"name": "plif", "tau_m": 0.5}, dt=1.0)


@pytest.mark.parametrize("name", NEURONS.names(aliases=False))
def test_every_model_trains_with_surrogate_gradients(name):
    dt = 0.1 if name in ("hh", "adex", "izh", "qif", "glif") else 1.0
    neuron = make({"name": name}, shape=(4,), dt=dt, spike_fn=build_surrogate({"name": "atan"}))
    drive = {"hh": 20.0, "adex": 2.0, "izh": 20.0, "qif": 30.0, "glif": 1.0, "diehlandcook": 30.0}.get(name, 3.0)
    x = torch.full((50, 2, 4), drive, requires_grad=True)
    out, _ = neuron(x)
    assert out.shape == (50, 2, 4) and torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_alif_soft_reset_subtracts_the_adaptive_threshold():
    neuron = make({"name": "alif", "tau_m": 10.0, "beta": 2.0, "v_th": 1.0}, dt=1.0).double()
    state = neuron.initial_state((1, 1), "cpu", torch.float64)
    state = state._replace(v=torch.full((1, 1), 1.5, dtype=torch.float64), a=torch.full((1, 1), 0.1, dtype=torch.float64))
    z, after = neuron.step(torch.full((1, 1), 3.0, dtype=torch.float64), state)
    v_int = 1.5 + 0.1 * (-1.5 + 3.0)  # 1.65 > A = 1 + 2 * 0.1 = 1.2
    rho = math.exp(-1.0 / 200.0)
    assert z.item() == 1
    assert after.v.item() == pytest.approx(v_int - 1.2)
    assert after.a.item() == pytest.approx(rho * 0.1 + (1 - rho))


# --- the pure step is the reference ---------------------------------------------------------------

#: learned parameters a pure step takes explicitly (by name); every other model has none
LEARNED = {"plif": ("w",)}
DT = {"hh": 0.1, "adex": 0.1, "izh": 0.1, "qif": 0.5, "glif": 0.1}
DRIVE = {"hh": 20.0, "adex": 20.0, "izh": 20.0, "qif": 60.0, "glif": 1.0, "diehlandcook": 30.0}


def pure_step(name):
    """``<name>_step`` of the module that defines the model's class."""
    import sys
    return getattr(sys.modules[NEURONS.get(name).__module__], f"{name}_step")


@pytest.mark.parametrize("name", NEURONS.names(aliases=False))
def test_pure_step_equals_the_module_forward(name):
    """Each model's ``<model>_step``, called with params, dt and spike_fn (and its learned
    parameters) only, gives the module's ``forward`` spikes, final state and gradients."""
    import copy
    import inspect

    step = pure_step(name)
    sig = list(inspect.signature(step).parameters.values())
    assert [a.name for a in sig[:5]] == ["current", "state", "p", "dt", "spike_fn"]
    assert all(a.default is not inspect.Parameter.empty or a.name in LEARNED.get(name, ()) for a in sig[5:])

    node = {"name": name, "refractory": 2.0} if name in ("alif", "clif") else {"name": name}
    dt = DT.get(name, 1.0)
    neuron = make(node, shape=(7,), dt=dt, spike_fn=build_surrogate({"name": "atan"})).double()
    assert {n for n, _ in neuron.named_parameters()} == set(LEARNED.get(name, ()))
    buffers = {n: b.clone() for n, b in neuron.named_buffers()}
    g = torch.Generator().manual_seed(7)
    current = DRIVE.get(name, 3.0) * 2 * torch.rand(50, 4, 7, generator=g, dtype=torch.float64)

    # the pure loop: a copy of the params, a fresh surrogate; the module only gives the initial state
    x_pure = current.clone().requires_grad_(True)
    params, spike_fn = copy.deepcopy(neuron.params), build_surrogate({"name": "atan"})
    learned = {n: getattr(neuron, n) for n in LEARNED.get(name, ())}
    state = neuron.initial_state((4, 7), "cpu", torch.float64)
    outputs = []
    for x in x_pure.unbind(0):
        z, state = step(x, state, params, dt, spike_fn, **learned)
        outputs.append(z)
    pure = torch.stack(outputs)
    assert neuron.state is None and params == neuron.params  # the module and its params untouched
    assert all(torch.equal(b, buffers[n]) for n, b in neuron.named_buffers())
    if name != "leaky":
        assert 0 < pure.sum() < pure.numel()  # spiking and silent steps both exercised

    x_mod = current.clone().requires_grad_(True)
    out, _ = neuron(x_mod)
    assert torch.equal(out, pure)
    assert type(neuron.state) is type(state)
    for field in state._fields:  # the hh kernel agrees with hh_step to rounding (tests/kernels/test_hh.py)
        if type(neuron).kernel == "hh":
            torch.testing.assert_close(getattr(neuron.state, field), getattr(state, field), rtol=1e-9, atol=1e-9)
        else:
            assert torch.equal(getattr(neuron.state, field), getattr(state, field)), field
    w = torch.linspace(-1.0, 2.0, out.numel(), dtype=torch.float64).reshape(out.shape)
    grads = []
    for y, s, x in ((pure, state, x_pure), (out, neuron.state, x_mod)):
        # the fused LIF scan's final v carries no graph (its gradients flow through the spikes)
        loss = (y * w).sum() + (0 if type(neuron).fused_scan else s[0].sum())
        grads.append(torch.autograd.grad(loss, [x, *learned.values()]))
    for a, b in zip(*grads):  # the fused scan's backward agrees to rounding
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_diehl_cook_one_spike_keeps_the_furthest_above_threshold():
    """``one_spike``: per sample and step only the largest margin ``v − (v_th + θ)`` outputs a spike;
    every crossing neuron still resets, raises θ and turns refractory (the state is unchanged)."""
    from snnrun.neurons.adaptive import diehlandcook_step

    base = make({"name": "diehlandcook", "v_th": -60.0}, shape=(7,), dt=1.0).double()
    p_all, p_one = base.params, NEURONS.parse({"name": "diehlandcook", "v_th": -60.0, "one_spike": True}, "neuron")[1]
    assert not p_all.one_spike and p_one.one_spike
    g = torch.Generator().manual_seed(3)
    state = base.initial_state((4, 7), "cpu", torch.float64)
    several = 0
    for _ in range(40):
        x = 30.0 * torch.rand(4, 7, generator=g, dtype=torch.float64)
        z_all, s_all = diehlandcook_step(x, state, p_all, 1.0, base.spike_fn)
        z_one, s_one = diehlandcook_step(x, state, p_one, 1.0, base.spike_fn)
        for a, b in zip(s_all, s_one):
            assert torch.equal(a, b)
        assert torch.equal(z_one.sum(1), z_all.sum(1).clamp(max=1)) and bool((z_one <= z_all).all())
        v = p_all.v_rest + (state.v - p_all.v_rest) * math.exp(-1.0 / p_all.tau_m) + x
        margin = torch.where(z_all > 0, v - (p_all.v_th + state.theta * math.exp(-1.0 / p_all.tau_theta)), -math.inf)
        rows = z_all.sum(1) > 0
        assert torch.equal(z_one[rows].argmax(1), margin[rows].argmax(1))
        several += int((z_all.sum(1) > 1).sum())
        state = s_all
    assert several > 0  # the test saw steps where several neurons crossed


SPIKING = [n for n in NEURONS.names(aliases=False) if NEURONS.get(n).spiking]
NO_LEAK = ("if", "ifsoftreset")


@pytest.mark.parametrize("name", SPIKING)
def test_operating_range_drive_is_the_threshold_current(name):
    """Below its declared drive a model stays at rest (after any onset transient); above it, it fires.
    Models without leak (IF) reach threshold from rest in one membrane time constant at the drive."""
    dt = 0.05 if name in ("hh", "adex", "izh", "qif", "glif") else 0.1
    neuron = make({"name": name}, shape=(2,), dt=dt)
    rng = neuron.operating_range()
    assert rng.drive > 0 and rng.span > 0
    if name in NO_LEAK:
        tau = neuron.params.tau_m
        spikes, _ = simulate(neuron, [0.99 * rng.drive, 1.01 * rng.drive], int(1.02 * tau / dt))
        assert spikes[:, 0].sum() == 0 and spikes[:, 1].sum() == 1
        return
    steps = int(300 / dt)
    spikes, _ = simulate(neuron, [0.9 * rng.drive, 1.5 * rng.drive], steps)
    late = spikes[steps // 2:]  # HH (and adaptation) may fire once at the onset below rheobase
    assert late[:, 0].sum() == 0, f"{name} fires at 0.9 x its drive {rng.drive:.4g}"
    assert late[:, 1].sum() >= 1, f"{name} is silent at 1.5 x its drive {rng.drive:.4g}"


@pytest.mark.parametrize("name", ["izh", "adex", "qif", "hh", "glif", "diehlandcook"])
def test_surrogate_sees_the_distance_to_threshold_in_units_of_the_span(name):
    """mV models get a usable surrogate gradient from rest: d spikes / d current is not ~0."""
    neuron = make({"name": name}, dt=1.0, spike_fn=build_surrogate({"name": "atan", "alpha": 2.0}))
    rng = neuron.operating_range()
    current = torch.full((1, 1), 0.5 * rng.drive, dtype=torch.float64, requires_grad=True)
    neuron.double()
    z, state = neuron.step(current, neuron.initial_state((1, 1), "cpu", torch.float64))
    (dz,) = torch.autograd.grad(z.sum(), current, retain_graph=True)
    (dv,) = torch.autograd.grad(state.v.sum(), current)
    # z = spike_fn((v - v_th) / span): dz/dv * span is atan's derivative about one span below threshold
    assert z.item() == 0 and (dz / dv).item() * rng.span > 0.05


def test_kaiming_weights_are_scaled_to_the_target_drive():
    """The same network config drives a dimensionless LIF and an AdEx in nA: kaiming init x drive."""
    from snnrun.network import build_network

    net = {"dt": 1.0, "duration": 5.0, "populations": {"inp": {}, "a": {"shape": 8},
                                                      "b": {"shape": 8, "neuron": {"name": "adex"}}},
           "projections": {"inp_a": {"source": "inp", "target": "a"},
                           "inp_b": {"source": "inp", "target": "b"},
                           "a_b": {"source": "a", "target": "b", "synapse": {"name": "dense", "init": "uniform"}}},
           "output": "b"}
    torch.manual_seed(0)
    built = build_network(net, {"name": "lif"}, (64,))
    drive = built.populations["b"].neuron.operating_range().drive
    assert abs(drive - 0.6267) < 1e-3
    bound = 1 / math.sqrt(64)
    assert built.projections["inp_a"].stages[0].weight.abs().max() <= bound
    w_b = built.projections["inp_b"].stages[0].weight
    assert bound * drive * 0.9 < w_b.abs().max() <= bound * drive
    w_ab = built.projections["a_b"].stages[0].weight  # an explicit init is taken as given
    assert 0.5 < w_ab.max() <= 1.0


def test_hodgkin_huxley_is_stable_and_accurate_at_the_network_default_dt():
    """At 6.3 °C and dt = 1 ms, sub-steps of 0.25 ms give the f-I points of a 0.025 ms simulation within 4 %
    or one spike: no NaN, no depolarisation block; sub-steps of 0.1 ms give the same counts."""
    amplitudes = [3.0, 6.5, 10.0, 20.0, 50.0]
    squid = {"name": "hh", "temperature": 6.3}
    coarse, traces = simulate(make({**squid, "substep": 0.25}, shape=(5,), dt=1.0), amplitudes, 300)
    fine, _ = simulate(make(squid, shape=(5,), dt=0.025), amplitudes, 300 * 40)
    assert torch.isfinite(traces["v"]).all()
    for got, want in zip(coarse.sum(0).tolist(), fine.sum(0).tolist()):
        assert abs(got - want) <= max(1.0, 0.04 * want), (coarse.sum(0), fine.sum(0))
    assert fine.sum(0)[0] <= 1 and fine.sum(0)[1] >= 10  # below (an onset spike at most) and above the rheobase
    finer, _ = simulate(make({**squid, "substep": 0.1}, shape=(5,), dt=1.0), amplitudes, 300)
    assert finer.sum(0).tolist() == fine.sum(0).tolist()


# --- escape noise (stochastic threshold) ------------------------------------------------------------

#: the models whose Params have the escape-noise option (every user of threshold_and_reset)
ESCAPE = [n for n in NEURONS.names(aliases=False) if hasattr(NEURONS.get(n).Params, "escape_noise")]


def test_escape_noise_is_an_option_of_the_threshold_and_reset_family():
    assert {"lif", "if", "ifsoftreset", "plif", "clif", "alif", "diehlandcook"} <= set(ESCAPE)
    for name in ESCAPE:
        p = NEURONS.get(name).Params()
        assert (p.escape_noise, p.rho_0, p.delta_u) == (False, 1.0, 0.1)
    with pytest.raises(ConfigError, match="neuron.delta_u"):
        make({"name": "lif", "escape_noise": True, "delta_u": 0.0})


@pytest.mark.parametrize("dt, v", [(1.0, 0.7), (1.0, 1.0), (0.5, 1.15), (0.1, 1.4)])
def test_escape_noise_fires_with_probability_one_minus_exp_rho_dt(dt, v):
    """For a fixed v the spike probability of one step is ``1 − exp(−ρ dt)``, ρ = ρ_0 exp((v − v_th)/Δu)."""
    from snnrun.neurons.lif import LIFState, lif_step

    rho_0, delta_u, n = 0.2, 0.25, 200_000
    p = NEURONS.get("lif").Params(escape_noise=True, rho_0=rho_0, delta_u=delta_u, tau_m=10.0)
    v_int = v + dt / 10.0 * (-v + 1.0)  # one Euler step with input 1 (r = 1)
    expected = 1 - math.exp(-rho_0 * math.exp((v_int - 1.0) / delta_u) * dt)
    torch.manual_seed(0)
    state = LIFState(torch.full((n,), v, dtype=torch.float64), torch.zeros(n, dtype=torch.int32))
    z, after = lif_step(torch.ones(n, dtype=torch.float64), state, p, dt, build_surrogate({"name": "heaviside"}))
    sigma = math.sqrt(expected * (1 - expected) / n)
    assert abs(z.mean().item() - expected) < 4 * sigma
    assert set(z.unique().tolist()) <= {0.0, 1.0}
    # the drawn spikes reset (hard reset to v_reset = 0); the others keep the integrated v
    assert torch.equal(after.v, torch.where(z > 0, torch.zeros_like(after.v), torch.full_like(after.v, v_int)))


def test_escape_noise_off_is_the_deterministic_threshold_bit_for_bit():
    """Off (the default), the step is today's ``v ≥ v_th`` with a hard reset, bit for bit, whatever
    rho_0 and delta_u say, and no random number is drawn."""
    g = torch.Generator().manual_seed(3)
    current = 3.0 * torch.rand(80, 5, 6, generator=g)
    neuron = make({"name": "lif", "tau_m": 8.0, "rho_0": 5.0, "delta_u": 0.01}, shape=(6,), dt=1.0)
    rng = torch.get_rng_state()
    out, _ = neuron(current)
    step_by_step = make({"name": "lif", "tau_m": 8.0}, shape=(6,), dt=1.0)
    stepped = torch.stack([step_by_step.forward_step(x) for x in current])
    assert torch.equal(torch.get_rng_state(), rng)
    v, ref = torch.zeros(5, 6), []
    for x in current:  # the LIF of before the option: forward Euler, v >= v_th, hard reset
        v = v + 1.0 / 8.0 * (-(v - 0.0) + 1.0 * x)
        z = (v >= 1.0).to(v.dtype)
        v = v * (1 - z) + 0.0 * z
        ref.append(z)
    assert torch.equal(out, torch.stack(ref)) and torch.equal(stepped, out)
    assert torch.equal(neuron.state.v, v)
    assert 0 < out.sum() < out.numel()


def test_escape_noise_never_takes_the_fused_scan_and_repeats_with_the_seed():
    current = torch.full((60, 3, 40), 0.9)
    node = {"name": "lif", "tau_m": 10.0, "escape_noise": True, "rho_0": 0.1, "delta_u": 0.1}
    runs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        neuron = make(node, shape=(40,), dt=1.0)
        out, _ = neuron(current)
        assert neuron.spike_counts is None  # the fused scan counts spikes on its way; it did not run
        runs.append(out)
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    # 0.9 steady drive stays below v_th = 1: a deterministic LIF is silent, the noisy one fires
    assert make({**node, "escape_noise": False}, shape=(40,), dt=1.0)(current)[0].sum() == 0
    assert runs[0].sum() > 100


@pytest.mark.parametrize("name", ESCAPE)
def test_escape_noise_in_every_model_of_the_family(name):
    """Each model draws its spikes when the option is on (random, seeded), and a surrogate gradient
    still flows (straight-through: the forward value is the drawn spike)."""
    dt = DT.get(name, 1.0)
    drive = {"diehlandcook": 0.3}.get(name, 3.0)  # D&C: jumps of r·I mV, ~13 mV above rest in steady state
    p = NEURONS.get(name).Params()
    node = {"name": name, "escape_noise": True, "rho_0": 0.5, "delta_u": 0.5 * (p.v_th - p.v_rest)}
    outs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        neuron = make(node, shape=(16,), dt=dt, spike_fn=build_surrogate({"name": "atan"}))
        x = (0.5 * drive * torch.ones(40, 2, 16)).requires_grad_(True)
        out, _ = neuron(x)
        out.sum().backward()
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
        outs.append(out.detach())
    assert outs[0].sum() > 0 and not torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("name,adaptation,factor", [
    ("izh", 8.0, 3.0),                      # d = 8 on the RS rheobase 4
    ("adex", 0.0805, 1.1284),               # b = 0.0805 nA on 0.6267 nA
    ("glif", 0.08, 1.4),                    # δθ_s / R = 0.02 nA + |A_1| + |A_2| = 0.06 nA on 0.2 nA
    ("alif", 1.8 * (1 - math.exp(-1 / 200)), 1 + 1.8 * (1 - math.exp(-1 / 200))),
    ("diehlandcook", 0.05 * (1 - math.exp(-1 / 100)), 1 + 0.05 / 13),
    ("lif", 0.0, 1.0), ("qif", 0.0, 1.0), ("if", 0.0, 1.0),
])
def test_operating_range_adaptation_and_lr_factor(name, adaptation, factor):
    """Each model's spike-triggered adaptation as the input it cancels, and κ = (drive + adaptation) / drive."""
    rng = make({"name": name}, dt=1.0).operating_range()
    assert rng.adaptation == pytest.approx(adaptation, rel=1e-3, abs=1e-12)
    assert rng.lr_factor == pytest.approx(factor, rel=1e-3)


@pytest.mark.parametrize("temperature", [6.3, 18.5])
def test_hodgkin_huxley_adaptation_is_the_input_a_further_spike_costs(temperature):
    """HH's declared adaptation is what its f–I curve over 25 ms from rest shows (dt = 0.01 ms): the rise
    from the drive to 16 drives over the spikes it adds; κ follows from it."""
    neuron = make({"name": "hh", "temperature": temperature}, shape=(2,), dt=0.01)
    rng = neuron.operating_range()
    spikes, _ = simulate(neuron, [rng.drive, 16 * rng.drive], 2500)
    n1, n16 = spikes.sum(0).tolist()
    assert n16 > n1 >= 1
    assert rng.adaptation == pytest.approx(15 * rng.drive / (n16 - n1), rel=0.02)
    assert rng.lr_factor == pytest.approx(1 + rng.adaptation / rng.drive) and rng.lr_factor > 2
    assert make({"name": "hh", "temperature": temperature, "r": 2.0}).operating_range().adaptation == \
        pytest.approx(rng.adaptation / 2)


def test_izhikevich_adaptation_is_the_extra_input_a_spike_costs():
    """The declared adaptation d/r is what the f–I curve over 25 ms shows: each further spike costs about
    d more input (RS: the 8th spike needs ≥ 10 drives more than the 1st), a LIF's only a fraction of its drive."""
    def onset_inputs(name, counts):
        neuron = make({"name": name}, shape=(4000,), dt=1.0)
        drive = neuron.operating_range().drive
        x = torch.linspace(0.5, 30.0, 4000, dtype=torch.float64) * drive
        spikes, _ = simulate(neuron, x, 25)
        n = spikes.sum(0)
        return [float(x[(n >= k).nonzero()[0]]) / drive for k in counts]

    i1, i8 = onset_inputs("izh", (1, 8))
    assert 10.0 < i8 - i1 < 7 * 3.0  # 7 spikes, each about d / drive = 2 drives more
    l1, l8 = onset_inputs("lif", (1, 8))
    assert l8 - l1 < 1.5


def test_hodgkin_huxley_passive_gate_grad_is_stable_and_leaves_the_forward():
    """``gate_grad: passive`` (default) gives the same spikes and states as ``exact``; its backward through one
    sub-step is the membrane's at fixed conductances, ∂V'/∂V = exp(−δ g / C_m) ∈ (0, 1]; ``exact`` adds the
    paths through the rates α(V), β(V)."""
    from dataclasses import replace

    from snnrun.neurons.hh import HHState, hh_step, rates

    spike_fn = build_surrogate({"name": "atan"})
    passive = NEURONS.get("hh").Params(substep=1.0)
    exact = replace(passive, gate_grad="exact")
    assert passive.gate_grad == "passive"
    v0 = torch.tensor([-70.0, -65.0, -58.0, -50.0, -40.0], dtype=torch.float64)
    (an, bn), (am, bm), (ah, bh) = rates(v0)
    gates = (am / (am + bm), ah / (ah + bh), an / (an + bn))  # m, h, n at rest values of each v
    results = {}
    for name, p in (("passive", passive), ("exact", exact)):
        v = v0.clone().requires_grad_(True)
        z, new = hh_step(torch.zeros(5, dtype=torch.float64), HHState(v, *gates), p, 1.0, spike_fn)
        results[name] = (z.detach(), [s.detach() for s in new], torch.autograd.grad(new.v.sum(), v)[0])
    assert torch.equal(results["passive"][0], results["exact"][0])
    assert all(torch.equal(a, b) for a, b in zip(results["passive"][1], results["exact"][1]))
    # the expected passive factor: the gates after one 1 ms sub-step, g = ḡ_Na m³h + ḡ_K n⁴ + g_L
    n1, m1, h1 = (x_inf + (x - x_inf) * torch.exp(-1.0 * (a + b)) for x, (a, b), x_inf in zip(
        (gates[2], gates[0], gates[1]), rates(v0), (an / (an + bn), am / (am + bm), ah / (ah + bh))))
    g = passive.g_na * m1 ** 3 * h1 + passive.g_k * n1 ** 4 + passive.g_l
    torch.testing.assert_close(results["passive"][2], torch.exp(-g / passive.c_m))
    assert (results["passive"][2] <= 1).all() and (results["passive"][2] > 0).all()
    assert not torch.allclose(results["exact"][2], results["passive"][2])  # exact adds the gates' dα/dV, dβ/dV
