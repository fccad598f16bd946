"""Cross-library checks: a NIR graph written by snnrun, imported by snnTorch and norse, gives the
same output spikes on the same input; graphs written by snnTorch and norse, imported by snnrun, too.
The settings that make each pair match are in docs/interop.md (measured there by these tests)."""

from __future__ import annotations

import contextlib
import io
import logging

import pytest
import torch

pytest.importorskip("nir", reason="needs the optional extra `nir` (pip install 'snnrun[nir]')")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # nirtorch's own deprecations, used by the peers

from _nets import EXPERIMENTS, activate, build, inputs, run  # noqa: E402
from snnrun.interop import load_nir  # noqa: E402
from snnrun.interop.nir import to_nir  # noqa: E402


def _snntorch():
    return pytest.importorskip("snntorch", reason="snnTorch is in the optional extra `interop` "
                                                  "(pip install 'snnrun[interop]')")


def _norse():
    return pytest.importorskip("norse.torch", reason="norse is in the optional extra `interop` "
                                                     "(pip install 'snnrun[interop]')")


@contextlib.contextmanager
def quiet():
    """snnTorch prints and norse logs warnings while they import."""
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)


def stepwise(module, x, stateful: bool = True) -> torch.Tensor:
    """Run a peer's per-step module over x [T, B, ...] from rest: [T, B, ...] outputs."""
    state, outs = None, []
    with torch.no_grad():
        for t in range(x.shape[0]):
            out = module(x[t], state) if stateful else module(x[t])
            if isinstance(out, tuple):
                out, state = out
            outs.append(out)
    return torch.stack(outs)


def agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """The fraction of (step, sample, neuron) entries where both have the same spike or none."""
    return float((a == b).float().mean())


def mlp(r_is_tau_over_dt: bool = False):
    """The default experiment's network with firing layers (r = tau_m/dt on request: snnTorch's
    recurrent and CubaLIF importers need it, the weights scaled down to match)."""
    extra = ["neuron.r=5.0"] if r_is_tau_over_dt else []
    net = build(EXPERIMENTS["default"][0] + extra, *EXPERIMENTS["default"][1:])
    x = inputs(net, batch=16)
    activate(net, x)
    return net, x


def test_snntorch_imports_snnrun_graph_with_same_spikes():
    _snntorch()
    from snntorch.import_nir import import_from_nir

    net, x = mlp()
    want = run(net, x)[net.output]
    with quiet():  # snnTorch's importer assumes dt = 1e-4 (s): one step of the graph must be that long
        module = import_from_nir(to_nir(net, nir_dt=1e-4))
    got = stepwise(module, x)
    assert want.sum() > 0 and torch.equal(got, want), agreement(got, want)


def test_norse_imports_snnrun_graph_with_same_spikes():
    norse = _norse()
    net, x = mlp()
    want = run(net, x)[net.output]
    with quiet():
        module = norse.from_nir(to_nir(net), dt=1e-3)  # the graph in seconds, one step = dt = 1 ms
    got = stepwise(module, x)
    assert want.sum() > 0 and torch.equal(got, want), agreement(got, want)


def test_snntorch_recurrent_layer_from_snnrun_graph():
    """snnTorch's RLeaky, built by its NIR node converter from snnrun's recurrent graph, gives the
    same spikes. (Its import_from_nir wires the recurrent subgraph through nirtorch 2.x so that the
    feedforward input passes through the recurrent weights; docs/interop.md gives the measure.)"""
    _snntorch()
    import nirtorch  # noqa: F401
    from snntorch import import_nir as sin

    overrides, shape, classes = EXPERIMENTS["recurrent"]
    net = build(overrides + ["+network.populations.hidden.neuron.r=5.0", "+network.populations.out.neuron.r=5.0"],
                shape, classes)
    x = inputs(net, batch=16)
    activate(net, x)
    want = run(net, x)[net.output]
    with quiet():
        graph = sin._replace_rnn_subgraph_with_nirgraph(to_nir(net, nir_dt=1e-4))
        modules = {k: sin._nir_to_snntorch_module(v, init_hidden=True) for k, v in graph.nodes.items()}
    assert type(modules["hidden"]).__name__ == "RLeaky"
    chain = torch.nn.Sequential(*(modules[k] for k in ("inp_hidden", "hidden", "hidden_out", "out")))
    got = stepwise(chain, x, stateful=False)
    assert want.sum() > 0 and torch.equal(got, want), agreement(got, want)
    with quiet():
        whole = sin.import_from_nir(to_nir(net, nir_dt=1e-4))
    measured = agreement(stepwise(whole, x), want)
    print(f"snnTorch import_from_nir on the recurrent graph: spike agreement {measured:.4f}")


@pytest.mark.parametrize("peer", ["snntorch", "norse"])
def test_cuba_lif_agreement_is_measured(peer):
    """clif's synaptic current decays by exp(-dt/tau_syn) in snnrun, by 1 - dt/tau_syn in both peers:
    the spikes agree closely, not exactly."""
    overrides, shape, classes = EXPERIMENTS["default"]
    net = build(overrides + ["neuron=clif", "neuron.r=20.0"], shape, classes)  # r = tau_m/dt for snnTorch
    x = inputs(net, batch=16)
    activate(net, x)
    want = run(net, x)[net.output]
    with quiet():
        if peer == "snntorch":
            _snntorch()
            from snntorch.import_nir import import_from_nir
            module = import_from_nir(to_nir(net, nir_dt=1e-4))
        else:
            module = _norse().from_nir(to_nir(net), dt=1e-3)
    got = stepwise(module, x)
    measured = agreement(got, want)
    print(f"clif -> {peer}: spike agreement {measured:.4f}, spikes {int(want.sum())} (snnrun) "
          f"{int(got.sum())} ({peer})")
    assert measured > 0.9


def test_snnrun_imports_snntorch_graph_with_same_spikes():
    snn = _snntorch()
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    # per-neuron beta and threshold: snnTorch 1.0's exporter writes scalar ones with shape [], which
    # nir's type check refuses; reset "zero" is NIR's reset to v_reset = 0
    net = torch.nn.Sequential(
        torch.nn.Linear(20, 30), snn.Leaky(beta=torch.full((30,), 0.9), threshold=torch.ones(30), init_hidden=True,
                                           reset_mechanism="zero"),
        torch.nn.Linear(30, 5), snn.Leaky(beta=torch.full((5,), 0.8), threshold=torch.ones(5), init_hidden=True,
                                          reset_mechanism="zero", output=True))
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[2].weight.mul_(2.0)
    with quiet():
        graph = export_to_nir(net, torch.zeros(20))
    x = (torch.rand(30, 16, 20, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    want = stepwise(lambda xt: net(xt)[0], x, stateful=False)
    ours = load_nir(graph, dt=0.1, duration=3.0).eval()  # snnTorch's step is 1e-4 s = 0.1 ms
    got = run(ours, x)[ours.output]
    assert want.sum() > 0 and torch.equal(got, want), agreement(got, want)


def test_snnrun_imports_norse_graph_with_same_spikes():
    norse = _norse()
    torch.manual_seed(0)
    net = norse.SequentialState(torch.nn.Linear(20, 30, bias=False), norse.LIFBoxCell(),
                                torch.nn.Linear(30, 5, bias=False), norse.LIFBoxCell())
    with torch.no_grad():
        net[0].weight.mul_(30.0)
        net[2].weight.mul_(30.0)
    with quiet():
        graph = norse.to_nir(net, torch.zeros(1, 20), dt=1e-3)
    x = (torch.rand(30, 16, 20, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    want = stepwise(net, x)
    # norse 1.1's to_nir writes tau = dt / tau_mem_inv, i.e. tau * dt: its graph's time unit is such
    # that one step of dt = 1e-3 s lasts dt**2
    ours = load_nir(graph, dt=1.0, duration=30.0, nir_dt=1e-3 ** 2).eval()
    got = run(ours, x)[ours.output]
    assert want.sum() > 0 and torch.equal(got, want), agreement(got, want)
