#include <torch/extension.h>
#include <vector>
#include <cmath>
#include <algorithm>

// p: 0 n_in, 1 n_exc, 2 T, 3 exc_v_rest, 4 exc_v_reset, 5 exc_v_th, 6 exc_decay, 7 theta_decay,
// 8 theta_plus, 9 exc_r, 10 exc_refrac_steps, 11 inh_v_rest, 12 inh_v_reset, 13 inh_v_th,
// 14 inh_dt_over_tau, 15 inh_r, 16 inh_refrac_steps, 17 w_exc_inh, 18 w_inh_exc,
// 19 decay_pre, 20 decay_post, 21 c_plus (lr_post*a_plus), 22 c_minus (lr_pre*a_minus),
// 23 w_min, 24 w_max, 25 w_norm (<=0: none), 26 learn (0/1), 27 one_spike (0/1)
torch::Tensor dc_sample(torch::Tensor input, torch::Tensor wT, torch::Tensor theta, std::vector<double> p) {
    const int n_in = (int)p[0], n = (int)p[1], T = (int)p[2];
    const uint8_t* in = input.data_ptr<uint8_t>();
    double* w = wT.data_ptr<double>();
    double* th = theta.data_ptr<double>();
    const bool learn = p[26] != 0.0, one_spike = p[27] != 0.0;
    const int exc_R = (int)p[10], inh_R = (int)p[16];
    std::vector<double> v(n, p[3]), vi(n, p[11]), xpre(n_in, 0.0), xpost(n, 0.0), cur(n), thl(th, th + n);
    std::vector<int> ref(n, 0), refi(n, 0), active_in; active_in.reserve(n_in);
    std::vector<uint8_t> z(n, 0), zi(n, 0), zi_prev(n, 0);
    std::vector<int> posts; posts.reserve(n);
    auto counts = torch::zeros({n}, torch::kInt64);
    int64_t* cnt = counts.data_ptr<int64_t>();
    if (learn && p[25] > 0) {
        std::vector<double> sums(n, 0.0);
        for (int j = 0; j < n_in; ++j) { const double* row = w + (size_t)j * n; for (int i = 0; i < n; ++i) sums[i] += row[i]; }
        for (int i = 0; i < n; ++i) sums[i] = p[25] / (sums[i] == 0.0 ? 1.0 : sums[i]);
        for (int j = 0; j < n_in; ++j) { double* row = w + (size_t)j * n; for (int i = 0; i < n; ++i) row[i] = row[i] * sums[i]; }
    }
    if (learn) {  // the reference clamps every weight at each learning step (a no-op once in range)
        for (size_t k = 0; k < (size_t)n_in * n; ++k) w[k] = std::min(std::max(w[k], p[23]), p[24]);
    }
    int inh_prev_total = 0;
    for (int t = 0; t < T; ++t) {
        const uint8_t* s = in + (size_t)t * n_in;
        active_in.clear();
        for (int j = 0; j < n_in; ++j) if (s[j]) active_in.push_back(j);
        // input current: rows of the active inputs, then lateral inhibition from the previous step
        std::fill(cur.begin(), cur.end(), 0.0);
        for (int j : active_in) { const double* row = w + (size_t)j * n; for (int i = 0; i < n; ++i) cur[i] += row[i]; }
        // excitatory (diehlandcook); with one_spike only the crossing neuron with the largest
        // margin v - (v_th + θ) emits its spike (all crossing neurons reset, θ+, refractory)
        posts.clear();
        int winner = -1; double best = -1e300;
        for (int i = 0; i < n; ++i) {
            double I = cur[i] + p[18] * (double)(inh_prev_total - zi_prev[i]);
            double vv = p[3] + (v[i] - p[3]) * p[6];
            double tt = thl[i] * p[7];
            bool act = ref[i] == 0;
            if (act) vv = vv + p[9] * I;
            double margin = vv - (p[5] + tt);
            bool spk = act && (margin >= 0.0);
            if (spk) { vv = p[4]; if (learn) tt = tt + p[8]; if (margin > best) { best = margin; winner = i; } }
            if (exc_R > 0) ref[i] = spk ? exc_R : std::max(ref[i] - 1, 0);
            v[i] = vv; thl[i] = tt; z[i] = spk;
        }
        if (one_spike && winner >= 0) { std::fill(z.begin(), z.end(), 0); z[winner] = 1; }
        for (int i = 0; i < n; ++i) if (z[i]) { ++cnt[i]; posts.push_back(i); }
        // inhibitory (lif, Euler), driven one-to-one by this step's excitatory spikes
        int inh_total = 0;
        for (int i = 0; i < n; ++i) {
            double I = p[17] * (double)z[i];
            double vv = vi[i] + p[14] * (-(vi[i] - p[11]) + p[15] * I);
            if (inh_R > 0 && refi[i] > 0) vv = p[12];
            bool spk = (vv - p[13] >= 0.0) && !(inh_R > 0 && refi[i] != 0);
            if (spk) vv = p[12];
            if (inh_R > 0) refi[i] = spk ? inh_R : std::max(refi[i] - 1, 0);
            vi[i] = vv; zi[i] = spk; inh_total += spk;
        }
        zi_prev.swap(zi); inh_prev_total = inh_total;
        if (!learn) continue;
        // traces (traces_first, nearest)
        for (int j = 0; j < n_in; ++j) xpre[j] = s[j] ? 1.0 : xpre[j] * p[19];
        for (int i = 0; i < n; ++i) xpost[i] = z[i] ? 1.0 : xpost[i] * p[20];
        // rows of active inputs: depression (and potentiation where the post neuron also fired)
        for (int j : active_in) {
            double* row = w + (size_t)j * n;
            for (int i = 0; i < n; ++i) {
                double ltp = z[i] ? xpre[j] : 0.0;
                double d = p[21] * ltp - p[22] * xpost[i];
                row[i] = std::min(std::max(row[i] + d, p[23]), p[24]);
            }
        }
        // columns of post spikes: potentiation from inputs that did not spike this step
        for (int i : posts) {
            for (int j = 0; j < n_in; ++j) {
                if (s[j]) continue;
                double& wij = w[(size_t)j * n + i];
                double d = p[21] * xpre[j] - p[22] * 0.0;
                wij = std::min(std::max(wij + d, p[23]), p[24]);
            }
        }
    }
    if (learn) for (int i = 0; i < n; ++i) th[i] = thl[i];  // θ is kept only from learning samples
    return counts;
}
