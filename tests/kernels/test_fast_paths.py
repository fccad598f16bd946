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


def _run_steps(neuron, current, v0, fast, layer=False):
    """From a potential v0 that carries a gradient, with a loss on the final v too: step by step
    (forward_step), as a cycle runs, or with ``layer`` all steps in one call (the scan), as a chunk of
    ``network.recompute_steps`` starts."""
    lif_scan.set_enabled(fast)
    try:
        neuron.reset()
        x = current.clone().requires_grad_(True)
        v_init = v0.clone().requires_grad_(True)
        neuron.state = neuron.initial_state(current.shape[1:], current.device, current.dtype)._replace(v=v_init * 1.0)
        zs = neuron(x)[0] if layer else torch.stack([neuron.forward_step(c) for c in x.unbind(0)])
        w = torch.linspace(-1.0, 2.0, zs.numel(), dtype=zs.dtype).reshape(zs.shape)
        loss = (zs * w).sum() + zs.sum(0).pow(2).mean() + (neuron.state.v * 0.3).sum()
        loss.backward()
        return zs.detach(), x.grad, v_init.grad, neuron.state.v.detach()
    finally:
        lif_scan.set_enabled(True)


@pytest.mark.parametrize("cls,integration,reset,detach", [
    (LIF, "euler", "hard", False), (LIF, "exact", "hard", False), (LIF, "euler", "soft", False),
    (LIF, "euler", "hard", True), (IF, "euler", "soft", False), (IF, "euler", "hard", False),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_step_matches_reference(cls, integration, reset, detach, dtype):
    """The step-by-step path's fused step (one saved tensor per step) gives the spikes and final v of
    lif_step bit for bit, and its gradients for the inputs and the initial potential."""
    torch.manual_seed(0)
    p = cls.Params(integration=integration, reset=reset, detach_reset=detach, v_th=1.0, v_reset=0.0, v_rest=0.0)
    if cls is LIF:
        p.tau_m = 5.0
    neuron = cls(p, shape=(32,), dt=1.0, spike_fn=ATan(ATan.Params()))
    current = (torch.rand(40, 8, 32) * (2.5 if cls is LIF else 0.6)).to(dtype)
    v0 = torch.rand(8, 32, dtype=dtype) * 0.8
    ref = _run_steps(neuron, current, v0, fast=False)
    fast = _run_steps(neuron, current, v0, fast=True)
    assert 0.05 < ref[0].mean() < 0.95
    assert torch.equal(fast[0], ref[0]) and torch.equal(fast[3], ref[3])
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-13)
    for a, b in zip(fast[1:3], ref[1:3]):
        torch.testing.assert_close(a, b, **tol)
        assert b.abs().sum() > 0


def test_fused_step_saves_one_tensor_per_step():
    """What the autograd graph keeps for one step: h alone (the reference keeps several)."""
    neuron = LIF(LIF.Params(tau_m=5.0), shape=(16,), dt=1.0, spike_fn=ATan(ATan.Params()))
    counts = {}
    for fast in (True, False):
        lif_scan.set_enabled(fast)
        saved = []
        try:
            neuron.reset()
            x = torch.rand(4, 16, requires_grad=True)
            with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t, lambda t: t):
                neuron.forward_step(x)
        finally:
            lif_scan.set_enabled(True)
        counts[fast] = sum(1 for shape in saved if shape == (4, 16))
    assert counts[True] == 1 and counts[False] >= 3


def test_scan_runs_for_the_classes_that_declare_it():
    """The scan counts spikes as it runs (spike_counts); the reference loop leaves them None."""
    from snnrun.neurons.lif import PLIF, IFSoftReset

    def scanned(neuron, record=()):
        neuron.reset()
        neuron(torch.rand(5, 2, 4), record=record)
        return neuron.spike_counts is not None

    spike_fn = FastSigmoid(FastSigmoid.Params())
    plain = LIF(LIF.Params(), shape=(4,), spike_fn=spike_fn)
    assert scanned(plain) and scanned(IF(IF.Params(), shape=(4,), spike_fn=spike_fn))
    assert scanned(IFSoftReset(IFSoftReset.Params(), shape=(4,), spike_fn=spike_fn))
    assert not scanned(LIF(LIF.Params(refractory=2.0), shape=(4,), spike_fn=spike_fn))
    assert not scanned(plain, record=("v",))
    assert not scanned(PLIF(PLIF.Params(), shape=(4,), spike_fn=spike_fn))  # learned tau: not declared

    class Custom(LIF):  # a subclass does not inherit the declaration
        pass
    assert not Custom.fused_scan and not scanned(Custom(LIF.Params(), shape=(4,), spike_fn=spike_fn))
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


# --- compiled LIF scan: every surrogate code, float64, and the torch fallback ------------------

from snnrun.kernels import spike_linear  # noqa: E402
from snnrun.surrogate import Gaussian, Rectangle, Sigmoid, Triangle  # noqa: E402

# strict mode (conftest): a failed build with a compiler present raises here, so this skips only
# on a machine without a C++ compiler
needs_ext = pytest.mark.skipif(lif_scan._EXTENSION.load() is None or spike_linear._EXTENSION.load() is None,
                               reason="no C++ compiler here: only the torch reference paths run")


@needs_ext
@pytest.mark.parametrize("surrogate", [Sigmoid(Sigmoid.Params(alpha=4.0)), Triangle(Triangle.Params()),
                                       Rectangle(Rectangle.Params()), FastSigmoid(FastSigmoid.Params()),
                                       Gaussian(Gaussian.Params())])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_scan_matches_reference(surrogate, dtype):
    torch.manual_seed(1)
    neuron = LIF(LIF.Params(tau_m=3.0), shape=(16,), dt=1.0, spike_fn=surrogate)
    current = (torch.rand(30, 4, 16) * 2.5).to(dtype)
    z_ref, g_ref, v_ref = _run(neuron, current, fast=False)
    z_fast, g_fast, v_fast = _run(neuron, current, fast=True)
    assert torch.equal(z_fast, z_ref) and torch.equal(v_fast, v_ref)
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-5, atol=1e-6)
    assert g_ref.abs().sum() > 0


def test_torch_fallback_scan_matches_reference(monkeypatch):
    monkeypatch.setattr(lif_scan, "_compiled", lambda t: None)
    torch.manual_seed(2)
    neuron = LIF(LIF.Params(tau_m=5.0, reset="soft"), shape=(8,), spike_fn=ATan(ATan.Params()))
    current = torch.rand(20, 3, 8) * 2.5
    z_ref, g_ref, _ = _run(neuron, current, fast=False)
    z_fast, g_fast, _ = _run(neuron, current, fast=True)
    assert torch.equal(z_fast, z_ref)
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("reset", ["hard", "soft"])
def test_scan_from_given_potentials_matches_reference(monkeypatch, compiled, reset):
    """The scan from v0 (not rest): the reference loop's spikes and final v bit for bit, and its
    gradients for the current, for v0 and through the final v (float64)."""
    if compiled and lif_scan._EXTENSION.load() is None:
        pytest.skip("no C++ compiler here: only the torch reference paths run")
    if not compiled:
        monkeypatch.setattr(lif_scan, "_compiled", lambda t: None)
    torch.manual_seed(4)
    neuron = LIF(LIF.Params(tau_m=4.0, reset=reset), shape=(12,), spike_fn=ATan(ATan.Params()))
    current = (torch.rand(15, 5, 12) * 2.5).double()
    v0 = (torch.rand(5, 12) * 1.4 - 0.2).double()
    ref = _run_steps(neuron, current, v0, fast=False, layer=True)
    fast = _run_steps(neuron, current, v0, fast=True, layer=True)
    assert torch.equal(fast[0], ref[0]) and torch.equal(fast[3], ref[3])
    assert 0.05 < ref[0].mean() < 0.95 and ref[2].abs().sum() > 0
    for a, b in zip(fast[1:3], ref[1:3]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("grad", [True, False])
def test_scan_counts_each_neurons_spikes_over_steps_and_batch(monkeypatch, compiled, grad):
    if compiled and lif_scan._EXTENSION.load() is None:
        pytest.skip("no C++ compiler here: only the torch reference paths run")
    if not compiled:
        monkeypatch.setattr(lif_scan, "_compiled", lambda t: None)
    torch.manual_seed(3)
    neuron = LIF(LIF.Params(tau_m=4.0), shape=(2, 3, 5), spike_fn=ATan(ATan.Params()))
    current = (torch.rand(12, 7, 2, 3, 5) * 2.5).requires_grad_(grad)
    z, _ = neuron(current)
    counts = neuron.spike_counts
    assert counts.shape == (2, 3, 5) and torch.equal(counts, z.detach().sum((0, 1)))
    assert 0 < counts.sum() < 12 * 7 * 30


# --- spike-gather projection --------------------------------------------------------------------

@needs_ext
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("out_features", [10, 64, 150])
def test_spike_linear_matches_dense(dtype, out_features):
    torch.manual_seed(3)
    x = (torch.rand(300, 70) < 0.15).to(dtype).requires_grad_(True)
    w = torch.randn(out_features, 70, dtype=dtype, requires_grad=True)
    b = torch.randn(out_features, dtype=dtype, requires_grad=True)
    g = torch.randn(300, out_features, dtype=dtype)
    spikes, index = spike_linear._EXTENSION.module.spike_index(x.detach(), spike_linear.MAX_DENSITY)
    assert index and spikes == int(x.detach().sum())  # the gather path is taken, and it counted the spikes
    results = []
    for fn in (spike_linear.linear, torch.nn.functional.linear):
        y = fn(x, w, b)
        y.backward(g)
        results.append((y.detach(), x.grad, w.grad, b.grad))
        x.grad = w.grad = b.grad = None
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    for fast, ref in zip(*results):
        torch.testing.assert_close(fast, ref, **tol)


@needs_ext
def test_spike_linear_falls_back_to_dense():
    torch.manual_seed(4)
    w = torch.randn(5, 12)
    graded = torch.rand(6, 12)  # not binary
    dense = (torch.rand(6, 12) < 0.9).float()  # binary but above MAX_DENSITY
    for x, spikes in ((graded, None), (dense, int(dense.sum()))):
        assert not spike_linear._EXTENSION.module.spike_index(x, spike_linear.MAX_DENSITY)[1]
        y, events = spike_linear.linear_events(x, w)
        assert torch.equal(y, torch.nn.functional.linear(x, w))
        assert events == spikes  # binary input: counted even on the dense path; graded: not spikes
    empty_rows = torch.zeros(4, 12)
    assert torch.equal(spike_linear.linear(empty_rows, w), torch.zeros(4, 5))



def _mnist_like_net(hidden: int, seed: int):
    """784 -> hidden -> 10 LIF (tau_m 2 ms, 20 steps), dense projections with gain 8."""
    from snnrun.network import build_network
    node = {"dt": 1.0, "duration": 20.0, "output": "out",
            "populations": {"inp": {"shape": 784}, "hidden": {"shape": hidden}, "out": {"shape": 10}},
            "projections": {"a": {"from": "inp", "to": "hidden", "synapse": {"name": "dense", "gain": 8.0}},
                            "b": {"from": "hidden", "to": "out", "synapse": {"name": "dense", "gain": 8.0}}}}
    torch.manual_seed(seed)
    return build_network(node, {"name": "lif", "tau_m": 2.0}, (784,), spike_fn=Sigmoid(Sigmoid.Params()))


@needs_ext
def test_network_fast_paths_match_reference_end_to_end():
    """784-128-10 LIF on 13 % Bernoulli input: same spikes, same weight gradients with and without
    the compiled scan and the gather projection."""
    net = _mnist_like_net(128, seed=5)
    x = (torch.rand(20, 16, 784) < 0.13).float()
    runs = []
    for fast in (True, False):
        lif_scan.set_enabled(fast)
        spike_linear.set_enabled(fast)
        try:
            net.reset()
            net.zero_grad()
            out = net(x)
            loss = torch.nn.functional.cross_entropy(out.spikes["out"].sum(0), torch.arange(16) % 10)
            loss.backward()
            runs.append((out.spikes["hidden"].detach(), out.spikes["out"].detach(),
                         [p.grad.clone() for p in net.parameters()]))
        finally:
            lif_scan.set_enabled(True)
            spike_linear.set_enabled(True)
    (h1, o1, g1), (h2, o2, g2) = runs
    assert 0.02 < h1.mean() < 0.5 and o1.sum() > 0
    assert torch.equal(h1, h2) and torch.equal(o1, o2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
        assert a.abs().sum() > 0


# --- memory: the scan reuses the current's buffer and writes its gradient over h --------------

@needs_ext
def test_scan_reuse_input_overwrites_current_and_keeps_gradients():
    torch.manual_seed(6)
    neuron = LIF(LIF.Params(tau_m=3.0), shape=(16,), spike_fn=Sigmoid(Sigmoid.Params()))
    base = torch.rand(30, 4, 16) * 2.5
    z_ref, g_ref, v_ref = _run(neuron, base, fast=False)
    x = base.clone().requires_grad_(True)
    current = x * 1.0  # a fresh non-leaf tensor, as a projection produces
    neuron.reset()
    z, _ = neuron(current, reuse_input=True)
    assert not torch.equal(current, x.detach())  # its memory now holds h, the pre-reset potentials
    assert torch.equal(current >= neuron.params.v_th, z.bool())
    w = torch.linspace(-1.0, 2.0, z.numel()).reshape(z.shape)
    ((z * w).sum() + z.sum(0).pow(2).mean()).backward()
    assert torch.equal(z, z_ref) and torch.equal(neuron.state.v, v_ref)
    torch.testing.assert_close(x.grad, g_ref, rtol=1e-5, atol=1e-6)


@needs_ext
def test_scan_reuse_is_caught_when_another_op_saved_the_current():
    neuron = LIF(LIF.Params(tau_m=3.0), shape=(8,), spike_fn=Sigmoid(Sigmoid.Params()))
    x = (torch.rand(10, 2, 8) * 2.5).requires_grad_(True)
    current = x * 1.0
    squared = current * current  # saves `current` for its backward
    z, _ = neuron(current, reuse_input=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (z.sum() + squared.sum()).backward()


@needs_ext
def test_scan_second_backward_says_why():
    neuron = LIF(LIF.Params(tau_m=3.0), shape=(8,), spike_fn=Sigmoid(Sigmoid.Params()))
    x = (torch.rand(10, 2, 8) * 2.5).requires_grad_(True)
    z, _ = neuron(x * 1.0)
    z.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="a second backward through the same graph"):
        z.sum().backward()
    # a forward that continues the state of the first (no reset in between) says so too
    z2, _ = neuron(x * 1.0)
    with pytest.raises(RuntimeError, match=r"call network.reset\(\) between batches"):
        z2.sum().backward()


def test_network_reuses_only_currents_nobody_else_holds():
    from snnrun.network import build_network
    node = {"dt": 1.0, "duration": 5.0, "output": "out",
            "populations": {"inp": {"shape": 6}, "hidden": {"shape": 6}, "out": {"shape": 6}},
            "projections": {"a": {"from": "inp", "to": "hidden", "synapse": {"name": "dense"}},
                            "b": {"from": "hidden", "to": "out", "synapse": {"name": "one_to_one", "weight": 2.0}}}}
    net = build_network(node, {"name": "lif", "tau_m": 2.0}, (6,), spike_fn=Sigmoid(Sigmoid.Params()))
    seen = {}
    for name, pop in net.populations.items():
        if pop.neuron is not None:
            forward = pop.neuron.forward
            pop.neuron.forward = lambda c, r=(), reuse_input=False, _f=forward, _n=name: (
                seen.__setitem__(_n, reuse_input), _f(c, r, reuse_input))[1]
    net(torch.rand(5, 2, 6).requires_grad_(True))
    assert seen == {"hidden": True, "out": False}  # one_to_one's output is not a fresh tensor
    from snnrun.spike_metrics import SynOpsCounter
    counter = SynOpsCounter(net)  # its hooks only count: the reuse stays on, and the counts are right
    net.reset()
    x = (torch.rand(5, 2, 6) < 0.5).float()
    net(x)
    assert seen["hidden"] is True and counter.counts["a"] == x.sum().item() * 6
    counter.remove()
    captured = []
    net.projections["a"].stages[0].register_forward_hook(lambda m, a, out: captured.append(out.detach().clone()))
    net.reuse_currents = False  # code that keeps projection outputs says so (a public switch, no hook inspection)
    net.reset()
    x = torch.rand(5, 2, 6)
    net(x)
    assert seen["hidden"] is False
    torch.testing.assert_close(captured[-1], torch.nn.functional.linear(x.reshape(10, 6), net.projections["a"].stages[0].weight))


@needs_ext
def test_fast_paths_give_the_same_result_with_one_or_two_threads():
    """The compiled kernels split work over threads by neuron and output block only: spikes and
    the gather projection's weight gradient are bitwise the same for any thread count."""
    net = _mnist_like_net(300, seed=7)
    x = (torch.rand(20, 64, 784) < 0.13).float()
    threads, runs = torch.get_num_threads(), []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            net.reset()
            net.zero_grad()
            out = net(x)
            torch.nn.functional.cross_entropy(out.spikes["out"].sum(0), torch.arange(64) % 10).backward()
            runs.append((out.spikes["hidden"].detach(), net.projections["a"].stages[0].weight.grad.clone()))
    finally:
        torch.set_num_threads(threads)
    assert runs[0][0].sum() > 0 and runs[0][1].abs().sum() > 0
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
