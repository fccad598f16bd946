"""Fully connected projection and reshaping."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..schema import param
from .base import SYNAPSES, Synapse, WeightParams, init_weight


@SYNAPSES.register("dense", "full", "linear")
class Dense(Synapse):
    """All-to-all weights: ``I_post = W · s_pre (+ b)``; input is flattened, output takes the target's shape."""

    @dataclass
    class Params(WeightParams):
        bias: bool = param(False, help="add a learnable bias current")

    def __init__(self, params, in_shape, target_shape=None, dt=1.0):
        super().__init__(params, in_shape, target_shape, dt)
        self.out_shape = tuple(target_shape) if target_shape is not None else self.in_shape
        n_in, n_out = math.prod(self.in_shape), math.prod(self.out_shape)
        self.weight = torch.nn.Parameter(torch.empty(n_out, n_in))
        init_weight(self.weight, params, n_in)
        self.bias = torch.nn.Parameter(torch.zeros(n_out)) if params.bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.linear(x.reshape(x.shape[0], -1), self.weight, self.bias)
        return y.reshape(x.shape[0], *self.out_shape)


@SYNAPSES.register("flatten")
class Flatten(Synapse):
    """Reshape ``[N, *in_shape]`` to ``[N, prod(in_shape)]`` (no weights)."""

    def __init__(self, params, in_shape, target_shape=None, dt=1.0):
        super().__init__(params, in_shape, target_shape, dt)
        self.out_shape = (math.prod(self.in_shape),)

    def forward(self, x):
        return x.reshape(x.shape[0], -1)
