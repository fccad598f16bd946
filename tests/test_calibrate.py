"""network.init_rate: kaiming weights rescaled so each population starts at the target rate."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from snnrun.calibrate import calibrate_rates, calibration_batch
from snnrun.network import build_network

LIF = {"name": "lif", "tau_m": 5.0}


def _net(init="kaiming", neuron=LIF):
    syn = {"name": "dense", "init": init} if init == "kaiming" else {"name": "dense", "init": init, "low": 0.0,
                                                                      "high": 0.1}
    node = {"dt": 1.0, "duration": 25.0,
            "populations": {"inp": {"shape": None}, "hidden": {"shape": 64}, "out": {"shape": 10}},
            "projections": {"a": {"from": "inp", "to": "hidden", "synapse": {"name": "dense", "init": "kaiming"}},
                            "b": {"from": "hidden", "to": "out", "synapse": syn}},
            "output": "out"}
    return build_network(node, neuron, (40,))


def _rates(net, spikes):
    net.reset()
    out = net(spikes).spikes
    return {k: float(v.mean()) * 1000.0 for k, v in out.items() if k != "inp"}


@pytest.mark.parametrize("target", [5.0, 40.0])
def test_each_population_reaches_the_target_rate(target):
    torch.manual_seed(0)
    net = _net()
    spikes = (torch.rand(25, 32, 40) < 0.02).float()  # sparse: kaiming's scale leaves the network silent
    before = _rates(net, spikes)
    assert before["hidden"] < target / 2
    found = calibrate_rates(net, spikes, target)
    after = _rates(net, spikes)
    for name in ("hidden", "out"):
        assert after[name] == pytest.approx(target, rel=0.1)
        assert found[name]["rate_hz"] == pytest.approx(after[name])
    assert found["hidden"]["scale"] > 1.0


def test_explicit_inits_are_left_alone():
    torch.manual_seed(0)
    net = _net(init="uniform")
    w = net.projections["b"].stages[0].weight.detach().clone()
    found = calibrate_rates(net, (torch.rand(25, 8, 40) < 0.3).float(), 20.0)
    assert set(found) == {"hidden"}
    assert torch.equal(net.projections["b"].stages[0].weight, w)


def test_unreachable_rate_keeps_the_closest_scale_and_says_so(caplog):
    torch.manual_seed(0)
    net = _net()
    with caplog.at_level(logging.WARNING, logger="snnrun"):
        found = calibrate_rates(net, torch.zeros(25, 4, 40), 20.0)  # no input spikes: nothing can fire
    assert found["hidden"]["rate_hz"] == 0.0
    assert "network.init_rate: population 'hidden' reaches 0 Hz at best (target 20 Hz" in caplog.text


def test_calibration_batch_is_the_first_training_samples():
    class Splits:
        x_train = torch.arange(20.0).reshape(10, 2)
    assert torch.equal(calibration_batch(Splits, 4), Splits.x_train[:4])


def test_the_build_calibrates_without_touching_the_random_stream(tmp_path):
    from snnrun.build import build_experiment
    from snnrun.runner import Runner
    from snnrun.validate import compose

    short = ["trainer.epochs=1", "trainer.limit_train_batches=2", "trainer.limit_test_batches=1", "data.subset=200",
             "plots=off", "monitors=off", "encoder=latency"]
    runs = {}
    for rate in ("null", "20"):
        exp = build_experiment(compose(short + [f"network.init_rate={rate}"]))
        runs[rate] = (exp, torch.rand(3))  # the global stream continues as without calibration
    assert torch.equal(runs["null"][1], runs["20"][1])
    plain, calibrated = (runs[r][0].network.projections["inp_hidden"].stages[0] for r in ("null", "20"))
    ratio = calibrated.weight / plain.weight
    assert ratio.std() < 1e-4 and ratio.mean() > 2  # one scalar per projection, up for sparse latency input
    assert calibrated.weight_scale == pytest.approx(float(ratio.mean()), rel=1e-4) and plain.weight_scale == 1.0
    # Adam steps each weight in its unit: lr x weight_scale per group
    unit = {id(p.stages[0].weight): p.stages[0].weight_scale for p in runs["20"][0].network.projections.values()}
    lrs = {id(p): g["lr"] for g in runs["20"][0].optimizer.param_groups for p in g["params"]}
    assert lrs.keys() == unit.keys() and all(lrs[k] == pytest.approx(0.003 * unit[k]) for k in unit)
    assert len(runs["null"][0].optimizer.param_groups) == 1

    exp = build_experiment(compose(short + ["network.init_rate=20", "trainer.epochs=2", "trainer.stop_after=1"]))
    run_dir = tmp_path / "resumed"
    Runner(exp, run_dir, "").fit()
    trained = {k: v.clone() for k, v in exp.network.state_dict().items()}
    again = build_experiment(compose(short + ["network.init_rate=20", "trainer.epochs=2"]))
    runner = Runner(again, run_dir, "")
    runner._resume(True, None, None)  # the same units, then the trained weights
    assert all(torch.equal(v, again.network.state_dict()[k]) for k, v in trained.items())
    assert [g["lr"] for g in again.optimizer.param_groups] == [g["lr"] for g in exp.optimizer.param_groups]
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "stopped"
