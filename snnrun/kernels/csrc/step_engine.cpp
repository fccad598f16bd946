#include <torch/extension.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

// Step engine: one sample (batch 1, float64) of a whole network for all T steps, local learning on
// or off, interpreting a plan built by snnrun/kernels/step_engine.py from the components'
// declarations. Every expression repeats the pure step functions of snnrun/neurons/*.py and
// snnrun/learning/rules.py operation by operation, in the same order (compiled with
// -ffp-contract=off, so no multiply-add is fused): float64 results agree with the torch reference.
//
// Plan (int64 rows, see step_engine.py for the Python side that writes them):
//   pops  [P, 8]: code, n, float offset, persistent tensor (θ) or -1, input tensor or -1,
//                 refractory steps, flags, extra (izh: Euler sub-steps of v)
//   projs [Q, 8]: kind, source pop, target pop, recurrent (reads the previous step), weight tensor,
//                 bias tensor or -1, skip diagonal, float offset
//   rules [R, 8]: code, projection, mode (0 nearest, 1 all_to_all), traces_first, multiplicative,
//                 has w_min, has w_max, float offset
// Populations come in the network's order; projections in the network's order (so each target's
// incoming currents are summed as Network._run_steps sums them).

enum Model { INPUT = 0, LIF = 1, DIEHLCOOK = 2, ALIF = 3, ADEX = 4, IZH = 5 };
enum Kind { DENSE = 1, ONE_TO_ONE = 2, LATERAL = 3 };
enum Flag { F_LEAK = 1, F_EXACT = 2, F_HARD = 4, F_ONE_SPIKE = 8, F_LEARN_THETA = 16 };

namespace {

struct Pop {
    int64_t code, n, fo, persist, input, refrac_steps, flags, extra;
};
struct Proj {
    int64_t kind, src, tgt, recurrent, weight, bias, skip_diag, fo;
};
struct Rule {
    int64_t code, proj, all_to_all, traces_first, multiplicative, has_min, has_max, fo;
};

struct Spikes {
    std::vector<double> s;       // this step's output (0/1)
    std::vector<int32_t> active; // indices of the ones, ascending
    int64_t count = 0;
};

inline bool fires(double x, double span) { return (span == 1.0 ? x : x / span) >= 0.0; }

inline void collect(Spikes& sp) {
    sp.active.clear();
    const int64_t n = (int64_t)sp.s.size();
    for (int64_t i = 0; i < n; ++i)
        if (sp.s[i] != 0.0) sp.active.push_back((int32_t)i);
    sp.count = (int64_t)sp.active.size();
}

}  // namespace

// One sample: input population p reads tensors[pops[p].input] at sample `b` (its [B, T, n] layout, or
// [T, n] with b = 0). Without learning nothing shared is written, so samples may run concurrently.
static std::vector<torch::Tensor> simulate(const std::vector<torch::Tensor>& tensors, const torch::Tensor& pops_t,
                                           const torch::Tensor& projs_t, const torch::Tensor& rules_t,
                                           const torch::Tensor& floats_t, int64_t T, int64_t b, bool learn,
                                           bool record) {
    const int64_t P = pops_t.size(0), Q = projs_t.size(0), R = rules_t.size(0);
    const Pop* pops = reinterpret_cast<const Pop*>(pops_t.data_ptr<int64_t>());
    const Proj* projs = reinterpret_cast<const Proj*>(projs_t.data_ptr<int64_t>());
    const Rule* rules = reinterpret_cast<const Rule*>(rules_t.data_ptr<int64_t>());
    const double* F = floats_t.data_ptr<double>();

    std::vector<std::vector<int64_t>> incoming(P);
    for (int64_t q = 0; q < Q; ++q) incoming[projs[q].tgt].push_back(q);

    std::vector<Spikes> now(P), prev(P);
    std::vector<std::vector<double>> s0(P), s1(P), cur(P), buf(Q);
    std::vector<std::vector<int64_t>> refrac(P);
    std::vector<torch::Tensor> counts, rasters;
    std::vector<int64_t*> cnt(P);
    std::vector<uint8_t*> ras(P, nullptr);
    for (int64_t p = 0; p < P; ++p) {
        const Pop& pp = pops[p];
        const int64_t n = pp.n;
        now[p].s.assign(n, 0.0);
        prev[p].s.assign(n, 0.0);
        now[p].active.reserve(n);
        prev[p].active.reserve(n);
        counts.push_back(torch::zeros({n}, torch::kInt64));
        cnt[p] = counts.back().data_ptr<int64_t>();
        if (record) {
            rasters.push_back(torch::zeros({T, n}, torch::kUInt8));
            ras[p] = rasters.back().data_ptr<uint8_t>();
        }
        if (pp.code == INPUT) continue;
        const double* f = F + pp.fo;
        cur[p].assign(n, 0.0);
        refrac[p].assign(n, 0);
        // initial states (Neuron.initial_state)
        switch (pp.code) {
            case LIF: s0[p].assign(n, f[1]); break;                         // v = v_rest
            case DIEHLCOOK: {                                                 // v = v_rest, θ persistent
                s0[p].assign(n, f[0]);
                const double* th = tensors[pp.persist].data_ptr<double>();
                s1[p].assign(th, th + n);
                break;
            }
            case ALIF: s0[p].assign(n, 0.0 + f[1]); s1[p].assign(n, 0.0); break;  // zeros + v_rest, a = 0
            case ADEX: s0[p].assign(n, f[5]); s1[p].assign(n, 0.0); break;   // v = e_l, w = 0
            case IZH: s0[p].assign(n, f[9]); s1[p].assign(n, f[5] * f[9]); break;  // v = v_init, u = b·v
        }
    }
    for (int64_t q = 0; q < Q; ++q) buf[q].assign(pops[projs[q].tgt].n, 0.0);

    // learning state: traces per rule
    std::vector<std::vector<double>> xpre(R), xpost(R);
    for (int64_t k = 0; k < R; ++k) {
        const Proj& pj = projs[rules[k].proj];
        xpre[k].assign(pops[pj.src].n, 0.0);
        xpost[k].assign(pops[pj.tgt].n, 0.0);
    }

    for (int64_t t = 0; t < T; ++t) {
        for (int64_t p = 0; p < P; ++p) {
            const Pop& pp = pops[p];
            const int64_t n = pp.n;
            Spikes& out = now[p];
            if (pp.code == INPUT) {
                const uint8_t* in = tensors[pp.input].data_ptr<uint8_t>() + (b * T + t) * n;
                for (int64_t i = 0; i < n; ++i) out.s[i] = in[i] ? 1.0 : 0.0;
            } else {
                // input current: each incoming projection's output, summed in the network's order
                std::vector<double>& I = cur[p];
                bool first = true;
                for (int64_t q : incoming[p]) {
                    const Proj& pj = projs[q];
                    const Spikes& src = pj.recurrent ? prev[pj.src] : now[pj.src];
                    std::vector<double>& y = buf[q];
                    if (pj.kind == DENSE) {
                        std::fill(y.begin(), y.end(), 0.0);
                        const double* W = tensors[pj.weight].data_ptr<double>();  // [n_src, n] (W^T)
                        for (int32_t j : src.active) {
                            const double* row = W + (int64_t)j * n;
                            if (pj.skip_diag) {
                                for (int64_t i = 0; i < j; ++i) y[i] += row[i];
                                for (int64_t i = j + 1; i < n; ++i) y[i] += row[i];
                            } else {
                                for (int64_t i = 0; i < n; ++i) y[i] += row[i];
                            }
                        }
                        if (pj.bias >= 0) {
                            const double* b = tensors[pj.bias].data_ptr<double>();
                            for (int64_t i = 0; i < n; ++i) y[i] = y[i] + b[i];
                        }
                    } else if (pj.kind == ONE_TO_ONE) {
                        const double* w = tensors[pj.weight].data_ptr<double>();
                        for (int64_t i = 0; i < n; ++i) y[i] = src.s[i] * w[i];
                    } else {  // LATERAL: w (Σ_j s_j − s_i)
                        const double w = F[pj.fo], total = (double)src.count;
                        for (int64_t i = 0; i < n; ++i) y[i] = w * (total - src.s[i]);
                    }
                    if (first) { std::copy(y.begin(), y.end(), I.begin()); first = false; }
                    else for (int64_t i = 0; i < n; ++i) I[i] = I[i] + y[i];
                }
                const double* f = F + pp.fo;
                const int64_t RS = pp.refrac_steps;
                const bool hard = pp.flags & F_HARD;
                double* v = s0[p].data();
                double* x1 = s1[p].empty() ? nullptr : s1[p].data();
                int64_t* rf = refrac[p].data();
                double* z = out.s.data();
                switch (pp.code) {
                    case LIF: {  // lif_step / if_step: f = r, v_rest, v_th, v_reset, dt/τ, decay, 1−decay, span, v_th − v_reset
                        const double r = f[0], v_rest = f[1], v_th = f[2], v_reset = f[3], k = f[4], decay = f[5],
                                     omd = f[6], span = f[7], soft = f[8];
                        const int mode = (pp.flags & F_LEAK) ? ((pp.flags & F_EXACT) ? 1 : 0) : 2;
                        for (int64_t i = 0; i < n; ++i) {
                            const double drive = r * I[i];
                            double h;
                            if (mode == 1) h = v_rest + (v[i] - v_rest) * decay + drive * omd;
                            else if (mode == 0) h = v[i] + k * (-(v[i] - v_rest) + drive);
                            else h = v[i] + k * drive;
                            if (RS > 0 && rf[i] > 0) h = v_reset;
                            bool spk = fires(h - v_th, span);
                            if (RS > 0 && rf[i] != 0) spk = false;
                            if (spk) h = hard ? v_reset : h - soft;
                            if (RS > 0) rf[i] = spk ? RS : std::max<int64_t>(rf[i] - 1, 0);
                            v[i] = h;
                            z[i] = spk ? 1.0 : 0.0;
                        }
                        break;
                    }
                    case DIEHLCOOK: {  // diehlandcook_step: f = v_rest, decay, θ decay, r, v_th, v_reset, θ+, span
                        const double v_rest = f[0], decay = f[1], tdecay = f[2], r = f[3], v_th = f[4], v_reset = f[5],
                                     tplus = f[6], span = f[7];
                        const bool inc = (pp.flags & F_LEARN_THETA) && learn;
                        int64_t winner = -1, nspk = 0;
                        double best = 0.0;
                        for (int64_t i = 0; i < n; ++i) {
                            double vv = v_rest + (v[i] - v_rest) * decay;
                            double th = x1[i] * tdecay;
                            if (!(RS > 0 && rf[i] > 0)) vv = vv + r * I[i];
                            const double threshold = v_th + th;
                            const double margin = vv - threshold;
                            bool spk = fires(vv - threshold, span);
                            if (RS > 0 && rf[i] != 0) spk = false;
                            if (spk) {
                                vv = hard ? v_reset : vv - (v_th - v_reset);
                                if (winner < 0 || margin > best) { best = margin; winner = i; }
                                ++nspk;
                            }
                            if (RS > 0) rf[i] = spk ? RS : std::max<int64_t>(rf[i] - 1, 0);
                            if (inc) th = th + tplus * (spk ? 1.0 : 0.0);
                            v[i] = vv;
                            x1[i] = th;
                            z[i] = spk ? 1.0 : 0.0;
                        }
                        if ((pp.flags & F_ONE_SPIKE) && nspk > 1) {
                            std::fill(out.s.begin(), out.s.end(), 0.0);
                            z[winner] = 1.0;
                        }
                        break;
                    }
                    case ALIF: {  // alif_step: f = r, v_rest, v_th, v_reset, dt/τ, decay, 1−decay, β, ρ, 1−ρ, span
                        const double r = f[0], v_rest = f[1], v_th = f[2], v_reset = f[3], k = f[4], decay = f[5],
                                     omd = f[6], beta = f[7], rho = f[8], omr = f[9], span = f[10];
                        const bool exact = pp.flags & F_EXACT;
                        for (int64_t i = 0; i < n; ++i) {
                            double h = exact ? v_rest + (v[i] - v_rest) * decay + r * I[i] * omd
                                             : v[i] + k * (-(v[i] - v_rest) + r * I[i]);
                            if (RS > 0 && rf[i] > 0) h = v_reset;
                            const double threshold = v_th + beta * x1[i];
                            bool spk = fires(h - threshold, span);
                            if (RS > 0 && rf[i] != 0) spk = false;
                            if (spk) h = hard ? v_reset : h - (threshold - v_reset);
                            if (RS > 0) rf[i] = spk ? RS : std::max<int64_t>(rf[i] - 1, 0);
                            const double zz = spk ? 1.0 : 0.0;
                            x1[i] = rho * x1[i] + omr * zz;
                            v[i] = h;
                            z[i] = zz;
                        }
                        break;
                    }
                    case ADEX: {  // adex_step: f = g_l·Δ_T, v_peak, v_t, Δ_T, −g_l, e_l, r, c_m, dt, dt/τ_w, a, v_reset, span, b
                        const double gld = f[0], v_peak = f[1], v_t = f[2], delta_t = f[3], ngl = f[4], e_l = f[5],
                                     r = f[6], c_m = f[7], dt = f[8], kw = f[9], a = f[10], v_reset = f[11],
                                     span = f[12], b = f[13];
                        for (int64_t i = 0; i < n; ++i) {
                            const double vi = v[i], wi = x1[i];
                            const double ex = gld * std::exp((std::min(vi, v_peak) - v_t) / delta_t);
                            const double dv = (ngl * (vi - e_l) + ex - wi + r * I[i]) / c_m;
                            double vn = vi + dt * dv;
                            double wn = wi + kw * (a * (vi - e_l) - wi);
                            if (RS > 0 && rf[i] > 0) vn = v_reset;
                            bool spk = fires(vn - v_peak, span);
                            if (RS > 0 && rf[i] != 0) spk = false;
                            if (spk) vn = v_reset;
                            const double zz = spk ? 1.0 : 0.0;
                            wn = wn + b * zz;
                            if (RS > 0) rf[i] = spk ? RS : std::max<int64_t>(rf[i] - 1, 0);
                            v[i] = vn;
                            x1[i] = wn;
                            z[i] = zz;
                        }
                        break;
                    }
                    case IZH: {  // izh_step: f = δ, r, v_peak, dt·a, _, b, c, d, span, v_init; extra = sub-steps
                        const double delta = f[0], r = f[1], v_peak = f[2], dta = f[3], b = f[5], c = f[6], d = f[7],
                                     span = f[8];
                        const int64_t K = pp.extra;
                        for (int64_t i = 0; i < n; ++i) {
                            const double u = x1[i];
                            const double drive = (140.0 - u) + r * I[i];
                            double vv = v[i];
                            for (int64_t s = 0; s < K; ++s) {
                                const double vn = vv + delta * (0.04 * vv * vv + 5.0 * vv + drive);
                                vv = (s == 0) ? vn : (vv >= v_peak ? vv : vn);
                            }
                            double un = u + dta * (b * std::min(vv, v_peak) - u);
                            const bool spk = fires(vv - v_peak, span);
                            const double zz = spk ? 1.0 : 0.0;
                            if (spk) vv = c;
                            un = un + d * zz;
                            v[i] = vv;
                            x1[i] = un;
                            z[i] = zz;
                        }
                        break;
                    }
                }
            }
            collect(out);
            if (out.count) {
                for (int32_t i : out.active) ++cnt[p][i];
                if (record) for (int32_t i : out.active) ras[p][t * n + i] = 1;
            }
        }
        if (learn) {
            for (int64_t k = 0; k < R; ++k) {  // pair STDP (rules.stdp_step), one projection each
                const Rule& rl = rules[k];
                const Proj& pj = projs[rl.proj];
                const Spikes& pre = pj.recurrent ? prev[pj.src] : now[pj.src];
                const Spikes& post = now[pj.tgt];
                const int64_t m = pops[pj.src].n, n = pops[pj.tgt].n;
                const double* f = F + rl.fo;
                const double dpre = f[0], dpost = f[1], kp = f[2], km = f[3], wmin = f[4], wmax = f[5],
                             wdecay = f[6], hi = f[7], lo = f[8];
                double* xp = xpre[k].data();
                double* xq = xpost[k].data();
                const double* s_pre = pre.s.data();
                const double* s_post = post.s.data();
                for (int64_t j = 0; j < m; ++j) xp[j] = xp[j] * dpre;
                for (int64_t i = 0; i < n; ++i) xq[i] = xq[i] * dpost;
                auto traces = [&]() {
                    if (rl.all_to_all) {
                        for (int64_t j = 0; j < m; ++j) xp[j] = xp[j] + s_pre[j];
                        for (int64_t i = 0; i < n; ++i) xq[i] = xq[i] + s_post[i];
                    } else {
                        for (int32_t j : pre.active) xp[j] = 1.0;
                        for (int32_t i : post.active) xq[i] = 1.0;
                    }
                };
                if (rl.traces_first) traces();
                double* W = tensors[pj.weight].data_ptr<double>();  // [m, n] (W^T)
                const bool mult = rl.multiplicative, decay = wdecay != 1.0;
                auto update = [&](double& w, double ltp, double ltd) {
                    double dw = mult ? (kp * (hi - w)) * ltp - (km * (w - lo)) * ltd : kp * ltp - km * ltd;
                    double x = w + dw;
                    if (decay) x = x * wdecay;
                    if (rl.has_min) x = std::max(x, wmin);
                    if (rl.has_max) x = std::min(x, wmax);
                    w = x;
                };
                if (t == 0 || decay) {  // every weight: the clamp (first step) or the decay touches all
                    for (int64_t j = 0; j < m; ++j) {
                        double* row = W + j * n;
                        for (int64_t i = 0; i < n; ++i) update(row[i], s_post[i] * xp[j], xq[i] * s_pre[j]);
                    }
                } else {
                    // rows of the presynaptic spikes (depression, and potentiation where post fired too)
                    for (int32_t j : pre.active) {
                        double* row = W + (int64_t)j * n;
                        const double sj = s_pre[j], xj = xp[j];
                        for (int64_t i = 0; i < n; ++i) update(row[i], s_post[i] * xj, xq[i] * sj);
                    }
                    // columns of the postsynaptic spikes, rows not done above: potentiation only
                    for (int32_t i : post.active) {
                        const double si = s_post[i], xi = xq[i];
                        for (int64_t j = 0; j < m; ++j) {
                            if (s_pre[j] != 0.0) continue;
                            update(W[j * n + i], si * xp[j], xi * s_pre[j]);
                        }
                    }
                }
                if (!rl.traces_first) traces();
            }
        }
        std::swap(now, prev);
    }
    // persistent state: θ of learning samples (DiehlAndCook.reset commits it in training mode)
    for (int64_t p = 0; p < P; ++p) {
        const Pop& pp = pops[p];
        if (pp.code == DIEHLCOOK && learn && (pp.flags & F_LEARN_THETA)) {
            double* th = tensors[pp.persist].data_ptr<double>();
            std::copy(s1[p].begin(), s1[p].end(), th);
        }
    }
    std::vector<torch::Tensor> result(counts);
    for (auto& r : rasters) result.push_back(r);
    return result;
}

std::vector<torch::Tensor> engine_sample(std::vector<torch::Tensor> tensors, torch::Tensor pops_t, torch::Tensor projs_t,
                                         torch::Tensor rules_t, torch::Tensor floats_t, int64_t T, bool learn,
                                         bool record) {
    return simulate(tensors, pops_t, projs_t, rules_t, floats_t, T, 0, learn, record);
}

// B independent samples without learning (inputs [B, T, n]), spread over torch's intra-op threads
// (at::parallel_for, one sample per task; each sample's arithmetic is that of engine_sample).
// Returns the spike counts int64 [B, n] of every population in plan order.
std::vector<torch::Tensor> engine_batch(std::vector<torch::Tensor> tensors, torch::Tensor pops_t, torch::Tensor projs_t,
                                        torch::Tensor rules_t, torch::Tensor floats_t, int64_t B, int64_t T) {
    const int64_t P = pops_t.size(0);
    const int64_t* pops = pops_t.data_ptr<int64_t>();
    std::vector<torch::Tensor> counts;
    for (int64_t p = 0; p < P; ++p) counts.push_back(torch::zeros({B, pops[p * 8 + 1]}, torch::kInt64));
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
            std::vector<torch::Tensor> one = simulate(tensors, pops_t, projs_t, rules_t, floats_t, T, b, false, false);
            for (int64_t p = 0; p < P; ++p) {
                const int64_t n = one[p].numel();
                std::copy(one[p].data_ptr<int64_t>(), one[p].data_ptr<int64_t>() + n, counts[p].data_ptr<int64_t>() + b * n);
            }
        }
    });
    return counts;
}
