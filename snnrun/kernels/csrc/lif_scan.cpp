#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

// leak: 0 Euler, 1 exact, 2 none (IF). Same expressions and association as lif_step.
template <typename S, int LEAK, bool HARD>
static void fwd_impl(const S* in, const S* v0, S* z, S* hs, S* vout, S* cnt, int64_t T, int64_t N, S r, S v_rest,
                     S v_th, S v_reset, S soft, S decay, S one_m_decay, S k) {
    // v0: the potentials before the first step, or null for the resting state
    at::parallel_for(0, N, 4096, [&](int64_t b, int64_t e) {
        const int64_t n = e - b;
        std::vector<S> vbuf(n, v_rest), cbuf(n, S(0));
        if (v0) std::memcpy(vbuf.data(), v0 + b, n * sizeof(S));
        S* v = vbuf.data();
        S* c = cbuf.data();
        for (int64_t t = 0; t < T; ++t) {
            const S* cur = in + t * N + b;
            S* zt = z + t * N + b;
            S* ht = hs ? hs + t * N + b : nullptr;
            // independent lanes (h may overwrite the current at the same index: read before written)
#pragma omp simd
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
                                       bool save_h, bool reuse, torch::Tensor v_init) {
    // v_init: [B, ...] potentials before the first step; an empty tensor: the resting state
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
    auto V0 = v_init.numel() > 0 ? v_init.contiguous().to(I.scalar_type()) : v_init;
    TORCH_CHECK(V0.numel() == 0 || V0.numel() == N, "lif_forward: v_init has ", V0.numel(), " values, not ", N);
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
            fwd_impl<S, decltype(L)::value, decltype(H)::value>(in, V0.numel() ? V0.data_ptr<S>() : nullptr, zp, hp,
                                                               vp, cp, T, N, a[0], a[1], a[2], a[3],
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

// The backward recursion over time for one surrogate (CODE; -1: precomputed in sp), reset and
// detach choice: lanes independent, vectorised; the expressions are those the loop had before.
template <typename S, int CODE, bool HARD, bool DETACH>
static void bwd_impl(const S* g, const S* hp, const S* sp, S* o, const S* gv_last, S* gv_first, int64_t T,
                     int64_t N, S sa, S sb, S th, S vr, S soft, S cc) {
    // gv_last: ∂L/∂v after the last step (null: 0); gv_first receives ∂L/∂v before the first step
    at::parallel_for(0, N, 4096, [&](int64_t beg, int64_t end) {
        const int64_t n = end - beg;
        std::vector<S> gvbuf(n, S(0));
        if (gv_last) std::memcpy(gvbuf.data(), gv_last + beg, n * sizeof(S));
        S* gv = gvbuf.data();
        for (int64_t t = T - 1; t >= 0; --t) {
            const int64_t off = t * N + beg;
            // the gradient may overwrite h at the same index: read before written
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) {
                const S ht = hp[off + i], x = ht - th;
                const S zt = x >= S(0) ? S(1) : S(0);
                S gz = g[off + i];
                if (!DETACH) gz = gz + gv[i] * (HARD ? (vr - ht) : -soft);
                const S s = CODE < 0 ? sp[off + i] : surrogate<S>(CODE, x, cc);
                const S gh = gz * s + (HARD ? gv[i] * (S(1) - zt) : gv[i]);
                o[off + i] = gh * sb;
                gv[i] = gh * sa;
            }
        }
        std::memcpy(gv_first + beg, gv, n * sizeof(S));
    });
}

std::vector<torch::Tensor> lif_backward(torch::Tensor grad_z, torch::Tensor h, torch::Tensor sg, int64_t code,
                                        double c, double a, double b, double v_th, double v_reset, bool hard,
                                        bool detach, bool inplace, torch::Tensor grad_v_last) {
    // inplace: the gradient overwrites h (h_t is read before the gradient at t is written).
    // grad_v_last: ∂L/∂v after the last step (empty: 0). Returns {∂L/∂I, ∂L/∂v before the first step}.
    auto G = grad_z.contiguous();
    auto H = h.contiguous();
    const int64_t T = H.size(0), N = H.numel() / std::max<int64_t>(T, 1);
    auto out = inplace && H.is_same(h) ? H : torch::empty_like(H);
    const bool pre = code < 0;
    auto SG = pre ? sg.contiguous() : sg;
    auto GL = grad_v_last.numel() > 0 ? grad_v_last.contiguous().to(H.scalar_type()) : grad_v_last;
    TORCH_CHECK(GL.numel() == 0 || GL.numel() == N, "lif_backward: grad_v_last has ", GL.numel(), " values, not ", N);
    auto gfirst = torch::empty({N}, H.options());
    AT_DISPATCH_FLOATING_TYPES(H.scalar_type(), "lif_backward", [&] {
        using S = scalar_t;
        const S* g = G.data_ptr<S>(); const S* hp = H.data_ptr<S>();
        const S* sp = pre ? SG.data_ptr<S>() : nullptr;
        S* o = out.data_ptr<S>();
        const S* gl = GL.numel() ? GL.data_ptr<S>() : nullptr;
        S* gf = gfirst.data_ptr<S>();
        const S sa = (S)a, sb = (S)b, th = (S)v_th, vr = (S)v_reset, soft = (S)(v_th - v_reset), cc = (S)c;
        const int ic = (int)code;
        auto run = [&](auto CODE, auto HARD, auto DETACH) {
            bwd_impl<S, decltype(CODE)::value, decltype(HARD)::value, decltype(DETACH)::value>(
                g, hp, sp, o, gl, gf, T, N, sa, sb, th, vr, soft, cc);
        };
        auto with_reset = [&](auto CODE) {
            if (hard) { if (detach) run(CODE, std::true_type{}, std::true_type{}); else run(CODE, std::true_type{}, std::false_type{}); }
            else { if (detach) run(CODE, std::false_type{}, std::true_type{}); else run(CODE, std::false_type{}, std::false_type{}); }
        };
        switch (pre ? -1 : ic) {
            case -1: with_reset(std::integral_constant<int, -1>{}); break;
            case 0: with_reset(std::integral_constant<int, 0>{}); break;
            case 1: with_reset(std::integral_constant<int, 1>{}); break;
            case 2: with_reset(std::integral_constant<int, 2>{}); break;
            case 3: with_reset(std::integral_constant<int, 3>{}); break;
            default: with_reset(std::integral_constant<int, 4>{}); break;
        }
    });
    return {out, gfirst};
}

// A LIF population whose input at step t is ext_t + linear(z_{t-1}, W, bias): a population on a
// cycle with one linear self-loop (snnrun.network stepping a recurrent layer). The whole loop over
// time runs here: per step one at::linear of the previous spikes (the function the synapse calls,
// so the same bits) and the LIF update of fwd_impl. Saves h and returns the spikes.
// v_init / s_init: potentials and spikes before the first step (empty: rest, no spikes).
std::vector<torch::Tensor> rlif_forward(torch::Tensor ext, torch::Tensor weight, torch::Tensor bias,
                                        torch::Tensor v_init, torch::Tensor s_init, double r, double v_rest,
                                        double v_th, double v_reset, int64_t leak, bool hard, double decay,
                                        double k, bool save_h) {
    auto E = ext.contiguous();
    const int64_t T = E.size(0), B = E.size(1), N = E.numel() / std::max<int64_t>(T * B, 1);
    auto z = torch::empty({T, B, N}, E.options());
    auto h = save_h ? torch::empty({T, B, N}, E.options()) : torch::empty({0}, E.options());
    auto v = v_init.numel() > 0 ? v_init.reshape({B, N}).to(E.scalar_type()).contiguous().clone()
                                : torch::full({B, N}, v_rest, E.options());
    auto s = s_init.numel() > 0 ? s_init.reshape({B, N}).to(E.scalar_type()) : torch::zeros({B, N}, E.options());
    auto b = bias.numel() > 0 ? c10::optional<torch::Tensor>(bias) : c10::nullopt;
    AT_DISPATCH_FLOATING_TYPES(E.scalar_type(), "rlif_forward", [&] {
        using S = scalar_t;
        std::vector<S> step_counts(B * N);  // fwd_impl's per-call counts (the spikes are summed from z)
        const S a[] = {(S)r, (S)v_rest, (S)v_th, (S)v_reset, (S)(v_th - v_reset), (S)decay, (S)(1 - decay), (S)k};
        for (int64_t t = 0; t < T; ++t) {
            auto cur = (E[t].reshape({B, N}) + at::linear(s, weight, b)).contiguous();
            S* zt = z.data_ptr<S>() + t * B * N;
            S* ht = save_h ? h.data_ptr<S>() + t * B * N : nullptr;
            S* vp = v.data_ptr<S>();
            auto run = [&](auto L, auto H) {
                fwd_impl<S, decltype(L)::value, decltype(H)::value>(cur.data_ptr<S>(), vp, zt, ht, vp, step_counts.data(),
                                                                   1, B * N, a[0], a[1], a[2], a[3], a[4], a[5],
                                                                   a[6], a[7]);
            };
            using T0 = std::integral_constant<int, 0>; using T1 = std::integral_constant<int, 1>;
            using T2 = std::integral_constant<int, 2>;
            using Hy = std::true_type; using Hn = std::false_type;
            if (hard) { if (leak == 0) run(T0{}, Hy{}); else if (leak == 1) run(T1{}, Hy{}); else run(T2{}, Hy{}); }
            else { if (leak == 0) run(T0{}, Hn{}); else if (leak == 1) run(T1{}, Hn{}); else run(T2{}, Hn{}); }
            s = z[t];
        }
    });
    return {z, h, v};
}

// The backward of rlif_forward: the scan's recursion with, at each step, the gradient the next
// step's recurrent product sends back to these spikes (∂L/∂I_{t+1} · W). grad_v_last: ∂L/∂v after the
// last step from a following chunk (empty: 0; the last spikes' gradient is in grad_z); s_init as in the
// forward. code: the surrogate (0..4 of surrogate(); no precomputed derivatives here).
// Returns {∂L/∂ext, ∂L/∂W, ∂L/∂bias, ∂L/∂v_init, ∂L/∂s_init}; ∂L/∂ext is written over h (h_t is read
// before its gradient is written, and step t reads no other step of h).
std::vector<torch::Tensor> rlif_backward(torch::Tensor grad_z, torch::Tensor h, torch::Tensor z,
                                         torch::Tensor weight, torch::Tensor s_init, torch::Tensor grad_v_last,
                                         int64_t code, double c, double span, double a, double b, double v_th,
                                         double v_reset, bool hard, bool detach, bool with_bias) {
    TORCH_CHECK(code >= 0 && code <= 4, "rlif_backward: surrogate code ", code, " is not evaluated here");
    auto G = grad_z.contiguous();
    auto H = h.contiguous();
    auto Z = z.contiguous();
    const int64_t T = H.size(0), B = H.size(1), N = H.size(2);
    auto gI = H;
    auto gv = grad_v_last.numel() > 0 ? grad_v_last.reshape({B, N}).to(H.scalar_type()).contiguous().clone()
                                      : torch::zeros({B, N}, H.options());
    auto gs = torch::empty({B, N}, H.options());
    AT_DISPATCH_FLOATING_TYPES(H.scalar_type(), "rlif_backward", [&] {
        using S = scalar_t;
        const S sa = (S)a, sb = (S)b, th = (S)v_th, vr = (S)v_reset, soft = (S)(v_th - v_reset), cc = (S)c;
        const S inv = S(1) / (S)span;
        const int64_t M = B * N;
        for (int64_t t = T - 1; t >= 0; --t) {
            if (t == T - 1) gs.zero_();
            else gs = at::mm(gI[t + 1], weight).contiguous();
            const S* g = G.data_ptr<S>() + t * M;
            const S* hp = H.data_ptr<S>() + t * M;
            const S* gr = gs.data_ptr<S>();
            S* o = gI.data_ptr<S>() + t * M;
            S* gvp = gv.data_ptr<S>();
            at::parallel_for(0, M, 4096, [&](int64_t beg, int64_t end) {
                for (int64_t i = beg; i < end; ++i) {
                    const S ht = hp[i], x = ht - th;
                    const S zt = x >= S(0) ? S(1) : S(0);
                    S gz = g[i] + gr[i];
                    if (!detach) gz = gz + gvp[i] * (hard ? (vr - ht) : -soft);
                    const S sg = surrogate<S>((int)code, x * inv, cc) * inv;
                    const S gh = gz * sg + (hard ? gvp[i] * (S(1) - zt) : gvp[i]);
                    o[i] = gh * sb;
                    gvp[i] = gh * sa;
                }
            });
        }
    });
    // ∂L/∂W = Σ_t ∂L/∂I_t^T z_{t−1}: steps 1..T−1 as one product, step 0 with the spikes before it
    auto flat = gI.reshape({T * B, N});
    auto grad_w = T > 1 ? at::mm(gI.narrow(0, 1, T - 1).reshape({(T - 1) * B, N}).t(),
                                 Z.narrow(0, 0, T - 1).reshape({(T - 1) * B, N}))
                        : torch::zeros({N, N}, H.options());
    if (s_init.numel() > 0) grad_w.add_(at::mm(gI[0].t(), s_init.reshape({B, N}).to(H.scalar_type())));
    auto grad_bias = with_bias ? flat.sum(0) : torch::empty({0}, H.options());
    auto grad_s0 = at::mm(gI[0], weight);
    return {gI, grad_w, grad_bias, gv, grad_s0};
}
