"""The compiled step engine (snnrun.engine / kernels/step_engine) reproduces the torch reference
(Network stepped with the local learners called from step_hook, as the diehl_cook task's torch path):
the same spikes of every population, bit for bit, and the same weights and persistent state θ
(float64, rtol 1e-10, atol 1e-12; conv2d rtol 1e-9: its sums' order is torch's library's; the reward
rules bit for bit), for every supported neuron model, synapse kind and rule option; an unsupported
network gets a reason naming the component."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from omegaconf import OmegaConf

from snnrun import kernels
from snnrun.build import build_experiment
from snnrun.engine import CompiledNetwork, engine_support
from snnrun.kernels import step_engine

from tests.conftest import compiled, compose_config

N_IN = 16


def base_config(*overrides, exc=6, steps=40):
    """The shipped D&C experiment (small N), on synthetic data with N_IN features."""
    cfg = OmegaConf.to_container(compose_config(["experiment=diehl_cook", f"network.duration={steps}",
                                                 f"network.populations.exc.shape={exc}",
                                                 f"network.populations.inh.shape={exc}", "learner.w_norm=4.0",
                                                 *overrides]))
    cfg["data"] = {"name": "synthetic", "features": N_IN, "classes": 3, "train_size": 8, "test_size": 4,
                   "batch_size": 1, "val_fraction": 0.0}
    cfg.pop("hydra", None)
    cfg["device"] = "cpu"
    return cfg


def models(cfg, one_spike=None, prepare=None):
    """(reference, compiled) CompiledNetwork of two builds of ``cfg`` (same seed: same weights);
    ``prepare(network)`` changes both before the engine plans them."""
    compiled(step_engine._EXTENSION)
    out = []
    for backend in ("reference", "compiled"):
        exp = build_experiment(copy.deepcopy(cfg))
        net = exp.network.double()
        if one_spike is not None:
            net.populations["exc"].neuron.params.one_spike = one_spike
        if prepare is not None:
            prepare(net)
        out.append(CompiledNetwork(net, exp.learners, backend))
    return out


def trains(n, steps, rate, seed, inputs=N_IN):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(steps, inputs, generator=g) < rate for _ in range(n)]


def state(model):
    model.sync()
    out = {f"w:{k}": v for k, v in model.weights().items()}
    for name, pop in model.network.populations.items():
        if hasattr(getattr(pop, "neuron", None), "theta"):
            out[f"theta:{name}"] = pop.neuron.theta.detach().clone()
    return out


def assert_same(cfg, seed, samples=5, learn=(True, True, True, False, True), rate=0.2, one_spike=None, active=None,
                prepare=None, rtol=1e-10, reward=False):
    """Run ``samples`` random binary trains through both paths; spikes exactly equal (a non-spiking
    population's potential too), weights and θ allclose. ``reward``: after each learning sample both
    call ``end_sample`` with the output counts as scores and a label cycling over the outputs (the
    reward rules apply their reward there; the logs must be equal). Returns the spike totals per
    population (to check the network was active) and the weights that changed."""
    ref, fast = models(cfg, one_spike, prepare)
    assert fast.backend == "compiled" and ref.backend == "reference"
    before = state(ref)
    for key, value in state(fast).items():
        assert torch.equal(before[key], value), key
    steps = int(cfg["network"]["duration"])
    n_in = math.prod(ref.network.populations[ref.network.inputs[0]].shape)
    totals: dict[str, int] = {}
    for i, x in enumerate(trains(samples, steps, rate, seed, n_in)):
        mode = learn[i % len(learn)]
        counts_ref, spikes_ref = ref.run(x, mode)
        counts_fast, spikes_fast = fast.run(x, mode)
        for name in spikes_ref:
            assert torch.equal(spikes_ref[name], spikes_fast[name]), \
                f"sample {i} ({'learn' if mode else 'frozen'}), population {name}: spikes differ at steps " \
                f"{(spikes_ref[name] != spikes_fast[name]).any(1).nonzero().flatten().tolist()[:10]}"
            assert torch.equal(counts_ref[name], counts_fast[name])
            totals[name] = totals.get(name, 0) + float(counts_ref[name].abs().sum())
        if reward and mode:
            scores = torch.cat([counts_ref[name] for name in ref.outputs]).to(torch.float64).unsqueeze(0)
            target = torch.tensor([i % scores.shape[1]])
            assert ref.end_sample(scores, target) == fast.end_sample(scores, target)
        assert torch.equal(ref.sample(x, False), fast.sample(x, False))
    # frozen samples as a batch (both paths) give each sample's counts
    xs = torch.stack(trains(4, steps, rate, seed + 100, n_in))
    per_sample = torch.stack([fast.sample(x, False) for x in xs])
    assert torch.equal(fast.sample_batch(xs), per_sample)
    assert torch.equal(ref.sample_batch(xs), per_sample)
    after_ref, after_fast = state(ref), state(fast)
    for key in after_ref:
        torch.testing.assert_close(after_fast[key], after_ref[key], rtol=rtol, atol=rtol * 1e-2, msg=key)
    changed = [k for k in after_ref if k.startswith("w:") and not torch.equal(after_ref[k], before[k])]
    for name in active or ():
        assert totals[name] > 0, f"population {name} never spiked: the test checks nothing"
    return totals, changed


# --- the shipped D&C network and its rule options -------------------------------------------------------

RULES = {
    "postpre": [],
    "all_to_all_multiplicative": ["learner.mode=all_to_all", "learner.weight_dependence=multiplicative"],
    "weights_first_nearest": ["learner.order=weights_first"],
    "weights_first_all_to_all": ["learner.order=weights_first", "learner.mode=all_to_all"],
    "multiplicative_traces_first": ["learner.weight_dependence=multiplicative", "learner.lr=[0.01,0.05]"],
    "weight_decay": ["learner.weight_decay=0.001"],
    "no_w_norm_mean": ["learner.w_norm=null", "learner.reduction=mean", "learner.lr=[0.01,0.05]"],
    "one_bound": ["learner.w_min=null", "learner.w_max=0.9", "network.projections.inp_exc.synapse.w_min=null",
                  "network.projections.inp_exc.synapse.w_max=null"],
    "noop": ["learner.name=noop", "~learner.mode", "~learner.order", "~learner.tau_plus", "~learner.tau_minus",
             "~learner.a_plus", "~learner.a_minus", "~learner.weight_dependence", "learner.weight_decay=0.01"],
}


@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("seed", [0, 1])
def test_diehl_cook_rules_match_reference(rule, seed):
    totals, changed = assert_same(base_config(*RULES[rule]), seed, active=["exc", "inh"])
    assert changed == ["w:inp_exc"]


@pytest.mark.parametrize("one_spike", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shipped_diehl_cook_matches_reference(one_spike, seed):
    """The shipped experiment=diehl_cook (N=10, 60 steps), one_spike off and on; θ learned."""
    cfg = base_config(exc=10, steps=60)
    totals, changed = assert_same(cfg, seed, samples=6, one_spike=one_spike, active=["exc", "inh"])
    assert changed == ["w:inp_exc"]


def test_shipped_diehl_cook_soft_reset_and_frozen_theta():
    cfg = base_config("++network.populations.exc.neuron.reset=soft", "++network.populations.inh.neuron.reset=soft",
                      "++network.populations.inh.neuron.integration=exact")
    assert_same(cfg, 3, active=["exc", "inh"])
    cfg = base_config("++network.populations.exc.neuron.learn_theta=false")
    assert_same(cfg, 4, active=["exc", "inh"])


# --- neuron models ----------------------------------------------------------------------------------------

#: model node and the input weights' scale that makes it fire
MODELS = {
    "lif_euler": ({"name": "lif", "tau_m": 10.0, "refractory": 2.0}, 1.0),
    "lif_exact_soft": ({"name": "lif", "tau_m": 10.0, "integration": "exact", "reset": "soft"}, 1.0),
    "lif_units": ({"name": "lif", "tau_m": 10.0, "v_rest": -65.0, "v_reset": -70.0, "v_th": -50.0, "r": 5.0}, 6.0),
    "if": ({"name": "if", "tau_m": 2.0, "refractory": 1.0}, 0.5),
    "ifsoftreset": ({"name": "ifsoftreset", "tau_m": 2.0}, 0.5),
    "diehlandcook": ({"name": "diehlandcook", "theta_plus": 0.5, "tau_theta": 50.0}, 8.0),
    "diehlandcook_one_spike": ({"name": "diehlandcook", "one_spike": True, "theta_plus": 0.5}, 8.0),
    "alif_soft": ({"name": "alif", "tau_m": 10.0, "beta": 0.5, "tau_a": 30.0}, 1.0),
    "alif_hard_exact_refractory": ({"name": "alif", "tau_m": 10.0, "reset": "hard", "integration": "exact",
                                    "refractory": 2.0, "v_rest": -1.0}, 1.0),
    "adex": ({"name": "adex"}, 6.0),
    "adex_refractory": ({"name": "adex", "refractory": 2.0, "b": 0.3, "a": 0.01}, 6.0),
    "izh": ({"name": "izh"}, 20.0),
    "izh_fs_dt": ({"name": "izh", "preset": "FS", "substep": 0.25}, 20.0),
    "plif": ({"name": "plif", "tau_m": 5.0, "refractory": 1.0}, 1.0),
    "plif_per_neuron_soft": ({"name": "plif", "tau_m": 3.0, "per_neuron": True, "reset": "soft"}, 1.0),
    "clif": ({"name": "clif", "tau_m": 10.0, "tau_syn": 5.0}, 0.3),
    "clif_exact_soft_refractory": ({"name": "clif", "tau_m": 10.0, "tau_syn": 3.0, "integration": "exact",
                                    "reset": "soft", "refractory": 2.0}, 0.4),
    "qif": ({"name": "qif"}, 5.0),
    "qif_refractory": ({"name": "qif", "refractory": 2.0, "a0": 0.05, "v_th": -20.0}, 5.0),
    "glif1": ({"name": "glif", "level": 1}, 0.2),
    "glif2_refractory": ({"name": "glif", "level": 2, "refractory": 2.0}, 0.2),
    "glif3": ({"name": "glif", "level": 3, "asc_r": [0.5, 1.0]}, 0.2),
    "glif4": ({"name": "glif", "level": 4}, 0.2),
    "glif5_refractory": ({"name": "glif", "level": 5, "refractory": 1.0, "a_v": 0.02}, 0.2),
}


def chain_config(model, scale, steps=40, learner=None):
    """inp -(dense, STDP)-> hid (model) -(dense, STDP)-> out (lif)."""
    cfg = base_config(steps=steps)
    cfg["network"] = {"dt": 1.0, "duration": float(steps), "mode": "auto", "output": "out",
                      "populations": {"inp": {"shape": None}, "hid": {"shape": 8, "neuron": model},
                                      "out": {"shape": 4, "neuron": {"name": "lif", "tau_m": 5.0}}},
                      "projections": {
                          "inp_hid": {"from": "inp", "to": "hid", "synapse": {
                              "name": "dense", "init": "uniform", "low": 0.0, "high": scale, "w_max": 2 * scale}},
                          "hid_out": {"from": "hid", "to": "out", "synapse": {
                              "name": "dense", "init": "uniform", "low": 0.5, "high": 1.5, "bias": True}}}}
    cfg["learner"] = learner or {"name": "stdp", "trainable": ["inp_hid", "hid_out"], "lr": [0.02, 0.05],
                                 "w_min": 0.0, "mode": "all_to_all"}
    return cfg


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("seed", [0, 1])
def test_neuron_models_match_reference(model, seed):
    node, scale = MODELS[model]
    totals, changed = assert_same(chain_config(node, scale), seed, rate=0.25, active=["hid", "out"])
    assert sorted(changed) == ["w:hid_out", "w:inp_hid"]


def spread_plif_tau(net):
    """Distinct learned τ per neuron (as after gradient training): w of every plif population."""
    for pop in net.populations.values():
        w = getattr(pop.neuron, "w", None)
        if isinstance(w, torch.nn.Parameter) and w.dim():
            with torch.no_grad():
                w.copy_(w + torch.linspace(-1.0, 1.0, w.numel(), dtype=w.dtype).reshape(w.shape))


@pytest.mark.parametrize("seed", [0, 1])
def test_plif_runs_with_its_current_learned_tau(seed):
    """plif with one τ per neuron, w changed after the build (the engine plans the current τ), and
    reload() picks up a w changed later (a checkpoint)."""
    node = {"name": "plif", "tau_m": 4.0, "per_neuron": True, "refractory": 1.0}
    assert_same(chain_config(node, 1.0), seed, rate=0.25, active=["hid", "out"], prepare=spread_plif_tau)
    ref, fast = models(chain_config(node, 1.0))
    x = trains(1, 40, 0.25, seed)[0]
    for model in (ref, fast):
        spread_plif_tau(model.network)
        model.reload()
    counts_ref, spikes_ref = ref.run(x, False)
    counts_fast, spikes_fast = fast.run(x, False)
    for name in spikes_ref:
        assert torch.equal(spikes_ref[name], spikes_fast[name]), name


def leaky_readout_config(integration, steps=40):
    """inp -(dense, STDP)-> hid (lif) -(dense, frozen)-> out (leaky, non-spiking readout)."""
    cfg = chain_config({"name": "lif", "tau_m": 10.0}, 1.0, steps=steps)
    cfg["network"]["populations"]["out"]["neuron"] = {"name": "leaky", "tau_m": 8.0, "v_rest": -0.5, "r": 1.5,
                                                      "integration": integration}
    cfg["network"]["projections"]["hid_out"]["synapse"].update(init="uniform", low=-1.0, high=1.5)
    cfg["learner"]["trainable"] = ["inp_hid"]
    return cfg


@pytest.mark.parametrize("integration", ["exact", "euler"])
@pytest.mark.parametrize("seed", [0, 1])
def test_leaky_readout_matches_reference(integration, seed):
    """The potential of a non-spiking leaky readout, bit for bit, every step (its raster) and summed."""
    cfg = leaky_readout_config(integration)
    totals, changed = assert_same(cfg, seed, rate=0.25, active=["hid", "out"])
    assert changed == ["w:inp_hid"]
    _, fast = models(cfg)
    counts, rasters = fast.run(trains(1, 40, 0.25, seed)[0], False)
    assert counts["out"].dtype == torch.float64 and rasters["out"].dtype == torch.float64
    assert rasters["out"].shape == (40, 4) and len(torch.unique(rasters["out"])) > 10


# --- synapses ----------------------------------------------------------------------------------------------

def synapse_config(inp_hid, extra=None, trainable=("hid_out",), hid=8):
    """inp -(inp_hid)-> hid (lif) -(dense, STDP)-> out (lif), and ``extra`` projections."""
    cfg = chain_config({"name": "lif", "tau_m": 10.0, "refractory": 1.0}, 1.0)
    net = cfg["network"]
    net["populations"]["hid"]["shape"] = hid
    net["projections"]["inp_hid"]["synapse"] = inp_hid
    for name, (source, target, shape, synapse) in (extra or {}).items():
        net["populations"].setdefault(target, {"shape": shape, "neuron": {"name": "if", "tau_m": 1.0}})
        net["projections"][name] = {"from": source, "to": target, "synapse": synapse}
    cfg["learner"]["trainable"] = list(trainable)
    return cfg


SYNAPSES = {
    "sparse": {"name": "sparse", "p": 0.5, "init": "uniform", "low": 0.0, "high": 1.2, "seed": 3},
    "sparse_signed": {"name": "sparse", "p": 0.7, "init": "normal", "mean": 0.6, "std": 0.6, "seed": 1},
    "delay_dense": [{"name": "delay", "delay": 3.0}, {"name": "dense", "init": "uniform", "low": 0.0, "high": 1.0}],
    "delay_per_neuron_dense": [{"name": "delay", "delay": 5.0, "per_neuron": True, "seed": 2},
                               {"name": "dense", "init": "uniform", "low": -0.2, "high": 1.0, "bias": True}],
    "delayed_dense": {"name": "delayed_dense", "delay": 4.0, "init": "uniform", "low": 0.0, "high": 1.0, "seed": 5},
    "delayed_dense_zero": {"name": "delayed_dense", "delay": 0.0, "init": "uniform", "low": 0.0, "high": 1.0},
    "delay_sparse": [{"name": "delay", "delay": 2.0, "per_neuron": True},
                     {"name": "sparse", "p": 0.6, "init": "uniform", "low": 0.0, "high": 1.2}],
}


@pytest.mark.parametrize("synapse", list(SYNAPSES))
@pytest.mark.parametrize("seed", [0, 1])
def test_synapses_match_reference(synapse, seed):
    """Frozen sparse / delayed projections into the hidden layer, STDP on the dense one after it."""
    totals, changed = assert_same(synapse_config(SYNAPSES[synapse]), seed, rate=0.25, active=["hid", "out"])
    assert changed == ["w:hid_out"]


@pytest.mark.parametrize("synapse", ["sparse_signed", "delay_sparse", "delay_per_neuron_dense", "delayed_dense"])
@pytest.mark.parametrize("seed", [0, 1])
def test_synaptic_currents_match_reference(synapse, seed):
    """The current itself, read through a leaky readout's potential: a busy hidden layer (30 neurons,
    most spiking every step) into ``out`` through the synapse. sparse (torch.sparse.mm sums each
    target's entries in stored order) and delay (copies) are bit for bit; delayed_dense's GEMM and its
    layer path's order of the delay groups are the reference's own, so only ≈1e-15 is promised."""
    cfg = leaky_readout_config("exact")
    cfg["network"]["populations"]["hid"]["shape"] = 30
    cfg["network"]["projections"]["hid_out"]["synapse"] = copy.deepcopy(SYNAPSES[synapse])
    ref, fast = models(cfg)
    for i, x in enumerate(trains(4, 40, 0.5, seed)):
        (_, r_ref), (_, r_fast) = ref.run(x, i % 2 == 0), fast.run(x, i % 2 == 0)
        assert torch.equal(r_ref["hid"], r_fast["hid"]) and int(r_ref["hid"].sum()) > 200
        if synapse == "delayed_dense":
            torch.testing.assert_close(r_fast["out"], r_ref["out"], rtol=1e-13, atol=1e-13)
        else:
            assert torch.equal(r_ref["out"], r_fast["out"])


@pytest.mark.parametrize("seed", [0, 1])
def test_delay_stage_alone_and_before_other_synapses(seed):
    """A delay alone (the delayed spikes are the current), before one_to_one, before
    lateral_inhibition, and on a back edge before a recurrent synapse."""
    extra = {
        "hid_echo": ("hid", "echo", 8, {"name": "delay", "delay": 2.0, "per_neuron": True, "seed": 4}),
        "hid_echo2": ("hid", "echo", 8, [{"name": "delay", "delay": 1.0}, {"name": "one_to_one", "weight": 0.6}]),
        "echo_echo": ("echo", "echo", 8, [{"name": "delay", "delay": 3.0},
                                          {"name": "recurrent", "init": "uniform", "low": 0.0, "high": 0.4}]),
        "hid_lat": ("hid", "lat", 8, [{"name": "delay", "delay": 2.0},
                                      {"name": "lateral_inhibition", "weight": 0.5}]),
    }
    cfg = synapse_config({"name": "dense", "init": "uniform", "low": 0.0, "high": 1.0}, extra,
                         trainable=("inp_hid", "hid_out"))
    cfg["network"]["output"] = ["out", "echo", "lat"]
    ref, _ = models(cfg)
    assert ref.network.projections["echo_echo"].recurrent
    totals, changed = assert_same(cfg, seed, rate=0.25, active=["hid", "out", "echo", "lat"])
    assert sorted(changed) == ["w:hid_out", "w:inp_hid"]


# --- conv2d, STDP on it -------------------------------------------------------------------------------------

def conv_config(learner=None, steps=40, shape=(4, 6, 6), lateral=-0.2, **synapse):
    """inp [1, 8, 8] -(conv2d 3x3, STDP)-> conv (lif) [4, 6, 6], lateral inhibition within conv."""
    cfg = base_config(steps=steps)
    cfg["data"]["features"] = 64
    conv = {"name": "conv2d", "channels": shape[0], "kernel_size": 3, "init": "uniform", "low": 0.0, "high": 0.8,
            "w_min": 0.0, "w_max": 1.0, **synapse}
    cfg["network"] = {"dt": 1.0, "duration": float(steps), "mode": "auto", "output": "conv", "populations": {
        "inp": {"shape": [1, 8, 8]},
        "conv": {"shape": list(shape), "neuron": {"name": "lif", "tau_m": 10.0, "refractory": 1.0}}},
        "projections": {"inp_conv": {"from": "inp", "to": "conv", "synapse": conv}}}
    if lateral:
        cfg["network"]["projections"]["conv_conv"] = {"from": "conv", "to": "conv", "synapse": {
            "name": "lateral_inhibition", "weight": lateral}}
    cfg["learner"] = {"name": "stdp", "trainable": ["inp_conv"], "lr": [0.005, 0.01], "w_min": 0.0, "w_max": 1.0,
                      "mode": "all_to_all", **(learner or {})}
    return cfg


def spread_bias(net):
    for proj in net.projections.values():
        bias = getattr(proj.stages[-1], "bias", None)
        if isinstance(bias, torch.Tensor):
            with torch.no_grad():
                bias.copy_(torch.linspace(-0.2, 0.3, bias.numel(), dtype=bias.dtype))


CONV = {
    "all_to_all": ({}, {}),
    "postpre_multiplicative_w_norm": ({"name": "postpre", "lr": [0.01, 0.05], "weight_dependence": "multiplicative",
                                       "w_norm": 4.0, "mode": "nearest"}, {}),
    "weight_decay_traces_first": ({"weight_decay": 0.001, "order": "traces_first"}, {}),
    "stride_padding_bias": ({}, {"stride": 2, "padding": 1, "bias": True, "channels": 3}),
}


@pytest.mark.parametrize("variant", list(CONV))
@pytest.mark.parametrize("seed", [0, 1])
def test_conv2d_stdp_matches_reference(variant, seed):
    """A conv2d layer trained by STDP (rules.conv2d_outer). F.conv2d and the rule's einsum over the
    positions sum in their libraries' orders, the engine in ascending order, event-driven: currents
    and correlations may differ by ≈1e-16 relative. The spikes must still be equal (float64: a
    neuron within 1e-16 of its threshold does not occur in these samples) and the kernels agree to
    rtol 1e-9 (measured: ≤ 2e-16)."""
    learner, synapse = CONV[variant]
    shape = (3, 4, 4) if synapse.get("stride") else (4, 6, 6)
    cfg = conv_config(learner, shape=shape, **synapse)
    totals, changed = assert_same(cfg, seed, rate=0.25, active=["conv"], rtol=1e-9, prepare=spread_bias)
    assert changed == ["w:inp_conv"]


@pytest.mark.parametrize("seed", [0, 1])
def test_conv2d_into_a_dense_readout(seed):
    """conv2d (STDP) -> conv [4, 6, 6] -(dense, STDP)-> out (lif): a [C, H, W] population read flat."""
    cfg = conv_config(lateral=None)
    cfg["network"]["populations"]["out"] = {"shape": 5, "neuron": {"name": "lif", "tau_m": 5.0}}
    cfg["network"]["projections"]["conv_out"] = {"from": "conv", "to": "out", "synapse": {
        "name": "dense", "init": "uniform", "low": 0.0, "high": 0.3}}
    cfg["network"]["output"] = "out"
    cfg["learner"]["trainable"] = ["inp_conv", "conv_out"]
    totals, changed = assert_same(cfg, seed, rate=0.25, active=["conv", "out"], rtol=1e-9)
    assert sorted(changed) == ["w:conv_out", "w:inp_conv"]


# --- reward-modulated STDP ----------------------------------------------------------------------------

REWARD = {
    "mstdp": {"name": "mstdp"},
    "mstdp_output_spikes": {"name": "mstdp", "reward_at": "output_spikes", "order": "traces_first"},
    "mstdpet": {"name": "mstdpet", "tau_c": 10.0},
    "mstdpet_output_spikes_multiplicative": {"name": "mstdpet", "reward_at": "output_spikes",
                                             "weight_dependence": "multiplicative", "mode": "nearest"},
    "mstdpet_soft_w_norm_decay": {"name": "mstdpet", "boundary": "soft", "w_norm": 8.0, "weight_decay": 0.001,
                                  "reward": {"name": "global_reward", "reward": 1.0, "punishment": 0.5}},
    "reward_switch_stdp": {"name": "reward_switch_stdp", "a_plus_punish": 0.5, "a_minus_punish": 2.0},
}


@pytest.mark.parametrize("rule", list(REWARD))
@pytest.mark.parametrize("seed", [0, 1])
def test_reward_rules_match_reference(rule, seed):
    """The reward rules on the chain: the engine accumulates the pair terms (MSTDP) or the eligibility
    trace's sum (MSTDPET) during the sample, bit for bit; the learner's own end_sample applies the
    sample's reward (argmax of the output counts vs a cycling label: rewards of both signs), on the
    same tensors as the reference: the weights are equal, bit for bit (rtol 0)."""
    learner = {"trainable": ["inp_hid", "hid_out"], "lr": [0.02, 0.05], "w_min": 0.0, "mode": "all_to_all",
               **REWARD[rule]}
    cfg = chain_config({"name": "lif", "tau_m": 10.0, "refractory": 1.0}, 1.0, learner=learner)
    totals, changed = assert_same(cfg, seed, rate=0.25, active=["hid", "out"], reward=True, rtol=0.0)
    assert sorted(changed) == ["w:hid_out", "w:inp_hid"]


# --- variants of D&C --------------------------------------------------------------------------------------

@pytest.mark.parametrize("exc", ["adex", "alif"])
@pytest.mark.parametrize("seed", [0, 1])
def test_diehl_cook_with_other_excitatory_neurons(exc, seed):
    cfg = base_config()
    pops = cfg["network"]["populations"]
    if exc == "adex":
        pops["exc"]["neuron"] = {"name": "adex", "refractory": 2.0}
        cfg["network"]["projections"]["inp_exc"]["synapse"].update(high=6.0, w_max=10.0)
        cfg["network"]["projections"]["inh_exc"]["synapse"]["weight"] = -5.0
        cfg["learner"].update(w_max=10.0, w_norm=30.0)
    else:
        pops["exc"]["neuron"] = {"name": "alif", "tau_m": 10.0, "beta": 0.5, "tau_a": 50.0, "refractory": 3.0}
        cfg["network"]["projections"]["inh_exc"]["synapse"]["weight"] = -1.0
        cfg["learner"].update(w_norm=6.0)
    assert_same(cfg, seed, active=["exc", "inh"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_stacked_excitatory_layers(seed):
    """inp -> exc1 <-> inh1 -> exc2 <-> inh2, STDP (one learner) on both dense projections."""
    cfg = base_config()
    net = cfg["network"]
    pops, projs = net["populations"], net["projections"]
    pops["exc2"] = copy.deepcopy(pops["exc"])
    pops["inh2"] = copy.deepcopy(pops["inh"])
    pops["exc2"]["shape"] = pops["inh2"]["shape"] = 5
    projs["exc_exc2"] = {"from": "exc", "to": "exc2", "synapse": {"name": "dense", "init": "uniform", "low": 5.0,
                                                                   "high": 15.0, "w_min": 0.0, "w_max": 20.0}}
    projs["exc2_inh2"] = {"from": "exc2", "to": "inh2", "synapse": {"name": "one_to_one", "weight": 22.5}}
    projs["inh2_exc2"] = {"from": "inh2", "to": "exc2", "synapse": {"name": "lateral_inhibition", "weight": -30.0}}
    net["output"] = "exc2"
    cfg["learner"].update(trainable=["inp_exc", "exc_exc2"], w_norm=None, w_max=20.0)
    cfg["network"]["populations"]["exc"]["neuron"]["one_spike"] = False
    totals, changed = assert_same(cfg, seed, active=["exc", "exc2", "inh2"])
    assert sorted(changed) == ["w:exc_exc2", "w:inp_exc"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recurrent_excitatory_inhibitory_network(seed):
    """80 excitatory / 20 inhibitory LIF neurons, a recurrent synapse E->E (STDP, multiplicative),
    dense E->I and I->E (a back edge: the previous step's spikes)."""
    cfg = base_config(steps=30)
    cfg["network"] = {"dt": 1.0, "duration": 30.0, "mode": "auto", "output": "exc", "populations": {
        "inp": {"shape": None},
        "exc": {"shape": 80, "neuron": {"name": "lif", "tau_m": 10.0, "refractory": 2.0}},
        "inh": {"shape": 20, "neuron": {"name": "lif", "tau_m": 5.0}}},
        "projections": {
            "inp_exc": {"from": "inp", "to": "exc", "synapse": {"name": "dense", "init": "uniform", "low": 0.0,
                                                                 "high": 0.6}},
            "exc_exc": {"from": "exc", "to": "exc", "synapse": {"name": "recurrent", "init": "uniform", "low": 0.0,
                                                                 "high": 0.08, "w_min": 0.0, "w_max": 0.3}},
            "exc_inh": {"from": "exc", "to": "inh", "synapse": {"name": "dense", "init": "uniform", "low": 0.0,
                                                                 "high": 0.3}},
            "inh_exc": {"from": "inh", "to": "exc", "synapse": {"name": "dense", "init": "uniform", "low": -0.8,
                                                                 "high": 0.0}}}}
    cfg["learner"] = {"name": "stdp", "trainable": ["exc_exc"], "lr": [0.01, 0.01], "w_min": 0.0, "w_max": 0.3,
                      "weight_dependence": "multiplicative", "mode": "all_to_all"}
    ref, _ = models(cfg)
    assert ref.network.projections["exc_exc"].recurrent and ref.network.projections["inh_exc"].recurrent
    totals, changed = assert_same(cfg, seed, rate=0.2, active=["exc", "inh"])
    assert changed == ["w:exc_exc"]


@pytest.mark.parametrize("seed", [0, 1])
def test_weights_outside_the_bounds_are_clamped_at_the_first_step(seed):
    """Weights set outside [w_min, w_max] before a learning sample: the first step clamps every one of
    them on both paths (the engine skips that pass only when all are within the bounds)."""
    cfg = base_config("learner.w_norm=null")
    ref, fast = models(cfg)
    for model in (ref, fast):
        weight = model.network.projections["inp_exc"].stages[0].weight
        with torch.no_grad():
            weight.mul_(3.0).sub_(0.5)
        model.reload()
    x = trains(1, 40, 0.2, seed)[0]
    ref.run(x, True)
    fast.run(x, True)
    w_ref, w_fast = state(ref)["w:inp_exc"], state(fast)["w:inp_exc"]
    assert float(w_ref.min()) >= 0.0 and float(w_ref.max()) <= 1.0
    torch.testing.assert_close(w_fast, w_ref, rtol=1e-10, atol=1e-12)


def test_batch_spreads_samples_over_threads_and_writes_nothing():
    """A frozen batch gives the same counts on one and two threads, for every population, and leaves
    weights and θ as they were."""
    cfg = base_config(exc=10)
    _, fast = models(cfg)
    xs = torch.stack(trains(7, 40, 0.3, 5))
    before = state(fast)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fast.run_batch(xs)
        torch.set_num_threads(2)
        two = fast.run_batch(xs)
    finally:
        torch.set_num_threads(threads)
    assert set(one) == {"inp", "exc", "inh"} and one["exc"].shape == (7, 10)
    assert int(one["exc"].sum()) > 0
    for name in one:
        assert torch.equal(one[name], two[name]), name
    assert torch.equal(one["inp"], xs.sum(1).to(torch.int64))
    for key, value in state(fast).items():
        assert torch.equal(before[key], value), key


def test_sample_records_the_path_and_sync_reload_round_trip():
    cfg = base_config()
    _, fast = models(cfg)
    kernels.reset_usage()
    counts = fast.sample(trains(1, 40, 0.2, 0)[0], True)
    assert counts.dtype == torch.int64 and counts.shape == (6,)
    assert kernels.report()["kernels"]["step_engine"]["ran"] == "compiled"
    fast.sync()
    weight = fast.network.projections["inp_exc"].stages[0].weight
    with torch.no_grad():
        weight.fill_(0.25)
    fast.reload()
    assert torch.equal(fast.weights()["inp_exc"], weight.detach())


# --- unsupported networks -------------------------------------------------------------------------------

@pytest.mark.parametrize("change,expected", [
    (["++network.populations.exc.neuron.escape_noise=true"],
     r"network.populations.exc: neuron model 'diehlandcook': escape_noise"),
    (["hh"], r"network.populations.inh: neuron model 'hh' is not supported"),
    (["learner.boundary=soft"], r"learner: learner 'stdp': boundary: soft"),
    (["learner.norm_every=step"], r"learner: learner 'stdp': norm_every: 'step'"),
    (["dropout"], r"network.projections.exc_inh: synapse 'dropout' is not supported"),
    (["chain"], r"network.projections.exc_inh: a chain of 2 synapse stages \(one_to_one, delay\)"),
    (["stdp_after_delay"], r"learner: learner 'stdp': projection 'inp_exc' has stages before its weight"),
    (["leaky_source"], r"network.projections.exc_inh: its source 'exc' is non-spiking"),
])
def test_unsupported_networks_name_the_component(change, expected):
    cfg = base_config(*[c for c in change if "=" in c])
    projs = cfg["network"]["projections"]
    if change == ["hh"]:
        cfg["network"]["populations"]["inh"]["neuron"] = {"name": "hh"}
    elif change == ["dropout"]:
        projs["exc_inh"]["synapse"] = {"name": "dropout", "p": 0.5}
    elif change == ["chain"]:
        projs["exc_inh"]["synapse"] = [projs["exc_inh"]["synapse"], {"name": "delay", "delay": 1.0}]
    elif change == ["stdp_after_delay"]:
        projs["inp_exc"]["synapse"] = [{"name": "delay", "delay": 1.0}, projs["inp_exc"]["synapse"]]
    elif change == ["leaky_source"]:
        cfg["network"]["populations"]["exc"]["neuron"] = {"name": "leaky"}
    exp = build_experiment(cfg)
    net = exp.network.double()
    reason = engine_support(net, exp.learners)
    assert reason is not None
    assert __import__("re").match(expected, reason), reason
    model = CompiledNetwork(net, exp.learners, "auto")
    assert model.backend == "reference" and model.reason == reason
    with pytest.raises(Exception, match=__import__("re").escape(reason)):
        CompiledNetwork(net, exp.learners, "compiled")


def test_tempotron_and_float32_are_unsupported():
    cfg = base_config()
    exp = build_experiment(cfg)
    assert "float64" in engine_support(exp.network, exp.learners)
    cfg["learner"] = {"name": "tempotron", "trainable": ["inp_exc"]}
    exp = build_experiment(cfg)
    reason = engine_support(exp.network.double(), exp.learners)
    assert reason.startswith("learner: learner 'tempotron' is not"), reason
