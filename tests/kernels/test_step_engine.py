"""The compiled step engine (snnrun.engine / kernels/step_engine) reproduces the torch reference
(Network stepped with the local learners called from step_hook, as the diehl_cook task's torch path):
the same spikes of every population, bit for bit, and the same weights and persistent state θ
(float64, rtol 1e-10, atol 1e-12), for every supported neuron model, synapse kind and rule option;
an unsupported network gets a reason naming the component."""

from __future__ import annotations

import copy

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


def models(cfg, one_spike=None):
    """(reference, compiled) CompiledNetwork of two builds of ``cfg`` (same seed: same weights)."""
    compiled(step_engine._EXTENSION)
    out = []
    for backend in ("reference", "compiled"):
        exp = build_experiment(copy.deepcopy(cfg))
        net = exp.network.double()
        if one_spike is not None:
            net.populations["exc"].neuron.params.one_spike = one_spike
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


def assert_same(cfg, seed, samples=5, learn=(True, True, True, False, True), rate=0.2, one_spike=None, active=None):
    """Run ``samples`` random binary trains through both paths; spikes exactly equal, weights and θ
    allclose. Returns the spike totals per population (to check the network was active)."""
    ref, fast = models(cfg, one_spike)
    assert fast.backend == "compiled" and ref.backend == "reference"
    before = state(ref)
    for key, value in state(fast).items():
        assert torch.equal(before[key], value), key
    steps = int(cfg["network"]["duration"])
    totals: dict[str, int] = {}
    for i, x in enumerate(trains(samples, steps, rate, seed)):
        mode = learn[i % len(learn)]
        counts_ref, spikes_ref = ref.run(x, mode)
        counts_fast, spikes_fast = fast.run(x, mode)
        for name in spikes_ref:
            assert torch.equal(spikes_ref[name], spikes_fast[name]), \
                f"sample {i} ({'learn' if mode else 'frozen'}), population {name}: spikes differ at steps " \
                f"{(spikes_ref[name] != spikes_fast[name]).any(1).nonzero().flatten().tolist()[:10]}"
            assert torch.equal(counts_ref[name], counts_fast[name])
            totals[name] = totals.get(name, 0) + int(counts_ref[name].sum())
        assert torch.equal(ref.sample(x, False), fast.sample(x, False))
    # frozen samples as a batch (both paths) give each sample's counts
    xs = torch.stack(trains(4, steps, rate, seed + 100))
    per_sample = torch.stack([fast.sample(x, False) for x in xs])
    assert torch.equal(fast.sample_batch(xs), per_sample)
    assert torch.equal(ref.sample_batch(xs), per_sample)
    after_ref, after_fast = state(ref), state(fast)
    for key in after_ref:
        torch.testing.assert_close(after_fast[key], after_ref[key], rtol=1e-10, atol=1e-12, msg=key)
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
    (["network.populations.inh.neuron.name=plif"],
     r"network.populations.inh: neuron model 'plif' is not supported"),
    (["learner.boundary=soft"], r"learner: learner 'stdp': boundary: soft"),
    (["learner.norm_every=step"], r"learner: learner 'stdp': norm_every: 'step'"),
    (["sparse"], r"network.projections.exc_inh: synapse 'sparse' is not supported"),
])
def test_unsupported_networks_name_the_component(change, expected):
    cfg = base_config(*[c for c in change if c != "sparse"])
    if change == ["sparse"]:
        cfg["network"]["projections"]["exc_inh"]["synapse"] = {"name": "sparse", "p": 0.5}
    exp = build_experiment(cfg)
    net = exp.network.double()
    reason = engine_support(net, exp.learners)
    assert reason is not None
    assert __import__("re").match(expected, reason), reason
    model = CompiledNetwork(net, exp.learners, "auto")
    assert model.backend == "reference" and model.reason == reason
    with pytest.raises(Exception, match=__import__("re").escape(reason)):
        CompiledNetwork(net, exp.learners, "compiled")


def test_reward_rule_and_float32_are_unsupported():
    cfg = base_config()
    exp = build_experiment(cfg)
    assert "float64" in engine_support(exp.network, exp.learners)
    cfg["learner"] = {"name": "mstdp", "trainable": ["inp_exc"]}
    exp = build_experiment(cfg)
    reason = engine_support(exp.network.double(), exp.learners)
    assert reason.startswith("learner: learner 'mstdp' is not supported by the step engine"), reason
