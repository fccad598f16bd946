#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <vector>

// One network step of the Hodgkin–Huxley model (snnrun.neurons.hh.hh_step, the reference): k
// exponential (Rush–Larsen) sub-steps of delta with the input held. Lanes (neurons × batch) are
// independent: each task takes LANES of them, keeps their state in local arrays and runs the
// sub-steps with the lanes innermost (vectorised; every exponential is simd_math.h's vexp).

constexpr int64_t LANES = 64;

template <typename S>
struct Model {
    S cm, gna, gk, gl, ena, ek, el, vth, r, phi, delta, floor;
    int64_t k;
};

template <typename S>
static Model<S> model(const std::vector<double>& q, int64_t k) {
    TORCH_CHECK(q.size() == 12, "hh: 12 parameters expected, got ", q.size());
    TORCH_CHECK(k >= 1, "hh: at least one sub-step per step, got ", k);
    return {(S)q[0], (S)q[1], (S)q[2], (S)q[3], (S)q[4], (S)q[5], (S)q[6], (S)q[7], (S)q[8], (S)q[9], (S)q[10],
            (S)q[11], k};
}

// x / (1 − e^{−x/y}), y at x = 0 (|x| < 1e-6), as _vtrap; selected by arithmetic (x (1 − s) + 1 s is
// exactly x or 1), which vectorises where a conditional does not
template <typename S>
static inline S vtrap(S x, S y) {
    const S small = static_cast<S>(std::abs(x) < S(1e-6));
    const S safe = x * (S(1) - small) + small;
    const S value = safe / (S(1) - vexp<S>(-safe * (S(1) / y)));
    return value * (S(1) - small) + y * small;
}

// x ← x_∞ + (x − x_∞) e^{−δ/τ}, 1/τ = α + β, x_∞ = α τ (rates already multiplied by φ)
template <typename S>
static inline S gate(S x, S alpha, S beta, S delta) {
    const S rate = alpha + beta;
    const S inf = alpha / rate;
    return inf + (x - inf) * vexp<S>(-delta * rate);
}

// One sub-step of one lane: the gates at the previous V (at least the floor), then V with the new
// conductances held. a, b: ∂V'/∂V and ∂V'/∂I (the passive backward's factors).
// The rates are those of snnrun.neurons.hh.rates (tests/kernels/test_hh.py compares the two in float64).
template <typename S>
static inline S substep(const Model<S>& p, S drive, S v, S& m, S& h, S& n, S& a, S& b) {
    const S u = v < p.floor ? p.floor : v;  // as clamp(min=floor): a NaN stays NaN
    const S w = -(u + S(65));
    const S an = p.phi * (S(0.01) * vtrap<S>(u + S(55), S(10)));
    const S bn = p.phi * (S(0.125) * vexp<S>(w * S(1.0 / 80)));
    const S am = p.phi * (S(0.1) * vtrap<S>(u + S(40), S(10)));
    const S bm = p.phi * (S(4) * vexp<S>(w * S(1.0 / 18)));
    const S ah = p.phi * (S(0.07) * vexp<S>(w * S(1.0 / 20)));
    const S bh = p.phi / (S(1) + vexp<S>(-(u + S(35)) * S(0.1)));
    n = gate<S>(n, an, bn, p.delta);
    m = gate<S>(m, am, bm, p.delta);
    h = gate<S>(h, ah, bh, p.delta);
    const S gna = p.gna * (m * m * m) * h, gk = p.gk * ((n * n) * (n * n));
    const S g = gna + gk + p.gl;
    const S vinf = (gna * p.ena + gk * p.ek + p.gl * p.el + drive) / g;
    const S e = vexp<S>(-p.delta * g / p.cm);
    a = e;
    b = p.r * (S(1) - e) / g;
    return vinf + (v - vinf) * e;
}

// Lanes [beg, beg + cnt) over the k sub-steps: the state in vp, mp, hp, np advanced in place, z out.
template <typename S>
static void forward_lanes(const Model<S>& p, const S* in, S* vp, S* mp, S* hp, S* np, S* zp, int64_t beg,
                          int64_t cnt) {
    S lv[LANES], lm[LANES], lh[LANES], ln[LANES], lz[LANES], ld[LANES];
    for (int64_t i = 0; i < cnt; ++i) {
        lv[i] = vp[beg + i]; lm[i] = mp[beg + i]; lh[i] = hp[beg + i]; ln[i] = np[beg + i];
        ld[i] = p.r * in[beg + i]; lz[i] = S(0);
    }
    for (int64_t s = 0; s < p.k; ++s) {
#pragma omp simd
        for (int64_t i = 0; i < cnt; ++i) {
            S a, b;
            const S vn = substep<S>(p, ld[i], lv[i], lm[i], lh[i], ln[i], a, b);
            const S crossed = (vn >= p.vth ? S(1) : S(0)) * (lv[i] < p.vth ? S(1) : S(0));
            lz[i] = lz[i] + crossed - lz[i] * crossed;
            lv[i] = vn;
        }
    }
    for (int64_t i = 0; i < cnt; ++i) {
        vp[beg + i] = lv[i]; mp[beg + i] = lm[i]; hp[beg + i] = lh[i]; np[beg + i] = ln[i]; zp[beg + i] = lz[i];
    }
}

// The passive backward of lanes [beg, beg + cnt) from the step's inputs: each lane's sub-steps are
// run again, keeping per sub-step ∂V'/∂V (a), ∂V'/∂I (b), the crossing c, z before it and the
// surrogate derivative σ' where V' may cross (V below v_th before it), in the buffers f* (k × LANES);
// then the reverse recursion: with z_s = z_{s−1} + c_s − z_{s−1} c_s, g_c = g_z (1 − z_{s−1}),
// g_z ← g_z (1 − c_s), g_V ← g_V + g_c σ'; ∂L/∂I += g_V b_s, g_V ← g_V a_s.
// The surrogate (CODE, c: simd_math.h) is evaluated at (V' − v_th) / span and divided by span.
template <typename S, int CODE>
static void backward_lanes(const Model<S>& p, S c, S inv, const S* in, const S* vp, const S* mp,
                           const S* hp, const S* np, const S* g, const S* gl, S* gi, S* gv0, int64_t beg,
                           int64_t cnt, S* fa, S* fb, S* fc, S* fs, S* fz) {
    S lv[LANES], lm[LANES], lh[LANES], ln[LANES], lz[LANES], ld[LANES], gz[LANES], gv[LANES], acc[LANES];
    for (int64_t i = 0; i < cnt; ++i) {
        lv[i] = vp[beg + i]; lm[i] = mp[beg + i]; lh[i] = hp[beg + i]; ln[i] = np[beg + i];
        ld[i] = p.r * in[beg + i]; lz[i] = S(0);
    }
    for (int64_t s = 0; s < p.k; ++s) {
        S *ra = fa + s * LANES, *rb = fb + s * LANES, *rc = fc + s * LANES, *rs = fs + s * LANES;
        S* rz = fz + s * LANES;
#pragma omp simd
        for (int64_t i = 0; i < cnt; ++i) {
            S a, b;
            const S vn = substep<S>(p, ld[i], lv[i], lm[i], lh[i], ln[i], a, b);
            const S below = lv[i] < p.vth ? S(1) : S(0);
            const S crossed = (vn >= p.vth ? S(1) : S(0)) * below;
            ra[i] = a; rb[i] = b; rc[i] = crossed; rz[i] = lz[i];
            rs[i] = below * surrogate<S>(CODE, (vn - p.vth) * inv, c) * inv;
            lz[i] = lz[i] + crossed - lz[i] * crossed;
            lv[i] = vn;
        }
    }
    for (int64_t i = 0; i < cnt; ++i) {
        gz[i] = g[beg + i]; gv[i] = gl ? gl[beg + i] : S(0); acc[i] = S(0);
    }
    for (int64_t s = p.k - 1; s >= 0; --s) {
        const S *ra = fa + s * LANES, *rb = fb + s * LANES, *rc = fc + s * LANES, *rs = fs + s * LANES;
        const S* rz = fz + s * LANES;
#pragma omp simd
        for (int64_t i = 0; i < cnt; ++i) {
            const S gc = gz[i] * (S(1) - rz[i]);
            gz[i] = gz[i] * (S(1) - rc[i]);
            const S gvs = gv[i] + gc * rs[i];
            acc[i] = acc[i] + gvs * rb[i];
            gv[i] = gvs * ra[i];
        }
    }
    for (int64_t i = 0; i < cnt; ++i) {
        gi[beg + i] = acc[i]; gv0[beg + i] = gv[i];
    }
}

// q: c_m, g_na, g_k, g_l, e_na, e_k, e_l, v_th, r, phi, delta, V floor of the rates; k sub-steps.
// Returns {z, v, m, h, n} after the step (z: 1 where V crossed v_th upwards in any sub-step).
std::vector<torch::Tensor> hh_forward(torch::Tensor current, torch::Tensor v, torch::Tensor m, torch::Tensor h,
                                      torch::Tensor n, std::vector<double> q, int64_t k) {
    auto I = current.contiguous();
    const auto type = I.scalar_type();
    auto V = v.to(type).contiguous().clone(), M = m.to(type).contiguous().clone();
    auto H = h.to(type).contiguous().clone(), Nn = n.to(type).contiguous().clone();
    auto Z = torch::empty_like(I);
    const int64_t total = I.numel();
    TORCH_CHECK(V.numel() == total && M.numel() == total && H.numel() == total && Nn.numel() == total,
                "hh_forward: the state and the current differ in size");
    AT_DISPATCH_FLOATING_TYPES(type, "hh_forward", [&] {
        using S = scalar_t;
        const Model<S> p = model<S>(q, k);
        const S* in = I.data_ptr<S>();
        S *vp = V.data_ptr<S>(), *mp = M.data_ptr<S>(), *hp = H.data_ptr<S>(), *np = Nn.data_ptr<S>();
        S* zp = Z.data_ptr<S>();
        at::parallel_for(0, (total + LANES - 1) / LANES, 1, [&](int64_t first, int64_t last) {
            for (int64_t c = first; c < last; ++c)
                forward_lanes<S>(p, in, vp, mp, hp, np, zp, c * LANES, std::min(LANES, total - c * LANES));
        });
    });
    return {Z, V, M, H, Nn};
}

// The passive backward of hh_forward (backward_lanes) from the same inputs. code, width: the
// surrogate; span: the voltage it is scaled by. grad_v: ∂L/∂V after the step (empty: 0).
// Returns {∂L/∂I, ∂L/∂V before the step}.
std::vector<torch::Tensor> hh_backward(torch::Tensor grad_z, torch::Tensor grad_v, torch::Tensor current,
                                       torch::Tensor v, torch::Tensor m, torch::Tensor h, torch::Tensor n,
                                       std::vector<double> q, int64_t k, int64_t code, double width, double span) {
    TORCH_CHECK(code >= 0 && code <= 4, "hh_backward: surrogate code ", code, " is not evaluated here");
    auto I = current.contiguous();
    const auto type = I.scalar_type();
    auto G = grad_z.to(type).contiguous();
    auto GV = grad_v.numel() > 0 ? grad_v.to(type).contiguous() : grad_v;
    auto V = v.to(type).contiguous(), M = m.to(type).contiguous(), H = h.to(type).contiguous();
    auto Nn = n.to(type).contiguous();
    auto grad_i = torch::empty_like(I), grad_v0 = torch::empty_like(I);
    const int64_t total = I.numel();
    TORCH_CHECK(G.numel() == total && (GV.numel() == 0 || GV.numel() == total),
                "hh_backward: the gradients and the current differ in size");
    AT_DISPATCH_FLOATING_TYPES(type, "hh_backward", [&] {
        using S = scalar_t;
        const Model<S> p = model<S>(q, k);
        const S cc = (S)width, inv = S(1) / (S)span;
        const S* in = I.data_ptr<S>(); const S* g = G.data_ptr<S>();
        const S* gl = GV.numel() ? GV.data_ptr<S>() : nullptr;
        const S *vp = V.data_ptr<S>(), *mp = M.data_ptr<S>(), *hp = H.data_ptr<S>(), *np = Nn.data_ptr<S>();
        S *gi = grad_i.data_ptr<S>(), *gv0 = grad_v0.data_ptr<S>();
        at::parallel_for(0, (total + LANES - 1) / LANES, 1, [&](int64_t first, int64_t last) {
            std::vector<S> buf(5 * p.k * LANES);
            S* f = buf.data();
            const int64_t w = p.k * LANES;
            auto run = [&](auto CODE) {
                for (int64_t c = first; c < last; ++c)
                    backward_lanes<S, decltype(CODE)::value>(p, cc, inv, in, vp, mp, hp, np, g, gl, gi, gv0,
                                                             c * LANES, std::min(LANES, total - c * LANES), f, f + w,
                                                             f + 2 * w, f + 3 * w, f + 4 * w);
            };
            switch (code) {  // the surrogate as a constant, so the lanes' loop has no branch
                case 0: run(std::integral_constant<int, 0>{}); break;
                case 1: run(std::integral_constant<int, 1>{}); break;
                case 2: run(std::integral_constant<int, 2>{}); break;
                case 3: run(std::integral_constant<int, 3>{}); break;
                default: run(std::integral_constant<int, 4>{}); break;
            }
        });
    });
    return {grad_i, grad_v0};
}
