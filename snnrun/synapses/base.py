"""Synapse base: a stateless spatial map from presynaptic spikes to postsynaptic current.

A synapse is built as ``cls(params, in_shape=..., target_shape=..., dt=...)`` and
exposes ``out_shape``. ``forward(x)`` maps ``[N, *in_shape]`` to
``[N, *out_shape]`` where N is any batch of samples (the fast path passes
``T·B`` at once). Temporal effects (delays) belong to the projection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..registry import Registry
from ..schema import param

SYNAPSES = Registry("synapse")


@dataclass
class WeightParams:
    """Weight initialisation and bounds shared by weighted synapses."""

    init: str = param("kaiming", choices=("kaiming", "uniform", "normal", "constant"),
                      help="initial weights: kaiming (PyTorch default), uniform in [low, high], normal(mean, std), constant")
    low: float = param(0.0, help="lower end for init=uniform")
    high: float = param(1.0, help="upper end for init=uniform")
    mean: float = param(0.0, help="mean for init=normal")
    std: float = param(0.1, ge=0, help="standard deviation for init=normal")
    value: float = param(1.0, help="weight for init=constant")
    gain: float = param(1.0, help="factor applied to the initial weights")
    w_min: float | None = param(None, help="lower weight bound (clamped after init and updates)")
    w_max: float | None = param(None, help="upper weight bound")
    sign: str | None = param(None, choices=(None, "excitatory", "inhibitory"),
                             help="Dale's law: keep every weight >= 0 (excitatory) or <= 0 (inhibitory)")


def init_weight(weight: torch.Tensor, p: WeightParams, fan_in: int) -> None:
    """Fill ``weight`` in place as configured by ``p``."""
    with torch.no_grad():
        if p.init == "kaiming":
            bound = 1 / math.sqrt(max(fan_in, 1))
            weight.uniform_(-bound, bound)
        elif p.init == "uniform":
            weight.uniform_(p.low, p.high)
        elif p.init == "normal":
            weight.normal_(p.mean, p.std)
        else:
            weight.fill_(p.value)
        weight.mul_(p.gain)
        if p.sign == "excitatory":
            weight.abs_()
        elif p.sign == "inhibitory":
            weight.abs_().neg_()
        constrain(weight, p)


def has_constraints(p) -> bool:
    """Whether the parameters ``p`` bound the weights or fix their sign."""
    return (getattr(p, "w_min", None) is not None or getattr(p, "w_max", None) is not None
            or getattr(p, "sign", None) in ("excitatory", "inhibitory"))


def constrain(weight: torch.Tensor, p) -> None:
    """Apply bounds and sign constraints in place (after init and after every update)."""
    if not has_constraints(p):
        return
    sign = getattr(p, "sign", None)
    with torch.no_grad():
        if getattr(p, "w_min", None) is not None or getattr(p, "w_max", None) is not None:
            weight.clamp_(p.w_min, p.w_max)
        if sign == "excitatory":
            weight.clamp_(min=0)
        elif sign == "inhibitory":
            weight.clamp_(max=0)


class Synapse(nn.Module):
    """Base class; subclasses set ``self.out_shape`` in ``__init__``.

    ``temporal = True`` marks stages that need the time structure: their ``forward``
    takes ``(x, steps)`` where ``x`` is ``[steps·B, ...]`` (all T steps at once on the
    layer-by-layer path, one step on the step-by-step path).

    ``fresh_output = True`` marks stages whose output is a new tensor that neither they nor
    their backward keep (a GEMM's or convolution's result): the network then lets the
    target's fused neuron scan reuse its memory.

    ``per_sample = True`` marks stages that map each sample on its own, the same way at every
    step and without state (no statistics, no randomness, no time): on an input that is constant
    over time (a stride-0 time dimension, as the ``direct`` encoder gives) the network applies the
    projection's leading such stages once per sample instead of once per step.
    """

    temporal = False
    fresh_output = False
    per_sample = False

    def __init__(self, params, in_shape, target_shape=None, dt: float = 1.0, time_steps: int = 1):
        super().__init__()
        self.params = params
        self.in_shape = tuple(in_shape)
        self.target_shape = tuple(target_shape) if target_shape is not None else None
        self.dt = dt
        self.time_steps = time_steps
        self.out_shape = self.in_shape

    def clamp_weights(self) -> None:
        """Apply ``w_min``/``w_max`` and the sign constraint after an update (no-op without them)."""
        weight = getattr(self, "weight", None)
        if isinstance(weight, torch.Tensor):
            constrain(weight, self.params)

    def reset(self) -> None:
        """Clear per-sample state (delay buffers, dropout masks)."""
