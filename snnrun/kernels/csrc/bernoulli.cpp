#include <torch/extension.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <type_traits>
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

// 8 lanes of 32-bit integers in one vector (GCC/Clang vector extensions: AVX2 registers on x86,
// two NEON registers on ARM); a group of 16 streams is two of them, advanced independently so their
// dependency chains overlap
typedef uint32_t u32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));
typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x8u __attribute__((vector_size(32), aligned(4)));  // for unaligned stores

struct Streams8 { u32x8 s0, s1, s2, s3; };

// one xoshiro128** step of 8 streams: their outputs (the scalar stream() above, 8 at once)
static inline __attribute__((always_inline)) u32x8 next8(Streams8& s) {
    const u32x8 m = s.s1 * 5u, u = ((m << 7) | (m >> 25)) * 9u, x = s.s1 << 9;
    s.s2 ^= s.s0; s.s3 ^= s.s1; s.s1 ^= s.s2; s.s0 ^= s.s3; s.s2 ^= x; s.s3 = (s.s3 << 11) | (s.s3 >> 21);
    return u;
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
    AT_DISPATCH_FLOATING_TYPES(P.scalar_type(), "bernoulli_steps", [&] {
        const scalar_t* pp = P.data_ptr<scalar_t>();
        scalar_t* o = out.data_ptr<scalar_t>();
        at::parallel_for(0, groups, 16, [&](int64_t gb, int64_t ge) {
            for (int64_t g = gb; g < ge; ++g) {
                const int64_t i0 = g * LANES, n = std::min<int64_t>(LANES, N - i0);
                uint32_t th[LANES] = {}, on[LANES] = {};  // spike iff u < floor(p 2^32); p >= 1: always
                uint32_t any = 0;
                for (int64_t j = 0; j < n; ++j) {
                    const double q = (double)pp[i0 + j] * scale;
                    if (q >= 1.0) on[j] = 1u;
                    else if (q > 0.0) th[j] = (uint32_t)(q * 4294967296.0);
                    any |= th[j] | on[j];
                }
                if (!any) {
                    for (int64_t t = 0; t < T; ++t) std::fill(o + t * N + i0, o + t * N + i0 + n, scalar_t(0));
                    continue;
                }
                uint32_t a0[LANES], a1[LANES], a2[LANES], a3[LANES];  // each lane seeded as seed() does
                for (int j = 0; j < LANES; ++j) {
                    const uint64_t base = (uint64_t)key + (uint64_t)(i0 + j) * 0x9E3779B97F4A7C15ull;
                    const uint64_t a = mix64(base + 0x9E3779B97F4A7C15ull), b = mix64(base + 2 * 0x9E3779B97F4A7C15ull);
                    a0[j] = (uint32_t)a; a1[j] = (uint32_t)(a >> 32); a2[j] = (uint32_t)b; a3[j] = (uint32_t)(b >> 32);
                }
                Streams8 lo, hi;  // lanes 0-7 and 8-15 (filled by value: their address is never taken, so
                                  // the stores below cannot alias them and they stay in registers)
                std::memcpy(&lo.s0, a0, 32); std::memcpy(&lo.s1, a1, 32); std::memcpy(&lo.s2, a2, 32); std::memcpy(&lo.s3, a3, 32);
                std::memcpy(&hi.s0, a0 + 8, 32); std::memcpy(&hi.s1, a1 + 8, 32);
                std::memcpy(&hi.s2, a2 + 8, 32); std::memcpy(&hi.s3, a3 + 8, 32);
                u32x8 th_lo, th_hi, on_lo, on_hi;
                std::memcpy(&th_lo, th, 32); std::memcpy(&th_hi, th + 8, 32);
                std::memcpy(&on_lo, on, 32);
                std::memcpy(&on_hi, on + 8, 32);
                for (int64_t t = 0; t < T; ++t) {
                    const u32x8 u_lo = next8(lo), u_hi = next8(hi);
                    const u32x8 b_lo = ((u32x8)(u_lo < th_lo) & 1u) | on_lo, b_hi = ((u32x8)(u_hi < th_hi) & 1u) | on_hi;
                    scalar_t* dst = o + t * N + i0;
                    if constexpr (std::is_same_v<scalar_t, float>) {
                        // 0/1 as signed integers: one conversion instruction (unsigned ones take four)
                        const f32x8 f_lo = __builtin_convertvector((i32x8)b_lo, f32x8);
                        const f32x8 f_hi = __builtin_convertvector((i32x8)b_hi, f32x8);
                        if (n == LANES) { *(f32x8u*)dst = f_lo; *(f32x8u*)(dst + 8) = f_hi; continue; }  // typed stores
                        float z[LANES];
                        std::memcpy(z, &f_lo, 32); std::memcpy(z + 8, &f_hi, 32);
                        std::copy(z, z + n, dst);
                    } else {
                        for (int64_t j = 0; j < n; ++j) dst[j] = (scalar_t)(j < 8 ? b_lo[j] : b_hi[j - 8]);
                    }
                }
            }
        });
    });
    return out;
}
