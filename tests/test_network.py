"""The network graph: build-time validation, layer vs step paths, cycles, shapes."""

from __future__ import annotations

import pytest
import torch

from snnrun.errors import ConfigError, ShapeError
from snnrun.network import build_network
from snnrun.surrogate import build_surrogate

LIF = {"name": "lif", "tau_m": 5.0}


def net(populations, projections, input_shape=(6,), mode="auto", output=None, duration=8.0, spike_fn=None):
    node = {"dt": 1.0, "duration": duration, "populations": populations, "projections": projections, "mode": mode}
    if output:
        node["output"] = output
    return build_network(node, LIF, input_shape, spike_fn)


def skip_graph(mode):
    pops = {"inp": {"shape": None}, "a": {"shape": 8}, "b": {"shape": 8}, "out": {"shape": 3}}
    projs = {"inp_a": {"from": "inp", "to": "a", "synapse": {"name": "dense", "init": "uniform", "low": 0.0, "high": 2.0}},
             "a_b": {"from": "a", "to": "b", "synapse": [{"name": "delay", "delay": 2.0}, {"name": "dense", "init": "uniform", "low": 0.0, "high": 2.0}]},
             "inp_b": {"from": "inp", "to": "b", "synapse": {"name": "dense", "init": "uniform", "low": 0.0, "high": 2.0}},  # skip connection
             "b_out": {"from": "b", "to": "out", "synapse": {"name": "dense", "init": "uniform", "low": 0.0, "high": 2.0}}}
    return net(pops, projs, mode=mode, spike_fn=build_surrogate({"name": "atan"}))


def test_layer_and_step_paths_give_the_same_spikes_and_gradients():
    torch.manual_seed(0)
    layer = skip_graph("layer")
    step = skip_graph("step")
    step.load_state_dict(layer.state_dict())
    x = (torch.rand(8, 4, 6) < 0.5).float()
    a, b = layer(x), step(x)
    for name in ("a", "b", "out"):
        assert torch.equal(a.spikes[name], b.spikes[name]), name
    assert a.spikes["out"].sum() > 0
    a.spikes["out"].sum().backward()
    b.spikes["out"].sum().backward()
    for (name, p), (_, q) in zip(layer.named_parameters(), step.named_parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_cycle_carries_previous_step_spikes():
    pops = {"inp": {"shape": None}, "h": {"shape": 2}}
    projs = {"in_h": {"from": "inp", "to": "h", "synapse": {"name": "one_to_one", "weight": 10.0}},
             "h_h": {"from": "h", "to": "h", "synapse": {"name": "dense", "init": "constant", "value": 0.0}}}
    n = net(pops, projs, input_shape=(2,), duration=5.0)
    assert not n.feedforward and n.projections["h_h"].recurrent
    with torch.no_grad():
        n.projections["h_h"].stages[0].weight.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0]]))  # h0 -> h1
    x = torch.zeros(5, 1, 2)
    x[0, 0, 0] = 1.0
    out = n(x).spikes["h"][:, 0]
    assert out[:, 0].tolist() == [1, 0, 0, 0, 0]
    assert out[:, 1].tolist() == [0, 1, 0, 0, 0]  # one step later
    with pytest.raises(ConfigError, match="network.mode: 'layer' needs a feedforward graph"):
        net(pops, projs, input_shape=(2,), mode="layer")


def cyclic_graph(mode):
    """inp -> a <-> b (a cycle, with a delayed stage on the back edge and a self-loop on b) -> out,
    and a population c fed by a, outside the cycle, feeding out too."""
    dense = {"name": "dense", "init": "uniform", "low": -0.5, "high": 2.0}
    pops = {"inp": {"shape": None}, "a": {"shape": 8}, "b": {"shape": 7}, "c": {"shape": 5}, "out": {"shape": 3}}
    projs = {"inp_a": {"from": "inp", "to": "a", "synapse": dense},
             "a_b": {"from": "a", "to": "b", "synapse": dense},
             "b_a": {"from": "b", "to": "a", "synapse": [{"name": "delay", "delay": 2.0}, dense]},
             "b_b": {"from": "b", "to": "b", "synapse": {"name": "recurrent", "init": "uniform", "low": -0.3,
                                                         "high": 0.6}},
             "inp_b": {"from": "inp", "to": "b", "synapse": dense},
             "a_c": {"from": "a", "to": "c", "synapse": dense},
             "b_out": {"from": "b", "to": "out", "synapse": dense},
             "c_out": {"from": "c", "to": "out", "synapse": dense}}
    return net(pops, projs, mode=mode, output="out", duration=12.0, spike_fn=build_surrogate({"name": "atan"}))


def test_cycles_are_stepped_alone_and_match_the_step_path():
    """``mode: auto`` steps only the populations on a cycle (a, b); c and out run layer by layer, the
    currents into the cycle from outside it computed over all steps at once: the same spikes and
    gradients as stepping everything (float64, so no product rounds differently)."""
    torch.manual_seed(0)
    mixed, step = cyclic_graph("auto").double(), cyclic_graph("step").double()
    step.load_state_dict(mixed.state_dict())
    assert [sorted(g) for g in mixed.cycles] == [["a", "b"]]
    x = (torch.rand(12, 4, 6) < 0.4).double()
    a = mixed(x, record={"b": ("v",)})
    b = step(x, record={"b": ("v",)})
    for name in ("a", "b", "c", "out"):
        assert torch.equal(a.spikes[name], b.spikes[name]), name
        assert a.spikes[name].sum() > 0, name
    torch.testing.assert_close(a.traces["b"]["v"], b.traces["b"]["v"])
    a.spikes["out"].sum().backward()
    b.spikes["out"].sum().backward()
    for (name, p), (_, q) in zip(mixed.named_parameters(), step.named_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_time_constant_input_is_projected_once_per_sample():
    """The direct encoder's view (stride 0 over time): conv2d, pooling and dense stages see one row
    per sample, a batchnorm after them all T·B rows; spikes equal those of the same input stored
    step by step, gradients equal within rounding, on the layer and the mixed path."""
    from snnrun.encoders.rate import Direct

    pops = {"inp": {"shape": [1, 6, 6]}, "c": {"shape": [3, 4, 4]}, "h": {"shape": 9}, "out": {"shape": 4}}
    projs = {"conv": {"from": "inp", "to": "c", "synapse": [{"name": "conv2d", "channels": 3, "kernel_size": 3},
                                                           {"name": "batchnorm"}]},
             "skip": {"from": "inp", "to": "h", "synapse": [{"name": "avgpool", "kernel_size": 2},
                                                           {"name": "dense", "init": "uniform", "low": 0, "high": 1}]},
             "c_h": {"from": "c", "to": "h", "synapse": {"name": "dense"}},
             "h_out": {"from": "h", "to": "out", "synapse": {"name": "dense", "init": "uniform", "low": 0, "high": 1}}}
    for cycle in (False, True):
        if cycle:
            projs["h_h"] = {"from": "h", "to": "h", "synapse": {"name": "recurrent"}}
        torch.manual_seed(0)
        nets = [net(pops, projs, input_shape=(1, 6, 6), output="out", duration=6.0,
                    spike_fn=build_surrogate({"name": "atan"})) for _ in range(2)]
        nets[1].load_state_dict(nets[0].state_dict())
        rows = []
        nets[0].projections["conv"].stages[0].register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
        encoder = Direct(Direct.Params(gain=3.0), dt=1.0, time_steps=6)
        x = torch.rand(5, 1, 6, 6)
        constant = encoder(x)
        assert constant.stride(0) == 0
        a, b = nets[0](constant), nets[1](constant.contiguous())
        assert rows == [5]  # once per sample, not 6 x 5
        for name in ("c", "h", "out"):
            assert torch.equal(a.spikes[name], b.spikes[name]), (cycle, name)
            assert a.spikes[name].sum() > 0, name
        a.spikes["out"].sum().backward()
        b.spikes["out"].sum().backward()
        for (name, p), (_, q) in zip(nets[0].named_parameters(), nets[1].named_parameters()):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6, msg=name)


def test_cyclic_groups():
    from snnrun.graph import cyclic_groups

    edges = [("1", "x", "y"), ("2", "y", "z"), ("3", "z", "x"), ("4", "z", "w"), ("5", "w", "w"), ("6", "v", "x")]
    assert sorted(sorted(g) for g in cyclic_groups(["v", "w", "x", "y", "z"], edges)) == [["w"], ["x", "y", "z"]]
    assert cyclic_groups(["a", "b"], [("1", "a", "b")]) == []


def test_multi_dimensional_populations_and_two_inputs():
    pops = {"img": {"shape": None}, "aux": {"shape": [3]},
            "c": {"shape": [4, 4, 4]}, "out": {"shape": 2}}
    projs = {"img_c": {"from": "img", "to": "c", "synapse": {"name": "conv2d", "channels": 4, "padding": 1}},
             "c_out": {"from": "c", "to": "out", "synapse": [{"name": "flatten"}, {"name": "dense"}]},
             "aux_out": {"from": "aux", "to": "out", "synapse": {"name": "dense"}}}
    n = net(pops, projs, input_shape=(1, 4, 4), output="out")
    assert n.inputs == ["img", "aux"]
    out = n({"img": torch.rand(8, 2, 1, 4, 4), "aux": torch.rand(8, 2, 3)})
    assert out.spikes["c"].shape == (8, 2, 4, 4, 4) and out.spikes["out"].shape == (8, 2, 2)


@pytest.mark.parametrize("projs,error,message", [
    ({"x": {"from": "inp", "to": "nowhere"}}, ConfigError, "network.projections.x.to: no population 'nowhere'"),
    ({"x": {"from": "inp", "to": "h", "synapse": {"name": "conv2d"}}}, ShapeError,
     r"network.projections.x.synapse: projection 'x' \(inp -> h\): conv2d needs a \[channels, height, width\]"),
    ({"x": {"from": "inp", "to": "h", "synapse": [{"name": "flatten"}]}}, ShapeError,
     r"projection 'x' \(inp -> h\) produces shape \[6\] but population 'h' has shape \[5\]"),
    ({"x": {"from": "inp", "to": "h", "synapse": [{"name": "delay", "delay": 0.5}, {"name": "dense"}]}}, ConfigError,
     r"network.projections.x.synapse\[0\].delay: 0.5 ms is not a whole number"),
    ({"x": {"from": "inp", "to": "h", "weight": 3}}, ConfigError, "network.projections.x.weight: unknown key"),
])
def test_build_errors_name_the_projection(projs, error, message):
    with pytest.raises(error, match=message):
        net({"inp": {"shape": None}, "h": {"shape": 5}}, projs)


def test_conv_shape_mismatch_is_caught_at_build():
    pops = {"inp": {"shape": None}, "c": {"shape": [4, 6, 6]}}
    projs = {"conv": {"from": "inp", "to": "c", "synapse": {"name": "conv2d", "channels": 4}}}
    with pytest.raises(ShapeError, match=r"produces shape \[4, 6, 6\]|produces shape \[4, 4, 4\]"):
        net(pops, projs, input_shape=(1, 6, 6))


def test_excitatory_inhibitory_populations():
    pops = {"inp": {"shape": None},
            "exc": {"shape": 10, "neuron": {"name": "diehlandcook"}},
            "inh": {"shape": 10, "neuron": {"name": "lif", "tau_m": 10.0, "v_rest": -60.0, "v_reset": -45.0, "v_th": -40.0}}}
    projs = {"inp_exc": {"from": "inp", "to": "exc", "synapse": {"name": "dense", "init": "uniform", "high": 0.3, "w_min": 0.0, "w_max": 1.0}},
             "exc_inh": {"from": "exc", "to": "inh", "synapse": {"name": "one_to_one", "weight": 22.5}},
             "inh_exc": {"from": "inh", "to": "exc", "synapse": {"name": "lateral_inhibition", "weight": -120.0}}}
    n = net(pops, projs, input_shape=(6,), output="exc", duration=50.0)
    assert not n.feedforward and n.projections["inh_exc"].recurrent
    out = n((torch.rand(50, 1, 6) < 0.5).float() * 60)
    assert out.spikes["exc"].sum() > 0


def test_population_sign_applies_dales_law_to_outgoing_projections():
    pops = {"inp": {"shape": None}, "exc": {"shape": 6, "sign": "excitatory"},
            "inh": {"shape": 6, "sign": "inhibitory"}, "out": {"shape": 3}}
    normal = {"name": "dense", "init": "normal", "std": 1.0}
    projs = {"inp_exc": {"from": "inp", "to": "exc"},
             "exc_inh": {"from": "exc", "to": "inh", "synapse": {"name": "one_to_one", "weight": 5.0}},
             "exc_out": {"from": "exc", "to": "out", "synapse": normal},
             "inh_out": {"from": "inh", "to": "out", "synapse": [{"name": "delay", "delay": 1.0}, normal]}}
    n = net(pops, projs, output="out")
    exc_w = n.projections["exc_out"].stages[0].weight
    inh_w = n.projections["inh_out"].stages[1].weight
    assert exc_w.min() >= 0 and exc_w.max() > 0 and inh_w.max() <= 0 and inh_w.min() < 0
    with torch.no_grad():
        exc_w.fill_(-1.0)
    n.apply_constraints()  # after an optimizer step
    assert torch.all(exc_w == 0)
    bad = dict(projs, exc_out={"from": "exc", "to": "out", "synapse": {**normal, "sign": "inhibitory"}})
    with pytest.raises(ConfigError, match="network.projections.exc_out.synapse.sign: 'inhibitory' contradicts "
                                          "Dale's law: population 'exc' is excitatory"):
        net(pops, bad, output="out")
    bad = dict(projs, inh_out={"from": "inh", "to": "out", "synapse": {"name": "one_to_one", "weight": 2.0}})
    with pytest.raises(ConfigError, match=r"network.projections.inh_out.synapse.weight: 2.0 contradicts Dale's law"):
        net({**pops, "out": {"shape": 6}}, bad, output="out")


def test_per_synapse_delays_on_both_paths():
    def build(mode):
        pops = {"inp": {"shape": None}, "h": {"shape": 8}, "out": {"shape": 3}}
        projs = {"inp_h": {"from": "inp", "to": "h", "synapse": {"name": "dense", "init": "uniform", "high": 2.0}},
                 "h_out": {"from": "h", "to": "out",
                           "synapse": {"name": "delayed_dense", "delay": 4.0, "init": "uniform", "high": 2.0}}}
        return net(pops, projs, mode=mode, duration=12.0)
    torch.manual_seed(0)
    layer, step = build("layer"), build("step")
    step.load_state_dict(layer.state_dict())
    x = (torch.rand(12, 3, 6) < 0.5).float()
    a, b = layer(x).spikes["out"], step(x).spikes["out"]
    assert a.sum() > 0 and torch.equal(a, b)


def test_several_outputs_are_read_side_by_side():
    pops = {"inp": {"shape": None}, "a": {"shape": [2, 3]}, "b": {"shape": 4}}
    projs = {"inp_a": {"from": "inp", "to": "a", "synapse": {"name": "dense", "init": "uniform", "high": 2.0}},
             "inp_b": {"from": "inp", "to": "b", "synapse": {"name": "dense", "init": "uniform", "high": 2.0}}}
    torch.manual_seed(0)
    n = net(pops, projs, output=["a", "b"])
    assert n.outputs == ["a", "b"] and n.output == "a+b"
    out = n((torch.rand(8, 2, 6) < 0.5).float(), record={n.output: ("v",)})
    joint = out.spikes[n.output]
    assert joint.shape == (8, 2, 10) and joint.sum() > 0
    assert torch.equal(joint[..., :6], out.spikes["a"].flatten(2)) and torch.equal(joint[..., 6:], out.spikes["b"])
    assert out.traces[n.output]["v"].shape == (8, 2, 10)
    with pytest.raises(ConfigError, match="network.output: no population 'c'; populations: inp, a, b"):
        net(pops, projs, output=["a", "c"])


@pytest.mark.parametrize("experiment,input_shape", [("temporal_recurrent", (20,)), ("temporal_delayed", (20,)),
                                                    ("mnist_cnn", (1, 28, 28))])
def test_shipped_topologies_build_the_intended_graph(experiment, input_shape):
    from omegaconf import OmegaConf

    from conftest import compose_config

    cfg = compose_config([f"experiment={experiment}", "data.num_classes=4"])
    node = OmegaConf.to_container(cfg.network, resolve=True)
    n = build_network(node, OmegaConf.to_container(cfg.neuron), input_shape, output_size=4)  # out: shape null
    x = torch.zeros(n.time_steps, 2, *input_shape)
    assert n(x).spikes[n.output].shape == (n.time_steps, 2, 4)
    if experiment == "temporal_recurrent":  # the memory is a cycle: step by step
        assert not n.feedforward and n.projections["hidden_hidden"].recurrent
    elif experiment == "temporal_delayed":  # the memory is a delay: layer by layer
        delays = n.projections["hidden_out_delayed"].stages[0].delays
        assert n.feedforward and delays.min() == 0 and delays.max() == 32
    else:
        assert n.feedforward and n.populations["conv2"].shape == (32, 14, 14) and n.time_steps == 4


def recurrent_graph(recompute, neuron=None):
    """inp -> hid (a self-loop) -> out, 23 steps: chunks of 5 leave a short last chunk."""
    dense = {"name": "dense", "init": "uniform", "low": -0.3, "high": 2.0}
    pops = {"inp": {"shape": None}, "hid": {"shape": 9, **({"neuron": neuron} if neuron else {})}, "out": {"shape": 4}}
    projs = {"inp_hid": {"from": "inp", "to": "hid", "synapse": dense},
             "hid_hid": {"from": "hid", "to": "hid", "synapse": {"name": "recurrent", "init": "uniform",
                                                                 "low": -0.4, "high": 0.5}},
             "hid_out": {"from": "hid", "to": "out", "synapse": dense}}
    node = {"dt": 1.0, "duration": 23.0, "populations": pops, "projections": projs, "output": "out",
            "recompute_steps": recompute}
    return build_network(node, LIF, (6,), build_surrogate({"name": "atan"})).double()


@pytest.mark.parametrize("graph", ["skip", "recurrent", "recurrent_alif"])
def test_recompute_steps_gives_the_same_spikes_gradients_and_state(graph):
    """``network.recompute_steps``: chunks of 5 steps under activation checkpointing give the spikes,
    recorded traces, gradients (inputs, weights) and final states of the whole-run path (float64);
    hidden spikes come back detached as bool unless differentiated, and a backward leaves the
    neuron states as the forward left them."""
    def build(recompute):
        if graph == "skip":  # skip_graph without its delay stage, which cannot run in chunks
            n = skip_graph("auto")
            n.projections["a_b"].stages = n.projections["a_b"].stages[1:]
            n.recompute_steps = recompute
            return n.double()
        return recurrent_graph(recompute, {"name": "alif"} if graph == "recurrent_alif" else None)

    torch.manual_seed(0)
    whole, chunked = build(None), build(5)
    chunked.load_state_dict(whole.state_dict())
    steps = 8 if graph == "skip" else 23
    hidden = "a" if graph == "skip" else "hid"
    chunked.differentiated.add(hidden) if graph == "recurrent" else None
    x = (torch.rand(steps, 4, 6) < 0.4).double()
    results = []
    for net_ in (whole, chunked):
        xi = x.clone().requires_grad_(True)
        out = net_(xi, record={"out": ("v",)})
        loss = (out.spikes["out"] * torch.arange(1.0, out.spikes["out"].shape[-1] + 1.0, dtype=torch.float64)).sum() + out.traces["out"]["v"].square().sum()
        if graph == "recurrent":
            loss = loss + out.spikes[hidden].sum()
        state = [t.detach().clone() for t in net_.populations[hidden].neuron.state if t is not None]
        loss.backward()
        after = [t.detach() for t in net_.populations[hidden].neuron.state if t is not None]
        assert all(torch.equal(a, b) for a, b in zip(state, after))
        results.append((out, xi.grad, state))
    (a, ga, sa), (b, gb, sb) = results
    assert a.spikes["out"].sum() > 0 and a.spikes[hidden].sum() > 0
    for name in a.spikes:
        assert torch.equal(a.spikes[name], b.spikes[name].to(a.spikes[name].dtype)), name
    if graph == "recurrent":
        assert b.spikes[hidden].requires_grad
    else:
        assert b.spikes[hidden].dtype == torch.bool and not b.spikes[hidden].requires_grad
    torch.testing.assert_close(a.traces["out"]["v"], b.traces["out"]["v"], rtol=0, atol=0)
    torch.testing.assert_close(ga, gb, rtol=1e-10, atol=1e-12)
    for s1, s2 in zip(sa, sb):
        assert torch.equal(s1, s2)
    for (name, p), (_, q) in zip(whole.named_parameters(), chunked.named_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-12, msg=name)


def test_recompute_steps_keeps_one_chunk_of_activations():
    """What the backward keeps outside the recomputed chunks (the tensors autograd saves): chunks of 10
    of 100 steps keep less than a fifth of what the whole run keeps."""
    def kept(recompute):
        torch.manual_seed(0)
        pops = {"inp": {"shape": None}, "hid": {"shape": 256}, "out": {"shape": 10}}
        projs = {"inp_hid": {"from": "inp", "to": "hid", "synapse": {"name": "dense"}},
                 "hid_out": {"from": "hid", "to": "out", "synapse": {"name": "dense"}}}
        n = build_network({"dt": 1.0, "duration": 100.0, "populations": pops, "projections": projs,
                           "output": "out", "recompute_steps": recompute}, LIF, (64,), build_surrogate({"name": "atan"}))
        x = (torch.rand(100, 32, 64) < 0.3).float()
        total = [0]

        def pack(t):
            total[0] += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = n(x)
        out.spikes["out"].sum().backward()
        return total[0], out.spikes["out"]

    full, a = kept(None)
    chunked, b = kept(10)
    assert torch.equal(a, b)
    assert full > 100 * 32 * 256 * 4  # at least the hidden layer's potentials over all steps
    assert chunked < full / 5


def test_recompute_steps_refuses_stages_over_time():
    with pytest.raises(ConfigError, match=r"network.recompute_steps: the stages of projection 'a_b' \(delay\)"):
        node = {"dt": 1.0, "duration": 8.0, "recompute_steps": 4,
                "populations": {"inp": {"shape": None}, "a": {"shape": 3}, "b": {"shape": 2}},
                "projections": {"inp_a": {"from": "inp", "to": "a", "synapse": {"name": "dense"}},
                                "a_b": {"from": "a", "to": "b", "synapse": [{"name": "delay", "delay": 2.0},
                                                                           {"name": "dense"}]}}}
        build_network(node, LIF, (6,))
    n = skip_graph("auto")  # built without recompute_steps; its 'a_b' projection has a delay stage
    with pytest.raises(ConfigError, match=r"network.recompute_steps: the stages of projection 'a_b' \(delay\)"):
        n.recompute_steps = 4
    with pytest.raises(ConfigError, match="expected a whole number of steps >= 1"):
        n.recompute_steps = 0
    assert n.recompute_steps is None


def test_input_gradient_through_a_self_loop_with_frozen_weights_and_any_surrogate():
    """Frozen weights, an input that needs a gradient (a saliency map) and a surrogate the compiled
    self-loop's backward does not evaluate (gaussian): the population is stepped and the input
    gradient is that of ``mode: step``."""
    torch.manual_seed(0)
    nets = []
    for mode in ("auto", "step"):
        pops = {"inp": {"shape": None}, "hid": {"shape": 9}, "out": {"shape": 4}}
        projs = {"inp_hid": {"from": "inp", "to": "hid", "synapse": {"name": "dense", "init": "uniform",
                                                                    "low": -0.3, "high": 2.0}},
                 "hid_hid": {"from": "hid", "to": "hid", "synapse": {"name": "recurrent", "init": "uniform",
                                                                     "low": -0.4, "high": 0.5}},
                 "hid_out": {"from": "hid", "to": "out", "synapse": {"name": "dense", "init": "uniform",
                                                                    "low": -0.3, "high": 2.0}}}
        node = {"dt": 1.0, "duration": 15.0, "populations": pops, "projections": projs, "output": "out",
                "mode": mode}
        nets.append(build_network(node, LIF, (6,), build_surrogate({"name": "gaussian"})).double().requires_grad_(False))
    nets[1].load_state_dict(nets[0].state_dict())
    x = (torch.rand(15, 3, 6) < 0.4).double()
    grads = []
    for n in nets:
        xi = x.clone().requires_grad_(True)
        n(xi).spikes["out"].sum().backward()
        grads.append(xi.grad)
    assert grads[1].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("neuron,loop", [
    ({"name": "lif", "tau_m": 5.0}, {"self_connections": True}),
    ({"name": "if", "reset": "soft"}, {"self_connections": False, "bias": True}),
    ({"name": "lif", "tau_m": 5.0, "integration": "exact", "detach_reset": True}, {"self_connections": False}),
])
@pytest.mark.parametrize("recompute", [None, 6])
def test_a_population_with_a_linear_self_loop_runs_in_one_compiled_call(monkeypatch, neuron, loop, recompute):
    """A population alone on its cycle with a ``recurrent`` self-loop runs all its steps in one C++ call
    forward and one backward (lif_scan.recurrent_lif): the spikes, final potentials and gradients of
    stepping it (``mode: step``), float64, with and without chunks."""
    from snnrun.kernels import lif_scan
    if lif_scan._EXTENSION.load() is None:
        pytest.skip("no C++ compiler here: the population is stepped")
    calls = []
    compiled = lif_scan.recurrent_lif
    monkeypatch.setattr(lif_scan, "recurrent_lif", lambda *a, **k: calls.append(1) or compiled(*a, **k))

    def build(mode, chunks):
        dense = {"name": "dense", "init": "uniform", "low": -0.3, "high": 1.5}
        pops = {"inp": {"shape": None}, "hid": {"shape": [3, 4], "neuron": neuron}, "out": {"shape": 4}}
        projs = {"inp_hid": {"from": "inp", "to": "hid", "synapse": dense},
                 "hid_hid": {"from": "hid", "to": "hid", "synapse": {"name": "recurrent", "init": "uniform",
                                                                     "low": -0.5, "high": 0.6, **loop}},
                 "hid_out": {"from": "hid", "to": "out", "synapse": dense}}
        node = {"dt": 1.0, "duration": 20.0, "populations": pops, "projections": projs, "output": "out",
                "mode": mode, "recompute_steps": chunks}
        return build_network(node, LIF, (6,), build_surrogate({"name": "sigmoid"})).double()

    torch.manual_seed(5)
    fast, step = build("auto", recompute), build("step", None)
    fast.differentiated.add("hid")  # the loss below reads the hidden spikes
    step.load_state_dict(fast.state_dict())
    with torch.no_grad():
        fast.projections["hid_hid"].stages[0].bias.add_(0.1) if loop.get("bias") else None
        step.load_state_dict(fast.state_dict())
    x = (torch.rand(20, 5, 6) < 0.4).double()
    results = []
    for n in (fast, step):
        xi = x.clone().requires_grad_(True)
        out = n(xi)
        loss = (out.spikes["out"] * torch.arange(1.0, 5.0, dtype=torch.float64)).sum() + out.spikes["hid"].sum() \
            + n.populations["hid"].neuron.state.v.sum()
        loss.backward()
        results.append((out.spikes, xi.grad, n.populations["hid"].neuron.state.v.detach(),
                        {k: p.grad for k, p in n.named_parameters()}))
    assert calls, "the compiled loop did not run"
    (sa, ga, va, pa), (sb, gb, vb, pb) = results
    with torch.no_grad():  # inference: the same loop without saving anything
        fast.reset()
        calls.clear()
        assert torch.equal(fast(x).spikes["out"], sb["out"]) and calls
    assert 0 < sa["hid"].sum() < sa["hid"].numel() and sa["out"].sum() > 0
    for name in ("hid", "out"):
        assert torch.equal(sa[name], sb[name]), name
    assert torch.equal(va, vb)
    torch.testing.assert_close(ga, gb, rtol=1e-9, atol=1e-12)
    for name in pb:
        assert pb[name] is not None and pb[name].abs().sum() > 0, name
        torch.testing.assert_close(pa[name], pb[name], rtol=1e-9, atol=1e-12, msg=name)


def test_compiled_self_loop_says_why_it_cannot_backward_twice():
    from snnrun.kernels import lif_scan
    if lif_scan._EXTENSION.load() is None:
        pytest.skip("no C++ compiler here: the population is stepped")
    torch.manual_seed(0)
    n = recurrent_graph(None)
    out = n((torch.rand(23, 4, 6) < 0.4).double())
    loss = out.spikes["hid"].sum()  # through the loop alone
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="recurrent LIF loop's saved potentials were used by an earlier backward"):
        loss.backward()
