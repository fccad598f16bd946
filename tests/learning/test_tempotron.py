"""The tempotron (Gütig & Sompolinsky 2006): its update against the PSP kernel, the network shape it
trains (the projections into the output population, as the header of configs/learner/tempotron.yaml
and docs/learning.md show it) and learning on the digits in that shape."""

from __future__ import annotations

import math
import re
import shlex

import pytest
import torch
from omegaconf import OmegaConf

from snnrun.build import build_experiment
from snnrun.configs import CONFIG_DIR
from snnrun.errors import ConfigError
from snnrun.learning import LEARNERS
from snnrun.network import build_network
from snnrun.runner import Runner

from conftest import ROOT, compose_config

TAU, TAU_S, LAM = 15.0, 3.75, 0.1
QUICK = ["trainer.epochs=3", "trainer.progress=false", "plots=off", "monitors=off", "device=cpu"]


def kernel(k: int, tau: float = TAU, tau_s: float = TAU_S) -> float:
    """K at k steps (dt = 1 ms) after a spike, peak-normalised."""
    t_peak = tau * tau_s * math.log(tau / tau_s) / (tau - tau_s)
    v0 = 1 / (math.exp(-t_peak / tau) - math.exp(-t_peak / tau_s))
    return v0 * (math.exp(-k / tau) - math.exp(-k / tau_s))


def header_commands() -> list[list[str]]:
    """The ``snnrun`` commands of the tempotron config's header (the ones docs/learning.md shows)."""
    found = []
    for line in (CONFIG_DIR / "learner" / "tempotron.yaml").read_text().splitlines():
        if not line.startswith("#"):
            break
        match = re.match(r"^#\s+snnrun\s+(.*)$", line)
        if match:
            found.append(match.group(1))
    return found


COMMANDS = header_commands()


def network(n_in=3, n_out=4, value=0.5):
    node = {"dt": 1.0, "duration": 10.0, "populations": {"inp": {"shape": n_in}, "out": {"shape": n_out}},
            "projections": {"w": {"from": "inp", "to": "out",
                                  "synapse": {"name": "dense", "init": "constant", "value": value}}}}
    return build_network(node, {"name": "lif"}, (n_in,))


def learner_on(net, **params):
    cls, p = LEARNERS.parse({"name": "tempotron", "learning_rate": LAM, **params}, "learner")
    return cls(p, network=net, key="learner")


def present(learner, n_in=3, n_out=4, fire=(), steps=8):
    """Input 0 spikes at step 0; the output neurons in ``fire`` spike at step 3."""
    learner.begin_sample(1)
    for t in range(steps):
        pre, post = torch.zeros(1, n_in), torch.zeros(1, n_out)
        if t == 0:
            pre[0, 0] = 1
        if t == 3:
            post[0, list(fire)] = 1
        learner.on_step(t, {"inp": pre, "out": post}, {})


def test_update_is_the_kernel_at_t_max_and_misses_weigh_c_minus_1():
    net = network()
    learner = learner_on(net)
    present(learner, fire=[1])  # output 1 fires, the others do not
    metrics = learner.end_sample(torch.zeros(1, 4), torch.tensor([0]))  # label 0 of 4 classes
    w = net.projections["w"].stages[0].weight.detach().double()
    # V_i(t) = 0.5 K(t): t_max is step 7 of the 8 (K peaks at 6.93 ms), where K(7) is the PSP
    assert w[0, 0].item() == pytest.approx(0.5 + 3 * LAM * kernel(7), rel=1e-5)  # miss: +(C-1)·λ·K
    assert w[1, 0].item() == pytest.approx(0.5 - LAM * kernel(7), rel=1e-5)  # false alarm: −λ·K
    assert torch.all(w[2:] == 0.5) and torch.all(w[:, 1:] == 0.5)  # correct silence; silent inputs
    assert metrics == {"tempotron_errors": pytest.approx(0.5)}
    # miss_weight: 1 weighs both errors alike (the original rule)
    net = network()
    learner = learner_on(net, miss_weight=1.0)
    present(learner)
    learner.end_sample(torch.zeros(1, 4), torch.tensor([2]))
    w = net.projections["w"].stages[0].weight.detach().double()
    assert w[2, 0].item() == pytest.approx(0.5 + LAM * kernel(7), rel=1e-5)


def test_a_neuron_with_negative_input_still_learns_from_a_miss():
    # V = −0.5 K(t) < 0 once the input arrives: t_max is taken among the steps with input (the first one,
    # K(1)), not at the start, where V = 0 with no PSP and the update would be zero forever
    net = network(value=-0.5)
    learner = learner_on(net)
    present(learner)
    learner.end_sample(torch.zeros(1, 4), torch.tensor([0]))
    w = net.projections["w"].stages[0].weight.detach().double()
    assert w[0, 0].item() == pytest.approx(-0.5 + 3 * LAM * kernel(1), rel=1e-5)
    assert w[0, 0].item() > -0.5


def test_output_groups_follow_the_classes():
    net = network(n_out=4)
    learner = learner_on(net)
    present(learner, fire=[0, 1, 2, 3])
    assert learner.wanted(torch.tensor([1, 0]), 2).tolist() == [[False, False, True, True], [True, True, False, False]]
    with pytest.raises(ConfigError, match=r"^learner: the output population 'out' has 4 neurons, not a multiple of the 3"):
        learner.wanted(torch.tensor([0]), 3)


def test_default_trains_every_projection_into_the_output_and_refuses_others():
    node = {"dt": 1.0, "duration": 5.0,
            "populations": {"inp": {"shape": 3}, "hid": {"shape": 2}, "out": {"shape": 2}},
            "projections": {"a": {"from": "inp", "to": "hid"}, "b": {"from": "inp", "to": "out"},
                            "c": {"from": "hid", "to": "out"}}}
    net = build_network(node, {"name": "lif"}, (3,))
    assert list(learner_on(net).targets) == ["b", "c"]
    with pytest.raises(ConfigError, match=r"^learner.trainable: the tempotron trains projections into the output "
                                          r"population 'out' \(its teacher is the label\); 'a' goes to 'hid'"):
        learner_on(net, trainable=["a", "c"])


def test_the_docs_show_the_header_commands():
    docs = (ROOT / "docs" / "learning.md").read_text()
    assert len(COMMANDS) == 2
    for command in COMMANDS:
        assert f"snnrun {command}" in docs


@pytest.mark.parametrize("command,shape,trained,fixed", [
    (COMMANDS[0], {"inp": 64, "hidden": 256, "out": 10}, ["hidden_out"], ["inp_hidden"]),
    (COMMANDS[1], {"inp": 64, "out": 10}, ["inp_out"], []),
], ids=["two_layers", "one_layer"])
def test_the_documented_shape_is_trained_and_learns_the_digits(command, shape, trained, fixed, tmp_path):
    # 3 of the 30 epochs on the 8x8 digits (10 classes: chance 0.1); measured 0.831 (two layers), 0.767 (one)
    cfg = compose_config(shlex.split(command) + QUICK)
    exp = build_experiment(cfg)
    net = exp.network
    assert {n: math.prod(p.shape) for n, p in net.populations.items()} == shape
    (learner,) = exp.learners
    assert list(learner.targets) == trained
    assert sorted(net.projections) == sorted(trained + fixed)
    assert all(net.projections[n].target == net.output == "out" for n in trained)
    before = {n: p.stages[-1].weight.detach().clone() for n, p in net.projections.items()}
    summary = Runner(exp, tmp_path, OmegaConf.to_yaml(cfg)).fit()
    for name in fixed:  # the random feature layer keeps its initial weights
        assert torch.equal(net.projections[name].stages[-1].weight.detach(), before[name])
    for name in trained:
        assert not torch.equal(net.projections[name].stages[-1].weight.detach(), before[name])
    assert summary["final"]["test/accuracy"] > 0.7
