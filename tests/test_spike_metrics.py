"""Spike metrics: SynOps against hand counts, silent/saturated fractions, energy, weight change, learner hook."""

from __future__ import annotations

import csv

import pytest
import torch

from snnrun.build import build_experiment
from snnrun.network import build_network
from snnrun.runner import Runner
from snnrun.spike_metrics import SpikeMetrics, SpikeMetricsParams, SynOpsCounter, fan_out


def _net(projections, populations, input_shape):
    node = {"dt": 1.0, "duration": 6.0, "populations": populations, "projections": projections}
    return build_network(node, {"name": "lif", "tau_m": 5.0, "v_th": 0.5}, input_shape)


def test_synops_equals_a_hand_count_on_a_tiny_network():
    torch.manual_seed(0)
    net = _net({"a": {"from": "inp", "to": "hid", "synapse": {"name": "dense", "init": "uniform"}},
                "b": {"from": "hid", "to": "out", "synapse": {"name": "dense"}}},
               {"inp": {"shape": 3}, "hid": {"shape": 2}, "out": {"shape": 1}}, (3,))
    with torch.no_grad():
        net.projections["a"].stages[0].weight.fill_(3.0)
        net.projections["b"].stages[0].weight.fill_(1.0)
    counter = SynOpsCounter(net)
    x = torch.tensor([[[1, 0, 1]], [[0, 0, 0]], [[1, 1, 1]], [[0, 1, 0]], [[1, 0, 0]], [[0, 0, 1]]], dtype=torch.float)
    with torch.no_grad():
        out = net(x)
    # every input spike reaches 2 hidden neurons, every hidden spike 1 output neuron
    assert x.sum() == 8
    hidden_spikes = out.spikes["hid"].sum().item()
    assert hidden_spikes > 0
    assert counter.counts["a"] == 8 * 2
    assert counter.counts["b"] == hidden_spikes * 1
    counter.remove()
    net(x)
    assert counter.counts["a"] == 16  # hooks removed: no more counting


def test_fan_out_of_conv_sparse_one_to_one_and_lateral_inhibition():
    net = _net({"c": {"from": "inp", "to": "fm", "synapse": {"name": "conv2d", "channels": 2, "kernel_size": 3}},
                "s": {"from": "fm", "to": "sp", "synapse": [{"name": "flatten"}, {"name": "sparse", "p": 0.3, "seed": 1}]},
                "o": {"from": "sp", "to": "sp2", "synapse": {"name": "one_to_one"}},
                "l": {"from": "sp2", "to": "sp2", "synapse": {"name": "lateral_inhibition", "weight": -1.0}}},
               {"inp": {"shape": [1, 4, 4]}, "fm": {"shape": [2, 2, 2]}, "sp": {"shape": 5}, "sp2": {"shape": 5}},
               (1, 4, 4))
    conv = fan_out(net.projections["c"].stages[0]).reshape(4, 4)
    # a 3x3 kernel over a 4x4 image (2x2 outputs): corners reach 1 output position, the centre 4; x 2 channels
    assert conv[0, 0] == 2 and conv[0, 3] == 2 and conv[1, 1] == 8 and conv[0, 1] == 4
    assert conv.sum() == 2 * 2 * 2 * 9  # every output unit has 9 inputs
    sparse = net.projections["s"].stages[1]
    with torch.no_grad():
        sparse.weight.fill_(1.0)
    assert torch.equal(fan_out(sparse), (sparse.dense_weight() != 0).sum(0).float())
    assert fan_out(net.projections["s"].stages[0]) is None  # flatten: no synaptic operations
    assert torch.equal(fan_out(net.projections["o"].stages[0]), torch.ones(5))
    assert torch.equal(fan_out(net.projections["l"].stages[0]), torch.full((5,), 4.0))


def test_silent_saturated_energy_and_weight_change():
    net = _net({"a": {"from": "inp", "to": "hid", "synapse": {"name": "dense"}}},
               {"inp": {"shape": 2}, "hid": {"shape": 4}}, (2,))
    metrics = SpikeMetrics(SpikeMetricsParams(saturation=0.9, pj_per_synop=2.0), net)
    metrics.begin(train=True)
    steps = 20
    hid = torch.zeros(steps, 1, 4)
    hid[:, 0, 1] = 1  # always fires
    hid[::2, 0, 2] = 1  # every other step
    hid[1:, 0, 3] = 1  # 19 of 20 steps: 0.95 >= 0.9
    inp = torch.zeros(steps, 1, 2)
    inp[:5, 0, 0] = 1
    net.projections["a"](inp.reshape(steps, 2), steps)  # the hook counts 5 events x fan-out 4
    with torch.no_grad():
        net.projections["a"].stages[0].weight.add_(0.25)
    metrics.observe({"inp": inp, "hid": hid})
    out = metrics.end("train", train=True)
    assert out["train/silent/hid"] == pytest.approx(0.25)
    assert out["train/saturated/hid"] == pytest.approx(0.5)
    assert out["train/synops/a"] == 20 and out["train/synops/total"] == 20
    assert out["train/energy_nj"] == pytest.approx(20 * 2.0e-3)
    assert out["dw/a"] == pytest.approx(0.25)
    assert out["weight_norm/a"] == pytest.approx(net.projections["a"].stages[0].weight.norm().item())
    metrics.begin(train=True)  # the next epoch starts from the weights as they are now
    with torch.no_grad():
        net.projections["a"].stages[0].weight[0].sub_(1.0)  # 2 of 8 weights change by 1
    metrics.observe({"inp": inp, "hid": hid})
    assert metrics.neuron_counts()["hid"].tolist() == [0, 20, 10, 19]
    metrics.observe({"inp": inp, "hid": hid})  # observing after a reduction continues from it
    assert metrics.neuron_counts()["hid"].tolist() == [0, 40, 20, 38]
    assert metrics.end("train", train=True)["dw/a"] == pytest.approx(0.25)
    metrics.close()


def test_learner_metrics_hook_and_batch_values_reach_the_columns():
    net = _net({"a": {"from": "inp", "to": "hid", "synapse": {"name": "dense"}}},
               {"inp": {"shape": 2}, "hid": {"shape": 3}}, (2,))

    class Learner:
        last_reward = None

        def metrics(self):
            return {"abs_dw": 0.125}

    metrics = SpikeMetrics(SpikeMetricsParams(), net, [Learner()])
    cols = metrics.columns(("train", "test"))
    assert "learner/abs_dw" in cols and "learner/reward" in cols and "test/synops/total" in cols
    metrics.begin(train=True)
    metrics.observe({"inp": torch.zeros(4, 2, 2), "hid": torch.zeros(4, 2, 3)})
    metrics.observe_learners({"reward": 1.0})
    metrics.observe_learners({"reward": -0.5})
    out = metrics.end("train", train=True)
    assert out["learner/abs_dw"] == 0.125
    assert out["learner/reward"] == pytest.approx(0.25)
    assert out["train/silent/hid"] == 1.0


def test_runner_logs_spike_metrics_every_epoch(tiny_cfg, tmp_path):
    exp = build_experiment(tiny_cfg())
    Runner(exp, tmp_path, "").fit()
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [r["split"] for r in rows] == ["train", "val", "test", "train", "val", "test"]
    for row in rows:
        s = row["split"]
        total = float(row[f"{s}/synops/total"])
        assert total == pytest.approx(float(row[f"{s}/synops/inp_hidden"]) + float(row[f"{s}/synops/hidden_out"]))
        assert float(row[f"{s}/energy_nj"]) == pytest.approx(total * 0.9e-3)
        for pop in ("hidden", "out"):
            assert 0.0 <= float(row[f"{s}/silent/{pop}"]) <= 1.0
        # input synops per sample = input spikes per sample x 16 hidden neurons (dense fan-out)
        assert total > 0
    train = [r for r in rows if r["split"] == "train"]
    assert all(float(r["dw/inp_hidden"]) > 0 for r in train)  # BPTT changed the weights
    assert float(train[-1]["weight_norm/inp_hidden"]) == pytest.approx(
        exp.network.projections["inp_hidden"].stages[0].weight.norm().item(), rel=1e-5)


def test_metrics_can_be_switched_off(tiny_cfg, tmp_path):
    exp = build_experiment(tiny_cfg("monitors=off"))
    runner = Runner(exp, tmp_path, "")
    assert not any("synops" in c or "silent" in c for c in runner.columns)
    runner.fit()
    assert not (tmp_path / "monitors").exists()
