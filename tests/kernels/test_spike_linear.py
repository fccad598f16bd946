"""The spike-gather projection: its reference path sums in the compiled kernel's order."""

import pytest
import torch

from tests.conftest import compiled
from snnrun.kernels import spike_linear


def _products(x, w, b, g, use_compiled: bool, monkeypatch):
    if not use_compiled:
        monkeypatch.setattr(spike_linear._EXTENSION, "load", lambda: None)
    try:
        x = x.clone().requires_grad_(True)
        w = w.clone().requires_grad_(True)
        y, events = spike_linear.linear_events(x, w, b)
        y.backward(g)
        return y.detach(), x.grad, w.grad, events
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(300, 70, 10), (97, 130, 150), (5, 9, 3)])
def test_reference_gather_is_bit_identical_to_the_compiled_one(dtype, shape, monkeypatch):
    compiled(spike_linear._EXTENSION)
    rows, inputs, outputs = shape
    g = torch.Generator().manual_seed(sum(shape))
    x = (torch.rand(rows, inputs, generator=g) < 0.15).to(dtype)
    x[0] = 0  # a silent row
    w = torch.randn(outputs, inputs, generator=g, dtype=dtype)
    b = torch.randn(outputs, generator=g, dtype=dtype)
    grad = torch.randn(rows, outputs, generator=g, dtype=dtype)
    fast = _products(x, w, b, grad, True, monkeypatch)
    ref = _products(x, w, b, grad, False, monkeypatch)
    assert fast[3] == ref[3] == int(x.sum())
    for a, r in zip(fast[:3], ref[:3]):
        assert torch.equal(a, r)
    dense = torch.nn.functional.linear(x, w, b)
    torch.testing.assert_close(ref[0], dense)  # the same product, up to rounding order


def test_reference_path_falls_back_to_dense_like_the_kernel(monkeypatch):
    monkeypatch.setattr(spike_linear._EXTENSION, "load", lambda: None)
    w = torch.randn(5, 12)
    graded = torch.rand(6, 12)
    dense = (torch.rand(6, 12) < 0.9).float()  # binary, above MAX_DENSITY
    for x, events in ((graded, None), (dense, int(dense.sum()))):
        y, counted = spike_linear.linear_events(x, w)
        assert torch.equal(y, torch.nn.functional.linear(x, w)) and counted == events
