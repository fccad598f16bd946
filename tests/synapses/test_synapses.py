"""Synapse types: shapes, exact outputs, masks, delays, constraints."""

from __future__ import annotations

import pytest
import torch

from snnrun.errors import ConfigError, ShapeError
from snnrun.synapses import SYNAPSES


def syn(node, in_shape, target=None, dt=1.0, steps=1):
    return SYNAPSES.build(node, "synapse", in_shape=in_shape, target_shape=target, dt=dt, time_steps=steps)


def test_conv_and_pool_output_shapes():
    conv = syn({"name": "conv2d", "channels": 8, "kernel_size": 5, "stride": 2, "padding": 1, "groups": 1}, (2, 28, 28))
    assert conv.out_shape == (8, 13, 13)
    assert conv(torch.rand(3, 2, 28, 28)).shape == (3, 8, 13, 13)
    assert syn({"name": "maxpool", "kernel_size": 2}, (8, 13, 13)).out_shape == (8, 6, 6)
    assert syn({"name": "avgpool", "kernel_size": 3, "stride": 1}, (8, 6, 6)).out_shape == (8, 4, 4)
    grouped = syn({"name": "conv2d", "channels": 4, "groups": 2}, (2, 5, 5))
    assert grouped.weight.shape == (4, 1, 3, 3)
    with pytest.raises(ShapeError, match="conv2d needs a \\[channels, height, width\\] input"):
        syn({"name": "conv2d"}, (10,))
    with pytest.raises(ShapeError, match="groups=3 must divide"):
        syn({"name": "conv2d", "channels": 6, "groups": 3}, (2, 5, 5))


def test_pooling_values():
    x = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert syn({"name": "maxpool"}, (1, 2, 2))(x).item() == 1.0
    assert syn({"name": "avgpool"}, (1, 2, 2))(x).item() == 0.25


def test_one_to_one_and_lateral_inhibition_exact():
    s = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    assert syn({"name": "one_to_one", "weight": 22.5}, (4,))(s).tolist() == [[22.5, 0.0, 22.5, 22.5]]
    assert syn({"name": "lateral_inhibition", "weight": -2.0}, (4,))(s).tolist() == [[-4.0, -6.0, -4.0, -4.0]]
    learn = syn({"name": "one_to_one", "learnable": True}, (4,))
    assert isinstance(learn.weight, torch.nn.Parameter)


def test_sparse_mask_is_seeded_and_stores_only_connections():
    a = syn({"name": "sparse", "p": 0.2, "seed": 3}, (50,), (40,))
    b = syn({"name": "sparse", "p": 0.2, "seed": 3}, (50,), (40,))
    c = syn({"name": "sparse", "p": 0.2, "seed": 4}, (50,), (40,))
    assert torch.equal(a.indices, b.indices) and not torch.equal(a.indices, c.indices)
    assert a.weight.numel() == a.indices.shape[1] and 0.15 < a.weight.numel() / 2000 < 0.25
    dense = a.dense_weight()
    x = torch.rand(3, 50)
    torch.testing.assert_close(a(x), x @ dense.t())
    a(x).sum().backward()
    assert a.weight.grad.shape == a.weight.shape and a.weight.grad.abs().sum() > 0
    assert (dense != 0).sum() <= a.weight.numel()


def test_recurrent_has_no_self_connections():
    r = syn({"name": "recurrent"}, (6,), (6,))
    assert torch.all(torch.diagonal(r.weight * r.mask) == 0)
    with pytest.raises(ShapeError, match="recurrent synapse needs equal source and target sizes"):
        syn({"name": "recurrent"}, (6,), (5,))


def test_dropout_mask_is_held_over_time():
    d = syn({"name": "dropout", "p": 0.5}, (100,))
    torch.manual_seed(0)
    x = torch.ones(5 * 2, 100)  # T=5, B=2
    y = d(x, 5).reshape(5, 2, 100)
    assert torch.equal(y[0], y[4]) and not torch.equal(y[:, 0], y[:, 1])
    assert set(y.unique().tolist()) == {0.0, 2.0}
    d.reset()
    step = [d(torch.ones(2, 100), 1) for _ in range(3)]
    assert torch.equal(step[0], step[2])
    d.eval()
    assert torch.equal(d(x, 5), x)


@pytest.mark.parametrize("per_neuron", [False, True])
def test_delay_layer_and_step_paths_agree(per_neuron):
    d = syn({"name": "delay", "delay": 3.0, "per_neuron": per_neuron, "seed": 1}, (4,), dt=1.0)
    torch.manual_seed(0)
    x = (torch.rand(10, 2, 4) < 0.4).float()
    layer = d(x.reshape(20, 4), 10).reshape(10, 2, 4)
    d.reset()
    step = torch.stack([d(x[t], 1) for t in range(10)])
    assert torch.equal(layer, step)
    for n in range(4):
        k = int(d.delays[n])
        assert torch.equal(layer[k:, :, n], x[: 10 - k, :, n]) and layer[:k, :, n].sum() == 0
    if not per_neuron:
        assert d.delays.tolist() == [3, 3, 3, 3]


def test_delay_must_be_whole_steps():
    with pytest.raises(ConfigError, match="delay: 2.5 ms is not a whole number of dt = 1.0 ms"):
        syn({"name": "delay", "delay": 2.5}, (4,))


def test_bounds_and_dales_law():
    exc = syn({"name": "dense", "init": "normal", "std": 1.0, "sign": "excitatory"}, (20,), (10,))
    inh = syn({"name": "dense", "init": "normal", "std": 1.0, "sign": "inhibitory", "w_min": -0.5}, (20,), (10,))
    assert exc.weight.min() >= 0 and inh.weight.max() <= 0 and inh.weight.min() >= -0.5
    with torch.no_grad():
        exc.weight.sub_(10)
    exc.clamp_weights()
    assert exc.weight.min() >= 0
    uniform = syn({"name": "dense", "init": "uniform", "low": 0.2, "high": 0.3}, (5,), (5,))
    assert 0.2 <= uniform.weight.min() and uniform.weight.max() <= 0.3
    const = syn({"name": "dense", "init": "constant", "value": 0.7}, (5,), (5,))
    assert torch.all(const.weight == 0.7)


def test_batchnorm_modes():
    td = syn({"name": "batchnorm", "mode": "tdbn", "alpha": 2.0, "v_th": 0.5}, (3, 4, 4), steps=5)
    assert torch.all(td.norms[0].weight == 1.0)
    out = td(torch.randn(10, 3, 4, 4) * 5 + 3, 5)
    assert out.mean().abs() < 1e-4 and out.shape == (10, 3, 4, 4)
    per = syn({"name": "batchnorm", "mode": "per_step"}, (3,), steps=4)
    assert len(per.norms) == 4
    x = torch.randn(4 * 8, 3)
    layer = per(x, 4)
    per.reset()
    step = torch.cat([per(x.reshape(4, 8, 3)[t], 1) for t in range(4)])
    torch.testing.assert_close(layer, step)


def test_delayed_dense_per_synapse_delays_match_the_definition():
    d = syn({"name": "delayed_dense", "delay": 3.0, "seed": 2}, (5,), (4,), steps=10)
    assert d.delays.shape == (4, 5) and d.delays.min() == 0 and d.delays.max() == 3
    assert len(d.delays.unique()) == 4  # every delay 0..3 occurs: the delays really are per synapse
    torch.manual_seed(0)
    x = (torch.rand(10, 2, 5) < 0.4).float()
    layer = d(x.reshape(20, 5), 10).reshape(10, 2, 4)
    w, delays = d.weight.detach(), d.delays
    expected = torch.zeros(10, 2, 4)
    for t in range(10):
        for j in range(4):
            for i in range(5):
                if t - delays[j, i] >= 0:
                    expected[t, :, j] += w[j, i] * x[t - delays[j, i], :, i]
    torch.testing.assert_close(layer, expected)
    d.reset()
    step = torch.stack([d(x[t], 1) for t in range(10)])  # the ring buffer of future currents
    torch.testing.assert_close(step, expected)
    layer.sum().backward()
    assert d.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="delay: 1.5 ms is not a whole number of dt = 1.0 ms"):
        syn({"name": "delayed_dense", "delay": 1.5}, (5,), (4,))
