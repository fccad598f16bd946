"""Surrogate spike functions: Heaviside forward, their analytic derivative backward."""

from __future__ import annotations

import pickle

import pytest
import torch

from snnrun.surrogate import SURROGATES, build_surrogate

SMOOTH = [n for n in SURROGATES.names(aliases=False) if n != "heaviside"]


@pytest.mark.parametrize("name", SMOOTH)
def test_backward_is_the_derivative_of_the_primitive(name):
    fn = build_surrogate({"name": name})
    x = torch.linspace(-2.0, 2.0, 401, dtype=torch.float64)
    x = x[(x.abs() - 0.5).abs() > 1e-6]  # skip the rectangle's kinks at ±width/2
    x = x[(x.abs() - 1.0).abs() > 1e-6]  # and the triangle's at ±width
    xg = x.clone().requires_grad_(True)
    spikes = fn(xg)
    assert torch.equal(spikes.detach(), (x >= 0).double())
    spikes.sum().backward()
    xp = x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(fn.primitive(xp).sum(), xp)
    torch.testing.assert_close(xg.grad, auto, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(xg.grad, fn.derivative(x))


class _SmoothSpike(torch.autograd.Function):
    """Forward: the surrogate's primitive; backward: its hand-written ``derivative``.
    gradcheck then compares ``derivative`` with finite differences of the primitive."""

    @staticmethod
    def forward(ctx, x, fn):
        ctx.save_for_backward(x)
        ctx.fn = fn
        return fn.primitive(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.fn.derivative(x), None


@pytest.mark.parametrize("name", SMOOTH)
def test_analytic_derivative_passes_gradcheck(name):
    fn = build_surrogate({"name": name})
    # 0.013 offset keeps every point > eps away from the kinks of rectangle (±0.5) and triangle (0, ±1)
    x = (torch.linspace(-1.5, 1.5, 13, dtype=torch.float64) + 0.013).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: _SmoothSpike.apply(t, fn), (x,), eps=1e-6, atol=1e-6)


def test_spike_gradient_flows_through_the_surrogate_in_float64():
    fn = build_surrogate({"name": "atan", "alpha": 2.0})
    v = torch.tensor([0.9, 1.0, 1.3], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad((fn(v - 1.0) * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum(), v)
    x = v.detach() - 1.0
    expected = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64) / (1 + (torch.pi / 2 * 2.0 * x) ** 2)
    torch.testing.assert_close(grad, expected)


@pytest.mark.parametrize("name,params,at_zero", [
    ("sigmoid", {"alpha": 4.0}, 1.0), ("atan", {"alpha": 2.0}, 1.0), ("fast_sigmoid", {"slope": 25.0}, 1.0),
    ("triangle", {"width": 1.0}, 1.0), ("rectangle", {"width": 0.5}, 2.0),
    ("gaussian", {"sigma": 0.5}, 0.7978845608), ("erfc", {"alpha": 2.0}, 1.1283791671),
])
def test_peak_values(name, params, at_zero):
    fn = build_surrogate({"name": name, **params})
    assert fn.derivative(torch.zeros(1, dtype=torch.float64)).item() == pytest.approx(at_zero)


def test_surrogates_pickle_and_reject_bad_widths():
    fn = build_surrogate({"name": "atan", "alpha": 3.0})
    clone = pickle.loads(pickle.dumps(fn))
    assert clone.params.alpha == 3.0
    with pytest.raises(Exception, match=r"learner.surrogate.alpha: -1.0 is out of range"):
        build_surrogate({"name": "atan", "alpha": -1})
