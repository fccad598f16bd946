"""Convolution and pooling over [C, H, W] populations."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ShapeError
from ..schema import param
from .base import SYNAPSES, Synapse, WeightParams, init_weight


def _out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _chw(shape, name) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(f"{name} needs a [channels, height, width] input, got {list(shape)}")
    return tuple(shape)


@SYNAPSES.register("conv2d")
class Conv2d(Synapse):
    """2-D convolution with shared weights: ``I = W ⋆ s (+ b)``; output [channels, H', W'] with
    ``H' = ⌊(H + 2·padding − kernel_size)/stride⌋ + 1``."""

    @dataclass
    class Params(WeightParams):
        channels: int = param(16, gt=0, help="output channels")
        kernel_size: int = param(3, gt=0, help="square kernel size")
        stride: int = param(1, gt=0, help="stride")
        padding: int = param(0, ge=0, help="zero padding on each side")
        groups: int = param(1, gt=0, help="blocked connections between input and output channels")
        bias: bool = param(False, help="add a learnable bias current")

    fresh_output = True
    per_sample = True
    engine_synapse = "conv2d"  # snnrun.engine runs it (and STDP on it, groups=1)

    def __init__(self, params, in_shape, target_shape=None, dt=1.0, time_steps=1):
        super().__init__(params, in_shape, target_shape, dt, time_steps)
        c, h, w = _chw(self.in_shape, "conv2d")
        p = params
        if c % p.groups or p.channels % p.groups:
            raise ShapeError(f"conv2d groups={p.groups} must divide the input ({c}) and output ({p.channels}) channels")
        oh, ow = _out_size(h, p.kernel_size, p.stride, p.padding), _out_size(w, p.kernel_size, p.stride, p.padding)
        if oh < 1 or ow < 1:
            raise ShapeError(f"conv2d kernel {p.kernel_size} does not fit a {h}x{w} input with padding {p.padding}")
        self.out_shape = (p.channels, oh, ow)
        self.weight = torch.nn.Parameter(torch.empty(p.channels, c // p.groups, p.kernel_size, p.kernel_size))
        init_weight(self.weight, p, c // p.groups * p.kernel_size ** 2)
        self.bias = torch.nn.Parameter(torch.zeros(p.channels)) if p.bias else None

    def forward(self, x):
        p = self.params
        return F.conv2d(x, self.weight, self.bias, stride=p.stride, padding=p.padding, groups=p.groups)


class _Pool(Synapse):
    per_sample = True

    @dataclass
    class Params:
        kernel_size: int = param(2, gt=0, help="pooling window")
        stride: int | None = param(None, help="stride (null = kernel_size)")
        padding: int = param(0, ge=0, help="zero padding")

    def __init__(self, params, in_shape, target_shape=None, dt=1.0, time_steps=1):
        super().__init__(params, in_shape, target_shape, dt, time_steps)
        c, h, w = _chw(self.in_shape, self.registry_name)
        self.stride = params.stride or params.kernel_size
        oh = _out_size(h, params.kernel_size, self.stride, params.padding)
        ow = _out_size(w, params.kernel_size, self.stride, params.padding)
        if oh < 1 or ow < 1:
            raise ShapeError(f"{self.registry_name} window {params.kernel_size} does not fit a {h}x{w} input")
        self.out_shape = (c, oh, ow)


@SYNAPSES.register("avgpool")
class AvgPool(_Pool):
    """Average pooling of spikes (a fixed-weight ``1/k²`` convolution per channel)."""

    def forward(self, x):
        return F.avg_pool2d(x, self.params.kernel_size, self.stride, self.params.padding)


@SYNAPSES.register("maxpool")
class MaxPool(_Pool):
    """Max pooling of spikes (a spike passes if any input in the window spiked)."""

    def forward(self, x):
        return F.max_pool2d(x, self.params.kernel_size, self.stride, self.params.padding)
