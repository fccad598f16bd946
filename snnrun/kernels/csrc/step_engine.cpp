#include <torch/extension.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

// Step engine: one sample (batch 1, float64) of a whole network for all T steps, local learning on
// or off, interpreting a plan built by snnrun/engine_plans.py from the components' declarations.
// Every expression repeats the pure step functions of snnrun/neurons/*.py, the synapses' forward of
// snnrun/synapses/*.py and snnrun/learning/rules.py operation by operation, in the same order
// (compiled with -ffp-contract=off, so no multiply-add is fused): float64 results agree with the
// torch reference.
//
// Plan (int64 rows, see snnrun/engine_plans.py for the Python side that writes them):
//   pops  [P, 8]: code, n, float offset, persistent tensor (θ) or -1, input tensor or -1,
//                 refractory steps, flags, extra (izh: Euler sub-steps of v; glif: level)
//   projs [Q, 12]: kind, source pop, target pop, recurrent (reads the previous step), weight tensor,
//                 bias tensor or -1, skip diagonal, float offset, axonal delays (a `delay` stage
//                 before the synapse: int64 [n_source] steps) or -1, their largest delay D,
//                 aux tensor or -1 (sparse: int64 [n_source + 1 | nnz | nnz], each source's
//                 outgoing entries: offsets, target, index into the COO values; delayed_dense: int64
//                 [n_source, n_target] delays, transposed; conv2d: int64 geometry C, H, W, O, H', W',
//                 k, stride, padding), the aux's largest delay
//   rules [R, 10]: code (1 STDP: the weights learn every step; 2 MSTDP, 3 MSTDPET: the pair terms
//                 are accumulated for the reward applied after the sample), projection, mode (0 nearest,
//                 1 all_to_all), traces_first, multiplicative, has w_min, has w_max, float offset,
//                 accumulators (tensors acc, acc + 1: Σ ltp, Σ ltd [n_source, n_target]) or -1,
//                 delivery (int64 tensor of the output populations whose spikes n_t weight each step's
//                 term: reward_at output_spikes) or -1
// Populations come in the network's order; projections in the network's order (so each target's
// incoming currents are summed as Network._run_steps sums them). A non-spiking population (leaky)
// outputs its potential: its "counts" are float64 Σ_t v(t) (t ascending) and its raster v [T, n];
// no projection reads it (snnrun.engine refuses that).

enum Model { INPUT = 0, LIF = 1, DIEHLCOOK = 2, ALIF = 3, ADEX = 4, IZH = 5, LEAKY = 6, QIF = 7, GLIF = 8 };
enum Kind { DENSE = 1, ONE_TO_ONE = 2, LATERAL = 3, SPARSE = 4, DELAYED_DENSE = 5, IDENTITY = 6, CONV = 7 };
enum RuleCode { R_STDP = 1, R_MSTDP = 2, R_MSTDPET = 3 };
enum Flag { F_LEAK = 1, F_EXACT = 2, F_HARD = 4, F_ONE_SPIKE = 8, F_LEARN_THETA = 16, F_SYN = 32, F_PER_K = 64 };

namespace {

struct Pop {
    int64_t code, n, fo, persist, input, refrac_steps, flags, extra;
};
struct Proj {
    int64_t kind, src, tgt, recurrent, weight, bias, skip_diag, fo, delays, delay_steps, aux, aux_steps;
};
struct Rule {
    int64_t code, proj, all_to_all, traces_first, multiplicative, has_min, has_max, fo, acc, delivery;
};
static_assert(sizeof(Pop) == 8 * sizeof(int64_t) && sizeof(Proj) == 12 * sizeof(int64_t) &&
              sizeof(Rule) == 10 * sizeof(int64_t), "plan rows");

struct Spikes {
    std::vector<double> s;       // this step's output (0/1; a non-spiking population's potential)
    std::vector<int32_t> active; // indices of the ones, ascending
    int64_t count = 0;
};

// A conv2d projection's geometry (its aux tensor: C, H, W, O, OH, OW, K, stride, padding).
struct ConvGeom {
    int64_t C, H, Wd, O, OH, OW, K, S, Pd;
    explicit ConvGeom(const int64_t* g) : C(g[0]), H(g[1]), Wd(g[2]), O(g[3]), OH(g[4]), OW(g[5]), K(g[6]), S(g[7]),
                                          Pd(g[8]) {}
};

// f(c, u, v, pos) for every kernel entry (u, v) through which input j = (c, h, w) reaches output
// position pos = y·OW + x, in ascending (u, v) order.
template <typename F>
inline void conv_windows(const ConvGeom& g, int64_t j, F&& f) {
    const int64_t c = j / (g.H * g.Wd), h = (j / g.Wd) % g.H, w = j % g.Wd;
    for (int64_t u = 0; u < g.K; ++u) {
        const int64_t hy = h + g.Pd - u;
        if (hy < 0 || hy % g.S || hy / g.S >= g.OH) continue;
        for (int64_t v = 0; v < g.K; ++v) {
            const int64_t wx = w + g.Pd - v;
            if (wx < 0 || wx % g.S || wx / g.S >= g.OW) continue;
            f(c, u, v, (hy / g.S) * g.OW + wx / g.S);
        }
    }
}

inline bool fires(double x, double span) { return (span == 1.0 ? x : x / span) >= 0.0; }

inline void collect(Spikes& sp) {
    sp.active.clear();
    const int64_t n = (int64_t)sp.s.size();
    for (int64_t i = 0; i < n; ++i)
        if (sp.s[i] != 0.0) sp.active.push_back((int32_t)i);
    sp.count = (int64_t)sp.active.size();
}

// state vectors per model: v first, then the model's other variables
inline int64_t state_vars(const Pop& pp) {
    switch (pp.code) {
        case LIF: return (pp.flags & F_SYN) ? 2 : 1;  // v (, clif's I_s)
        case DIEHLCOOK: case ALIF: case ADEX: case IZH: return 2;  // v, θ / a / w / u
        case LEAKY: case QIF: return 1;
        case GLIF: return 5;  // v, θ_s, θ_v, I_1, I_2
    }
    return 0;
}

inline int64_t wrap(int64_t x, int64_t size) { return ((x % size) + size) % size; }

// Per-sample state of a projection: the ring of its source's spikes (a `delay` stage: s[t − d_j]),
// and delayed_dense's ring of future currents (DelayedDense._step).
struct ProjState {
    std::vector<uint8_t> ring;  // [D + 1, n_source] spikes of the last D + 1 steps
    int64_t ptr = 0;
    Spikes delayed;
    std::vector<double> future, z;  // [D + 1, n_target]: currents due at t + k, this step's groups
    int64_t fptr = 0;
};

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
    std::vector<std::vector<double>> st(P), cur(P), buf(Q);
    std::vector<std::vector<int64_t>> refrac(P);
    std::vector<torch::Tensor> counts, rasters;
    std::vector<int64_t*> cnt(P, nullptr);
    std::vector<double*> total(P, nullptr);  // non-spiking: Σ_t v
    std::vector<uint8_t*> ras(P, nullptr);
    std::vector<double*> vras(P, nullptr);
    for (int64_t p = 0; p < P; ++p) {
        const Pop& pp = pops[p];
        const int64_t n = pp.n;
        now[p].s.assign(n, 0.0);
        prev[p].s.assign(n, 0.0);
        now[p].active.reserve(n);
        prev[p].active.reserve(n);
        if (pp.code == LEAKY) {
            counts.push_back(torch::zeros({n}, torch::kFloat64));
            total[p] = counts.back().data_ptr<double>();
            if (record) {
                rasters.push_back(torch::zeros({T, n}, torch::kFloat64));
                vras[p] = rasters.back().data_ptr<double>();
            }
        } else {
            counts.push_back(torch::zeros({n}, torch::kInt64));
            cnt[p] = counts.back().data_ptr<int64_t>();
            if (record) {
                rasters.push_back(torch::zeros({T, n}, torch::kUInt8));
                ras[p] = rasters.back().data_ptr<uint8_t>();
            }
        }
        if (pp.code == INPUT) continue;
        const double* f = F + pp.fo;
        cur[p].assign(n, 0.0);
        refrac[p].assign(n, 0);
        st[p].assign(state_vars(pp) * n, 0.0);
        double* v = st[p].data();
        double* x1 = v + n;
        // initial states (Neuron.initial_state); the other variables start at 0
        switch (pp.code) {
            case LIF: std::fill(v, v + n, 0.0 + f[1]); break;               // v = v_rest (clif: zeros + v_rest)
            case DIEHLCOOK: {                                                  // v = v_rest, θ persistent
                std::fill(v, v + n, f[0]);
                const double* th = tensors[pp.persist].data_ptr<double>();
                std::copy(th, th + n, x1);
                break;
            }
            case ALIF: std::fill(v, v + n, 0.0 + f[1]); break;              // zeros + v_rest, a = 0
            case ADEX: std::fill(v, v + n, f[5]); break;                     // v = e_l, w = 0
            case IZH: std::fill(v, v + n, f[9]); std::fill(x1, x1 + n, f[5] * f[9]); break;  // v_init, u = b·v
            case LEAKY: std::fill(v, v + n, f[0]); break;                    // v = v_rest
            case QIF: std::fill(v, v + n, f[2]); break;                      // v = v_rest
            case GLIF: std::fill(v, v + n, 0.0 + f[2]); break;               // zeros + e_l, the rest 0
        }
    }
    std::vector<ProjState> ps(Q);
    for (int64_t q = 0; q < Q; ++q) {
        const Proj& pj = projs[q];
        const int64_t m = pops[pj.src].n, n = pops[pj.tgt].n;
        buf[q].assign(n, 0.0);
        if (pj.delays >= 0) {
            ps[q].ring.assign((pj.delay_steps + 1) * m, 0);
            ps[q].delayed.s.assign(m, 0.0);
            ps[q].delayed.active.reserve(m);
        }
        if (pj.kind == DELAYED_DENSE) {
            ps[q].future.assign((pj.aux_steps + 1) * n, 0.0);
            ps[q].z.assign((pj.aux_steps + 1) * n, 0.0);
        }
    }

    // learning state: traces per rule; a conv2d rule's kernel-shaped correlations of the step; a
    // reward rule's accumulators (zeroed: the learner's begin_sample) and MSTDPET's eligibility
    std::vector<std::vector<double>> xpre(R), xpost(R), ltp_k(R), ltd_k(R), elig(R);
    for (int64_t k = 0; k < R; ++k) {
        const Proj& pj = projs[rules[k].proj];
        const int64_t m = pops[pj.src].n, n = pops[pj.tgt].n;
        xpre[k].assign(m, 0.0);
        xpost[k].assign(n, 0.0);
        if (pj.kind == CONV) {
            ltp_k[k].assign(tensors[pj.weight].numel(), 0.0);
            ltd_k[k].assign(tensors[pj.weight].numel(), 0.0);
        }
        if (learn && rules[k].acc >= 0) {
            tensors[rules[k].acc].zero_();
            tensors[rules[k].acc + 1].zero_();
        }
        if (learn && rules[k].code == R_MSTDPET) elig[k].assign(2 * m * n, 0.0);
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
                    const Spikes* srcp = pj.recurrent ? &prev[pj.src] : &now[pj.src];
                    if (pj.delays >= 0) {  // Delay._step: the ring holds the last D + 1 steps; s_j(t − d_j)
                        ProjState& S = ps[q];
                        const int64_t m = pops[pj.src].n, size = pj.delay_steps + 1;
                        const int64_t* d = tensors[pj.delays].data_ptr<int64_t>();
                        uint8_t* slot = S.ring.data() + S.ptr * m;
                        for (int64_t j = 0; j < m; ++j) slot[j] = srcp->s[j] != 0.0;
                        for (int64_t j = 0; j < m; ++j)
                            S.delayed.s[j] = S.ring[wrap(S.ptr - d[j], size) * m + j] ? 1.0 : 0.0;
                        S.ptr = (S.ptr + 1) % size;
                        collect(S.delayed);
                        srcp = &S.delayed;
                    }
                    const Spikes& src = *srcp;
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
                    } else if (pj.kind == LATERAL) {  // w (Σ_j s_j − s_i)
                        const double w = F[pj.fo], total = (double)src.count;
                        for (int64_t i = 0; i < n; ++i) y[i] = w * (total - src.s[i]);
                    } else if (pj.kind == SPARSE) {
                        // torch.sparse.mm of the COO weight: each target sums its entries' w·s in
                        // stored (ascending source) order from zero; walked by source, event-driven
                        std::fill(y.begin(), y.end(), 0.0);
                        const int64_t m = pops[pj.src].n;
                        const int64_t* off = tensors[pj.aux].data_ptr<int64_t>();
                        const int64_t nnz = off[m];
                        const int64_t* tgt = off + m + 1;
                        const int64_t* entry = tgt + nnz;
                        const double* w = tensors[pj.weight].data_ptr<double>();
                        for (int32_t j : src.active)
                            for (int64_t e = off[j]; e < off[j + 1]; ++e) y[tgt[e]] += w[entry[e]];
                    } else if (pj.kind == DELAYED_DENSE) {
                        // DelayedDense._step: z_k = Σ_j W_ij [d_ij = k] s_j (ascending j), added to the
                        // current due at t + k; the slot due now is read and cleared
                        ProjState& S = ps[q];
                        const int64_t size = pj.aux_steps + 1;
                        if (src.count) {
                            std::fill(S.z.begin(), S.z.end(), 0.0);
                            const double* W = tensors[pj.weight].data_ptr<double>();    // [n_src, n] (W^T)
                            const int64_t* D = tensors[pj.aux].data_ptr<int64_t>();  // [n_src, n] (delays^T)
                            for (int32_t j : src.active) {
                                const double* row = W + (int64_t)j * n;
                                const int64_t* dl = D + (int64_t)j * n;
                                for (int64_t i = 0; i < n; ++i) S.z[dl[i] * n + i] += row[i];
                            }
                            for (int64_t k = 0; k < size; ++k) {
                                double* slot = S.future.data() + ((S.fptr + k) % size) * n;
                                const double* zk = S.z.data() + k * n;
                                for (int64_t i = 0; i < n; ++i) slot[i] = slot[i] + zk[i];
                            }
                        }
                        double* due = S.future.data() + S.fptr * n;
                        std::copy(due, due + n, y.begin());
                        std::fill(due, due + n, 0.0);
                        S.fptr = (S.fptr + 1) % size;
                    } else if (pj.kind == CONV) {
                        // F.conv2d (groups 1), event-driven: each input spike (c, h, w) adds W[o, c, u, v]
                        // to every output (o, y, x) whose window holds it (h = y·stride + u − padding);
                        // each output sums its terms in ascending (c, u, v) order, from zero (F.conv2d's
                        // order is its library's: the currents agree to ≈1e-16 relative)
                        std::fill(y.begin(), y.end(), 0.0);
                        const ConvGeom cg(tensors[pj.aux].data_ptr<int64_t>());
                        const int64_t C = cg.C, O = cg.O, OH = cg.OH, OW = cg.OW, K = cg.K;
                        const double* W = tensors[pj.weight].data_ptr<double>();  // [O, C, K, K]
                        for (int32_t j : src.active)
                            conv_windows(cg, j, [&](int64_t c, int64_t u, int64_t v, int64_t pos) {
                                const double* wk = W + (c * K + u) * K + v;
                                for (int64_t o = 0; o < O; ++o) y[o * OH * OW + pos] += wk[o * C * K * K];
                            });
                        if (pj.bias >= 0) {
                            const double* b = tensors[pj.bias].data_ptr<double>();
                            for (int64_t i = 0; i < n; ++i) y[i] = y[i] + b[i / (OH * OW)];
                        }
                    } else {  // IDENTITY: a delay stage alone, the delayed spikes
                        std::copy(src.s.begin(), src.s.end(), y.begin());
                    }
                    if (first) { std::copy(y.begin(), y.end(), I.begin()); first = false; }
                    else for (int64_t i = 0; i < n; ++i) I[i] = I[i] + y[i];
                }
                const double* f = F + pp.fo;
                const int64_t RS = pp.refrac_steps;
                const bool hard = pp.flags & F_HARD;
                double* v = st[p].data();
                double* x1 = v + n;
                int64_t* rf = refrac[p].data();
                double* z = out.s.data();
                switch (pp.code) {
                    case LIF: {  // lif_step / if_step / plif_step / clif_step: f = r, v_rest, v_th, v_reset,
                                 // dt/τ, decay, 1−decay, span, v_th − v_reset, I_s decay, [dt/τ per neuron]
                        const double r = f[0], v_rest = f[1], v_th = f[2], v_reset = f[3], k0 = f[4], decay = f[5],
                                     omd = f[6], span = f[7], soft = f[8], sdecay = f[9];
                        const double* kn = (pp.flags & F_PER_K) ? f + 10 : nullptr;
                        const bool syn = pp.flags & F_SYN;
                        const int mode = (pp.flags & F_LEAK) ? ((pp.flags & F_EXACT) ? 1 : 0) : 2;
                        for (int64_t i = 0; i < n; ++i) {
                            double Ii = I[i];
                            if (syn) { Ii = x1[i] * sdecay + Ii; x1[i] = Ii; }  // clif: I_s e^{−dt/τ_s} + input
                            const double drive = r * Ii, k = kn ? kn[i] : k0;
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
                    case LEAKY: {  // leaky_step (non-spiking; the output is v): f = v_rest, r, dt/τ, decay, 1−decay
                        const double v_rest = f[0], r = f[1], k = f[2], decay = f[3], omd = f[4];
                        const bool exact = pp.flags & F_EXACT;
                        for (int64_t i = 0; i < n; ++i) {
                            const double h = exact ? v_rest + (v[i] - v_rest) * decay + r * I[i] * omd
                                                   : v[i] + k * (-(v[i] - v_rest) + r * I[i]);
                            v[i] = h;
                            z[i] = h;
                        }
                        break;
                    }
                    case QIF: {  // qif_step: f = dt/τ, a0, v_rest, v_c, r, v_reset, v_peak (v_th), span
                        const double k = f[0], a0 = f[1], v_rest = f[2], v_c = f[3], r = f[4], v_reset = f[5],
                                     v_th = f[6], span = f[7];
                        for (int64_t i = 0; i < n; ++i) {
                            const double vi = v[i];
                            double h = vi + k * (a0 * (vi - v_rest) * (vi - v_c) + r * I[i]);
                            if (RS > 0 && rf[i] > 0) h = v_reset;
                            bool spk = fires(h - v_th, span);
                            if (RS > 0 && rf[i] != 0) spk = false;
                            h = spk ? v_reset : std::min(h, v_th);  // clamp(max=v_peak): NaN stays NaN
                            if (RS > 0) rf[i] = spk ? RS : std::max<int64_t>(rf[i] - 1, 0);
                            v[i] = h;
                            z[i] = spk ? 1.0 : 0.0;
                        }
                        break;
                    }
                    case GLIF: {  // glif_step: f = dt/C, r, e_l, R, dt·b_s, dt, a_v, b_v, dt·k_1, dt·k_2, θ_∞, span,
                                  // f_v, δV, δθ_s, v_reset, r_1, A_1, r_2, A_2; extra = level
                        const double kc = f[0], r = f[1], e_l = f[2], r_m = f[3], dbs = f[4], dt = f[5], a_v = f[6],
                                     b_v = f[7], dk1 = f[8], dk2 = f[9], th_inf = f[10], span = f[11], f_v = f[12],
                                     delta_v = f[13], dths = f[14], v_reset = f[15], r1 = f[16], A1 = f[17],
                                     r2 = f[18], A2 = f[19];
                        const int64_t level = pp.extra;
                        const bool rules_ = level == 2 || level == 4 || level == 5, asc = level >= 3,
                                   thv = level == 5;
                        double* ths = v + n;
                        double* thvv = v + 2 * n;
                        double* a1 = v + 3 * n;
                        double* a2 = v + 4 * n;
                        for (int64_t i = 0; i < n; ++i) {
                            const double vi = v[i];
                            const double asc_total = asc ? a1[i] + a2[i] : 0.0;
                            double h = vi + kc * (r * I[i] + asc_total - (vi - e_l) / r_m);
                            double s_ = ths[i], tv = thvv[i], c1 = a1[i], c2 = a2[i];
                            if (rules_) s_ = s_ - dbs * s_;
                            if (thv) tv = tv + dt * (a_v * (vi - e_l) - b_v * tv);
                            if (asc) { c1 = c1 - dk1 * c1; c2 = c2 - dk2 * c2; }
                            if (RS > 0 && rf[i] > 0) h = vi;  // held at its previous value
                            bool spk = fires(h - (th_inf + s_ + tv), span);
                            if (RS > 0 && rf[i] != 0) spk = false;
                            const double zz = spk ? 1.0 : 0.0;
                            double after = v_reset;
                            if (rules_) {
                                after = e_l + f_v * (h - e_l) + delta_v;
                                s_ = s_ + dths * zz;
                            }
                            if (spk) h = after;
                            if (asc && spk) { c1 = r1 * c1 + A1; c2 = r2 * c2 + A2; }
                            if (RS > 0) rf[i] = spk ? RS : std::max<int64_t>(rf[i] - 1, 0);
                            v[i] = h;
                            ths[i] = s_;
                            thvv[i] = tv;
                            a1[i] = c1;
                            a2[i] = c2;
                            z[i] = zz;
                        }
                        break;
                    }
                }
            }
            if (pp.code == LEAKY) {  // the potential: summed over the steps in order, recorded
                for (int64_t i = 0; i < n; ++i) total[p][i] = total[p][i] + out.s[i];
                if (record) std::copy(out.s.begin(), out.s.end(), vras[p] + t * n);
                continue;
            }
            collect(out);
            if (out.count) {
                for (int32_t i : out.active) ++cnt[p][i];
                if (record) for (int32_t i : out.active) ras[p][t * n + i] = 1;
            }
        }
        if (learn) {
            for (int64_t k = 0; k < R; ++k) {  // pair STDP (rules.stdp_step) or a reward rule, one projection each
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
                if (rl.code != R_STDP) {  // reward rules: the step's pair terms, accumulated
                    double* acc_p = tensors[rl.acc].data_ptr<double>();      // [m, n]
                    double* acc_d = tensors[rl.acc + 1].data_ptr<double>();  // [m, n]
                    const bool weighted = rl.delivery >= 0;
                    double nt = 0.0;  // n_t: this step's output spikes (_RewardLearner.on_step)
                    if (weighted) {
                        const torch::Tensor& outs = tensors[rl.delivery];
                        const int64_t* o = outs.data_ptr<int64_t>();
                        for (int64_t a = 0; a < outs.numel(); ++a) nt = nt + (double)now[o[a]].count;
                    }
                    if (rl.code == R_MSTDP) {
                        // acc += ltp (× n_t): ltp = s_post,i·x_pre,j is 0 but in the rows of the
                        // postsynaptic spikes, ltd = x_post,i·s_pre,j but in those of the presynaptic ones
                        if (!weighted || nt != 0.0) {
                            for (int32_t i : post.active)
                                for (int64_t j = 0; j < m; ++j) {
                                    const double l = s_post[i] * xp[j];
                                    acc_p[j * n + i] = acc_p[j * n + i] + (weighted ? l * nt : l);
                                }
                            for (int32_t j : pre.active)
                                for (int64_t i = 0; i < n; ++i) {
                                    const double l = xq[i] * s_pre[j];
                                    acc_d[j * n + i] = acc_d[j * n + i] + (weighted ? l * nt : l);
                                }
                        }
                    } else {
                        // MSTDPET: e ← e·exp(−dt/τ_c) + ζ/τ_c (rules.eligibility_step, every entry),
                        // acc ← acc + e·dt (or e·n_t)
                        const double dc = f[9], tau_c = f[10], scale = weighted ? nt : f[11];
                        double* ep = elig[k].data();
                        double* ed = ep + m * n;
                        for (int64_t j = 0; j < m; ++j) {
                            const double xj = xp[j], sj = s_pre[j];
                            double* ep_j = ep + j * n;
                            double* ed_j = ed + j * n;
                            for (int64_t i = 0; i < n; ++i) {
                                ep_j[i] = ep_j[i] * dc + (s_post[i] * xj) / tau_c;
                                ed_j[i] = ed_j[i] * dc + (xq[i] * sj) / tau_c;
                            }
                            if (scale != 0.0) {
                                double* ap = acc_p + j * n;
                                double* ad = acc_d + j * n;
                                for (int64_t i = 0; i < n; ++i) {
                                    ap[i] = ap[i] + ep_j[i] * scale;
                                    ad[i] = ad[i] + ed_j[i] * scale;
                                }
                            }
                        }
                    }
                    if (!rl.traces_first) traces();
                    continue;
                }
                double* W = tensors[pj.weight].data_ptr<double>();  // [m, n] (W^T); conv2d [O, C, k, k]
                const bool mult = rl.multiplicative, decay = wdecay != 1.0;
                auto update = [&](double& w, double ltp, double ltd) {
                    double dw = mult ? (kp * (hi - w)) * ltp - (km * (w - lo)) * ltd : kp * ltp - km * ltd;
                    double x = w + dw;
                    if (decay) x = x * wdecay;
                    if (rl.has_min) x = std::max(x, wmin);
                    if (rl.has_max) x = std::min(x, wmax);
                    w = x;
                };
                if (pj.kind == CONV) {
                    // rules.conv2d_outer: ltp[o, c, u, v] = Σ_(y, x) s_post[o, y, x]·x_pre[c, y·stride + u − pad, …],
                    // ltd likewise with x_post and s_pre; summed event-driven in ascending position order
                    // (the reference's einsum sums in its library's order: ≈1e-16 relative), then every
                    // kernel entry is updated with the dense rule's expression (as the reference does)
                    const ConvGeom cg(tensors[pj.aux].data_ptr<int64_t>());
                    const int64_t C = cg.C, H = cg.H, Wd = cg.Wd, O = cg.O, OH = cg.OH, OW = cg.OW, K = cg.K,
                                  S = cg.S, Pd = cg.Pd;
                    double* lp = ltp_k[k].data();
                    double* ld = ltd_k[k].data();
                    const int64_t E = O * C * K * K;
                    std::fill(lp, lp + E, 0.0);
                    std::fill(ld, ld + E, 0.0);
                    for (int32_t i : post.active) {
                        const int64_t o = i / (OH * OW), oy = (i / OW) % OH, ox = i % OW;
                        for (int64_t c = 0; c < C; ++c)
                            for (int64_t u = 0; u < K; ++u) {
                                const int64_t h = oy * S + u - Pd;
                                if (h < 0 || h >= H) continue;
                                for (int64_t v = 0; v < K; ++v) {
                                    const int64_t w = ox * S + v - Pd;
                                    if (w < 0 || w >= Wd) continue;
                                    double& e = lp[((o * C + c) * K + u) * K + v];
                                    e += s_post[i] * xp[(c * H + h) * Wd + w];
                                }
                            }
                    }
                    for (int32_t j : pre.active)
                        conv_windows(cg, j, [&](int64_t c, int64_t u, int64_t v, int64_t pos) {
                            for (int64_t o = 0; o < O; ++o) {
                                double& e = ld[((o * C + c) * K + u) * K + v];
                                e += xq[o * OH * OW + pos] * s_pre[j];
                            }
                        });
                    for (int64_t e = 0; e < E; ++e) update(W[e], lp[e], ld[e]);
                    if (!rl.traces_first) traces();
                    continue;
                }
                // every weight: the decay touches all; so does the first step's clamp, unless every
                // weight is within the bounds already (then the clamp changes nothing, and the weights
                // without a spike receive + 0, which leaves them equal)
                bool clamp = false;
                if (t == 0 && !decay && (rl.has_min || rl.has_max)) {
                    const int64_t total = m * n;
                    for (int64_t e = 0; e < total; ++e) {
                        const double w = W[e];
                        clamp |= (rl.has_min && w < wmin) | (rl.has_max && w > wmax) | (w != w);
                    }
                }
                if (clamp || decay) {
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
                    // columns of the postsynaptic spikes, rows not done above: potentiation only (walked
                    // row by row, the spiking columns within each row: W is row-major; each weight's
                    // update is independent of the order)
                    if (post.count) {
                        for (int64_t j = 0; j < m; ++j) {
                            if (s_pre[j] != 0.0) continue;
                            double* row = W + j * n;
                            const double xj = xp[j], sj = s_pre[j];
                            for (int32_t i : post.active) update(row[i], s_post[i] * xj, xq[i] * sj);
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
            std::copy(st[p].begin() + pp.n, st[p].begin() + 2 * pp.n, th);
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
// Returns the counts [B, n] of every population in plan order (int64; float64 Σ_t v of a non-spiking one).
std::vector<torch::Tensor> engine_batch(std::vector<torch::Tensor> tensors, torch::Tensor pops_t, torch::Tensor projs_t,
                                        torch::Tensor rules_t, torch::Tensor floats_t, int64_t B, int64_t T) {
    const int64_t P = pops_t.size(0);
    const int64_t* pops = pops_t.data_ptr<int64_t>();
    std::vector<torch::Tensor> counts;
    for (int64_t p = 0; p < P; ++p)
        counts.push_back(torch::zeros({B, pops[p * 8 + 1]}, pops[p * 8] == LEAKY ? torch::kFloat64 : torch::kInt64));
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
            std::vector<torch::Tensor> one = simulate(tensors, pops_t, projs_t, rules_t, floats_t, T, b, false, false);
            for (int64_t p = 0; p < P; ++p) {
                const size_t bytes = (size_t)one[p].numel() * one[p].element_size();
                std::memcpy(static_cast<char*>(counts[p].data_ptr()) + b * bytes, one[p].data_ptr(), bytes);
            }
        }
    });
    return counts;
}
