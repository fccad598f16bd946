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
"""

from __future__ import annotations

import math

import torch

_ENABLED = True


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


def _forward(current: torch.Tensor, p, dt: float, leak: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns (spikes [T,...], pre-reset potentials h [T,...], final v)."""
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
    return z_all, h_all, v


class LIFScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, p, dt, leak, spike_fn):
        with torch.no_grad():
            z, h, v = _forward(current, p, dt, leak)
        ctx.save_for_backward(h)
        ctx.cfg = (p, dt, leak, spike_fn)
        ctx.mark_non_differentiable(v)
        return z, v

    @staticmethod
    def backward(ctx, grad_z, _grad_v):
        (h,) = ctx.saved_tensors
        p, dt, leak, spike_fn = ctx.cfg
        a, b = _coefficients(p, dt, leak)
        x = h - p.v_th
        sg = spike_fn.derivative(x)
        z = (x >= 0).to(h.dtype)
        grad_in = torch.empty_like(h)
        gv = torch.zeros_like(h[0])
        hard = p.reset == "hard"
        for t in range(h.shape[0] - 1, -1, -1):
            zt = z[t]
            gz = grad_z[t]
            if not p.detach_reset:
                gz = gz + gv * ((p.v_reset - h[t]) if hard else -(p.v_th - p.v_reset))
            gh = gz * sg[t] + (gv * (1 - zt) if hard else gv)
            grad_in[t] = gh * b
            gv = gh * a
        return grad_in, None, None, None, None


def lif_scan(neuron, current: torch.Tensor):
    """Run ``neuron`` (LIF/IF, see :func:`applicable`) over ``current`` [T, B, ...].

    Returns ``(spikes, final_state)`` like the reference loop.
    """
    from ..neurons.lif import LIFState
    p = neuron.params
    from ..surrogate import Heaviside
    if current.requires_grad and torch.is_grad_enabled() and type(neuron.spike_fn) is not Heaviside:
        z, v = LIFScan.apply(current, p, neuron.dt, neuron.leak, neuron.spike_fn)
    else:
        with torch.no_grad():
            z, _, v = _forward(current, p, neuron.dt, neuron.leak)
    refrac = torch.zeros(v.shape, device=v.device, dtype=torch.int32)
    return z, LIFState(v, refrac)
