"""Losses on decoder scores: exact values, gradients' direction, options and errors."""

from __future__ import annotations

import math

import pytest
import torch

from snnrun.errors import ConfigError
from snnrun.losses import LOSSES, get_loss
from tests.conftest import compose_config


def test_cross_entropy_scales_the_logits():
    scores, target = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    assert get_loss("cross_entropy")(scores, target).item() == pytest.approx(math.log(1 + math.exp(-2)))
    assert get_loss("cross_entropy")(scores, target, scale=0.5).item() == pytest.approx(math.log(1 + math.exp(-1)))


def test_mse_count_targets_on_and_off_counts():
    scores, target = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0])
    assert get_loss("mse_count")(scores, target, on=2.0, off=0.0).item() == 0.0
    assert get_loss("mse_count")(scores, target, on=5.0, off=1.0).item() == pytest.approx((9 + 1 + 1) / 3)
    counts = torch.tensor([[1.0, 4.0]], requires_grad=True)
    get_loss("mse_count")(counts, torch.tensor([0]), on=4.0, off=1.0).backward()
    assert counts.grad[0, 0] < 0 < counts.grad[0, 1]  # raise the label's count, lower the other


def test_nll_on_log_probabilities():
    target = torch.tensor([0])
    assert get_loss("nll")(torch.log(torch.tensor([[0.5, 0.25, 0.25]])), target).item() == pytest.approx(math.log(2))


def test_first_spike_time_loss_prefers_an_early_correct_neuron():
    target = torch.tensor([0])
    early = get_loss("first_spike_time")(torch.tensor([[-1.0, -10.0, -10.0]]), target)
    late = get_loss("first_spike_time")(torch.tensor([[-10.0, -1.0, -10.0]]), target)
    assert early < late
    # scores are −t (ms): softmax over −t/τ
    scores = torch.tensor([[-2.0, -7.0]])
    expected = math.log(1 + math.exp((-7.0 + 2.0) / 5.0))
    assert get_loss("first_spike_time")(scores, target, tau=5.0).item() == pytest.approx(expected)
    # the hinge adds max(0, margin − (t_other − t_correct)) = 6 − 5 = 1
    with_margin = get_loss("first_spike_time")(scores, target, tau=5.0, margin=6.0).item()
    assert with_margin == pytest.approx(expected + 1.0)


def test_unknown_loss_names_the_key_and_the_choices():
    with pytest.raises(ConfigError, match="learner.loss: unknown loss 'mse'; valid names: cross_entropy, mse_count"):
        get_loss("mse")
    assert set(LOSSES) >= {"cross_entropy", "mse_count", "nll", "first_spike_time"}


def test_learner_loss_options_are_checked_and_applied():
    from snnrun.build import build_experiment

    base = ["data=synthetic", "network.duration=4", "device=cpu", "learner.loss=mse_count"]
    exp = build_experiment(compose_config(base + ["+learner.loss_options={on: 3.0, off: 1.0}"]))
    (learner,) = exp.learners if isinstance(exp.learners, (list, tuple)) else exp.learners.values()
    assert learner.loss(torch.tensor([[3.0, 1.0]]), torch.tensor([0])).item() == 0.0
    with pytest.raises(ConfigError, match=r"learner.loss_options.tau: mse_count has no option 'tau'; valid: on, off"):
        build_experiment(compose_config(base + ["+learner.loss_options={tau: 3.0}"]))
