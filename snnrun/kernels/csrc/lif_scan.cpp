#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <type_traits>
#include <vector>

// leak: 0 Euler, 1 exact, 2 none (IF). Same expressions and association as lif_step.
template <typename S, int LEAK, bool HARD>
static void fwd_impl(const S* in, S* z, S* hs, S* vout, S* cnt, int64_t T, int64_t N, S r, S v_rest, S v_th,
                     S v_reset, S soft, S decay, S one_m_decay, S k) {
    at::parallel_for(0, N, 4096, [&](int64_t b, int64_t e) {
        const int64_t n = e - b;
        std::vector<S> vbuf(n, v_rest), cbuf(n, S(0));
        S* v = vbuf.data();
        S* c = cbuf.data();
        for (int64_t t = 0; t < T; ++t) {
            const S* cur = in + t * N + b;
            S* zt = z + t * N + b;
            S* ht = hs ? hs + t * N + b : nullptr;
            for (int64_t i = 0; i < n; ++i) {
                const S d = r * cur[i];
                S h;
                if (LEAK == 1) h = v_rest + (v[i] - v_rest) * decay + d * one_m_decay;
                else if (LEAK == 0) h = v[i] + k * (-(v[i] - v_rest) + d);
                else h = v[i] + k * d;
                const S zz = (h - v_th >= S(0)) ? S(1) : S(0);
                if (ht) ht[i] = h;
                zt[i] = zz;
                c[i] += zz;
                v[i] = HARD ? h * (S(1) - zz) + v_reset * zz : h - soft * zz;
            }
        }
        for (int64_t i = 0; i < n; ++i) { vout[b + i] = v[i]; cnt[b + i] = c[i]; }
    });
}

std::vector<torch::Tensor> lif_forward(torch::Tensor current, double r, double v_rest, double v_th,
                                       double v_reset, int64_t leak, bool hard, double decay, double k,
                                       bool save_h, bool reuse) {
    // reuse: h overwrites the current in place (h_t is written after I_t is read, element by element)
    auto I = current.contiguous();
    const int64_t T = I.size(0), N = I.numel() / std::max<int64_t>(T, 1);
    auto z = torch::empty_like(I);
    auto h = save_h ? (reuse && I.is_same(current) ? I : torch::empty_like(I)) : torch::empty({0}, I.options());
    auto v = torch::empty({N}, I.options());
    // spikes of each neuron over the T steps, summed over the batch (dim 1) after the parallel scan
    // has counted them per neuron and sample: one pass over data still in cache
    const int64_t B = I.dim() >= 2 ? I.size(1) : 1, M = B > 0 ? N / B : 0;
    auto counts = torch::zeros({M}, I.options());
    AT_DISPATCH_FLOATING_TYPES(I.scalar_type(), "lif_forward", [&] {
        using S = scalar_t;
        const S* in = I.data_ptr<S>();
        S* hp = save_h ? h.data_ptr<S>() : nullptr;
        S* zp = z.data_ptr<S>();
        S* vp = v.data_ptr<S>();
        std::vector<S> per_sample(N);
        S* cp = per_sample.data();
        const S a[] = {(S)r, (S)v_rest, (S)v_th, (S)v_reset, (S)(v_th - v_reset), (S)decay, (S)(1 - decay), (S)k};
        auto run = [&](auto L, auto H) {
            fwd_impl<S, decltype(L)::value, decltype(H)::value>(in, zp, hp, vp, cp, T, N, a[0], a[1], a[2], a[3],
                                                               a[4], a[5], a[6], a[7]);
        };
        using T0 = std::integral_constant<int, 0>; using T1 = std::integral_constant<int, 1>;
        using T2 = std::integral_constant<int, 2>;
        using Hy = std::true_type; using Hn = std::false_type;
        if (hard) { if (leak == 0) run(T0{}, Hy{}); else if (leak == 1) run(T1{}, Hy{}); else run(T2{}, Hy{}); }
        else { if (leak == 0) run(T0{}, Hn{}); else if (leak == 1) run(T1{}, Hn{}); else run(T2{}, Hn{}); }
        S* total = counts.data_ptr<S>();
        for (int64_t s = 0; s < B; ++s)
            for (int64_t i = 0; i < M; ++i) total[i] += cp[s * M + i];
    });
    return {z, h, v, counts};
}

// surrogate derivative of x = h - v_th: 0 sigmoid(alpha), 1 atan(alpha), 2 fast_sigmoid(slope),
// 3 triangle(width), 4 rectangle(width); -1: precomputed in sg.
template <typename S>
static inline S surrogate(int code, S x, S c) {
    switch (code) {
        case 0: { S s = S(1) / (S(1) + std::exp(-c * x)); return c * s * (S(1) - s); }
        case 1: { S u = S(M_PI / 2) * c * x; return (c / S(2)) / (S(1) + u * u); }
        case 2: { S u = S(1) + c * std::abs(x); return S(1) / (u * u); }
        case 3: { S u = S(1) - std::abs(x) / c; return (u > S(0) ? u : S(0)) / c; }
        case 4: return std::abs(x) < c / S(2) ? S(1) / c : S(0);
    }
    return S(0);
}

torch::Tensor lif_backward(torch::Tensor grad_z, torch::Tensor h, torch::Tensor sg, int64_t code, double c,
                           double a, double b, double v_th, double v_reset, bool hard, bool detach,
                           bool inplace) {
    // inplace: the gradient overwrites h (h_t is read before the gradient at t is written)
    auto G = grad_z.contiguous();
    auto H = h.contiguous();
    const int64_t T = H.size(0), N = H.numel() / std::max<int64_t>(T, 1);
    auto out = inplace && H.is_same(h) ? H : torch::empty_like(H);
    const bool pre = code < 0;
    auto SG = pre ? sg.contiguous() : sg;
    AT_DISPATCH_FLOATING_TYPES(H.scalar_type(), "lif_backward", [&] {
        using S = scalar_t;
        const S* g = G.data_ptr<S>(); const S* hp = H.data_ptr<S>();
        const S* sp = pre ? SG.data_ptr<S>() : nullptr;
        S* o = out.data_ptr<S>();
        const S sa = (S)a, sb = (S)b, th = (S)v_th, vr = (S)v_reset, soft = (S)(v_th - v_reset), cc = (S)c;
        const int ic = (int)code;
        at::parallel_for(0, N, 4096, [&](int64_t beg, int64_t end) {
            const int64_t n = end - beg;
            std::vector<S> gvbuf(n, S(0));
            S* gv = gvbuf.data();
            for (int64_t t = T - 1; t >= 0; --t) {
                const int64_t off = t * N + beg;
                for (int64_t i = 0; i < n; ++i) {
                    const S ht = hp[off + i], x = ht - th;
                    const S zt = x >= S(0) ? S(1) : S(0);
                    S gz = g[off + i];
                    if (!detach) gz = gz + gv[i] * (hard ? (vr - ht) : -soft);
                    const S s = pre ? sp[off + i] : surrogate<S>(ic, x, cc);
                    const S gh = gz * s + (hard ? gv[i] * (S(1) - zt) : gv[i]);
                    o[off + i] = gh * sb;
                    gv[i] = gh * sa;
                }
            }
        });
    });
    return out;
}
