"""Fused Hodgkin–Huxley step: one C++ call per network step for all its sub-steps.

The same discretisation as :func:`snnrun.neurons.hh.hh_step` (the reference): ``k = ⌈dt / substep⌉``
exponential (Rush–Larsen) sub-steps of ``δ = dt / k`` with the input held, the gates at the previous
V (at least ``V_RATE_FLOOR``), then V at the new conductances; a spike where V crosses ``v_th``
upwards in any sub-step. The reference runs about forty tensor operations per sub-step (twenty
sub-steps per millisecond by default) and autograd records them; here each lane (neuron × batch)
runs its sub-steps in registers, lanes vectorised (``csrc/hh.cpp``; every exponential is
``csrc/simd_math.h``'s polynomial, 2.4e-7 / 2.4e-16 relative in float32 / float64, so the values
agree with the reference to rounding, not bit for bit).

Backward (``gate_grad: passive`` only, the default): the gates carry no gradient, so each sub-step
is ``V' = V_∞ + (V − V_∞) a`` with ``a = e^{−δ g/C_m}`` and ``∂V'/∂I = r (1 − a) / g``, and a spike
is ``c_s = H(V'_s − v_th) [V_{s−1} < v_th]``, combined as ``z_s = z_{s−1} + c_s − z_{s−1} c_s``. The
forward saves nothing but its inputs (the current and the state before the step); the backward
runs the lane's sub-steps again and then the reverse recursion of exactly the reference's graph.
The surrogate derivative is evaluated in place for ``sigmoid``, ``atan``, ``fast_sigmoid``,
``triangle`` and ``rectangle``. When a backward follows, other surrogates, ``gate_grad: exact`` and
gates that carry a gradient run the reference; so do CUDA, other dtypes, and every call when the
kernel cannot be built here.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from .loader import Extension
from .surrogate_codes import surrogate_code

_EXTENSION = Extension("hh", "hh.cpp", ["hh_forward", "hh_backward"],
                       ["-O3", "-march=native", "-ffp-contract=off", "-fopenmp"], headers=("simd_math.h",))


_ENABLED = True


def enabled() -> bool:
    """Whether the kernel may run (see :func:`set_enabled`)."""
    return _ENABLED


def set_enabled(flag: bool) -> None:
    """Globally switch the kernel on/off (``hh_step`` runs when off)."""
    global _ENABLED
    _ENABLED = bool(flag)


def applies(spike_fn, current: torch.Tensor, state, grad: bool, passive: bool) -> bool:
    """Whether :func:`fused_step` runs this step: CPU, float32/64, the kernel built, the state shaped like
    the current (shape, dtype, device), and, when a backward may follow (``grad``), the passive backward
    (``passive``: ``gate_grad: passive``) with a surrogate the kernel evaluates and gates m, h, n that carry
    no gradient (the kernel passes none to them). Records which path ran."""
    ok = _ENABLED and current.device.type == "cpu" and current.dtype in (torch.float32, torch.float64) \
        and all(x.shape == current.shape and x.dtype == current.dtype and x.device == current.device
                for x in state) \
        and (not grad or (passive and surrogate_code(spike_fn)[0] >= 0
                          and not any(x.requires_grad for x in tuple(state)[1:]))) \
        and _EXTENSION.load() is not None
    _EXTENSION.ran("compiled" if ok else "reference")
    return ok


class HHStep(torch.autograd.Function):
    """One step: differentiable in the current and in V before the step. The gates m, h, n come in
    without gradient (:func:`applies`) and go out without one, as in the passive reference, whose
    gates depend on V only through detached rates. Saves the inputs only; once differentiable."""

    @staticmethod
    def forward(ctx, current, v, m, h, n, model, spike_fn):
        q, k, span = model
        z, v1, m1, h1, n1 = _EXTENSION.load().hh_forward(current.detach(), v.detach(), m.detach(), h.detach(),
                                                         n.detach(), q, k)
        ctx.save_for_backward(current, v, m, h, n)
        ctx.cfg = (q, k, span, spike_fn)
        ctx.mark_non_differentiable(m1, h1, n1)
        return z, v1, m1, h1, n1

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_z, grad_v, _gm, _gh, _gn):
        current, v, m, h, n = ctx.saved_tensors
        q, k, span, spike_fn = ctx.cfg
        code, width = surrogate_code(spike_fn)
        if grad_z is None:
            grad_z = torch.zeros_like(current)
        if grad_v is None:
            grad_v = current.new_empty(0)
        grad_i, grad_v0 = _EXTENSION.load().hh_backward(grad_z, grad_v, current.detach(), v.detach(), m.detach(),
                                                        h.detach(), n.detach(), q, k, code, width, span)
        return (grad_i if ctx.needs_input_grad[0] else None, grad_v0 if ctx.needs_input_grad[1] else None,
                None, None, None, None, None)


def fused_step(current: torch.Tensor, state, model: tuple[list[float], int, float], spike_fn, grad: bool):
    """One step of :func:`snnrun.neurons.hh.hh_step` through the kernel (where :func:`applies`) for
    ``model`` = (the kernel's parameter list, sub-steps per step, surrogate span) of
    :func:`snnrun.neurons.hh.kernel_model`, differentiable when ``grad`` (as given to :func:`applies`):
    returns (spikes, v, m, h, n)."""
    v, m, h, n = state
    if grad:
        return HHStep.apply(current, v, m, h, n, model, spike_fn)
    q, k, _ = model
    return _EXTENSION.load().hh_forward(current, v, m, h, n, q, k)
