r"""Pure update functions of the local learning rules (no modules, no hidden state).

Every function takes the state in and returns the new state; the learner classes in
:mod:`snnrun.learning.stdp` only hold the state and call these. Fast paths (the compiled
Diehl & Cook kernel) reproduce them and are tested against them.

Traces (Morrison, Diesmann & Gerstner 2008), one per pre- and postsynaptic neuron:

.. math:: \tau \frac{dx}{dt} = -x + \sum_k \delta(t - t_k)

discretised exactly at the step ``dt``: ``x ← x·exp(−dt/τ)`` every step, then at a spike
``x ← x + 1`` (``mode: all_to_all``, every earlier spike pairs with every later one) or
``x ← 1`` (``mode: nearest``, only the nearest preceding spike counts).

Update order inside one step (``order: weights_first``, the default):
1. decay both traces by ``exp(−dt/τ±)``;
2. weight change from the traces *before* this step's spikes:
   ``Δw_ij = lr_post·A+·f+(w)·x_pre,j·s_post,i − lr_pre·A−·f−(w)·x_post,i·s_pre,j``;
3. weight decay, bounds;
4. add this step's spikes to the traces.

So a pre/post pair with Δt = t_post − t_pre > 0 (in ms, a multiple of dt) changes the weight by
exactly ``A+·exp(−Δt/τ+)`` and with Δt < 0 by ``−A−·exp(Δt/τ−)``; a pre and a post spike in the
*same* step do not interact. ``order: traces_first`` (BindsNET's PostPre) adds the spikes to
the traces before step 2, so a same-step pair both potentiates by ``A+`` and depresses by ``A−``.

Weight dependence: ``additive`` ``f± = 1``; ``multiplicative`` (soft bounds, van Rossum et al.
2000 / Gütig et al. 2003 with μ = 1) ``f+ = w_max − w``, ``f− = w − w_min``.
Boundary: ``hard`` clamps to ``[w_min, w_max]`` after the update; ``soft`` integrates the
change through the exponential saturation ``w ← w_max − (w_max − w)·exp(−Δw/(w_max − w_min))`` for
Δw > 0 (and the mirror image towards ``w_min`` for Δw < 0), so a bound is approached but never
crossed, and small changes far from the bounds stay ≈ Δw.
Weight decay: ``w ← w·exp(−weight_decay·dt)`` per step (``weight_decay`` in 1/ms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class StdpConstants:
    """Numbers the pure step needs (derived from a rule's Params and the network's dt)."""

    a_plus: float = 1.0
    a_minus: float = 1.0
    decay_pre: float = math.exp(-1 / 20.0)
    decay_post: float = math.exp(-1 / 20.0)
    lr_pre: float = 1.0
    lr_post: float = 1.0
    mode: str = "all_to_all"
    order: str = "weights_first"
    weight_dependence: str = "additive"
    boundary: str = "hard"
    w_min: float | None = None
    w_max: float | None = None
    decay_weight: float = 1.0
    reduction: str = "sum"


def decay_factor(tau: float, dt: float) -> float:
    """Exact exponential decay of a trace over one step: ``exp(−dt/τ)``."""
    return math.exp(-dt / tau)


def update_trace(x: torch.Tensor, s: torch.Tensor, mode: str) -> torch.Tensor:
    """Add spikes ``s`` to trace ``x``: ``x + s`` (all_to_all) or ``1`` where ``s`` (nearest)."""
    if mode == "nearest":
        return torch.where(s > 0, torch.ones_like(x), x)
    return x + s


def dense_outer(post_like: torch.Tensor, pre_like: torch.Tensor) -> torch.Tensor:
    """``Σ_b post[b, i] · pre[b, j]`` → ``[out, in]`` (a dense projection's weight shape)."""
    return post_like.reshape(post_like.shape[0], -1).t() @ pre_like.reshape(pre_like.shape[0], -1)


def conv2d_outer(kernel_size: int, stride: int, padding: int) -> Callable:
    """Weight-shaped correlation for a shared-weight 2-D convolution (groups = 1): the change of
    kernel entry ``(o, c, u, v)`` sums ``post[b, o, y, x] · pre[b, c, y·stride + u − padding, …]``
    over batch and positions, i.e. every position's pair contributes to the one shared weight."""

    def outer(post_like: torch.Tensor, pre_like: torch.Tensor) -> torch.Tensor:
        cols = F.unfold(pre_like, kernel_size, padding=padding, stride=stride)  # [B, C·k·k, L]
        post = post_like.reshape(post_like.shape[0], post_like.shape[1], -1)  # [B, O, L]
        dw = torch.einsum("bol,bkl->ok", post, cols)
        return dw.reshape(post_like.shape[1], pre_like.shape[1], kernel_size, kernel_size)

    return outer


def weight_factors(w: torch.Tensor, c: StdpConstants) -> tuple[torch.Tensor | float, torch.Tensor | float]:
    """``(f+(w), f−(w))`` of the weight dependence."""
    if c.weight_dependence == "multiplicative":
        hi = c.w_max if c.w_max is not None else 1.0
        lo = c.w_min if c.w_min is not None else 0.0
        return hi - w, w - lo
    return 1.0, 1.0


def apply_update(w: torch.Tensor, dw: torch.Tensor, c: StdpConstants) -> torch.Tensor:
    """Add ``dw`` with weight decay and the boundary; returns the new weight."""
    if c.boundary == "soft" and c.w_min is not None and c.w_max is not None:
        span = c.w_max - c.w_min
        up = c.w_max - (c.w_max - w) * torch.exp(-dw.clamp(min=0) / span)
        down = c.w_min + (w - c.w_min) * torch.exp(dw.clamp(max=0) / span)
        w = torch.where(dw >= 0, up, down)
    else:
        w = w + dw
    if c.decay_weight != 1.0:
        w = w * c.decay_weight
    if c.w_min is not None or c.w_max is not None:
        w = w.clamp(c.w_min, c.w_max)
    return w


def stdp_terms(pre: torch.Tensor, post: torch.Tensor, x_pre: torch.Tensor, x_post: torch.Tensor,
               outer: Callable = dense_outer) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight-shaped (potentiation, depression) correlations ``(s_post ⊗ x_pre, x_post ⊗ s_pre)``
    summed over the batch."""
    return outer(post, x_pre), outer(x_post, pre)


def stdp_step(w: torch.Tensor, pre: torch.Tensor, post: torch.Tensor, x_pre: torch.Tensor, x_post: torch.Tensor,
              c: StdpConstants, outer: Callable = dense_outer, scale: float | torch.Tensor = 1.0,
              plastic: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of pair STDP (order and equations in the module docstring).

    ``pre`` ``[B, *in]``, ``post`` ``[B, *out]`` spikes (0/1) of this step; ``x_pre``/``x_post``
    their traces. ``scale`` multiplies the pair term (a reward for R-STDP). Returns
    ``(w, x_pre, x_post, zeta)`` where ``zeta`` is the unscaled pair term of this step
    (``A+·f+·ltp − A−·f−·ltd`` with learning rates and batch reduction applied)."""
    x_pre = x_pre * c.decay_pre
    x_post = x_post * c.decay_post
    if c.order == "traces_first":
        x_pre = update_trace(x_pre, pre, c.mode)
        x_post = update_trace(x_post, post, c.mode)
    ltp, ltd = stdp_terms(pre, post, x_pre, x_post, outer)
    if c.reduction == "mean":
        n = pre.shape[0]
        ltp, ltd = ltp / n, ltd / n
    f_plus, f_minus = weight_factors(w, c)
    zeta = c.lr_post * c.a_plus * f_plus * ltp - c.lr_pre * c.a_minus * f_minus * ltd
    if plastic:
        w = apply_update(w, zeta * scale, c)
    if c.order != "traces_first":
        x_pre = update_trace(x_pre, pre, c.mode)
        x_post = update_trace(x_post, post, c.mode)
    return w, x_pre, x_post, zeta


def eligibility_step(e: torch.Tensor, zeta: torch.Tensor, decay: float, tau_c: float) -> torch.Tensor:
    r"""Eligibility trace of MSTDPET (Florian 2007): ``τ_c de/dt = −e + ζ(t)`` with ζ a sum of
    Dirac pulses, so per step ``e ← e·exp(−dt/τ_c) + ζ/τ_c`` (ζ this step's pair term)."""
    return e * decay + zeta / tau_c


def normalise(w: torch.Tensor, total: float) -> torch.Tensor:
    """Scale every postsynaptic neuron's incoming weights to sum to ``total``: rows of a dense
    ``[out, in]`` matrix, or each output channel of a conv kernel ``[out, in, k, k]``."""
    flat = w.reshape(w.shape[0], -1)
    sums = flat.sum(1, keepdim=True)
    sums = torch.where(sums == 0, torch.ones_like(sums), sums)
    return (flat * (total / sums)).reshape(w.shape)


def tempotron_kernel_step(k_slow: torch.Tensor, k_fast: torch.Tensor, pre: torch.Tensor,
                          decay_slow: float, decay_fast: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The two exponentials of the tempotron's PSP kernel ``K(t) = V0 (e^{−t/τ} − e^{−t/τ_s})``:
    both decay exactly over dt, then this step's presynaptic spikes add 1 to each."""
    return k_slow * decay_slow + pre, k_fast * decay_fast + pre


def tempotron_update(psp_at_max: torch.Tensor, error: torch.Tensor, lr: float) -> torch.Tensor:
    r"""Tempotron rule (Gütig & Sompolinsky 2006): after a pattern, for each output neuron i with an
    error (``> 0``: should have fired but did not, ``+1`` in the paper, ``+m`` with the learner's
    ``miss_weight``; ``−1``: fired but should not; ``0``: correct),
    ``Δw_ij = λ · error_i · Σ_{t_j < t_max,i} K(t_max,i − t_j)``. ``psp_at_max`` ``[B, out, in]``
    holds that sum of kernels at each neuron's time of maximal potential. Summed over the batch."""
    return lr * torch.einsum("bo,boi->oi", error, psp_at_max)
