"""Prefetching: same batches, same order, same spikes as preparing them in the loop; errors surface."""

import pytest
import torch

from snnrun.encoders import ENCODERS
from snnrun.prefetch import Prefetched


def _batches(n):
    return [(torch.full((2, 3), float(i) / n), torch.tensor([i, i])) for i in range(n)]


def _poisson():
    return ENCODERS.build({"name": "poisson", "max_rate": 500.0}, "encoder", dt=1.0, time_steps=10)


@pytest.mark.parametrize("background", [True, False])
def test_prefetched_keeps_order_and_limit(background):
    seen = [(x, y) for x, y, s in Prefetched(_batches(5), 3, torch.device("cpu"), None, background)]
    assert [int(y[0]) for _, y in seen] == [0, 1, 2]
    assert [int(y[0]) for _, y, _ in Prefetched(_batches(2), 10, torch.device("cpu"), None, background)] == [0, 1]


def test_background_encoding_draws_what_the_loop_would():
    runs = []
    for background in (True, False):
        enc = _poisson()
        enc.generator = torch.Generator().manual_seed(3)
        runs.append([s for _, _, s in Prefetched(_batches(6), 6, torch.device("cpu"), enc, background)])
    assert all(s.shape == (10, 2, 3) for s in runs[0]) and sum(float(s.sum()) for s in runs[0]) > 0
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_an_error_while_preparing_is_raised_in_the_loop():
    def broken():
        yield torch.zeros(1, 3), torch.zeros(1)
        raise ValueError("bad sample 1")
    it = iter(Prefetched(broken(), 5, torch.device("cpu"), None))
    next(it)
    with pytest.raises(ValueError, match="bad sample 1"):
        next(it)


def test_runs_with_a_prefetching_encoder_repeat_exactly(tiny_cfg, tmp_path):
    from snnrun.build import build_experiment
    from snnrun.runner import Runner
    finals = []
    for k in range(2):
        cfg = tiny_cfg("encoder=poisson", "trainer.epochs=2")
        exp = build_experiment(cfg)
        assert type(exp.encoder).prefetch
        finals.append(Runner(exp, tmp_path / str(k), "").fit()["final"])
    assert finals[0] == finals[1]
