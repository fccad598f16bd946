"""Fully connected projection and reshaping."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..kernels import spike_linear
from ..schema import param
from ..errors import ShapeError
from .base import SYNAPSES, Synapse, WeightParams, init_weight


@SYNAPSES.register("dense", "full", "linear")
class Dense(Synapse):
    """All-to-all weights: ``I_post = W · s_pre (+ b)``; input is flattened, output takes the target's shape."""

    @dataclass
    class Params(WeightParams):
        bias: bool = param(False, help="add a learnable bias current")

    fresh_output = True
    per_sample = True
    engine_synapse = "dense"  # snnrun.engine runs it (declared per class: read from the class's own __dict__)

    def __init__(self, params, in_shape, target_shape=None, dt=1.0, time_steps=1):
        super().__init__(params, in_shape, target_shape, dt, time_steps)
        self.out_shape = tuple(target_shape) if target_shape is not None else self.in_shape
        n_in, n_out = math.prod(self.in_shape), math.prod(self.out_shape)
        self.weight = torch.nn.Parameter(torch.empty(n_out, n_in))
        init_weight(self.weight, params, n_in)
        self.bias = torch.nn.Parameter(torch.zeros(n_out)) if params.bias else None
        self.events: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # binary, sparse input (spikes): gather weight columns instead of the dense GEMM (issue 10);
        # `events` (spikes in this call's input, when the gather kernel counted them) spares the
        # SynOps counter a pass over the input
        y, self.events = spike_linear.linear_events(x.reshape(x.shape[0], -1), self.weight, self.bias)
        return y.reshape(x.shape[0], *self.out_shape)


@SYNAPSES.register("flatten")
class Flatten(Synapse):
    """Reshape ``[N, *in_shape]`` to ``[N, prod(in_shape)]`` (no weights)."""

    def __init__(self, params, in_shape, target_shape=None, dt=1.0, time_steps=1):
        super().__init__(params, in_shape, target_shape, dt, time_steps)
        self.out_shape = (math.prod(self.in_shape),)

    per_sample = True

    def forward(self, x):
        return x.reshape(x.shape[0], -1)


@SYNAPSES.register("recurrent")
class Recurrent(Dense):
    """Dense weights from a population onto itself (the edge closes a cycle, so it carries the
    previous step's spikes); ``self_connections: false`` keeps the diagonal at zero."""

    @dataclass
    class Params(WeightParams):
        bias: bool = param(False, help="add a learnable bias current")
        self_connections: bool = param(False, help="allow a neuron to excite itself")

    engine_synapse = "recurrent"  # snnrun.engine: dense weights times the diagonal mask

    def __init__(self, params, in_shape, target_shape=None, dt=1.0, time_steps=1):
        super().__init__(params, in_shape, target_shape, dt, time_steps)
        if math.prod(self.in_shape) != math.prod(self.out_shape):
            raise ShapeError(f"recurrent synapse needs equal source and target sizes, got {list(self.in_shape)} "
                             f"and {list(self.out_shape)}")
        mask = torch.ones_like(self.weight)
        if not params.self_connections:
            mask.fill_diagonal_(0)
        self.register_buffer("mask", mask)
        with torch.no_grad():
            self.weight.mul_(mask)

    def linear_map(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(W, bias)`` of ``forward``'s ``linear(x, W, bias)``: the weights times the diagonal mask."""
        return (self.weight if self.params.self_connections else self.weight * self.mask), self.bias

    def forward(self, x):
        weight, bias = self.linear_map()
        y = torch.nn.functional.linear(x.reshape(x.shape[0], -1), weight, bias)
        return y.reshape(x.shape[0], *self.out_shape)


@SYNAPSES.register("one_to_one")
class OneToOne(Synapse):
    """Neuron i drives neuron i of a same-shaped target: ``I_i = w_i s_i`` (``learnable`` per-neuron
    weights, or the fixed ``weight``)."""

    @dataclass
    class Params:
        weight: float = param(1.0, help="initial (or fixed) weight")
        learnable: bool = param(False, help="train one weight per neuron")

    engine_synapse = "one_to_one"  # snnrun.engine runs it

    def __init__(self, params, in_shape, target_shape=None, dt=1.0, time_steps=1):
        super().__init__(params, in_shape, target_shape, dt, time_steps)
        w = torch.full(self.in_shape, params.weight)
        if params.learnable:
            self.weight = torch.nn.Parameter(w)
        else:
            self.register_buffer("weight", w)

    def forward(self, x):
        return x * self.weight


@SYNAPSES.register("lateral_inhibition")
class LateralInhibition(Synapse):
    """All-to-all minus self with one fixed weight: ``I_i = w Σ_{j≠i} s_j`` (``w < 0`` inhibits),
    computed as ``w (Σ_j s_j − s_i)`` without a weight matrix."""

    @dataclass
    class Params:
        weight: float = param(-1.0, help="weight of every connection (negative = inhibitory)")

    engine_synapse = "lateral_inhibition"  # snnrun.engine runs it

    def forward(self, x):
        flat = x.reshape(x.shape[0], -1)
        return (self.params.weight * (flat.sum(1, keepdim=True) - flat)).reshape(x.shape)


@SYNAPSES.register("sparse")
class Sparse(Synapse):
    """Fixed random connectivity: each pair is connected with probability ``p`` (seeded mask);
    only the connected weights are stored (COO indices + values) and trained."""

    @dataclass
    class Params(WeightParams):
        p: float = param(0.1, gt=0, le=1, help="connection probability")
        seed: int = param(0, help="seed of the connectivity mask")

    engine_synapse = "sparse"  # snnrun.engine runs it (frozen: local rules do not train it)

    def __init__(self, params, in_shape, target_shape=None, dt=1.0, time_steps=1):
        super().__init__(params, in_shape, target_shape, dt, time_steps)
        self.out_shape = tuple(target_shape) if target_shape is not None else self.in_shape
        n_in, n_out = math.prod(self.in_shape), math.prod(self.out_shape)
        g = torch.Generator().manual_seed(params.seed)
        mask = torch.rand(n_out, n_in, generator=g) < params.p
        self.register_buffer("indices", mask.nonzero().t().contiguous())
        self.weight = torch.nn.Parameter(torch.empty(self.indices.shape[1]))
        fan_in = max(1, int(round(params.p * n_in)))
        init_weight(self.weight, params, fan_in)
        self.shape2d = (n_out, n_in)

    def dense_weight(self) -> torch.Tensor:
        """The full [out, in] matrix (zeros where unconnected), for inspection and tests."""
        return torch.sparse_coo_tensor(self.indices, self.weight, self.shape2d, check_invariants=False).to_dense()

    def forward(self, x):
        w = torch.sparse_coo_tensor(self.indices, self.weight, self.shape2d, check_invariants=False)
        y = torch.sparse.mm(w, x.reshape(x.shape[0], -1).t()).t()
        return y.reshape(x.shape[0], *self.out_shape)
