"""Encoders: statistics of stochastic codes and exact outputs of deterministic ones."""

from __future__ import annotations

import math

import pytest
import torch

from snnrun.encoders import ENCODERS
from snnrun.errors import ShapeError


def enc(node, dt=1.0, steps=10):
    return ENCODERS.build(node, "encoder", dt=dt, time_steps=steps)


def test_poisson_mean_rate_within_confidence_interval():
    torch.manual_seed(0)
    e = enc({"name": "poisson", "max_rate": 100.0}, dt=0.5, steps=2000)  # 1 s
    x = torch.tensor([[0.2, 0.5, 1.0]]).expand(50, 3)
    spikes = e(x)
    assert spikes.shape == (2000, 50, 3) and set(spikes.unique().tolist()) <= {0.0, 1.0}
    rate = spikes.sum(0).mean(0)  # spikes per second = Hz
    n = 2000 * 50
    for observed, expected in zip(rate.tolist(), [20.0, 50.0, 100.0]):
        p = expected * 0.5 / 1000
        sd = math.sqrt(n * p * (1 - p)) / 50  # of the mean count per neuron
        assert abs(observed - expected) < 4 * sd


def test_bernoulli_probability_and_generators():
    torch.manual_seed(1)
    spikes = enc({"name": "bernoulli", "scale": 0.5}, steps=4000)(torch.full((10,), 0.6))
    assert spikes.mean().item() == pytest.approx(0.3, abs=0.01)
    gen = enc({"name": "poisson_generator", "rate": 50.0}, dt=1.0, steps=4000)(torch.zeros(10))
    assert gen.mean().item() == pytest.approx(0.05, abs=0.005)
    cc = enc({"name": "cc_generator", "amplitude": 2.5}, steps=3)(torch.zeros(2, 4))
    assert torch.equal(cc, torch.full((3, 2, 4), 2.5))
    direct = enc({"name": "direct", "gain": 2.0}, steps=3)(torch.tensor([[0.5, 1.0]]))
    assert torch.equal(direct, torch.tensor([[[1.0, 2.0]]] * 3))


def test_sin_generator_values():
    s = enc({"name": "sin_generator", "amplitude": 2.0, "frequency": 250.0, "offset": 1.0}, dt=1.0, steps=4)
    out = s(torch.ones(1, 1))[:, 0, 0]
    torch.testing.assert_close(out, torch.tensor([1.0, 3.0, 1.0, -1.0]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", ["linear", "log"])
def test_latency_stronger_inputs_fire_earlier_once(mode):
    e = enc({"name": "latency", "mode": mode, "tau": 5.0, "threshold": 0.05}, dt=1.0, steps=50)
    x = torch.tensor([[1.0, 0.8, 0.4, 0.1, 0.0]])
    spikes = e(x)[:, 0]
    assert spikes[:, :4].sum(0).tolist() == [1, 1, 1, 1] and spikes[:, 4].sum() == 0
    times = spikes[:, :4].argmax(0).tolist()
    assert times == sorted(times) and times[0] < times[-1]
    if mode == "linear":  # t = τ (1 − x) with τ = 5 ms, dt = 1 ms
        assert times == [0, round(0.2 * 5), round(0.6 * 5), round(0.9 * 5)]
    else:
        assert times[1] == round(5.0 * math.log(0.8 / 0.75))


def test_latency_normalize_spans_the_window_and_default_fits_in_tau():
    x = torch.tensor([[1.0, 0.75, 0.5, 0.02, 0.01]])
    spread = enc({"name": "latency", "normalize": True}, dt=0.5, steps=50)(x)[:, 0]  # τ = 49 · 0.5 ms
    assert spread[:, :4].argmax(0).tolist() == [0, round(0.25 * 49), round(0.5 * 49), round(0.98 * 49)]
    assert spread[:, 4].sum() == 0  # at the threshold 0.01: no spike
    default = enc({"name": "latency"}, dt=0.5, steps=50)
    assert default.params.tau == 5.0 and default.params.mode == "linear" and not default.params.normalize
    assert default(x)[:, 0, :4].argmax(0).tolist() == [0, round(0.25 * 10), round(0.5 * 10), round(0.98 * 10)]


def test_relative_latency_is_a_rank_order_code():
    spikes = enc({"name": "relative_latency"}, steps=5)(torch.tensor([[0.3, 0.9, 0.0, 0.5, 0.1]]))[:, 0]
    assert spikes.argmax(0).tolist()[:2] == [2, 0] and spikes.sum(0).tolist() == [1, 1, 0, 1, 1]
    assert spikes[:, 3].argmax().item() == 1 and spikes[:, 4].argmax().item() == 3


def test_sstb_and_mstb_exact():
    x = torch.tensor([[2.0, -1.0, 0.0, 7.5, float("nan"), 40.0]])
    out = enc({"name": "sstb"}, dt=0.5, steps=20)(x)[:, 0]
    expected = torch.zeros(20, 6)
    expected[4, 0] = expected[0, 2] = expected[15, 3] = 1
    assert torch.equal(out, expected)
    times = torch.tensor([[[1.0, 3.0, -1.0], [0.0, 0.0, 2.0]]])  # [B=1, N=2, K=3]
    e = enc({"name": "mstb"}, dt=1.0, steps=4)
    assert e.output_shape((2, 3)) == (2,)
    out = e(times)[:, 0]
    assert out.t().tolist() == [[0, 1, 0, 1], [1, 0, 1, 0]]


def test_sstb_of_latency_times_is_the_latency_code():
    """Intensities written as the latency code's times, t = 5 (1 − x) ms (−1 at or below its threshold),
    give sstb the latency encoder's spikes bit for bit (what scripts/spike_time_digits.py relies on)."""
    x = torch.rand(16, 64, generator=torch.Generator().manual_seed(0))
    x[:, :8] = 0.0
    times = torch.where(x > 0.01, 5.0 * (1.0 - x), torch.full_like(x, -1.0))
    assert torch.equal(enc({"name": "sstb"}, steps=25)(times), enc({"name": "latency"}, steps=25)(x))


def test_population_code_receptive_fields():
    e = enc({"name": "population", "neurons": 5, "low": 0.0, "high": 1.0, "width": 1.0, "max_rate": 1000.0}, steps=400)
    assert e.output_shape((3,)) == (3, 5)
    act = e.activation(torch.tensor([[0.5]]))[0, 0]
    assert act.argmax().item() == 2 and act[2].item() == pytest.approx(1.0)
    assert act[1].item() == pytest.approx(math.exp(-0.5))  # one spacing away = one sigma
    torch.manual_seed(0)
    rates = e(torch.tensor([[0.0]])).mean(0)[0, 0]
    assert rates.argmax().item() == 0 and rates[4].item() < 0.01


def test_delta_temporal_contrast():
    seq = torch.tensor([[[0.0], [0.5], [0.5], [0.2], [0.9]]])  # [B, T, 1]
    e = enc({"name": "delta", "threshold": 0.2, "off_spikes": True}, steps=5)
    out = e(seq)
    assert out.shape == (5, 1, 2, 1) and e.output_shape((5, 1)) == (2, 1)
    assert out[:, 0, 0, 0].tolist() == [0, 1, 0, 0, 1] and out[:, 0, 1, 0].tolist() == [0, 0, 0, 1, 0]
    with pytest.raises(ShapeError, match="delta needs sequences of T = 4 frames, got 5"):
        enc({"name": "delta"}, steps=4)(seq)


def test_spike_time_encoders_run_on_spike_time_data_and_refuse_intensities(tmp_path):
    """sstb reads times in ms: an npz of times (values unknown) trains; digits (intensities) is refused."""
    import numpy as np

    from snnrun.build import build_experiment
    from snnrun.errors import ConfigError
    from snnrun.runner import Runner
    from snnrun.validate import compose

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 64)
    times = np.where(y[:, None] == 1, 2.0, 15.0) + rng.normal(0, 1, (64, 8))  # class = early or late spikes
    path = tmp_path / "times.npz"
    np.savez(path, x_train=times.astype(np.float32), y_train=y, x_test=times.astype(np.float32), y_test=y)
    short = ["trainer.epochs=1", "plots=off", "monitors=off"]
    exp = build_experiment(compose(["data=npz", f"data.path={path}", "encoder=sstb"] + short))
    spikes = exp.encoder(exp.data.x_train[:4])
    assert spikes.shape == (25, 4, 8) and spikes.sum().item() == 32  # one spike per input
    summary = Runner(exp, tmp_path / "run", "").fit()
    assert summary["status"] == "completed"
    with pytest.raises(ConfigError, match="sstb reads spike times in ms, but data=digits holds intensities"):
        build_experiment(compose(["encoder=sstb"] + short))
