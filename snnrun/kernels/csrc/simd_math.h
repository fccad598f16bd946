// Shared by snnrun's kernels (the loader puts it before each kernel's source that names it):
// a vectorisable e^x and the surrogate derivatives the backward passes evaluate in place.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

// e^x, written so that a loop of it vectorises (std::exp, std::floor and a clamp by comparison do
// not): x is clamped where e^x stays a normal number (by
// arithmetic selection), e^x = 2^k e^r with k = trunc(x / ln 2) and r = x − k ln 2 (ln 2 in two
// parts, |r| < ln 2), e^r by its Taylor polynomial to degree 9 (float) or 16 (double), whose
// remainder is below the type's precision: measured 2.4e-7 (float) and 2.4e-16 (double) relative.
template <typename S, int N, int D>
static inline S taylor_exp(S r) {  // 1 + r/N (1 + r/(N+1) (1 + … (1 + r/D)))
    if constexpr (N > D) return S(1);
    else return S(1) + r * (S(1) / S(N)) * taylor_exp<S, N + 1, D>(r);
}

template <typename S>
static inline S vexp(S x) {
    constexpr bool F = sizeof(S) == 4;
    const S lo = F ? S(-80) : S(-700), hi = F ? S(80) : S(700);
    S m = static_cast<S>(x < lo);
    x = x * (S(1) - m) + lo * m;
    m = static_cast<S>(x > hi);
    x = x * (S(1) - m) + hi * m;
    const int32_t k = static_cast<int32_t>(x * S(1.4426950408889634));
    const S kf = static_cast<S>(k);
    const S r = (x - kf * S(0.693145751953125)) - kf * S(1.4286068203094172e-6);
    const S poly = taylor_exp<S, 1, F ? 9 : 16>(r);
    using I = std::conditional_t<F, int32_t, int64_t>;
    const I bits = (static_cast<I>(k) + (F ? 127 : 1023)) << (F ? 23 : 52);
    S scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return poly * scale;
}

// surrogate derivative at x (the distance to threshold, in the surrogate's units), by code:
// 0 sigmoid(alpha), 1 atan(alpha), 2 fast_sigmoid(slope), 3 triangle(width), 4 rectangle(width).
template <typename S>
static inline S surrogate(int code, S x, S c) {
    switch (code) {
        case 0: { S s = S(1) / (S(1) + vexp<S>(-c * x)); return c * s * (S(1) - s); }
        case 1: { S u = S(M_PI / 2) * c * x; return (c / S(2)) / (S(1) + u * u); }
        case 2: { S u = S(1) + c * std::abs(x); return S(1) / (u * u); }
        case 3: { S u = S(1) - std::abs(x) / c; return (u > S(0) ? u : S(0)) / c; }
        case 4: return std::abs(x) < c / S(2) ? S(1) / c : S(0);
    }
    return S(0);
}
