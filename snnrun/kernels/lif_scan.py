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
state, and no state traces are recorded; a neuron class declares that its dynamics are these
(``fused_scan = True``: ``lif``, ``if``, ``ifsoftreset``) and decides per call.

On CPU (float32/float64) both scans run in a small C++ extension (``csrc/lif_scan.cpp``, built
once by :mod:`snnrun.kernels`; compiled with ``-ffp-contract=off`` so the float expressions
round exactly as torch's do), parallel over neurons × batch with the loop over time inside and
the lanes vectorised (``omp simd``); the surrogate derivative of ``sigmoid``, ``atan``,
``fast_sigmoid``, ``triangle`` and ``rectangle`` is evaluated inside the backward scan (no extra
[T, B, ...] tensor; the sigmoid's exponential by a vectorisable Taylor polynomial, 2.4e-7 / 2.4e-16
relative in float32 / float64), other surrogates' ``derivative`` is evaluated by torch first.
:func:`fused_step` is one step of the same dynamics for the step-by-step path (a graph with
cycles), saving only h. Elsewhere (CUDA, other dtypes, no
compiler) the same recursions run as torch loops.
"""

from __future__ import annotations

import math

import torch

from ..surrogate import threshold_span
from .loader import Extension

_ENABLED = True


_EXTENSION = Extension("lif_scan", "lif_scan.cpp", ["lif_forward", "lif_backward"],
                       ["-O3", "-march=native", "-ffp-contract=off", "-fopenmp"])


def _compiled(t: torch.Tensor):
    """The compiled module when it applies to ``t`` (CPU, float32/64) and is built; records the path."""
    ext = _EXTENSION.load() if t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64) else None
    _EXTENSION.ran("reference" if ext is None else "compiled")
    return ext


#: surrogate class name -> (code in the C++ backward, name of its width parameter)
_SURROGATE_CODES = {"Sigmoid": (0, "alpha"), "ATan": (1, "alpha"), "FastSigmoid": (2, "slope"),
                    "Triangle": (3, "width"), "Rectangle": (4, "width")}


def enabled() -> bool:
    """Whether the fused scan may run (see :func:`set_enabled`)."""
    return _ENABLED


def set_enabled(flag: bool) -> None:
    """Globally switch the fused path on/off (the reference loop is used when off)."""
    global _ENABLED
    _ENABLED = bool(flag)


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


def _surrogate_derivative(spike_fn, x: torch.Tensor, span: float) -> torch.Tensor:
    """d/dx of ``spike_fn(x / span)``."""
    return spike_fn.derivative(x) if span == 1 else spike_fn.derivative(x / span) / span


def _backward(grad_z: torch.Tensor, h: torch.Tensor, p, dt: float, leak: bool, spike_fn,
              inplace: bool = False) -> torch.Tensor:
    """∂L/∂I; ``inplace``: the compiled scan may write it into ``h``'s memory (h is consumed)."""
    a, b = _coefficients(p, dt, leak)
    hard = p.reset == "hard"
    span = threshold_span(p.v_th, p.v_rest)  # the surrogate sees (h − v_th) / span (snnrun.neurons.base.spike)
    ext = _compiled(h)
    if ext is not None:
        code, width = _SURROGATE_CODES.get(type(spike_fn).__name__, (-1, None))
        if code >= 0 and type(spike_fn).__module__ == "snnrun.surrogate" and span == 1:
            return ext.lif_backward(grad_z, h, h, code, float(getattr(spike_fn.params, width)), a, b,
                                    p.v_th, p.v_reset, hard, p.detach_reset, inplace)
        sg = _surrogate_derivative(spike_fn, h - p.v_th, span)
        return ext.lif_backward(grad_z, h, sg, -1, 0.0, a, b, p.v_th, p.v_reset, hard, p.detach_reset, inplace)
    x = h - p.v_th
    sg = _surrogate_derivative(spike_fn, x, span)
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


class LIFStep(torch.autograd.Function):
    """One step from a given potential ``v`` (differentiable in the current and in ``v``), for the
    step-by-step path (graphs with cycles): saves one [B, ...] tensor, h, where the reference graph
    of :func:`snnrun.neurons.lif.lif_step` saves about four; the backward is one step of the scan's
    recursion, with the incoming ∂L/∂v_t as the carried ``g_v``."""

    @staticmethod
    def forward(ctx, current, v, p, dt, leak, spike_fn):
        with torch.no_grad():
            d = p.r * current
            if leak and p.integration == "exact":
                decay = math.exp(-dt / p.tau_m)
                h = p.v_rest + (v - p.v_rest) * decay + d * (1 - decay)
            elif leak:
                h = v + dt / p.tau_m * (-(v - p.v_rest) + d)
            else:
                h = v + dt / p.tau_m * d
            z = (h - p.v_th >= 0).to(h.dtype)
            v_new = h * (1 - z) + p.v_reset * z if p.reset == "hard" else h - (p.v_th - p.v_reset) * z
        ctx.save_for_backward(h)
        ctx.cfg = (p, dt, leak, spike_fn)
        return z, v_new

    @staticmethod
    def backward(ctx, grad_z, grad_v):
        (h,) = ctx.saved_tensors
        p, dt, leak, spike_fn = ctx.cfg
        a, b = _coefficients(p, dt, leak)
        hard = p.reset == "hard"
        x = h - p.v_th
        sg = _surrogate_derivative(spike_fn, x, threshold_span(p.v_th, p.v_rest))
        gz = grad_z
        if not p.detach_reset:
            gz = gz + grad_v * ((p.v_reset - h) if hard else -(p.v_th - p.v_reset))
        gh = gz * sg + (grad_v * (1 - (x >= 0).to(h.dtype)) if hard else grad_v)
        return gh * b, gh * a, None, None, None, None


def fused_step(p, dt: float, leak: bool, spike_fn, current: torch.Tensor, v: torch.Tensor):
    """One LIF/IF step (parameters ``p``) from ``v`` with input ``current`` [B, ...]: ``(spikes, v)``
    as :func:`snnrun.neurons.lif.lif_step` gives them without refractoriness (the same expressions,
    so the same bits), through :class:`LIFStep`."""
    return LIFStep.apply(current, v, p, dt, leak, spike_fn)


def lif_scan(p, dt: float, leak: bool, spike_fn, current: torch.Tensor, reuse: bool = False):
    """Run LIF/IF dynamics with parameters ``p`` (``LIF.Params``) from rest over ``current`` [T, B, ...].

    ``reuse``: the caller owns ``current`` and lets the scan overwrite it (with h, the
    pre-reset potentials kept for the backward), saving one [T, B, ...] tensor.
    Returns ``(spikes, final v, counts)``: spikes and v as the reference loop gives them, and
    each neuron's spike count over the steps and the batch ``[...]``.
    """
    from ..surrogate import Heaviside
    if current.requires_grad and torch.is_grad_enabled() and type(spike_fn) is not Heaviside:
        return LIFScan.apply(current, p, dt, leak, spike_fn, reuse)
    with torch.no_grad():
        z, _, v, counts = _forward(current, p, dt, leak, save_h=False)
    return z, v, counts
