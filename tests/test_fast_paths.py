"""Fast paths give the same spikes and gradients as the plain lif_step reference loop."""

import pytest
import torch

from snnrun.kernels import lif_scan
from snnrun.neurons.base import Neuron
from snnrun.neurons.lif import IF, LIF
from snnrun.surrogate import ATan, FastSigmoid, Heaviside


def _run(neuron, current, fast):
    lif_scan.set_enabled(fast)
    try:
        neuron.reset()
        x = current.clone().requires_grad_(True)
        z, _ = neuron(x)
        w = torch.linspace(-1.0, 2.0, z.numel()).reshape(z.shape)
        loss = (z * w).sum() + z.sum(0).pow(2).mean()
        loss.backward() if z.requires_grad else None
        return z.detach(), x.grad, neuron.state.v.detach()
    finally:
        lif_scan.set_enabled(True)


@pytest.mark.parametrize("cls,integration,reset,detach", [
    (LIF, "euler", "hard", False), (LIF, "exact", "hard", False), (LIF, "euler", "soft", False),
    (LIF, "euler", "hard", True), (IF, "euler", "soft", False), (IF, "euler", "hard", False),
])
def test_lif_scan_matches_reference(cls, integration, reset, detach):
    torch.manual_seed(0)
    p = cls.Params(integration=integration, reset=reset, detach_reset=detach, v_th=1.0, v_reset=0.0, v_rest=0.0)
    if cls is LIF:
        p.tau_m = 5.0
    neuron = cls(p, shape=(32,), dt=1.0, spike_fn=ATan(ATan.Params()))
    current = torch.rand(40, 8, 32) * (2.5 if cls is LIF else 0.6)
    z_ref, g_ref, v_ref = _run(neuron, current, fast=False)
    z_fast, g_fast, v_fast = _run(neuron, current, fast=True)
    assert 0.05 < z_ref.mean() < 0.95  # the test exercises both spiking and silent steps
    assert torch.equal(z_fast, z_ref)
    assert torch.equal(v_fast, v_ref)
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-5, atol=1e-6)
    assert g_ref.abs().sum() > 0


def test_scan_dispatch_conditions():
    p = LIF.Params(refractory=2.0)
    refr = LIF(p, shape=(4,), spike_fn=FastSigmoid(FastSigmoid.Params()))
    plain = LIF(LIF.Params(), shape=(4,), spike_fn=FastSigmoid(FastSigmoid.Params()))
    assert not lif_scan.applicable(refr, None, ())
    assert not lif_scan.applicable(plain, None, ("v",))
    assert lif_scan.applicable(plain, None, ())
    # with a recorded trace the reference loop runs and returns it
    z, traces = plain(torch.rand(5, 2, 4), record=("v",))
    assert traces["v"].shape == (5, 2, 4)


def test_scan_heaviside_gives_no_graph_like_reference():
    neuron = LIF(LIF.Params(tau_m=4.0), shape=(6,), spike_fn=Heaviside())
    x = (torch.rand(10, 3, 6) * 2).requires_grad_(True)
    z, _ = neuron(x)
    ref, _ = Neuron.forward(neuron.__class__(neuron.params, (6,), spike_fn=Heaviside()), x)
    assert torch.equal(z, ref)
    assert not z.requires_grad and not ref.requires_grad
