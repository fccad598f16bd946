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

The scan starts from the resting state or from given potentials ``v_0`` (a previous chunk's
last, :attr:`snnrun.network.Network.recompute_steps`); the final ``v`` is differentiable, its
gradient entering the backward recursion as the initial ``g_v``, and ``∂L/∂v_0`` is the ``g_v``
it ends with. Applicable when there is no refractory period and no state traces are recorded; a
neuron class declares that its dynamics are these (``fused_scan = True``: ``lif``, ``if``,
``ifsoftreset``) and decides per call.

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
from .surrogate_codes import surrogate_code

_ENABLED = True


_EXTENSION = Extension("lif_scan", "lif_scan.cpp", ["lif_forward", "lif_backward", "rlif_forward", "rlif_backward"],
                       ["-O3", "-march=native", "-ffp-contract=off", "-fopenmp"], headers=("simd_math.h",))


def _loadable(t: torch.Tensor):
    """The compiled module when it applies to ``t`` (CPU, float32/64) and is built, else None."""
    return _EXTENSION.load() if t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64) else None


def _compiled(t: torch.Tensor):
    """:func:`_loadable`, recording which path runs."""
    ext = _loadable(t)
    _EXTENSION.ran("reference" if ext is None else "compiled")
    return ext


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


def _forward(current: torch.Tensor, p, dt: float, leak: bool, save_h: bool = True, reuse: bool = False,
             v0: torch.Tensor | None = None):
    """Returns (spikes [T, B, ...], pre-reset potentials h [T, B, ...] (empty unless ``save_h``),
    final v [B, ...], each neuron's spike count over the steps and the batch [...]).

    ``reuse``: the compiled scan may write h into ``current``'s memory (h is then ``current``).
    ``v0``: the potentials [B, ...] before the first step (None: the resting state)."""
    ext = _compiled(current)
    if ext is not None:
        start = current.new_empty(0) if v0 is None else v0.detach()
        z, h, v, counts = ext.lif_forward(current, p.r, p.v_rest, p.v_th, p.v_reset, _leak_code(p, leak),
                                          p.reset == "hard", math.exp(-dt / p.tau_m), dt / p.tau_m, save_h, reuse,
                                          start)
        return z, h, v.reshape(current.shape[1:]), counts.reshape(current.shape[2:])
    drive = p.r * current
    h_all = torch.empty_like(current)
    z_all = torch.empty_like(current)
    v = torch.full_like(current[0], p.v_rest) if v0 is None else v0.detach().to(current.dtype).clone()
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
              inplace: bool = False, grad_v: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂L/∂I, ∂L/∂v_0) given ∂L/∂z and ``grad_v`` = ∂L/∂v_T (None: 0); ``inplace``: the compiled
    scan may write ∂L/∂I into ``h``'s memory (h is consumed)."""
    a, b = _coefficients(p, dt, leak)
    hard = p.reset == "hard"
    span = threshold_span(p.v_th, p.v_rest)  # the surrogate sees (h − v_th) / span (snnrun.neurons.base.spike)
    ext = _compiled(h)
    if ext is not None:
        last = h.new_empty(0) if grad_v is None else grad_v
        code, width = surrogate_code(spike_fn)
        if code >= 0 and span == 1:
            grad_in, gv = ext.lif_backward(grad_z, h, h, code, width, a, b, p.v_th, p.v_reset, hard, p.detach_reset,
                                           inplace, last)
        else:
            sg = _surrogate_derivative(spike_fn, h - p.v_th, span)
            grad_in, gv = ext.lif_backward(grad_z, h, sg, -1, 0.0, a, b, p.v_th, p.v_reset, hard, p.detach_reset,
                                           inplace, last)
        return grad_in, gv.reshape(h.shape[1:])
    x = h - p.v_th
    sg = _surrogate_derivative(spike_fn, x, span)
    z = (x >= 0).to(h.dtype)
    grad_in = torch.empty_like(h)
    gv = torch.zeros_like(h[0]) if grad_v is None else grad_v.to(h.dtype)
    for t in range(h.shape[0] - 1, -1, -1):
        zt = z[t]
        gz = grad_z[t]
        if not p.detach_reset:
            gz = gz + gv * ((p.v_reset - h[t]) if hard else -(p.v_th - p.v_reset))
        gh = gz * sg[t] + (gv * (1 - zt) if hard else gv)
        grad_in[t] = gh * b
        gv = gh * a
    return grad_in, gv


class LIFScan(torch.autograd.Function):
    """Saves one [T, B, ...] tensor, h, and the backward writes ∂L/∂I over it: the peak is
    two [T, B, ...] tensors per layer in each direction (with ``reuse``, h also takes the
    current's memory). h is consumed, so the graph cannot be run backward twice. Differentiable
    in the current, the initial potentials ``v0`` (None: rest) and through the final ``v``."""

    @staticmethod
    def forward(ctx, current, v0, p, dt, leak, spike_fn, reuse):
        with torch.no_grad():
            z, h, v, counts = _forward(current, p, dt, leak, reuse=reuse, v0=v0)
        if h is current:  # overwritten: whatever else saved it for a backward now fails loudly
            torch.autograd.graph.increment_version(current)
        ctx.save_for_backward(h)
        ctx.cfg = (p, dt, leak, spike_fn)
        ctx.consumed = False
        ctx.mark_non_differentiable(counts)
        return z, v, counts

    @staticmethod
    def backward(ctx, grad_z, grad_v, _grad_counts):
        if ctx.consumed:
            raise RuntimeError("the fused LIF scan's saved potentials were used by an earlier backward: a second "
                               "backward through the same graph (retain_graph), or a forward that continued a state "
                               "kept from an earlier forward (call network.reset() between batches); "
                               "snnrun.kernels.lif_scan.set_enabled(False) allows a second backward")
        (h,) = ctx.saved_tensors
        p, dt, leak, spike_fn = ctx.cfg
        grad, grad_v0 = _backward(grad_z, h, p, dt, leak, spike_fn, inplace=True, grad_v=grad_v)
        if grad is h:
            ctx.consumed = True
        return grad, grad_v0 if ctx.needs_input_grad[1] else None, None, None, None, None, None


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


def lif_scan(p, dt: float, leak: bool, spike_fn, current: torch.Tensor, reuse: bool = False,
             v0: torch.Tensor | None = None):
    """Run LIF/IF dynamics with parameters ``p`` (``LIF.Params``) over ``current`` [T, B, ...], from
    the potentials ``v0`` [B, ...] (None: from rest).

    ``reuse``: the caller owns ``current`` and lets the scan overwrite it (with h, the
    pre-reset potentials kept for the backward), saving one [T, B, ...] tensor.
    Returns ``(spikes, final v, counts)``: spikes and v as the reference loop gives them, and
    each neuron's spike count over the steps and the batch ``[...]``.
    """
    from ..surrogate import Heaviside
    tracked = current.requires_grad or (v0 is not None and v0.requires_grad)
    if tracked and torch.is_grad_enabled() and type(spike_fn) is not Heaviside:
        return LIFScan.apply(current, v0, p, dt, leak, spike_fn, reuse)
    with torch.no_grad():
        z, _, v, counts = _forward(current, p, dt, leak, save_h=False, v0=v0)
    return z, v, counts


def recurrent_applies(spike_fn, like: torch.Tensor, grad: bool) -> bool:
    """Whether :func:`recurrent_lif` runs compiled for tensors like ``like`` (CPU, float32/64, built) and,
    when a backward may follow (``grad``), this surrogate is one the C++ backward evaluates."""
    from ..surrogate import Heaviside
    if not _ENABLED or _loadable(like) is None:
        return False
    return not grad or (type(spike_fn) is not Heaviside and surrogate_code(spike_fn)[0] >= 0)


class RecurrentLIF(torch.autograd.Function):
    """A LIF/IF population driven by ``ext`` [T, B, N] plus a linear self-loop on its previous spikes,
    ``I_t = ext_t + W z_{t−1} + bias``: forward and backward each one C++ loop over time (per step one
    product and the scan's update), saving h and the spikes; the backward writes ∂L/∂ext over h, so
    the graph cannot be run backward twice. Differentiable in ``ext``, ``W``, ``bias``, the potentials
    ``v0`` and spikes ``s0`` before the first step, and through the final v and the last spikes (a
    following chunk's start)."""

    @staticmethod
    def forward(ctx, ext, weight, bias, v0, s0, p, dt, leak, spike_fn):
        ext_ = _compiled(ext)
        empty = ext.new_empty(0)
        with torch.no_grad():
            z, h, v = ext_.rlif_forward(ext, weight, empty if bias is None else bias, empty if v0 is None else v0,
                                        empty if s0 is None else s0, p.r, p.v_rest, p.v_th, p.v_reset,
                                        _leak_code(p, leak), p.reset == "hard", math.exp(-dt / p.tau_m),
                                        dt / p.tau_m, True)
        ctx.save_for_backward(h, z, weight, empty if s0 is None else s0)
        ctx.cfg = (p, dt, leak, spike_fn, bias is not None)
        ctx.consumed = False
        return z.reshape(ext.shape), v.reshape(ext.shape[1:])

    @staticmethod
    def backward(ctx, grad_z, grad_v):
        if ctx.consumed:
            raise RuntimeError("the recurrent LIF loop's saved potentials were used by an earlier backward "
                               "(retain_graph); call snnrun.kernels.lif_scan.set_enabled(False) to backward twice")
        ctx.consumed = True
        h, z, weight, s0 = ctx.saved_tensors
        p, dt, leak, spike_fn, has_bias = ctx.cfg
        a, b = _coefficients(p, dt, leak)
        code, width = surrogate_code(spike_fn)
        T, B = h.shape[:2]
        empty = h.new_empty(0)
        # the last spikes' gradient from a following chunk arrives inside grad_z[-1] (the carry is a view of z)
        g_ext, g_w, g_bias, g_v0, g_s0 = _compiled(h).rlif_backward(
            grad_z.reshape(h.shape), h, z, weight, s0, empty if grad_v is None else grad_v, code, width,
            threshold_span(p.v_th, p.v_rest), a, b, p.v_th, p.v_reset, p.reset == "hard", p.detach_reset, has_bias)
        need = ctx.needs_input_grad
        return (g_ext.reshape(grad_z.shape), g_w, g_bias if has_bias else None,
                g_v0.reshape(grad_z.shape[1:]) if need[3] else None,
                g_s0.reshape(grad_z.shape[1:]) if need[4] else None, None, None, None, None)


def recurrent_lif(p, dt: float, leak: bool, spike_fn, ext: torch.Tensor, weight: torch.Tensor,
                  bias: torch.Tensor | None = None, v0: torch.Tensor | None = None,
                  s0: torch.Tensor | None = None):
    """LIF/IF dynamics (parameters ``p``) of a population with input ``ext`` [T, B, N] from outside and a
    linear self-loop ``W`` [N, N] (and ``bias``) on its previous step's spikes, from the potentials
    ``v0`` and spikes ``s0`` [B, N] (None: rest, none): ``(spikes [T, B, N], final v [B, N])`` as
    stepping :func:`fused_step` with the synapse's product gives them. Compiled only (see
    :func:`recurrent_applies`)."""
    tracked = any(t is not None and t.requires_grad for t in (ext, weight, bias, v0, s0))
    if tracked and torch.is_grad_enabled():
        if surrogate_code(spike_fn)[0] < 0:
            raise ValueError(f"recurrent_lif: the C++ backward has no {type(spike_fn).__name__} surrogate "
                             f"(see recurrent_applies)")
        return RecurrentLIF.apply(ext, weight, bias, v0, s0, p, dt, leak, spike_fn)
    empty = ext.new_empty(0)
    with torch.no_grad():
        z, _, v = _compiled(ext).rlif_forward(ext, weight, empty if bias is None else bias,
                                              empty if v0 is None else v0, empty if s0 is None else s0, p.r,
                                              p.v_rest, p.v_th, p.v_reset, _leak_code(p, leak), p.reset == "hard",
                                              math.exp(-dt / p.tau_m), dt / p.tau_m, False)
    return z.reshape(ext.shape), v.reshape(ext.shape[1:])
