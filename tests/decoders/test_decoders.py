"""Decoders and losses: exact scores on hand-made spike trains."""

from __future__ import annotations

import pytest
import torch

from snnrun.decoders import DECODERS
from snnrun.errors import ShapeError


def dec(node, classes=3, dt=1.0):
    return DECODERS.build(node, "decoder", dt=dt, num_classes=classes)


def spikes_from(times, steps=6, classes=3):
    """times[b][c] = list of spike steps."""
    s = torch.zeros(steps, len(times), classes)
    for b, row in enumerate(times):
        for c, ts in enumerate(row):
            for t in ts:
                s[t, b, c] = 1
    return s


def test_count_rate_and_voltage_decoders():
    s = spikes_from([[[0, 1], [2], []]])
    v = torch.arange(18, dtype=torch.float32).reshape(6, 1, 3)
    assert dec({"name": "spike_counts"})(s).tolist() == [[2, 1, 0]]
    assert dec({"name": "spike_counts", "window": 4.0})(s).tolist() == [[0, 1, 0]]  # steps 2..5 only
    assert dec({"name": "spike_rate"}, dt=0.5)(s)[0].tolist() == pytest.approx([2 / 3e-3, 1 / 3e-3, 0])
    assert dec({"name": "final_step_voltage"})(s, v).tolist() == [[15, 16, 17]]
    assert dec({"name": "voltage_sum"}, dt=2.0)(s, v).tolist() == [[2 * sum(range(0, 18, 3)), 2 * sum(range(1, 18, 3)), 2 * sum(range(2, 18, 3))]]
    assert dec({"name": "max_voltage"})(s, -v).tolist() == [[0, -1, -2]]
    logp = dec({"name": "time_softmax"})(s, torch.zeros(6, 1, 3))
    torch.testing.assert_close(logp, torch.log(torch.full((1, 3), 1 / 3)))


def test_first_spike_times_and_gradient():
    s = spikes_from([[[3, 4], [1], []]])
    scores = dec({"name": "first_spike"}, dt=0.5)(s)
    assert scores.tolist() == [[-1.5, -0.5, -3.0]]  # never firing counts as T·dt
    s.requires_grad_(True)
    dec({"name": "first_spike"})(s).sum().backward()
    assert s.grad.abs().sum() > 0


def test_population_vote():
    s = torch.zeros(4, 1, 6)
    s[:, 0, 4] = 1  # class 2 (neurons 4, 5)
    s[0, 0, 0] = 1
    assert dec({"name": "population_vote", "neurons_per_class": 2})(s).tolist() == [[1, 0, 4]]
    with pytest.raises(ShapeError, match="decoder.neurons_per_class: 4 does not divide the 6"):
        dec({"name": "population_vote", "neurons_per_class": 4})(s)


def test_label_assignment_learns_each_neurons_class():
    d = dec({"name": "label_assignment"}, classes=2)
    assert d(torch.zeros(3, 1, 4)).tolist() == [[0.0, 0.0]]  # nothing assigned yet
    # neurons 0, 1 answer class 0; neurons 2, 3 class 1 (neuron 3 weakly, also to class 0)
    for _ in range(3):
        d.observe(torch.tensor([[[3.0, 2.0, 0.0, 1.0]]]), torch.tensor([0]))
        d.observe(torch.tensor([[[0.0, 0.0, 4.0, 2.0]]]), torch.tensor([1]))
    d.end_epoch()
    assert d.assignments.tolist() == [0, 0, 1, 1]
    scores = d(torch.tensor([[[1.0, 1.0, 6.0, 2.0]]]))
    assert scores.tolist() == [[1.0, 4.0]]
    assert d.predict(scores).item() == 1
    w = dec({"name": "label_assignment", "weighting": "proportion"}, classes=2)
    w.load_state_dict(d.state_dict())
    torch.testing.assert_close(w.proportions[3], torch.tensor([1 / 3, 2 / 3]))
    assert w(torch.tensor([[[0.0, 0.0, 0.0, 3.0]]]))[0].tolist() == pytest.approx([1.0, 2.0])

