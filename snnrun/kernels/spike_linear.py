r"""Dense projection of binary spikes by gathering weight rows (the event-driven product).

For spikes ``s ∈ {0, 1}^{R×K}`` (R = T·B rows) and weights ``W`` [M, K], ``I = s Wᵀ (+ b)``
is, row by row, the sum of the columns of ``W`` of the inputs that spiked:
``I_r = Σ_{j: s_rj = 1} W_{:, j}``. The weight gradient is the matching scatter:
``∂L/∂W_{:, j} = Σ_{r: s_rj = 1} ∂L/∂I_r``. At input density ρ both cost ρ·R·K·M additions
instead of the 2·R·K·M flops of the dense GEMMs (13 % dense MNIST rate codes: ~7× fewer).

The kernel (C++, ``csrc/spike_linear.cpp``) first scans ``s`` once, counting the spikes (the SynOps
counter reads that count): if an entry is neither 0 nor 1, or the density exceeds
``max_density``, it returns no indices and the caller uses the dense
``torch.nn.functional.linear``. Otherwise it builds the row-compressed indices of the spikes
(int32, kept for the backward instead of the float input), and runs both products over column
blocks of 64 outputs (each block of ``Wᵀ`` stays in cache; threads own disjoint blocks, so the
result is deterministic). The sums run in index order in the input's precision, so ``I``
equals the GEMM up to floating-point rounding order (≈1e-7 relative in float32).
``∂L/∂s`` (needed only when the spikes carry a gradient) is the dense ``∂L/∂I · W``.
"""

from __future__ import annotations


import torch

from .loader import Extension

_ENABLED = True
#: above this fraction of ones the dense GEMM is about as fast. Measured (3200×784 input, 512 outputs,
#: forward + weight gradient, 1 thread): 31 ms gather vs 163 ms dense at 5 %, 60 vs 165 at 13 %,
#: 136 vs 162 at 35 %, 185 vs 152 at 50 %.
MAX_DENSITY = 0.3



def set_enabled(flag: bool) -> None:
    """Globally switch the spike-gather path on/off (dense ``linear`` when off)."""
    global _ENABLED
    _ENABLED = bool(flag)


_EXTENSION = Extension("spike_linear", "spike_linear.cpp", ["spike_index", "gather_rows", "scatter_rows"],
                       ["-O3", "-march=native", "-mprefer-vector-width=256", "-fopenmp"])


class _SpikeLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, offsets, idx):
        ctx.save_for_backward(weight, offsets, idx)
        ctx.in_features = x.shape[1]
        return _EXTENSION.module.gather_rows(offsets, idx, weight.detach())

    @staticmethod
    def backward(ctx, grad):
        weight, offsets, idx = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = grad @ weight
        if ctx.needs_input_grad[1]:
            grad_w = _EXTENSION.module.scatter_rows(offsets, idx, grad, ctx.in_features)
        return grad_x, grad_w, None, None


def _ordered_table(x: torch.Tensor, pad: int) -> torch.Tensor:
    """``[R, kmax]`` column indices of each row's ones in ascending order, padded with ``pad``."""
    rows, cols = x.nonzero(as_tuple=True)  # row-major: ascending columns within each row
    counts = torch.bincount(rows, minlength=x.shape[0])
    table = torch.full((x.shape[0], int(counts.max()) if len(rows) else 0), pad, dtype=torch.int64, device=x.device)
    start = torch.cumsum(counts, 0) - counts
    table[rows, torch.arange(len(rows), device=x.device) - start[rows]] = cols
    return table


def _ordered_sum(table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``out[r] = Σ_k rows[table[r, k]]`` summed in ``k`` order from zero (``rows``' last row is zero padding)."""
    out = torch.zeros(table.shape[0], rows.shape[1], dtype=rows.dtype, device=rows.device)
    for k in range(table.shape[1]):
        out += rows[table[:, k]]
    return out


class _ReferenceSpikeLinear(torch.autograd.Function):
    """The gather and scatter products in torch, each sum in the compiled kernel's order (ascending
    input index for ``I``, ascending row for ``∂L/∂W``), so the results are bit-identical to it."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        zero = weight.new_zeros(1, weight.shape[0])
        return _ordered_sum(_ordered_table(x.detach(), x.shape[1]), torch.cat([weight.detach().t(), zero]))

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = grad @ weight
        if ctx.needs_input_grad[1]:
            padded = torch.cat([grad, grad.new_zeros(1, grad.shape[1])])
            grad_w = _ordered_sum(_ordered_table(x.detach().t(), x.shape[0]), padded).t()
        return grad_x, grad_w


def _binary_count(x: torch.Tensor) -> int | None:
    """The number of ones of ``x`` when it holds only 0 and 1, else None."""
    nonzero = x != 0
    return int(nonzero.sum()) if bool(((x == 1) | ~nonzero).all()) else None


def linear_events(x: torch.Tensor, weight: torch.Tensor,
                  bias: torch.Tensor | None = None) -> tuple[torch.Tensor, int | None]:
    """``torch.nn.functional.linear(x, weight, bias)`` for 2-d ``x``; uses the gather product when
    ``x`` is binary and at most :data:`MAX_DENSITY` dense (CPU, float32/64), else the dense GEMM.
    Also returns the number of spikes in ``x`` when binary ``x`` was counted on this path, else None.

    The gather runs compiled, or, without a compiler, as :class:`_ReferenceSpikeLinear` with the
    same summation order (same results, slower)."""
    if not (_ENABLED and x.dim() == 2 and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and weight.dtype == x.dtype and weight.device.type == "cpu" and x.shape[0] > 0):
        return torch.nn.functional.linear(x, weight, bias), None
    ext = _EXTENSION.load()
    if ext is not None:
        _EXTENSION.ran("compiled")
        spikes, found = ext.spike_index(x.detach(), MAX_DENSITY)
        if found:
            y = _SpikeLinear.apply(x, weight, found[0], found[1])
            return (y if bias is None else y + bias), spikes
        return torch.nn.functional.linear(x, weight, bias), (spikes if spikes >= 0 else None)
    _EXTENSION.ran("reference")
    spikes = _binary_count(x.detach())
    if spikes is not None and spikes <= MAX_DENSITY * x.shape[0] * x.shape[1]:
        y = _ReferenceSpikeLinear.apply(x, weight)
        return (y if bias is None else y + bias), spikes
    return torch.nn.functional.linear(x, weight, bias), spikes


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`linear_events` without the count."""
    return linear_events(x, weight, bias)[0]
