from __future__ import annotations

import math

import pytest
import torch

from snnrun.rewards import REWARDS


def test_global_and_xor_rewards():
    r = REWARDS.build({"name": "global_reward", "reward": 2.0, "punishment": 0.5}, "reward")
    out = r(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]))
    assert out.tolist() == [2.0, -0.5] and r.level().tolist() == [2.0, -0.5]
    x = REWARDS.build({"name": "xor_reward", "threshold": 0.5}, "reward")
    assert x(torch.tensor([[3.0], [0.0], [0.0]]), torch.tensor([1, 0, 1])).tolist() == [1.0, 1.0, -1.0]


def test_dopamine_decays_between_deliveries():
    d = REWARDS.build({"name": "da_reward", "tau_d": 100.0, "interval": 50.0}, "reward", dt=1.0)
    d(torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    assert d.level().tolist() == [1.0]
    d(torch.tensor([[1.0, 0.0]]), torch.tensor([1]))  # wrong: -1 on top of the decayed +1
    assert d.level().item() == pytest.approx(math.exp(-0.5) - 1.0)
    before = d.level().item()
    d.step(10)
    assert d.level().item() == pytest.approx(before * math.exp(-0.1))
    d.reset()
    assert d.level().tolist() == [0.0]
