r"""Bernoulli spike trains from per-input probabilities, drawn by a fast seeded generator.

``spikes[t, i] = 1`` with probability ``p[i]``, independently for every step ``t`` and input
``i``: the Poisson rate encoder's discretisation. ``torch.rand(...) < p`` draws and compares two
float tensors (about 8 ns per element here, 7 % of the default experiment's epoch). This
kernel gives each input ``i`` its own xoshiro128** stream (Blackman & Vigna 2021, "Scrambled
linear pseudorandom number generators"), seeded by SplitMix64 from ``key + i·φ`` where the
64-bit ``key`` is one draw of torch's generator; step ``t`` of input ``i`` is the stream's
``t``-th 32-bit output ``u``, and the spike is the integer comparison ``u < ⌊p·2³²⌋`` (p = 1
always spikes, p = 0 never: those inputs skip the generator). Sixteen streams advance side by
side in vector registers. The result depends only on the key, not on the thread count, and
follows ``torch.manual_seed``. On CUDA, other dtypes, or without a compiler, ``torch.rand(...) < p``
is used.
"""

from __future__ import annotations

import torch

from . import Extension

_ENABLED = True
_DTYPES = (torch.float32, torch.float64)

_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cstdint>
#include <mutex>
#include <vector>

constexpr int LANES = 16;  // streams advanced together (one per input)

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t splitmix64(uint64_t& s) { return mix64(s += 0x9E3779B97F4A7C15ull); }

static inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

// xoshiro128** state of input i: two SplitMix64 outputs from key + i * golden (bernoulli_steps
// computes the same for 16 lanes at once)
static inline void seed(uint64_t key, int64_t i, uint32_t& a, uint32_t& b, uint32_t& c, uint32_t& d) {
    uint64_t sm = key + (uint64_t)i * 0x9E3779B97F4A7C15ull;
    const uint64_t x = splitmix64(sm), y = splitmix64(sm);
    a = (uint32_t)x; b = (uint32_t)(x >> 32); c = (uint32_t)y; d = (uint32_t)(y >> 32);
}

// the first n outputs of input i's stream (for the reference test)
std::vector<int64_t> stream(int64_t key, int64_t i, int64_t n) {
    uint32_t s0, s1, s2, s3;
    seed((uint64_t)key, i, s0, s1, s2, s3);
    std::vector<int64_t> out;
    for (int64_t k = 0; k < n; ++k) {
        out.push_back(rotl(s1 * 5, 7) * 9);
        const uint32_t t = s1 << 9;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11);
    }
    return out;
}

// one draw of torch's default CPU generator, as torch.randint(-2**63, 2**63 - 1, ()) makes it
// (random64() % range + low); here it costs no dispatcher call or tensor
int64_t draw_key() {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    const uint64_t r = at::check_generator<at::CPUGeneratorImpl>(gen)->random64();
    return (int64_t)(r % 0xFFFFFFFFFFFFFFFFull + 0x8000000000000000ull);
}

// p: any shape, N elements; spike probabilities scale * p (clamped to [0, 1]); returns
// [T, *p.shape] of 0/1 in p's dtype. key: the generator's key, or draw_key() when none is given.
torch::Tensor bernoulli_steps(torch::Tensor p, int64_t T, c10::optional<int64_t> key_arg, double scale) {
    auto P = p.contiguous();
    const int64_t N = P.numel();
    const int64_t key = key_arg.has_value() ? *key_arg : draw_key();
    std::vector<int64_t> shape{T};
    shape.insert(shape.end(), P.sizes().begin(), P.sizes().end());
    auto out = torch::empty(shape, P.options());
    const int64_t groups = (N + LANES - 1) / LANES;
    std::vector<uint32_t> thr(groups * LANES, 0u);  // floor(p 2^32), padded; p >= 1 -> always
    std::vector<uint8_t> always(groups * LANES, 0);
    AT_DISPATCH_FLOATING_TYPES(P.scalar_type(), "bernoulli_thresholds", [&] {
        const scalar_t* pp = P.data_ptr<scalar_t>();
        for (int64_t i = 0; i < N; ++i) {
            const double q = (double)pp[i] * scale;
            if (q >= 1.0) always[i] = 1;
            else if (q > 0.0) thr[i] = (uint32_t)(q * 4294967296.0);
        }
    });
    AT_DISPATCH_FLOATING_TYPES(P.scalar_type(), "bernoulli_steps", [&] {
        scalar_t* o = out.data_ptr<scalar_t>();
        at::parallel_for(0, groups, 16, [&](int64_t gb, int64_t ge) {
            for (int64_t g = gb; g < ge; ++g) {
                const int64_t i0 = g * LANES, n = std::min<int64_t>(LANES, N - i0);
                uint32_t th[LANES], on[LANES], s0[LANES], s1[LANES], s2[LANES], s3[LANES];
                uint32_t any = 0;
                for (int j = 0; j < LANES; ++j) {
                    th[j] = thr[i0 + j]; on[j] = always[i0 + j] ? 1u : 0u; any |= th[j] | on[j];
                }
                if (!any) {
                    for (int64_t t = 0; t < T; ++t) std::fill(o + t * N + i0, o + t * N + i0 + n, scalar_t(0));
                    continue;
                }
                uint64_t a[LANES], b[LANES];  // the two SplitMix64 outputs of each lane: as seed(), vectorised
                for (int j = 0; j < LANES; ++j) {
                    const uint64_t base = (uint64_t)key + (uint64_t)(i0 + j) * 0x9E3779B97F4A7C15ull;
                    a[j] = mix64(base + 0x9E3779B97F4A7C15ull);
                    b[j] = mix64(base + 2 * 0x9E3779B97F4A7C15ull);
                }
                for (int j = 0; j < LANES; ++j) {
                    s0[j] = (uint32_t)a[j]; s1[j] = (uint32_t)(a[j] >> 32); s2[j] = (uint32_t)b[j]; s3[j] = (uint32_t)(b[j] >> 32);
                }
                scalar_t z[LANES];
                for (int64_t t = 0; t < T; ++t) {
                    scalar_t* dst = n == LANES ? o + t * N + i0 : z;  // full groups: straight to the output
                    for (int j = 0; j < LANES; ++j) {  // 16 streams side by side: vectorised
                        const uint32_t u = rotl(s1[j] * 5u, 7) * 9u, x = s1[j] << 9;
                        s2[j] ^= s0[j]; s3[j] ^= s1[j]; s1[j] ^= s2[j]; s0[j] ^= s3[j]; s2[j] ^= x;
                        s3[j] = rotl(s3[j], 11);
                        dst[j] = (scalar_t)((uint32_t)(u < th[j]) | on[j]);
                    }
                    if (n != LANES) std::copy(z, z + n, o + t * N + i0);
                }
            }
        });
    });
    return out;
}
"""

_EXTENSION = Extension("snnrun_bernoulli_v12", _SOURCE, ["bernoulli_steps", "stream", "draw_key"],
                       ["-O3", "-march=native", "-mprefer-vector-width=256", "-fopenmp"])
_load = _EXTENSION.load


def set_enabled(flag: bool) -> None:
    """Globally switch the compiled generator on/off (``torch.rand`` is used when off)."""
    global _ENABLED
    _ENABLED = bool(flag)


def bernoulli_steps(x: torch.Tensor, steps: int, scale: float = 1.0) -> torch.Tensor:
    """``[steps, *x.shape]`` independent Bernoulli draws with probability ``clamp(scale·x, 0, 1)``,
    as 0/1 in ``x``'s dtype."""
    ext = (_EXTENSION.module or _load()) if _ENABLED and x.device.type == "cpu" and x.dtype in _DTYPES else None
    if ext is None:
        q = (x * scale).clamp(0.0, 1.0).unsqueeze(0).expand(steps, *x.shape)
        return (torch.rand(q.shape, device=x.device, dtype=x.dtype) < q).to(x.dtype)
    return ext.bernoulli_steps(x, steps, None, float(scale))  # key: one draw of torch's default generator
