"""The rstdp_xor task: inputs, targets and its metrics file."""

from __future__ import annotations

import csv

import torch

from snnrun.learning.xor import XorParams, xor_inputs
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
