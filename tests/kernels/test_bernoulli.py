"""The Bernoulli generator: its streams, its spikes, their statistics, determinism, and the
reference path's bit-identity with the compiled one."""

import math

import pytest
import torch

from tests.conftest import compiled
from snnrun.kernels import bernoulli

MASK64 = 2 ** 64 - 1
GOLDEN = 0x9E3779B97F4A7C15


def reference_stream(key: int, i: int, n: int) -> list[int]:
    """SplitMix64 seeding + xoshiro128** (Blackman & Vigna), written from the published algorithms."""
    def splitmix(state):
        state = (state + GOLDEN) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return state, z ^ (z >> 31)

    def rotl(x, k):
        return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF

    state = (key + i * GOLDEN) & MASK64
    state, a = splitmix(state)
    state, b = splitmix(state)
    s = [a & 0xFFFFFFFF, a >> 32, b & 0xFFFFFFFF, b >> 32]
    out = []
    for _ in range(n):
        out.append((rotl((s[1] * 5) & 0xFFFFFFFF, 7) * 9) & 0xFFFFFFFF)
        t = (s[1] << 9) & 0xFFFFFFFF
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 11)
    return out


def test_streams_match_reference_xoshiro128starstar():
    ext = compiled(bernoulli._EXTENSION)
    for key, i in ((0, 0), (12345, 7), (-(2 ** 63), 100_000), (2 ** 63 - 1, 3)):
        assert [v & 0xFFFFFFFF for v in ext.stream(key, i, 6)] == reference_stream(key & MASK64, i, 6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_spikes_are_the_stream_compared_with_the_probability(dtype):
    """19 inputs (one full group of 16 plus a tail), p = 0, 1 and in between, 7 steps."""
    p = torch.tensor([0.0, 1.0, 0.5, 0.13, 1e-9, 0.999999, 2.0, -1.0] + [k / 11 for k in range(11)], dtype=dtype)
    key = 987654321
    out = compiled(bernoulli._EXTENSION).bernoulli_steps(p, 7, key, 1.0)
    assert out.shape == (7, 19) and out.dtype == dtype
    for i, q in enumerate(p.tolist()):
        q = min(max(q, 0.0), 1.0)
        stream = reference_stream(key, i, 7)
        expected = [1.0 if q >= 1.0 else float(q > 0 and u < int(q * 2 ** 32)) for u in stream]
        assert out[:, i].tolist() == expected, i
    # the probability is scale * p: doubling p and halving the scale draws the same spikes
    assert torch.equal(compiled(bernoulli._EXTENSION).bernoulli_steps(p * 2, 7, key, 0.5), out)


@pytest.mark.parametrize("q", [0.01, 0.13, 0.5, 0.9])
def test_spike_statistics_are_bernoulli(q):
    torch.manual_seed(0)
    T, n = 2000, 64
    s = bernoulli.bernoulli_steps(torch.full((n,), q), T)
    # mean within 4 standard errors
    assert abs(s.mean().item() - q) < 4 * math.sqrt(q * (1 - q) / (T * n))
    # no correlation between successive steps or neighbouring inputs (|r| < 4/sqrt(samples))
    c = s - s.mean()
    lag = (c[1:] * c[:-1]).mean() / c.pow(2).mean()
    neighbour = (c[:, 1:] * c[:, :-1]).mean() / c.pow(2).mean()
    assert abs(lag.item()) < 4 / math.sqrt(T * n) and abs(neighbour.item()) < 4 / math.sqrt(T * n)
    # counts over 20-step windows follow Binomial(20, q): chi-square over the likely counts
    counts = s[: T // 20 * 20].reshape(T // 20, 20, n).sum(1).flatten().long()
    k = torch.arange(21)
    pmf = torch.tensor([math.comb(20, int(j)) * q ** int(j) * (1 - q) ** (20 - int(j)) for j in k])
    expected = pmf * counts.numel()
    keep = expected >= 5
    observed = torch.bincount(counts, minlength=21).double()
    chi2 = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum().item()
    dof = int(keep.sum()) - 1
    assert chi2 < dof + 5 * math.sqrt(2 * dof)  # far above the 99.9 % quantile would fail


def test_each_input_draws_its_own_stream_in_large_mixed_inputs():
    """9000 inputs across groups and thread chunks, mostly silent in the first half (p = 0, some
    p = 1), mostly drawing in the second: input i's spikes are always its own stream."""
    g = torch.Generator().manual_seed(4)
    p = torch.rand(9000, generator=g)
    p[:4500][torch.rand(4500, generator=g) < 0.8] = 0.0  # the first blocks: mostly silent ...
    p[:4500][torch.rand(4500, generator=g) < 0.05] = 1.0  # ... with some inputs that always fire
    key = -123456789
    out = compiled(bernoulli._EXTENSION).bernoulli_steps(p, 5, key, 1.0)
    for i in [0, 1, 15, 16, 17, 2047, 2048, 2049, 4095, 4096, 4499, 4500, 6000, 8191, 8192, 8999] + \
            torch.nonzero(p[:4500] > 0).flatten()[:40].tolist():
        q = float(p[i])
        expected = [1.0 if q >= 1.0 else float(q > 0 and u < int(q * 2 ** 32)) for u in reference_stream(key, i, 5)]
        assert out[:, i].tolist() == expected, i


def test_same_seed_same_spikes_any_thread_count():
    p = torch.rand(3, 3000)
    p[:, ::3] = 0.0
    p[1] = torch.where(p[1] < 0.7, 0.0, p[1])  # one sample's inputs mostly silent: packed groups
    runs = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2, 1):
            torch.set_num_threads(n)
            torch.manual_seed(5)
            runs.append(bernoulli.bernoulli_steps(p, 30))
    finally:
        torch.set_num_threads(threads)
    assert runs[0].shape == (30, 3, 3000)
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])
    assert not torch.equal(bernoulli.bernoulli_steps(p, 30), runs[0])  # the next call draws a new key


def test_key_is_one_draw_of_torchs_default_generator():
    """The kernel's own key draw takes the value torch.randint(-2**63, 2**63 - 1, ()) would, so runs
    follow torch.manual_seed; the shape of the input is kept behind the time axis."""
    ext = compiled(bernoulli._EXTENSION)
    torch.manual_seed(123)
    drawn = [ext.draw_key() for _ in range(4)]
    torch.manual_seed(123)
    assert drawn == [int(torch.randint(-2 ** 63, 2 ** 63 - 1, (), dtype=torch.int64)) for _ in range(4)]
    p = torch.rand(2, 3, 5)
    torch.manual_seed(9)
    spikes = bernoulli.bernoulli_steps(p, 6)
    torch.manual_seed(9)
    assert spikes.shape == (6, 2, 3, 5)
    assert torch.equal(spikes, ext.bernoulli_steps(p, 6, ext.draw_key(), 1.0))


def test_reference_path_has_the_expected_distribution():
    bernoulli.set_enabled(False)
    try:
        torch.manual_seed(1)
        s = bernoulli.bernoulli_steps(torch.tensor([0.0, 0.3, 1.0]), 4000)
    finally:
        bernoulli.set_enabled(True)
    assert s[:, 0].sum() == 0 and s[:, 2].sum() == 4000
    assert abs(s[:, 1].mean().item() - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 4000)


def test_reference_streams_are_xoshiro128starstar():
    """The torch path's seeding and steps, checked against the algorithm written out above."""
    for key in (0, 12345, -(2 ** 63), 2 ** 63 - 1, -987):
        p = torch.full((40,), 0.5, dtype=torch.float64)
        # u < 2**31 exactly when the spike is 1 at p = 0.5
        spikes = bernoulli.reference_steps(p, 5, key)
        for i in (0, 1, 17, 39):
            assert spikes[:, i].tolist() == [float(u < 2 ** 31) for u in reference_stream(key & MASK64, i, 5)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1.0, 0.37, 3.0])
def test_reference_path_is_bit_identical_to_the_compiled_one(dtype, scale):
    ext = compiled(bernoulli._EXTENSION)
    g = torch.Generator().manual_seed(4)
    p = torch.rand(3, 7, 61, generator=g, dtype=dtype)
    p[0, 0, :3] = torch.tensor([0.0, 1.0, 2.0], dtype=dtype)
    p[1] = torch.where(p[1] < 0.6, 0.0, p[1])
    for key in (0, 5, -(2 ** 63), 2 ** 63 - 1, 1234567890123):
        assert torch.equal(bernoulli.reference_steps(p, 23, key, scale), ext.bernoulli_steps(p, 23, key, scale))


def test_same_seed_same_spikes_on_either_path():
    """What an encoder calls: the key comes from torch's generator on both paths."""
    compiled(bernoulli._EXTENSION)
    p = torch.rand(4, 100)
    torch.manual_seed(11)
    fast = bernoulli.bernoulli_steps(p, 20)
    bernoulli.set_enabled(False)
    try:
        torch.manual_seed(11)
        ref = bernoulli.bernoulli_steps(p, 20)
        ref_half = bernoulli.bernoulli_steps(p.to(torch.bfloat16), 3)  # other dtypes: the reference path
    finally:
        bernoulli.set_enabled(True)
    assert torch.equal(fast, ref) and 0 < fast.mean() < 1
    assert ref_half.dtype == torch.bfloat16 and ref_half.shape == (3, 4, 100)
