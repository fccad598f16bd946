r"""Bernoulli spike trains from per-input probabilities, drawn by a fast seeded generator.

``spikes[t, i] = 1`` with probability ``p[i]``, independently for every step ``t`` and input
``i``: the Poisson rate encoder's discretisation. Each input ``i`` has its own xoshiro128**
stream (Blackman & Vigna 2021, "Scrambled linear pseudorandom number generators"), seeded by
SplitMix64 from ``key + i·φ`` where the 64-bit ``key`` is one draw of torch's default CPU
generator; step ``t`` of input ``i`` is the stream's ``t``-th 32-bit output ``u``, and the spike
is the integer comparison ``u < ⌊q·2³²⌋`` with ``q = scale·p`` in float64 (``q ≥ 1`` always
spikes, ``q ≤ 0`` never). The spikes therefore depend only on the key (i.e. on
``torch.manual_seed``), not on the device, the thread count or whether the compiler was found:

- compiled path (CPU, float32/float64): ``csrc/bernoulli.cpp`` advances sixteen streams side by
  side in vector registers;
- reference path (CUDA, other dtypes, no compiler): :func:`reference_steps` advances all streams
  at once with int64 torch operations masked to 32 bits, on the input's device.

Both give bit-identical spikes (``tests/kernels/test_bernoulli.py``).
"""

from __future__ import annotations

import torch

import numpy as np

from .loader import Extension

_ENABLED = True
_DTYPES = (torch.float32, torch.float64)
_GOLDEN = 0x9E3779B97F4A7C15
_MASK32 = 0xFFFFFFFF

_EXTENSION = Extension("bernoulli", "bernoulli.cpp", ["bernoulli_steps", "stream", "draw_key"],
                       ["-O3", "-march=native", "-mprefer-vector-width=256", "-fopenmp"])


def set_enabled(flag: bool) -> None:
    """Switch the compiled generator on/off (the reference path, same spikes, runs when off)."""
    global _ENABLED
    _ENABLED = bool(flag)


def draw_key() -> int:
    """One draw of torch's default CPU generator as a signed 64-bit key (what the C++ ``draw_key`` reads)."""
    return int(torch.randint(-2 ** 63, 2 ** 63 - 1, (), dtype=torch.int64))


def _mix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def seed_streams(key: int, n: int) -> np.ndarray:
    """The xoshiro128** states ``[4, n]`` (uint32 words) of inputs ``0 … n−1`` for ``key``."""
    i = np.arange(n, dtype=np.uint64)
    base = np.uint64(key & 0xFFFFFFFFFFFFFFFF) + i * np.uint64(_GOLDEN)  # wraps modulo 2**64
    a, b = _mix64(base + np.uint64(_GOLDEN)), _mix64(base + np.uint64(2 * _GOLDEN & 0xFFFFFFFFFFFFFFFF))
    low, high = np.uint64(_MASK32), np.uint64(32)
    return np.stack([a & low, a >> high, b & low, b >> high]).astype(np.uint32)


def _rotl(x: torch.Tensor, k: int) -> torch.Tensor:
    return ((x << k) | (x >> (32 - k))) & _MASK32


def reference_steps(x: torch.Tensor, steps: int, key: int, scale: float = 1.0) -> torch.Tensor:
    """The compiled kernel's spikes, computed with torch operations on ``x``'s device: every
    stream advanced at once, uint32 words held in int64 and masked after each operation."""
    q = x.detach().reshape(-1).to(torch.float64) * float(scale)
    always = q >= 1.0
    threshold = torch.where((q > 0) & ~always, torch.floor(q * 4294967296.0), torch.zeros_like(q)).to(torch.int64)
    s0, s1, s2, s3 = torch.from_numpy(seed_streams(key, q.numel()).astype(np.int64)).to(x.device).unbind(0)
    out = torch.empty((steps, q.numel()), dtype=x.dtype, device=x.device)
    for t in range(steps):
        u = (_rotl((s1 * 5) & _MASK32, 7) * 9) & _MASK32
        shifted = (s1 << 9) & _MASK32
        s2 = s2 ^ s0
        s3 = s3 ^ s1
        s1 = s1 ^ s2
        s0 = s0 ^ s3
        s2 = s2 ^ shifted
        s3 = _rotl(s3, 11)
        out[t] = ((u < threshold) | always).to(x.dtype)
    return out.reshape(steps, *x.shape)


def bernoulli_steps(x: torch.Tensor, steps: int, scale: float = 1.0) -> torch.Tensor:
    """``[steps, *x.shape]`` independent Bernoulli draws with probability ``clamp(scale·x, 0, 1)``,
    as 0/1 in ``x``'s dtype; the key is one draw of torch's default CPU generator."""
    ext = _EXTENSION.load() if _ENABLED and x.device.type == "cpu" and x.dtype in _DTYPES else None
    key = draw_key()
    if ext is None:
        _EXTENSION.ran("reference")
        return reference_steps(x, steps, key, scale)
    _EXTENSION.ran("compiled")
    return ext.bernoulli_steps(x, steps, key, float(scale))
