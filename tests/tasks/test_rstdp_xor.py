"""The rstdp_xor task: inputs, targets and its metrics file."""

from __future__ import annotations

import csv

import torch

from snnrun.tasks.rstdp_xor import XorParams, xor_inputs
from snnrun.tasks import get_task

from conftest import compose_config


def test_xor_inputs_frozen_patterns_and_targets():
    x, target = xor_inputs(XorParams(group_size=5, rate=200.0), steps=30, dt=1.0)
    assert x.shape == (30, 4, 10) and target.tolist() == [0, 1, 1, 0]
    # the first group's half is the same pattern whenever x1 is the same bit
    assert torch.equal(x[:, 0, :5], x[:, 1, :5]) and not torch.equal(x[:, 0, :5], x[:, 2, :5])
    assert torch.equal(x[:, 1, 5:], x[:, 3, 5:]) and not torch.equal(x[:, 0, 5:], x[:, 1, 5:])
    assert torch.equal(xor_inputs(XorParams(group_size=5, rate=200.0), 30, 1.0)[0], x)


def test_task_writes_reward_rows(tmp_path):
    cfg = compose_config(["experiment=rstdp_xor", "xor.trials=6", "xor.log_every=3", "network.duration=20"])
    summary = get_task("rstdp_xor").run(cfg, tmp_path, False)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["trial"]) for r in rows] == [3, 6]
    assert all(-1.0 <= float(r["reward"]) <= 1.0 and 0.0 <= float(r["accuracy"]) <= 1.0 for r in rows)
    assert summary["learner"] == "mstdpet" and summary["last_reward"] == float(rows[-1]["reward"])


def test_fresh_noise_inputs_tuned_neurons_and_functions():
    p = XorParams(group_size=6, rate=100.0, fresh_noise=True, function="first")
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
