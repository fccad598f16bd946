"""snnrun -> NIR -> snnrun: the same spikes, through the config's ``network.from_nir`` build."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("nir", reason="NIR export/import needs the optional extra `nir` (pip install 'snnrun[nir]')")

import nir  # noqa: E402

from _nets import EXPERIMENTS, activate, build, inputs, run  # noqa: E402
from snnrun.errors import ConfigError, SnnrunError  # noqa: E402
from snnrun.interop.nir import to_nir, write  # noqa: E402
from snnrun.build import network_from_node as build_network  # noqa: E402  (the build that reads from_nir)


def from_file(path, net, **extra):
    """The imported network, built as the config ``network: {from_nir: PATH, ...}`` builds it."""
    node = {"from_nir": str(path), "dt": net.dt, "duration": net.dt * net.time_steps, **extra}
    shape = net.populations[net.inputs[0]].shape
    return build_network(node, None, shape).eval()


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_round_trip_gives_identical_spikes(name, tmp_path):
    overrides, shape, classes = EXPERIMENTS[name]
    net = build(overrides, shape, classes)
    x = inputs(net)
    rates = activate(net, x)
    assert all(r > 0 for r in rates.values()), rates  # every layer fires: the comparison means something
    path = write(to_nir(net), tmp_path / f"{name}.nir")
    back = from_file(path, net)
    assert list(back.populations) == list(net.populations)
    assert list(back.projections) == list(net.projections)
    assert [p for p in back.projections if back.projections[p].recurrent] == \
        [p for p in net.projections if net.projections[p].recurrent]
    want, got = run(net, x), run(back, x)
    for pop in net.populations:
        assert torch.equal(want[pop], got[pop]), pop
    # the step-by-step path of the imported network too
    back.mode = "step"
    got = run(back, x)
    assert torch.equal(want[net.output], got[net.output])


def test_exported_graph_holds_nir_primitives():
    net = build(*EXPERIMENTS["mnist_cnn"])
    graph = to_nir(net)
    kinds = {n: type(x).__name__ for n, x in graph.nodes.items()}
    assert kinds["inp"] == "Input" and kinds["conv1"] == "LIF" and kinds["output"] == "Output"
    assert kinds["inp_conv1"] == "Conv2d"  # the batchnorm folded into it
    assert [kinds[f"conv1_conv2__{i}"] for i in range(3)] == ["SumPool2d", "Threshold", "Conv2d"]
    assert [kinds[f"conv2_fc__{i}"] for i in range(3)] == ["SumPool2d", "Threshold", "Flatten"]
    lif = graph.nodes["conv1"]
    assert lif.tau.shape == (16, 28, 28) and np.allclose(lif.tau, 2.0e-3)  # tau_m 2 ms in seconds
    recurrent = to_nir(build(*EXPERIMENTS["recurrent"]))
    assert ("hidden", "hidden_hidden") in recurrent.edges and ("hidden_hidden", "hidden") in recurrent.edges
    delayed = to_nir(build(*EXPERIMENTS["delayed"]))
    delay = delayed.nodes["hidden_out_delayed__0"]
    assert isinstance(delay, nir.Delay) and delay.delay.max() <= 32e-3 and delay.delay.min() >= 0


@pytest.mark.parametrize("neuron", [
    "neuron=plif", "neuron=clif", "neuron=if", "neuron=lif neuron.integration=exact neuron.v_rest=-0.5",
    "neuron=clif neuron.integration=exact"])
def test_other_neuron_models_round_trip(neuron, tmp_path):
    net = build(neuron.split(), (64,), 10, seed=3)
    if neuron == "neuron=plif":
        with torch.no_grad():  # learned time constants differ between neurons
            net.populations["hidden"].neuron.w.add_(0.3)
    x = inputs(net)
    activate(net, x)
    back = from_file(write(to_nir(net), tmp_path / "n.nir"), net)
    for pop in ("hidden", "out"):
        assert type(back.populations[pop].neuron) is type(net.populations[pop].neuron)
        a, b = back.populations[pop].neuron, net.populations[pop].neuron
        if a.registry_name == "plif":  # its tau_m is the initial value; w holds the learned one
            assert torch.equal(a.w, b.w) and a.params.per_neuron == b.params.per_neuron
        else:
            assert a.params == b.params
    want, got = run(net, x), run(back, x)
    assert torch.equal(want["out"], got["out"]) and torch.equal(want["hidden"], got["hidden"])


def test_time_unit_and_dt(tmp_path):
    """nir_dt sets the graph's time unit: tau in the file is tau_m * nir_dt / dt; importing with the
    same nir_dt gives the network back, at any dt."""
    net = build(["network.dt=0.5", "network.duration=10"], (64,), 10)
    graph = to_nir(net, nir_dt=1e-4)
    assert np.allclose(graph.nodes["hidden"].tau, 5.0 * 1e-4 / 0.5)
    back = from_file(write(graph, tmp_path / "n.nir"), net, nir_dt=1e-4)
    assert back.populations["hidden"].neuron.params.tau_m == 5.0 and back.dt == 0.5


@pytest.mark.parametrize("overrides, message", [
    (["neuron=alif"], "population 'hidden': neuron model 'alif' has no NIR counterpart"),
    (["neuron.reset=soft"], "population 'hidden': reset 'soft'"),
    (["neuron.refractory=2.0"], "population 'hidden': a refractory period (2.0 ms)"),
    (["neuron.escape_noise=true"], "population 'hidden': escape noise (a stochastic threshold)"),
    (["neuron=if", "neuron.v_rest=0.5"], "population 'hidden': v_rest = 0.5 mV"),
])
def test_what_nir_cannot_express_is_refused_by_name(overrides, message):
    net = build(overrides, (64,), 10)
    with pytest.raises(SnnrunError) as err:
        to_nir(net)
    assert message in str(err.value)


@pytest.mark.parametrize("synapse, message", [
    ([{"name": "delayed_dense", "delay": 2.0}], "projection 'a' (inp -> hid): per-synapse delays (delayed_dense)"),
    ([{"name": "maxpool"}, {"name": "flatten"}, {"name": "dense"}],
     "projection 'a' (inp -> hid): maxpool of a signal that is not spikes"),
    ([{"name": "batchnorm"}, {"name": "flatten"}, {"name": "dense"}], "projection 'a' (inp -> hid): a batchnorm stage"),
])
def test_synapses_nir_cannot_express_are_refused_by_name(synapse, message):
    node = {"dt": 1.0, "duration": 5.0, "populations": {"inp": {"shape": None}, "hid": {"shape": 4}},
            "projections": {"a": {"from": "inp", "to": "hid", "synapse": synapse}}}
    net = build_network(node, {"name": "lif"}, (1, 4, 4) if synapse[0]["name"] != "delayed_dense" else (16,))
    with pytest.raises(SnnrunError) as err:
        to_nir(net)
    assert message in str(err.value)


def _graph(*nodes, edges):
    return nir.NIRGraph(nodes=dict(nodes), edges=edges, type_check=False)


def test_import_errors_name_the_config_key_and_node(tmp_path):
    base = {"dt": 1.0, "duration": 5.0}
    with pytest.raises(ConfigError, match=r"network\.from_nir: no NIR file"):
        build_network({**base, "from_nir": str(tmp_path / "none.nir")}, None, (3,))
    (tmp_path / "bad.nir").write_bytes(b"not hdf5")
    with pytest.raises(ConfigError, match=r"network\.from_nir: .*bad\.nir is not a readable NIR graph"):
        build_network({**base, "from_nir": str(tmp_path / "bad.nir")}, None, (3,))
    net = build([], (64,), 10)
    path = write(to_nir(net), tmp_path / "n.nir")
    with pytest.raises(ConfigError, match=r"network\.populations: not allowed with network\.from_nir"):
        build_network({**base, "from_nir": str(path), "populations": {"a": {"shape": 3}}}, None, (64,))
    one = np.ones(3)
    cases = [
        (_graph(("i", nir.Input(input_type={"input": np.array([3])})), ("d", nir.Delay(delay=np.full(3, 1.5e-3))),
                ("n", nir.LIF(tau=one * 0.01, r=one, v_leak=0 * one, v_threshold=one)),
                ("o", nir.Output(output_type={"output": np.array([3])})), edges=[("i", "d"), ("d", "n"), ("n", "o")]),
         r"NIR node 'd' \(Delay\): delays of \[1\.5"),
        (_graph(("i", nir.Input(input_type={"input": np.array([3])})),
                ("n", nir.LIF(tau=one * 0.01, r=one, v_leak=0 * one, v_threshold=np.array([1.0, 2.0, 1.0]))),
                ("o", nir.Output(output_type={"output": np.array([3])})), edges=[("i", "n"), ("n", "o")]),
         r"NIR node 'n' \(LIF\): v_threshold differs between neurons"),
        (_graph(("i", nir.Input(input_type={"input": np.array([3])})), ("w", nir.Linear(weight=np.eye(3))),
                ("o", nir.Output(output_type={"output": np.array([3])})), edges=[("i", "w"), ("w", "o")]),
         r"output 'o' is reached from 'i' through w"),
        (_graph(("i", nir.Input(input_type={"input": np.array([3])})),
                ("n", nir.CubaLI(tau_syn=one, tau_mem=one, r=one, v_leak=0 * one)),
                ("o", nir.Output(output_type={"output": np.array([3])})), edges=[("i", "n"), ("n", "o")]),
         r"NIR CubaLI has no snnrun model"),
    ]
    from snnrun.interop import load_nir
    for graph, message in cases:
        with pytest.raises(SnnrunError, match=message):
            load_nir(graph, dt=1.0, duration=5.0)


def test_heterogeneous_time_constants_import_as_plif():
    one = np.ones(4)
    graph = _graph(("i", nir.Input(input_type={"input": np.array([4])})),
                   ("n", nir.LIF(tau=np.array([2.0, 3.0, 4.0, 5.0]) * 1e-3, r=one, v_leak=0 * one, v_threshold=one)),
                   ("o", nir.Output(output_type={"output": np.array([4])})), edges=[("i", "n"), ("n", "o")])
    from snnrun.interop import load_nir
    net = load_nir(graph, dt=1.0, duration=5.0)
    neuron = net.populations["n"].neuron
    assert neuron.registry_name == "plif" and torch.allclose(neuron.tau_m, torch.tensor([2.0, 3.0, 4.0, 5.0]))
