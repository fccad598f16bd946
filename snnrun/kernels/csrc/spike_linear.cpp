#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <atomic>
#include <vector>

// (spikes, {row offsets, column indices}) of a binary [R, K] matrix: the indices are {} when it is
// denser than max_density (the count is still exact), and spikes is -1 when it is not binary.
std::tuple<int64_t, std::vector<torch::Tensor>> spike_index(torch::Tensor x, double max_density) {
    auto X = x.contiguous();
    const int64_t R = X.size(0), K = X.size(1);
    auto counts = torch::empty({R + 1}, torch::kInt64);
    int64_t* cnt = counts.data_ptr<int64_t>();
    std::atomic<bool> ok(true);
    AT_DISPATCH_FLOATING_TYPES(X.scalar_type(), "spike_index_count", [&] {
        const scalar_t* p = X.data_ptr<scalar_t>();
        at::parallel_for(0, R, std::max<int64_t>(64, at::internal::GRAIN_SIZE / std::max<int64_t>(K, 1)), [&](int64_t b, int64_t e) {
            for (int64_t r = b; r < e && ok.load(std::memory_order_relaxed); ++r) {
                const scalar_t* row = p + r * K;
                int32_t c = 0, bad = 0;  // same-width integer accumulators: the loop vectorizes
                for (int64_t j = 0; j < K; ++j) { scalar_t v = row[j]; c += v != 0; bad |= (v != 0) & (v != 1); }
                if (bad) ok = false;
                cnt[r + 1] = c;
            }
        });
    });
    if (!ok) return {-1, {}};
    cnt[0] = 0;
    for (int64_t r = 0; r < R; ++r) cnt[r + 1] += cnt[r];
    const int64_t nnz = cnt[R];
    if ((double)nnz > max_density * (double)R * (double)K) return {nnz, {}};
    auto idx = torch::empty({nnz}, torch::kInt32);
    int32_t* ip = idx.data_ptr<int32_t>();
    AT_DISPATCH_FLOATING_TYPES(X.scalar_type(), "spike_index_fill", [&] {
        const scalar_t* p = X.data_ptr<scalar_t>();
        at::parallel_for(0, R, std::max<int64_t>(64, at::internal::GRAIN_SIZE / std::max<int64_t>(K, 1)), [&](int64_t b, int64_t e) {
            std::vector<int32_t> buf(K + 1);  // branch-free compaction, then one copy per row
            for (int64_t r = b; r < e; ++r) {
                const scalar_t* row = p + r * K;
                int64_t n = 0;
                for (int64_t j = 0; j < K; ++j) { buf[n] = (int32_t)j; n += row[j] != 0; }
                std::copy(buf.begin(), buf.begin() + n, ip + cnt[r]);
            }
        });
    });
    return {nnz, {counts, idx}};
}

// Weights are used in a packed layout [nb, K, BLK]: each block of BLK output columns of W^T is
// contiguous (a plain [K, M] row-major W^T has a power-of-two stride between the rows j, whose
// cache lines then compete for a few cache sets). Columns beyond M are zero padding.
template <typename S, int BLK>
static torch::Tensor pack(const torch::Tensor& weight) {  // weight [M, K] -> [nb, K, BLK]
    auto W = weight.contiguous();
    const int64_t M = W.size(0), K = W.size(1), nb = (M + BLK - 1) / BLK;
    auto out = torch::zeros({nb, K, BLK}, W.options());
    const S* w = W.data_ptr<S>(); S* o = out.data_ptr<S>();
    at::parallel_for(0, nb, M * K < at::internal::GRAIN_SIZE ? nb : 1, [&](int64_t bb, int64_t be) {
        for (int64_t blk = bb; blk < be; ++blk)
            for (int64_t c = 0; c < BLK && blk * BLK + c < M; ++c) {
                const S* src = w + (blk * BLK + c) * K;
                S* dst = o + blk * K * BLK + c;
                for (int64_t j = 0; j < K; ++j) dst[j * BLK] = src[j];
            }
    });
    return out;
}

template <typename S> struct Vec { typedef S type __attribute__((vector_size(32), aligned(sizeof(S)))); };
template <typename S> constexpr int lanes() { return 32 / sizeof(S); }    // 256-bit vectors
template <typename S> constexpr int gather_block() { return 8 * lanes<S>(); }   // 8 accumulators
template <typename S> constexpr int scatter_block() { return 16 * lanes<S>(); } // 16 vectors

// out[r, :] = sum_{j in row r} W[:, j]
template <typename S>
static void gather_impl(const int64_t* off, const int32_t* ip, const S* wp, S* o, int64_t R, int64_t K, int64_t M) {
    typedef typename Vec<S>::type V;
    constexpr int BLK = gather_block<S>(), L = lanes<S>(), NVEC = BLK / L;
    const int64_t nb = (M + BLK - 1) / BLK;
    const int64_t rc = std::max<int64_t>(16, (R + 15) / 16), nchunks = (R + rc - 1) / rc;
    const int64_t tasks = nb * nchunks;  // small products run on the calling thread (as torch's own kernels)
    at::parallel_for(0, tasks, R * M < at::internal::GRAIN_SIZE ? tasks : 1, [&](int64_t tb, int64_t te) {
        for (int64_t task = tb; task < te; ++task) {
            const int64_t blk = task % nb, r0 = (task / nb) * rc, r1 = std::min(R, r0 + rc);
            const int64_t c0 = blk * BLK, cw = std::min<int64_t>(BLK, M - c0);
            const S* wb = wp + blk * K * BLK;
            for (int64_t r = r0; r < r1; ++r) {
                V acc[NVEC];
                for (int k = 0; k < NVEC; ++k) acc[k] = V{};
                for (int64_t q = off[r]; q < off[r + 1]; ++q) {
                    const V* src = (const V*)(wb + (int64_t)ip[q] * BLK);
                    for (int k = 0; k < NVEC; ++k) acc[k] += src[k];
                }
                S* dst = o + r * M + c0;
                if (cw == BLK) { for (int k = 0; k < NVEC; ++k) *(V*)(dst + k * L) = acc[k]; }
                else { const S* a = (const S*)acc; for (int64_t c = 0; c < cw; ++c) dst[c] = a[c]; }
            }
        }
    });
}

torch::Tensor gather_rows(torch::Tensor offsets, torch::Tensor idx, torch::Tensor weight) {
    const int64_t R = offsets.size(0) - 1, M = weight.size(0), K = weight.size(1);
    auto out = torch::empty({R, M}, weight.options());
    AT_DISPATCH_FLOATING_TYPES(weight.scalar_type(), "gather_rows", [&] {
        auto wp = pack<scalar_t, gather_block<scalar_t>()>(weight);
        gather_impl<scalar_t>(offsets.data_ptr<int64_t>(), idx.data_ptr<int32_t>(), wp.data_ptr<scalar_t>(),
                              out.data_ptr<scalar_t>(), R, K, M);
    });
    return out;
}

// grad_weight[:, j] = sum_{r: j in row r} g[r, :]  -> [M, K]
torch::Tensor scatter_rows(torch::Tensor offsets, torch::Tensor idx, torch::Tensor grad, int64_t K) {
    auto G = grad.contiguous();
    const int64_t R = offsets.size(0) - 1, M = G.size(1);
    auto result = torch::empty({M, K}, G.options());
    AT_DISPATCH_FLOATING_TYPES(G.scalar_type(), "scatter_rows", [&] {
        using S = scalar_t;
        typedef typename Vec<S>::type V;
        constexpr int BLK = scatter_block<S>(), L = lanes<S>(), NVEC = BLK / L;
        const int64_t nb = (M + BLK - 1) / BLK;
        auto packed = torch::zeros({nb, K, BLK}, G.options());
        const int64_t* off = offsets.data_ptr<int64_t>();
        const int32_t* ip = idx.data_ptr<int32_t>();
        const S* g = G.data_ptr<S>();
        S* pk = packed.data_ptr<S>();
        S* res = result.data_ptr<S>();
        at::parallel_for(0, nb, R * M < at::internal::GRAIN_SIZE ? nb : 1, [&](int64_t bb, int64_t be) {
            for (int64_t blk = bb; blk < be; ++blk) {
                const int64_t c0 = blk * BLK, cw = std::min<int64_t>(BLK, M - c0);
                S* ob = pk + blk * K * BLK;
                V s[NVEC];
                for (int64_t r = 0; r < R; ++r) {
                    const S* src = g + r * M + c0;
                    if (cw == BLK) { for (int k = 0; k < NVEC; ++k) s[k] = *(const V*)(src + k * L); }
                    else { S* t = (S*)s; for (int c = 0; c < BLK; ++c) t[c] = c < cw ? src[c] : S(0); }
                    for (int64_t q = off[r]; q < off[r + 1]; ++q) {
                        V* dst = (V*)(ob + (int64_t)ip[q] * BLK);
                        for (int k = 0; k < NVEC; ++k) dst[k] += s[k];
                    }
                }
                for (int64_t c = 0; c < cw; ++c) {  // unpack to [M, K]
                    S* d = res + (c0 + c) * K;
                    for (int64_t j = 0; j < K; ++j) d[j] = ob[j * BLK + c];
                }
            }
        });
    });
    return result;
}
