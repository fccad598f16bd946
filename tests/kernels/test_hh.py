"""The fused Hodgkin–Huxley step gives the reference hh_step's spikes, potentials and gradients."""

import pytest
import torch

from tests.conftest import compiled
from snnrun.kernels import hh as hh_kernel
from snnrun.neurons.hh import HHState, HodgkinHuxley, hh_step, kernel_model
from snnrun.surrogate import ATan, FastSigmoid, Gaussian, Rectangle, Sigmoid, Triangle

SURROGATES = [ATan(ATan.Params()), Sigmoid(Sigmoid.Params()), FastSigmoid(FastSigmoid.Params()),
              Triangle(Triangle.Params()), Rectangle(Rectangle.Params())]


def _run(p, spike_fn, current, fused, v_grad=False, dt=1.0):
    """25 steps from rest (the initial V optionally differentiable); returns the spikes, final state,
    ∂L/∂current and ∂L/∂V₀ of a loss on the spikes and the final V."""
    neuron = HodgkinHuxley(p, shape=current.shape[2:], dt=dt, spike_fn=spike_fn)
    x = current.clone().requires_grad_(True)
    state = neuron.initial_state(current.shape[1:], "cpu", current.dtype)
    v0 = state.v.clone().requires_grad_(v_grad)
    state = HHState(v0, *state[1:])
    spikes = []
    for step in x.unbind(0):
        if fused:
            z, *rest = hh_kernel.fused_step(step, state, kernel_model(p, dt), spike_fn, grad=True)
            state = HHState(*rest)
        else:
            z, state = hh_step(step, state, p, dt, spike_fn)
        spikes.append(z)
    z = torch.stack(spikes)
    w = torch.linspace(-1.0, 2.0, z.numel(), dtype=z.dtype).reshape(z.shape)
    ((z * w).sum() + 0.01 * state.v.sum()).backward()
    return z.detach(), state, x.grad, v0.grad


@pytest.mark.parametrize("spike_fn", SURROGATES, ids=lambda s: type(s).__name__)
def test_fused_step_matches_reference_in_float64(spike_fn):
    compiled(hh_kernel._EXTENSION)
    torch.manual_seed(0)
    p = HodgkinHuxley.Params()
    current = torch.rand(25, 4, 30, dtype=torch.float64) * 40 - 5  # below the rheobase to depolarisation block
    z_ref, s_ref, g_ref, gv_ref = _run(p, spike_fn, current, fused=False, v_grad=True)
    z, s, g, gv = _run(p, spike_fn, current, fused=True, v_grad=True)
    assert 0.05 < z_ref.mean() < 0.5  # spiking and silent steps both occur
    assert torch.equal(z, z_ref)
    for a, b in zip(s, s_ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(g, g_ref, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(gv, gv_ref, rtol=1e-8, atol=1e-10)
    assert g.abs().sum() > 0 and gv.abs().sum() > 0


def test_fused_step_at_the_squids_temperature_and_other_substeps():
    """6.3 °C with 0.25 ms sub-steps over dt = 0.5 ms (2 sub-steps), and dt = 1 ms with 0.3 ms (4 sub-steps)."""
    compiled(hh_kernel._EXTENSION)
    torch.manual_seed(1)
    for temperature, substep, dt in ((6.3, 0.25, 0.5), (18.5, 0.3, 1.0)):
        p = HodgkinHuxley.Params(temperature=temperature, substep=substep)
        current = torch.rand(25, 3, 20, dtype=torch.float64) * 30
        z_ref, s_ref, g_ref, _ = _run(p, SURROGATES[0], current, fused=False, dt=dt)
        z, s, g, _ = _run(p, SURROGATES[0], current, fused=True, dt=dt)
        assert z_ref.sum() > 0 and torch.equal(z, z_ref)
        torch.testing.assert_close(s.v, s_ref.v, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(g, g_ref, rtol=1e-8, atol=1e-10)


def test_fused_step_in_float32_stays_within_float32_rounding_of_float64():
    compiled(hh_kernel._EXTENSION)
    torch.manual_seed(2)
    p = HodgkinHuxley.Params()
    current = torch.rand(25, 4, 30, dtype=torch.float64) * 30
    z64, s64, _, _ = _run(p, SURROGATES[0], current, fused=False)
    z32, s32, g32, _ = _run(p, SURROGATES[0], current.float(), fused=True)
    assert z32.dtype == torch.float32 and torch.isfinite(g32).all()
    assert (z32.double() != z64).float().mean() < 0.01
    assert (s32.v.double() - s64.v).abs().median() < 1e-3


def test_which_steps_the_kernel_takes():
    compiled(hh_kernel._EXTENSION)
    x = torch.zeros(2, 3)
    state = HodgkinHuxley(HodgkinHuxley.Params(), shape=(3,)).initial_state((2, 3), "cpu", torch.float32)
    atan, gaussian = SURROGATES[0], Gaussian(Gaussian.Params())
    assert hh_kernel.applies(atan, x, state, grad=True, passive=True)
    assert not hh_kernel.applies(atan, x, state, grad=True, passive=False)  # the reference differentiates the rates
    assert not hh_kernel.applies(gaussian, x, state, grad=True, passive=True)  # not evaluated in C++
    assert hh_kernel.applies(gaussian, x, state, grad=False, passive=True)  # inference: any surrogate
    assert hh_kernel.applies(gaussian, x, state, grad=False, passive=False)
    assert not hh_kernel.applies(atan, x.half(), state, grad=False, passive=True)
    assert not hh_kernel.applies(atan, torch.zeros(2, 4), state, grad=False, passive=True)  # shapes differ


def test_neuron_without_gradients_takes_the_kernel_and_gives_the_graphs_spikes():
    compiled(hh_kernel._EXTENSION)
    torch.manual_seed(3)
    neuron = HodgkinHuxley(HodgkinHuxley.Params(), shape=(16,), spike_fn=SURROGATES[0])
    current = torch.rand(25, 4, 16, dtype=torch.float64) * 30
    hh_kernel._EXTENSION.paths.clear()
    with torch.no_grad():
        z, _ = neuron(current)
    assert hh_kernel._EXTENSION.status()["ran"] == "compiled"
    z_ref, *_ = _run(HodgkinHuxley.Params(), SURROGATES[0], current, fused=False)
    assert z.sum() > 0 and torch.equal(z, z_ref)


def _neuron_pass(p, spike_fn, current, kernel: bool):
    """The neuron's forward and backward (a loss on spikes and the final V), with the kernel on or off."""
    hh_kernel.set_enabled(kernel)
    try:
        hh_kernel._EXTENSION.paths.clear()
        neuron = HodgkinHuxley(p, shape=current.shape[2:], spike_fn=spike_fn)
        x = current.clone().requires_grad_(True)
        z, _ = neuron(x)
        w = torch.linspace(-1.0, 2.0, z.numel(), dtype=z.dtype).reshape(z.shape)
        ((z * w).sum() + 0.01 * neuron.state.v.sum()).backward()
        return z.detach(), x.grad, hh_kernel._EXTENSION.status()["ran"]
    finally:
        hh_kernel.set_enabled(True)


def test_neuron_trains_through_the_kernel_with_the_references_gradients():
    compiled(hh_kernel._EXTENSION)
    torch.manual_seed(4)
    current = torch.rand(25, 4, 16, dtype=torch.float64) * 30
    z, g, ran = _neuron_pass(HodgkinHuxley.Params(), SURROGATES[0], current, kernel=True)
    z_ref, g_ref, ran_ref = _neuron_pass(HodgkinHuxley.Params(), SURROGATES[0], current, kernel=False)
    assert (ran, ran_ref) == ("compiled", "reference")
    assert z.sum() > 0 and torch.equal(z, z_ref)
    torch.testing.assert_close(g, g_ref, rtol=1e-8, atol=1e-10)


def test_neuron_falls_back_to_the_reference_where_the_kernel_has_no_backward():
    """gate_grad: exact and a gaussian surrogate differentiate through hh_step; so do gates that carry a
    gradient (the kernel would drop it), and a state of another dtype than the current."""
    compiled(hh_kernel._EXTENSION)
    current = torch.rand(5, 2, 6, dtype=torch.float64) * 30
    assert _neuron_pass(HodgkinHuxley.Params(gate_grad="exact"), SURROGATES[0], current, True)[2] == "reference"
    assert _neuron_pass(HodgkinHuxley.Params(), Gaussian(Gaussian.Params()), current, True)[2] == "reference"
    neuron = HodgkinHuxley(HodgkinHuxley.Params(), shape=(6,), spike_fn=SURROGATES[0])
    state = neuron.initial_state((2, 6), "cpu", torch.float64)
    m = state.m.clone().requires_grad_(True)
    hh_kernel._EXTENSION.paths.clear()
    z, new = neuron.step(current[0] + 10, HHState(state.v, m, state.h, state.n))
    assert hh_kernel._EXTENSION.status()["ran"] == "reference"
    (grad_m,) = torch.autograd.grad(new.v.sum(), m)
    assert grad_m.abs().sum() > 0  # the reference passes V's gradient on to the gate
    hh_kernel._EXTENSION.paths.clear()
    neuron.step(current[0].float(), state)
    assert hh_kernel._EXTENSION.status()["ran"] == "reference"


def test_threshold_below_rest_spikes_alike_on_both_paths():
    """v_th below v_init: the surrogate's span falls back to 1 (threshold_span) on both paths, so both
    count upward crossings of v_th."""
    compiled(hh_kernel._EXTENSION)
    torch.manual_seed(5)
    p = HodgkinHuxley.Params(v_th=-70.0)
    current = torch.rand(25, 3, 10, dtype=torch.float64) * 30
    z_ref, _, g_ref, _ = _run(p, SURROGATES[0], current, fused=False)
    z, _, g, _ = _run(p, SURROGATES[0], current, fused=True)
    assert z_ref.sum() > 0 and torch.equal(z, z_ref)
    torch.testing.assert_close(g, g_ref, rtol=1e-8, atol=1e-10)


def test_a_second_order_backward_is_refused():
    compiled(hh_kernel._EXTENSION)
    neuron = HodgkinHuxley(HodgkinHuxley.Params(), shape=(4,), spike_fn=SURROGATES[0])
    x = (torch.rand(3, 2, 4, dtype=torch.float64) * 30).requires_grad_(True)
    z, _ = neuron(x)
    (g,) = torch.autograd.grad(z.sum() + neuron.state.v.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|does not require grad"):
        g.sum().backward()
