"""The rstdp_xor task: inputs, targets, its metrics file, the reward delivered at output spikes,
XOR learned with escape-noise neurons, an interrupted run resumed exactly, metrics in TensorBoard."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from snnrun import checkpoint
from snnrun.learning import LEARNERS
from snnrun.network import build_network
from snnrun.rewards import REWARDS
from snnrun.tasks.rstdp_xor import XorParams, xor_inputs
from snnrun.tasks import get_task

from conftest import compose_config
from stopping import stop_after_checkpoints, tensorboard_scalars


def test_xor_inputs_frozen_patterns_and_targets():
    x, target = xor_inputs(XorParams(group_size=5, rate=200.0), steps=30, dt=1.0)
    assert x.shape == (30, 4, 10) and target.tolist() == [0, 1, 1, 0]
    # the first group's half is the same pattern whenever x1 is the same bit
    assert torch.equal(x[:, 0, :5], x[:, 1, :5]) and not torch.equal(x[:, 0, :5], x[:, 2, :5])
    assert torch.equal(x[:, 1, 5:], x[:, 3, 5:]) and not torch.equal(x[:, 0, 5:], x[:, 1, 5:])
    assert torch.equal(xor_inputs(XorParams(group_size=5, rate=200.0), 30, 1.0)[0], x)


def test_task_writes_reward_rows(tmp_path):
    cfg = compose_config(["experiment=rstdp_xor", "xor.trials=6", "xor.log_every=3", "network.duration=20",
                          "network.populations.hidden.shape=8"])
    summary = get_task("rstdp_xor").run(cfg, tmp_path, False)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["trial"]) for r in rows] == [3, 6]
    assert all(-1.0 <= float(r["reward"]) <= 1.0 and 0.0 <= float(r["accuracy"]) <= 1.0 for r in rows)
    assert summary["learner"] == "mstdpet" and summary["last_reward"] == float(rows[-1]["reward"])


def test_tuned_inputs_re_drawn_and_functions():
    p = XorParams(group_size=6, rate=100.0, coding="tuned", function="first")
    g = torch.Generator().manual_seed(0)
    x, target = xor_inputs(p, 200, 1.0, g)
    assert target.tolist() == [0, 0, 1, 1]
    x2, _ = xor_inputs(p, 200, 1.0, g)
    assert not torch.equal(x, x2)  # spikes re-drawn every call
    counts = x.sum(0)  # [4, 12]
    # each neuron of group 1 fires for exactly one value of x1 (patterns 0, 1: x1 = 0; 2, 3: x1 = 1)
    silent_for_0, silent_for_1 = counts[:2, :6].sum(0) == 0, counts[2:, :6].sum(0) == 0
    assert torch.equal(silent_for_0, ~silent_for_1)
    assert abs(float(counts.sum()) / (4 * 12 * 200 * 1e-3) - 100.0) < 15.0  # mean rate = rate (Hz)
    assert [xor_inputs(XorParams(function=f), 5, 1.0)[1].tolist() for f in ("or", "and")] == [[0, 1, 1, 1], [0, 0, 0, 1]]


def test_first_bit_task_learns_with_mstdpet(tmp_path):
    """Small version of experiment=rstdp_first: the output fires for everything at first, then learns."""
    cfg = compose_config(["experiment=rstdp_first", "xor.trials=80", "seed=0"])
    summary = get_task("rstdp_xor").run(cfg, tmp_path, False)
    assert summary["function"] == "first" and summary["learner"] == "mstdpet"
    assert summary["first_accuracy"] <= 0.7
    assert summary["last_reward"] > summary["first_reward"] + 0.5
    assert summary["last_accuracy"] >= 0.9


def test_rate_inputs_fire_for_bit_one_and_are_silent_for_zero():
    p = XorParams(group_size=8, rate=200.0, coding="rate")
    g = torch.Generator().manual_seed(0)
    x, target = xor_inputs(p, 300, 1.0, g)
    assert x.shape == (300, 4, 16) and target.tolist() == [0, 1, 1, 0]
    counts = x.sum(0)  # [pattern, neuron]
    assert counts[0].sum() == 0  # (0, 0): no input at all
    assert counts[1, :8].sum() == 0 and counts[2, 8:].sum() == 0  # the group of a 0 bit is silent
    assert abs(float(counts[3].mean()) / 0.3 - 200.0) < 20.0  # the group of a 1 bit fires at `rate` Hz
    assert torch.equal(x[:, 2, :8], x[:, 3, :8])  # one draw per trial for a group's bit
    assert not torch.equal(xor_inputs(p, 300, 1.0, g)[0], x)  # re-drawn every trial


def test_xor_reward_target_signal_ignores_the_decision():
    decision = REWARDS.build({"name": "xor_reward", "threshold": 4.5}, "reward")
    target = REWARDS.build({"name": "xor_reward", "threshold": 4.5, "signal": "target", "punishment": 2.0}, "reward")
    scores, labels = torch.tensor([[0.0], [9.0], [3.0], [7.0]]), torch.tensor([0, 1, 1, 0])
    assert decision(scores, labels).tolist() == [1.0, 1.0, -1.0, -1.0]
    assert target(scores, labels).tolist() == [-2.0, 1.0, 1.0, -2.0]


def _learner(name, **extra):
    node = {"dt": 1.0, "duration": 4.0, "populations": {"inp": {"shape": 2}, "out": {"shape": 1}},
            "projections": {"w": {"from": "inp", "to": "out",
                                  "synapse": {"name": "dense", "init": "constant", "value": 0.5}}}, "output": "out"}
    net = build_network(node, {"name": "lif"}, (2,))
    cls, p = LEARNERS.parse({"name": name, "reward": {"name": "xor_reward", "signal": "target"}, "gamma": 0.1,
                             "reward_at": "output_spikes", **extra}, "learner")
    return net, cls(p, network=net, key="learner")


#: two samples (target 1, target 0): input 0 fires at step 0, the output at 1, input 1 at 2, the
#: output again at 3 in sample 0 only
PRE = {0: [1.0, 0.0], 2: [0.0, 1.0]}
POST = {1: [1.0, 1.0], 3: [1.0, 0.0]}


def _drive(learner):
    learner.begin_sample(2)
    for t in range(4):
        pre = torch.tensor([PRE.get(t, [0.0, 0.0])] * 2)
        post = torch.tensor(POST.get(t, [0.0, 0.0])).reshape(2, 1)
        learner.on_step(t, {"inp": pre, "out": post}, {})
    return learner.end_sample(torch.tensor([[2.0], [1.0]]), torch.tensor([1, 0]))


def test_mstdp_reward_at_output_spikes_weights_each_step_by_the_output_spikes():
    """Δw = γ Σ_b r_b Σ_t n_t ζ_t: only the pair terms of steps with an output spike count."""
    net, learner = _learner("mstdp")
    metrics = _drive(learner)
    d = math.exp(-1 / 20)
    # sample 0 (r = +1): t=1 potentiates w0 by d; t=3 potentiates w0 by d³ and w1 by d (its depression
    # at t=2, an input spike after the output's, is not delivered: no output spike then).
    # sample 1 (r = −1): t=1 potentiates w0 by d, punished.
    expected = torch.tensor([[0.5 + 0.1 * (d + d ** 3 - d), 0.5 + 0.1 * d]])
    torch.testing.assert_close(net.projections["w"].stages[0].weight.detach(), expected)
    assert metrics == {"reward": pytest.approx((1 * 2 - 1 * 1) / 2)}  # r x output spikes, mean over samples


def test_mstdpet_reward_at_output_spikes_samples_the_eligibility_trace():
    tau_c = 5.0
    net, learner = _learner("mstdpet", tau_c=tau_c)
    _drive(learner)
    d, dc = math.exp(-1 / 20), math.exp(-1 / tau_c)
    dw = torch.zeros(2)
    for b, r in ((0, 1.0), (1, -1.0)):  # e ← e·dc + ζ/τ_c, Σ_t n_t e_t, by hand
        e, x_pre, x_post = torch.zeros(2), torch.zeros(2), 0.0
        for t in range(4):
            pre, post = torch.tensor(PRE.get(t, [0.0, 0.0])), POST.get(t, [0.0, 0.0])[b]
            x_pre, x_post = x_pre * d, x_post * d
            e = e * dc + (post * x_pre - x_post * pre) / tau_c
            dw += 0.1 * r * post * e
            x_pre, x_post = x_pre + pre, x_post + post
    torch.testing.assert_close(net.projections["w"].stages[0].weight.detach()[0], 0.5 + dw)
    # sample mode integrates the whole trace instead (the output spikes do not weight it)
    net2, learner2 = _learner("mstdpet", tau_c=tau_c, reward_at="sample")
    _drive(learner2)
    assert not torch.allclose(net2.projections["w"].stages[0].weight.detach(), net.projections["w"].stages[0].weight)


def test_reduced_xor_learns_with_escape_noise(tmp_path):
    """experiment=rstdp_xor, shortened (120 trials instead of 400, γ 0.5 instead of 0.3): the
    accuracy starts at chance and rises well above it; the delivered reward rises."""
    cfg = compose_config(["experiment=rstdp_xor", "xor.trials=120", "xor.log_every=30", "learner.gamma=0.5",
                          "seed=0"])
    summary = get_task("rstdp_xor").run(cfg, tmp_path, False)
    assert summary["learner"] == "mstdpet" and summary["function"] == "xor"
    assert summary["first_accuracy"] <= 0.65
    assert summary["last_accuracy"] >= 0.75
    assert summary["last_reward"] > summary["first_reward"] + 2.0


SMALL = ["experiment=rstdp_xor", "xor.trials=12", "xor.log_every=3", "network.duration=20",
         "network.populations.hidden.shape=8", "plots=off"]
#: a reward whose state (the dopamine concentration) carries over from trial to trial
DOPAMINE = ["learner=mstdp", "~learner.reward", "+learner.reward={name:da_reward,interval:20}"]


@pytest.mark.parametrize("extra", [[], DOPAMINE], ids=["xor_reward", "da_reward"])
def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, extra):
    """Rate-coded inputs re-drawn every trial (the noise generator), escape-noise neurons (the global
    RNG), the reward's running state: SIGTERM after the checkpoint of trial 3, resume, and the final
    weights, rows and summary equal the uninterrupted run's."""
    cfg = compose_config([*SMALL, *extra])
    task = get_task("rstdp_xor")
    reference = task.run(cfg, tmp_path / "reference", False)
    run_dir = tmp_path / "run"
    saved = stop_after_checkpoints(monkeypatch, 2)
    stopped = task.run(cfg, run_dir, False)
    assert stopped["status"] == "interrupted" and stopped["checkpoint"] == {"trial": 3} and saved == [0, 3]
    assert [r["trial"] for r in csv.DictReader(open(run_dir / "metrics.csv"))] == ["3"]
    resumed = task.run(cfg, run_dir, True)
    assert resumed["status"] == "completed" and resumed["resumes"][0]["trial"] == 3
    for key in ("first_reward", "last_reward", "first_accuracy", "last_accuracy"):
        assert resumed[key] == reference[key], key
    assert (run_dir / "metrics.csv").read_text() == (tmp_path / "reference" / "metrics.csv").read_text()
    final, expected = (checkpoint.load(d / "checkpoints" / "last.pt") for d in (run_dir, tmp_path / "reference"))
    assert final["trial"] == 12 and final["model"].keys() == expected["model"].keys()
    for name, weight in expected["model"].items():
        assert torch.equal(final["model"][name], weight), name
    reward, expected_reward = final["learners"][0]["reward"], expected["learners"][0]["reward"]
    assert reward.keys() == expected_reward.keys() and ("concentration" in reward) == bool(extra)
    for name, value in expected_reward.items():
        assert (value is None and reward[name] is None) or torch.equal(reward[name], value), name


def test_metrics_reach_tensorboard(tmp_path):
    pytest.importorskip("tensorboard", reason="the TensorBoard sink needs: the `tensorboard` extra")
    cfg = compose_config([*SMALL, "logger.sinks=[csv,tensorboard]"])
    get_task("rstdp_xor").run(cfg, tmp_path, False)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    scalars = tensorboard_scalars(tmp_path)
    for key in ("reward", "accuracy"):
        assert scalars[key] == [(int(r["trial"]), pytest.approx(float(r[key]), rel=1e-6)) for r in rows]
