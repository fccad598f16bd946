"""Fused LIF scan over time with a memory-lean custom backward.

Same discretisation as :func:`snnrun.neurons.lif.lif_step` (the reference), evaluated
with the identical floating-point expressions so spikes are bit-identical:

* leak, ``euler``:  ``h_t = v_{t-1} + dt/τ_m (−(v_{t-1} − v_rest) + R I_t)``
* leak, ``exact``:  ``h_t = v_rest + (v_{t-1} − v_rest) e^{−dt/τ_m} + R I_t (1 − e^{−dt/τ_m})``
* no leak (IF):     ``h_t = v_{t-1} + dt/τ_m R I_t``
* ``z_t = H(h_t − v_th)``; hard reset ``v_t = h_t (1 − z_t) + v_reset z_t``,
  soft reset ``v_t = h_t − (v_th − v_reset) z_t``.

The forward runs without autograd and saves only the pre-reset potentials ``h``
([T, B, ...], the spikes are recomputed from them as ``h ≥ v_th``). The backward
is the exact reverse-mode recursion of the reference graph with the surrogate
derivative σ'(h_t − v_th):

``g_z = ∂L/∂z_t + g_v ∂v_t/∂z_t`` (0 when ``detach_reset``), ``g_h = g_z σ' + g_v ∂v_t/∂h_t``,
``∂L/∂I_t = g_h ∂h_t/∂I_t``, ``g_v ← g_h ∂h_t/∂v_{t-1}``.

Applicable when there is no refractory period, the initial state is the resting
state, and no state traces are recorded (see :func:`applicable`).

On CPU (float32/float64) both scans run in a small C++ extension (``load_inline``, built once
into the torch extensions cache; compiled with ``-ffp-contract=off`` so the float expressions
round exactly as torch's do), parallel over neurons × batch with the loop over time inside;
the surrogate derivative of ``sigmoid``, ``atan``, ``fast_sigmoid``, ``triangle`` and
``rectangle`` is evaluated inside the backward scan (no extra [T, B, ...] tensor), other
surrogates' ``derivative`` is evaluated by torch first. Elsewhere (CUDA, other dtypes, no
compiler) the same recursions run as torch loops.
"""

from __future__ import annotations

import math

import torch

from . import Extension

_ENABLED = True

_SOURCE = r"""
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
"""

_EXTENSION = Extension("snnrun_lif_scan_v5", _SOURCE, ["lif_forward", "lif_backward"],
                       ["-O3", "-march=native", "-ffp-contract=off", "-fopenmp"])
_load = _EXTENSION.load  # the compiled module, or None when it cannot be built here


def _compiled(t: torch.Tensor):
    if t.device.type != "cpu" or t.dtype not in (torch.float32, torch.float64):
        return None
    return _load()


#: surrogate class name -> (code in the C++ backward, name of its width parameter)
_SURROGATE_CODES = {"Sigmoid": (0, "alpha"), "ATan": (1, "alpha"), "FastSigmoid": (2, "slope"),
                    "Triangle": (3, "width"), "Rectangle": (4, "width")}


def set_enabled(flag: bool) -> None:
    """Globally switch the fused path on/off (the reference loop is used when off)."""
    global _ENABLED
    _ENABLED = bool(flag)


def applicable(neuron, state, record) -> bool:
    """True when the fused scan reproduces ``Neuron.forward`` exactly for this call."""
    from ..neurons.lif import IF, LIF
    if not _ENABLED or state is not None or record or type(neuron) not in (LIF, IF):
        return False
    return getattr(neuron, "refrac_steps", 0) == 0


def _coefficients(p, dt: float, leak: bool) -> tuple[float, float]:
    """(∂h/∂v_{t-1}, ∂h/∂I_t) of the subthreshold update."""
    if leak and p.integration == "exact":
        decay = math.exp(-dt / p.tau_m)
        return decay, p.r * (1 - decay)
    if leak:
        return 1 - dt / p.tau_m, dt / p.tau_m * p.r
    return 1.0, dt / p.tau_m * p.r


def _leak_code(p, leak: bool) -> int:
    return (1 if p.integration == "exact" else 0) if leak else 2


def _forward(current: torch.Tensor, p, dt: float, leak: bool, save_h: bool = True, reuse: bool = False):
    """Returns (spikes [T, B, ...], pre-reset potentials h [T, B, ...] (empty unless ``save_h``),
    final v [B, ...], each neuron's spike count over the steps and the batch [...]).

    ``reuse``: the compiled scan may write h into ``current``'s memory (h is then ``current``)."""
    ext = _compiled(current)
    if ext is not None:
        z, h, v, counts = ext.lif_forward(current, p.r, p.v_rest, p.v_th, p.v_reset, _leak_code(p, leak),
                                          p.reset == "hard", math.exp(-dt / p.tau_m), dt / p.tau_m, save_h, reuse)
        return z, h, v.reshape(current.shape[1:]), counts.reshape(current.shape[2:])
    drive = p.r * current
    h_all = torch.empty_like(current)
    z_all = torch.empty_like(current)
    v = torch.full_like(current[0], p.v_rest)
    decay = math.exp(-dt / p.tau_m)
    k = dt / p.tau_m
    for t, d in enumerate(drive.unbind(0)):
        if leak and p.integration == "exact":
            h = p.v_rest + (v - p.v_rest) * decay + d * (1 - decay)
        elif leak:
            h = v + k * (-(v - p.v_rest) + d)
        else:
            h = v + k * d
        z = (h - p.v_th >= 0).to(h.dtype)
        h_all[t] = h
        z_all[t] = z
        if p.reset == "hard":
            v = h * (1 - z) + p.v_reset * z
        else:
            v = h - (p.v_th - p.v_reset) * z
    return z_all, h_all, v, z_all.sum((0, 1))


def _backward(grad_z: torch.Tensor, h: torch.Tensor, p, dt: float, leak: bool, spike_fn,
              inplace: bool = False) -> torch.Tensor:
    """∂L/∂I; ``inplace``: the compiled scan may write it into ``h``'s memory (h is consumed)."""
    a, b = _coefficients(p, dt, leak)
    hard = p.reset == "hard"
    ext = _compiled(h)
    if ext is not None:
        code, width = _SURROGATE_CODES.get(type(spike_fn).__name__, (-1, None))
        if code >= 0 and type(spike_fn).__module__ == "snnrun.surrogate":
            return ext.lif_backward(grad_z, h, h, code, float(getattr(spike_fn.params, width)), a, b,
                                    p.v_th, p.v_reset, hard, p.detach_reset, inplace)
        sg = spike_fn.derivative(h - p.v_th)
        return ext.lif_backward(grad_z, h, sg, -1, 0.0, a, b, p.v_th, p.v_reset, hard, p.detach_reset, inplace)
    x = h - p.v_th
    sg = spike_fn.derivative(x)
    z = (x >= 0).to(h.dtype)
    grad_in = torch.empty_like(h)
    gv = torch.zeros_like(h[0])
    for t in range(h.shape[0] - 1, -1, -1):
        zt = z[t]
        gz = grad_z[t]
        if not p.detach_reset:
            gz = gz + gv * ((p.v_reset - h[t]) if hard else -(p.v_th - p.v_reset))
        gh = gz * sg[t] + (gv * (1 - zt) if hard else gv)
        grad_in[t] = gh * b
        gv = gh * a
    return grad_in


class LIFScan(torch.autograd.Function):
    """Saves one [T, B, ...] tensor, h, and the backward writes ∂L/∂I over it: the peak is
    two [T, B, ...] tensors per layer in each direction (with ``reuse``, h also takes the
    current's memory). h is consumed, so the graph cannot be run backward twice."""

    @staticmethod
    def forward(ctx, current, p, dt, leak, spike_fn, reuse):
        with torch.no_grad():
            z, h, v, counts = _forward(current, p, dt, leak, reuse=reuse)
        if h is current:  # overwritten: whatever else saved it for a backward now fails loudly
            torch.autograd.graph.increment_version(current)
        ctx.save_for_backward(h)
        ctx.cfg = (p, dt, leak, spike_fn)
        ctx.consumed = False
        ctx.mark_non_differentiable(v, counts)
        return z, v, counts

    @staticmethod
    def backward(ctx, grad_z, _grad_v, _grad_counts):
        if ctx.consumed:
            raise RuntimeError("the fused LIF scan's saved potentials were used by an earlier backward "
                               "(retain_graph); call snnrun.kernels.lif_scan.set_enabled(False) to backward twice")
        (h,) = ctx.saved_tensors
        p, dt, leak, spike_fn = ctx.cfg
        grad = _backward(grad_z, h, p, dt, leak, spike_fn, inplace=True)
        if grad is h:
            ctx.consumed = True
        return grad, None, None, None, None, None


def lif_scan(neuron, current: torch.Tensor, reuse: bool = False):
    """Run ``neuron`` (LIF/IF, see :func:`applicable`) over ``current`` [T, B, ...].

    ``reuse``: the caller owns ``current`` and lets the scan overwrite it (with h, the
    pre-reset potentials kept for the backward), saving one [T, B, ...] tensor.
    Returns ``(spikes, final_state, counts)``: spikes and state like the reference loop, and
    each neuron's spike count over the steps and the batch ``[...]`` (counted as the scan writes
    the spikes).
    """
    from ..neurons.lif import LIFState
    from ..surrogate import Heaviside
    p = neuron.params
    if current.requires_grad and torch.is_grad_enabled() and type(neuron.spike_fn) is not Heaviside:
        z, v, counts = LIFScan.apply(current, p, neuron.dt, neuron.leak, neuron.spike_fn, reuse)
    else:
        with torch.no_grad():
            z, _, v, counts = _forward(current, p, neuron.dt, neuron.leak, save_h=False)
    refrac = torch.zeros(v.shape, device=v.device, dtype=torch.int32)
    return z, LIFState(v, refrac), counts
